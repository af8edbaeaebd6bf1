"""The run on one timeline: per-interval series for plots and windows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from loadlab.analysis.rundata import RunData


def bucket_width(duration_s: float, *, target_points: int = 120) -> float:
    """A round bucket width giving about ``target_points`` points over ``duration_s``."""
    raw = max(duration_s / target_points, 1.0)
    for width in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if raw <= width:
            return float(width)
    return float(math.ceil(raw / 600) * 600)


def _p(values: pd.Series, q: float) -> float:
    arr = values.dropna().to_numpy(dtype="float64")
    return float(np.percentile(arr, q, method="inverted_cdf")) if arr.size else math.nan


def timeseries(run: RunData, *, width_s: float | None = None) -> pd.DataFrame:
    """Per-bucket series, ``t`` in seconds since the run started.

    Columns: ``t``, ``users`` (Locust's user count), ``active_sessions``,
    ``turns_per_s`` (logical turns completed), ``requests_per_s``, ``p50_ms`` and
    ``p99_ms`` (request latency), ``ttft_p99_ms``, ``errors_per_s``.
    """
    t0, t1 = run.t0, run.t_end
    duration = max(t1 - t0, 1.0)
    width = width_s or bucket_width(duration)
    n = math.ceil(duration / width) or 1
    edges = t0 + np.arange(n + 1) * width
    out = pd.DataFrame({"t": (edges[:-1] - t0)})

    req = run.requests
    if len(req):
        end = req["t_start"] + req["latency_ms"] / 1000.0
        idx = np.clip(((end - t0) // width).astype(int), 0, n - 1)
        # Only the columns used: assign() copies every column of the frame.
        grouped = req[["latency_ms", "ttft_ms"]].assign(_b=idx).groupby("_b")
        out["requests_per_s"] = grouped.size().reindex(range(n), fill_value=0).to_numpy() / width
        out["p50_ms"] = grouped["latency_ms"].apply(lambda s: _p(s, 50)).reindex(range(n))
        out["p99_ms"] = grouped["latency_ms"].apply(lambda s: _p(s, 99)).reindex(range(n))
        out["ttft_p99_ms"] = grouped["ttft_ms"].apply(lambda s: _p(s, 99)).reindex(range(n))
        errors = req["error_kind"].notna()
        out["errors_per_s"] = (
            errors.groupby(idx).sum().reindex(range(n), fill_value=0).to_numpy() / width
        )
    else:
        for col in ("requests_per_s", "p50_ms", "p99_ms", "ttft_p99_ms", "errors_per_s"):
            out[col] = 0.0 if col.endswith("per_s") else math.nan

    turns = run.turns
    if len(turns):
        tidx = np.clip(((turns["t_end"] - t0) // width).astype(int), 0, n - 1)
        counts = turns.groupby(tidx).size().reindex(range(n), fill_value=0)
        out["turns_per_s"] = counts.to_numpy() / width
    else:
        out["turns_per_s"] = 0.0

    mids = edges[:-1] + width / 2
    sessions = run.sessions
    if len(sessions):
        starts = np.sort(sessions["t_start"].to_numpy())
        ends = np.sort(sessions["t_end"].to_numpy())
        out["active_sessions"] = np.searchsorted(starts, mids) - np.searchsorted(ends, mids)
    else:
        out["active_sessions"] = 0

    out["users"] = _users_at(run, mids)
    return out


def _users_at(run: RunData, times: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    ev = run.events
    samples = ev[ev["kind"] == "users"] if len(ev) else ev
    if not len(samples):
        return np.full(len(times), np.nan)
    t = samples["t"].to_numpy(dtype="float64")
    users = np.array([_users_value(a) for a in samples["attrs"]], dtype="float64")
    order = np.argsort(t)
    t, users = t[order], users[order]
    pos = np.searchsorted(t, times, side="right") - 1
    result = np.where(pos >= 0, users[np.clip(pos, 0, None)], np.nan)
    return np.asarray(result)


def _users_value(attrs: Any) -> float:
    if isinstance(attrs, dict):
        value = attrs.get("users")
        if isinstance(value, int | float):
            return float(value)
    return math.nan


def faults(run: RunData) -> list[dict[str, Any]]:
    """Fault events as ``{t, name, target, attrs}`` with ``t`` relative to the run start."""
    ev = run.events
    if not len(ev):
        return []
    rows = ev[ev["kind"] == "fault"]
    return [
        {
            "t": float(t) - run.t0,
            "name": str(name),
            "target": target,
            "attrs": attrs if isinstance(attrs, dict) else {},
        }
        for t, name, target, attrs in zip(
            rows["t"].astype(float), rows["name"], rows["target"], rows["attrs"], strict=True
        )
    ]
