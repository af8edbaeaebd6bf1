"""How fast a stop condition acted: breach observable, seen, faults reverted, load stopped.

A run stopped by an ``abort: true`` gate has ``stop`` events on its timeline
(``breach``, one ``revert`` per fault target, ``stop_load``; see
:mod:`loadlab.app.locust_plugin.abort`). :func:`stop_timings` reads them and
works out, from the recorded turns, when the breach first became observable:
the first turn end after which the gate's figure over its window broke the
limit (``min_turns`` turns at least, as the live judge needs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from loadlab.analysis.rundata import RunData

__all__ = ["StopTimings", "stop_timings"]

_QUANTILE = {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0, "p999_ms": 99.9}


@dataclass(frozen=True, slots=True, kw_only=True)
class StopTimings:
    """When each step of a stop happened (epoch seconds), and the delays between them."""

    gate: str
    observable_t: float | None
    breach_t: float
    revert_t: dict[str, float]
    stop_t: float | None
    last_turn_start_t: float | None

    @property
    def detect_s(self) -> float | None:
        """From the breach being observable to loadlab seeing it."""
        return None if self.observable_t is None else self.breach_t - self.observable_t

    @property
    def revert_s(self) -> float | None:
        """From the breach to the last fault reverted."""
        return max(self.revert_t.values()) - self.breach_t if self.revert_t else None

    @property
    def stop_s(self) -> float | None:
        """From the breach to the load being stopped."""
        return None if self.stop_t is None else self.stop_t - self.breach_t


def stop_timings(
    run: RunData, *, limit: float, window_s: float | None, min_turns: int = 20
) -> StopTimings | None:
    """The stop of ``run`` (None when no gate broke); ``limit``/``window_s`` are the gate's.

    The observable moment is computed for turn latency percentile gates
    (``p50_ms`` ... ``p999_ms``); for others it is None.
    """
    events = run.events
    stops = events[events["kind"] == "stop"] if len(events) else events
    breaches = stops[stops["name"] == "breach"] if len(stops) else stops
    if not len(breaches):
        return None
    breach = breaches.iloc[0]
    gate = str(breach["attrs"].get("gate", ""))
    reverts = stops[stops["name"] == "revert"]
    revert_t = {
        str(row["attrs"].get("target", "?")): float(row["t"])
        for _, row in reverts.iterrows()
        if row["attrs"].get("outcome") == "reverted"
    }
    stopped = stops[stops["name"] == "stop_load"]
    turns = run.turns
    return StopTimings(
        gate=gate,
        observable_t=_observable(run, gate, limit, window_s, min_turns),
        breach_t=float(breach["t"]),
        revert_t=revert_t,
        stop_t=float(stopped["t"].iloc[0]) if len(stopped) else None,
        last_turn_start_t=float(turns["t_start"].max()) if len(turns) else None,
    )


def _observable(
    run: RunData, gate: str, limit: float, window_s: float | None, min_turns: int
) -> float | None:
    key = gate.split("[", 1)[0]
    quantile = _QUANTILE.get(key)
    turns = run.turns
    if quantile is None or not len(turns):
        return None
    ok = turns[turns["ok"].astype(bool)].sort_values("t_end")
    ends = ok["t_end"].to_numpy(dtype="float64")
    latency = ((ok["t_end"] - ok["t_start"]) * 1000.0).to_numpy(dtype="float64")
    span = math.inf if window_s is None else window_s
    for i, end in enumerate(ends):
        window = latency[: i + 1][ends[: i + 1] >= end - span]
        if (
            window.size >= min_turns
            and np.percentile(window, quantile, method="inverted_cdf") > limit
        ):
            return float(end)
    return None
