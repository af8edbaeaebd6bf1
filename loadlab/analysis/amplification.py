"""What one shopper turn costs downstream, and how much more it costs during a fault.

The agent reports, with each turn, the DynamoDB operations and capacity units it
used and the LLM calls (HTTP attempts, retries included), 429s and tokens it
spent (``TurnRecord.ddb_calls`` … ``tokens_out``). Those counts are exact, so
the per-turn means here are the true amplification of the run, independent of
any metrics scrape. *Retry amplification* compares the turns that overlapped a
fault window with the others: LLM calls per turn 1.0 normally, 2.3 during a
429 storm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loadlab.analysis.impact import Fault, fault_spans
from loadlab.analysis.rundata import RunData

__all__ = [
    "TURN_COSTS",
    "FaultWindow",
    "amplification",
    "attr_number",
    "clears_faults",
    "fault_attrs",
    "fault_windows",
    "retry_amplification",
]

TURN_COSTS: tuple[str, ...] = (
    "attempts",
    "ddb_calls",
    "ddb_rcu",
    "ddb_wcu",
    "llm_calls",
    "llm_retries",
    "llm_throttles",
    "tokens_in",
    "tokens_out",
)
"""Turn columns whose per-turn mean is an amplification (``attempts``: agent requests)."""


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """The span a fault acted on the system (epoch seconds).

    It runs from the fault's start to the later of its end event and the
    ``expires_at`` its events announce: an action that sets a 429 storm for 30 s
    returns at once, but the storm lasts until it expires.
    """

    fault_id: str
    name: str
    target: str | None
    t_start: float
    t_end: float


def amplification(turns: pd.DataFrame) -> dict[str, Any]:
    """Per-turn downstream cost of every turn, and by intent.

    ``{"turns", "totals", "per_turn", "by_intent": {intent: {"turns", "totals", "per_turn"}}}``;
    failed turns count too, since their attempts spent capacity all the same.
    """
    out = _cost(turns)
    # only the columns summed: grouping every column of a million turns cost seconds
    costs = turns[["intent", *TURN_COSTS]] if len(turns) else turns
    out["by_intent"] = (
        {str(intent): _cost(group) for intent, group in costs.groupby("intent", sort=True)}
        if len(turns)
        else {}
    )
    return out


def retry_amplification(run: RunData) -> dict[str, Any]:
    """Per-turn cost of the turns overlapping a fault window vs the others.

    A turn overlaps a window when it started before the window ended and ended at
    or after it began. ``ratio`` is in-fault over outside per metric (None without
    a non-zero outside baseline); ``windows`` lists each fault's own turns.
    """
    windows = fault_windows(run)
    start = run.turns["t_start"].to_numpy(dtype="float64")
    end = run.turns["t_end"].to_numpy(dtype="float64")
    # only the columns summed: filtering every column of a million turns cost seconds
    turns = run.turns[list(TURN_COSTS)]
    inside = np.zeros(len(turns), dtype=bool)
    per_window = []
    for w in windows:
        hit = (start <= w.t_end) & (end >= w.t_start)
        inside |= hit
        per_window.append(
            {
                "fault_id": w.fault_id,
                "name": w.name,
                "target": w.target,
                "t": w.t_start - run.t0,
                "t_end": w.t_end - run.t0,
            }
            | _cost(turns[hit])
        )
    in_fault, outside = _cost(turns[inside]), _cost(turns[~inside])
    ratio: dict[str, float | None] = {}
    for col in TURN_COSTS:
        a, b = in_fault["per_turn"][col], outside["per_turn"][col]
        ratio[col] = a / b if a is not None and b else None
    return {"in_fault": in_fault, "outside": outside, "ratio": ratio, "windows": per_window}


def _cost(turns: pd.DataFrame) -> dict[str, Any]:
    n = len(turns)
    totals = {c: float(turns[c].fillna(0).sum()) if n else 0.0 for c in TURN_COSTS}
    return {
        "turns": n,
        "totals": totals,
        "per_turn": {c: (v / n if n else None) for c, v in totals.items()},
    }


def fault_windows(run: RunData) -> list[FaultWindow]:
    """Each fault of the run as the span it acted on the system, ordered by start.

    An action whose events say ``active: false`` (clearing the LLM's faults,
    restoring capacity) is no fault itself: it ends, at its own end, the windows
    of the faults on the same target that were still running.
    """
    spans = [(f, fault_attrs(run.events, f)) for f in fault_spans(run.events)]
    clears = [(f.t_end, f.target) for f, attrs in spans if _clears(attrs)]
    out = []
    for fault, attrs in spans:
        if _clears(attrs):
            continue
        expiries = [e for e in (attr_number(a, "expires_at") for a in attrs) if e is not None]
        end = max([fault.t_end, *expiries])
        cleared = [t for t, target in clears if target == fault.target and t > fault.t_start]
        end = min([end, *cleared])
        # An expiry past the run's end (a lease outliving a short run) is cut at the end.
        end = max(min(end, run.t_end), fault.t_end)
        out.append(FaultWindow(fault.fault_id, fault.name, fault.target, fault.t_start, end))
    return out


def clears_faults(attrs: dict[str, Any]) -> bool:
    """True when a fault event reports that nothing is injected any more (``active: false``)."""
    return attrs.get("active") is False


def _clears(attrs: list[dict[str, Any]]) -> bool:
    return any(clears_faults(a) for a in attrs)


def fault_attrs(events: pd.DataFrame, fault: Fault) -> list[dict[str, Any]]:
    """The ``attrs`` of the events that make up ``fault`` (its start and its end)."""
    if not len(events):
        return []
    rows = events[events["kind"] == "fault"]
    out = []
    for t, name, attrs in zip(rows["t"].astype(float), rows["name"], rows["attrs"], strict=True):
        a = attrs if isinstance(attrs, dict) else {}
        fault_id = a.get("fault_id")
        if fault_id not in (None, ""):
            if str(fault_id) == fault.fault_id:
                out.append(a)
        elif str(name) == fault.name and fault.t_start <= t <= fault.t_end:
            out.append(a)
    return out


def attr_number(attrs: dict[str, Any], name: str) -> float | None:
    """A finite numeric attribute of a fault event (a number or a numeric string), or None."""
    value = attrs.get(name)
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
