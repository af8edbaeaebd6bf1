"""Figures that gates judge and the summary does not hold: worst windows, per-intent rates.

A windowed gate (``p99_ms: {max: 5000, window_s: 30}``) judges the worst window
of ``window_s`` seconds: windows start at the run's start and slide by
:data:`STEP_S` (1 s) until the last one reaches the end of the timeline; a run
shorter than the window is one window. A turn belongs to the window its end
falls in (when the shopper saw the answer), a session to the window its verdict
was reached in (its end).

The three window functions take plain arrays, so the same arithmetic judges a
finished run here and a rolling window while a run goes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from loadlab.analysis.pressure import pressure_series
from loadlab.analysis.rundata import RunData

__all__ = [
    "STEP_S",
    "ddb_throttles",
    "turn_error_rate",
    "turn_values",
    "window_count",
    "window_quantile",
    "window_rate",
    "window_starts",
    "worst_window",
]

STEP_S = 1.0
"""How far a window slides between two positions (seconds)."""

_Array = np.ndarray[Any, Any]


def window_starts(t0: float, t_end: float, window_s: float, step_s: float = STEP_S) -> _Array:
    """Start times of every window of ``window_s`` between ``t0`` and ``t_end``.

    The last window always ends at ``t_end``: the end of a run (where an aborted
    run's slowest turns are) is judged like the rest of it.
    """
    span = max(t_end - t0 - window_s, 0.0)
    starts = t0 + np.arange(math.floor(span / step_s + 1e-9) + 1) * step_s
    if starts[-1] < t0 + span - 1e-9:
        starts = np.append(starts, t0 + span)
    return starts


def _slices(times: _Array, starts: _Array, window_s: float) -> tuple[_Array, _Array, _Array]:
    """``(order, lo, hi)``: ``times[order][lo[i]:hi[i]]`` fall in window ``i``.

    The last window also takes the values at its very end, so nothing on the
    timeline's last instant is left out.
    """
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    lo = np.searchsorted(ordered, starts, side="left")
    hi = np.searchsorted(ordered, starts + window_s, side="left")
    if len(hi):
        hi[-1] = np.searchsorted(ordered, starts[-1] + window_s, side="right")
    return order, lo, hi


def window_quantile(
    times: _Array, values: _Array, q: float, starts: _Array, window_s: float
) -> float | None:
    """Highest nearest-rank percentile ``q`` (0-100) of ``values`` over the windows."""
    keep = ~np.isnan(values)
    times, values = times[keep], values[keep]
    if not values.size:
        return None
    order, lo, hi = _slices(times, starts, window_s)
    ordered = values[order]
    worst: float | None = None
    for a, b in zip(lo, hi, strict=True):
        if b > a:
            v = float(np.percentile(ordered[a:b], q, method="inverted_cdf"))
            worst = v if worst is None else max(worst, v)
    return worst


def window_rate(times: _Array, failed: _Array, starts: _Array, window_s: float) -> float | None:
    """Highest share of ``failed`` (booleans) over the windows that hold any value."""
    if not times.size:
        return None
    order, lo, hi = _slices(times, starts, window_s)
    cumulative = np.concatenate(([0], np.cumsum(failed[order].astype("int64"))))
    n = hi - lo
    has = n > 0
    if not has.any():
        return None
    return float(((cumulative[hi] - cumulative[lo])[has] / n[has]).max())


def window_count(times: _Array, starts: _Array, window_s: float) -> int:
    """Most ``times`` in any one window."""
    if not times.size:
        return 0
    _, lo, hi = _slices(times, starts, window_s)
    return int((hi - lo).max())


def turn_values(run: RunData, column: str, intent: str | None = None) -> tuple[_Array, _Array]:
    """``(end times, values)`` of the successful turns (of ``intent``) for a latency gate.

    ``column`` is ``latency`` (as the shopper saw it, end minus start, ms) or
    ``ttft_ms``; the same turns and values as summary.json's percentiles.
    """
    turns = _turns(run, intent)
    turns = turns[turns["ok"].astype(bool)]
    values = (turns["t_end"] - turns["t_start"]) * 1000.0 if column == "latency" else turns[column]
    return (
        turns["t_end"].to_numpy(dtype="float64"),
        pd.Series(values, dtype="float64").to_numpy(dtype="float64"),
    )


def turn_error_rate(run: RunData, intent: str | None = None) -> float | None:
    """Failed turns over all turns (of ``intent``); None without turns."""
    turns = _turns(run, intent)
    if not len(turns):
        return None
    return float((~turns["ok"].astype(bool)).sum() / len(turns))


def worst_window(
    run: RunData, key: str, window_s: float, intent: str | None = None
) -> float | None:
    """The worst window of ``window_s`` for gate figure ``key``.

    ``key`` is a percentile of turn latency (``p50``, ``p95``, ``p99``, ``p999``)
    or of TTFT (``ttft_p50``, ``ttft_p99``), ``error_rate``, or a session
    verdict (``restarted``, ``duplicated``, ``failed``: the most sessions with
    it in any window). None when no window holds a value.
    """
    starts = window_starts(run.t0, run.t_end, window_s)
    if key in ("restarted", "duplicated", "failed"):
        sessions = run.sessions
        ends = sessions["t_end"].to_numpy(dtype="float64")[
            (sessions["verdict"].astype(str) == key).to_numpy()
        ]
        return float(window_count(ends, starts, window_s))
    if key == "error_rate":
        turns = _turns(run, intent)
        return window_rate(
            turns["t_end"].to_numpy(dtype="float64"),
            (~turns["ok"].astype(bool)).to_numpy(),
            starts,
            window_s,
        )
    column, _, level = key.rpartition("_")
    q = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}[level]
    times, values = turn_values(run, "ttft_ms" if column == "ttft" else "latency", intent)
    return window_quantile(times, values, q, starts, window_s)


def ddb_throttles(run: RunData) -> float | None:
    """Throttled DynamoDB requests over the run, from the throttle samples.

    The sum over the timeline of the per-second throttle rate times the bucket
    width (the counter's increase, or the CloudWatch sums). None when no source
    sampled DynamoDB throttles.
    """
    ps = pressure_series(run)
    got = ps.values("ddb_throttles_per_s")
    if got is None:
        return None
    rates = got[0]
    if np.isnan(rates).all():
        return None
    return float(np.nansum(rates) * ps.width_s)


def _turns(run: RunData, intent: str | None) -> pd.DataFrame:
    turns = run.turns
    if intent is not None and len(turns):
        turns = turns[turns["intent"].astype(str) == intent]
    return turns
