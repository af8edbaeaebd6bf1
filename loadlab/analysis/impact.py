"""What each fault did to the shoppers: the join of faults with turns and sessions.

A fault on the timeline is one or two ``kind="fault"`` events sharing an
``attrs.fault_id``: a ``start`` when the action began and an ``end`` (with its
status) when it returned. Older runs and a crashed harness leave the start only;
``loadlab demo`` writes a start without a fault id. For each fault this module
answers the questions of DESIGN.md's "The one idea": which sessions and turns
were in flight when it landed and what became of them, how P99 and the error
rate moved in the windows either side of it, and how long P99 took to come back.

Everything is computed per fault with numpy masks over the whole turn table, so
overlapping faults are each judged on their own (and list each other).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from loadlab.analysis.rundata import RunData
from loadlab.rows import VERDICTS

__all__ = [
    "IMPACT_COLUMNS",
    "Fault",
    "FaultImpact",
    "WindowStats",
    "fault_impact",
    "fault_spans",
    "grouped_percentile",
    "verdict_counts",
]

IMPACT_COLUMNS: dict[str, list[str]] = {
    "requests": ["t_start", "latency_ms", "error_kind"],
    "turns": ["session_id", "t_start", "t_end", "ok", "attempts", "interrupted"],
    "sessions": ["session_id", "t_start", "t_end", "verdict"],
    "pressure": [],
}
"""The only columns :func:`fault_impact` reads, by table: ``load_run(path,
columns=IMPACT_COLUMNS)`` gives it all it needs (the web UI's impact line reads
the run directory so while the load runs, a tenth of what the report reads)."""

RECOVERED = "recovered"
NOT_RECOVERED = "not recovered"
NO_BASELINE = "no baseline"


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault as a span on the timeline (epoch seconds)."""

    fault_id: str
    name: str
    target: str | None
    t_start: float
    t_end: float
    ended: bool
    status: str | None
    activity: str | None


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Shopper-visible turn latency and failures in one window beside a fault.

    A turn belongs to the window its ``t_end`` falls in: a turn the fault slowed
    down is counted after the fault even if it started before it. ``p99_ms`` is
    over the turns that succeeded (as in the run's headline latency);
    ``error_rate`` is failed turns over all turns, ``request_error_rate`` failed
    attempts over all attempts (retries hide a fault from the first, not the second).
    """

    turns: int
    turns_failed: int
    p99_ms: float | None
    error_rate: float | None
    requests: int
    request_error_rate: float | None


@dataclass(frozen=True, slots=True)
class FaultImpact:
    """What one fault did: sessions and turns in flight, P99 and errors around it, recovery.

    ``t`` is seconds since the run started, ``t_epoch`` the same instant in epoch
    seconds. Sessions *in flight* had ``t_start <= t < t_end``; *interrupted*
    ones among them had an interrupted turn ending at or after ``t`` and starting
    before the fault's end plus the window (so a much later fault is not blamed
    on this one). ``time_to_recover_s`` is the start of the first 5 s bucket after
    ``t`` whose P99 is back within the tolerance of ``before.p99_ms``.
    """

    fault_id: str
    name: str
    target: str | None
    status: str | None
    activity: str | None
    t: float
    t_epoch: float
    duration_s: float
    ended: bool
    sessions_in_flight: int
    session_verdicts: dict[str, int]
    sessions_interrupted: int
    interrupted_session_verdicts: dict[str, int]
    turns_in_flight: int
    turns_in_flight_ok: int
    turns_in_flight_ok_after_retry: int
    turns_in_flight_failed: int
    window_s: float
    before: WindowStats
    after: WindowStats
    time_to_recover_s: float | None
    recovery: str
    overlapping: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (the shape of one entry of summary.json's ``fault_impact``)."""
        out = asdict(self)
        out["overlapping"] = list(self.overlapping)
        return out


def fault_spans(events: pd.DataFrame) -> list[Fault]:
    """Group the ``fault`` events of ``events`` into faults, ordered by start time.

    Events with the same ``attrs.fault_id`` are one fault. An event without a fault
    id is a fault of its own, except an ``end`` event, which closes the latest open
    start with the same name and target.
    """
    if not len(events):
        return []
    rows = events[events["kind"] == "fault"]
    by_id: dict[str, list[tuple[float, str, str | None, dict[str, Any]]]] = {}
    unkeyed_ends: list[tuple[float, str, str | None, dict[str, Any]]] = []
    for t, name, target, attrs in zip(
        rows["t"].astype(float), rows["name"], rows["target"], rows["attrs"], strict=True
    ):
        a = attrs if isinstance(attrs, dict) else {}
        event = (float(t), str(name), _opt_str(target), a)
        fault_id = a.get("fault_id")
        if fault_id not in (None, ""):
            by_id.setdefault(str(fault_id), []).append(event)
        elif a.get("phase") == "end":
            unkeyed_ends.append(event)
        else:
            by_id[f"{name}@{float(t):.3f}"] = [event]
    for end in sorted(unkeyed_ends, key=lambda e: e[0]):
        _close_unkeyed(by_id, end)
    faults = [_fault(fault_id, group) for fault_id, group in by_id.items()]
    return sorted(faults, key=lambda f: (f.t_start, f.fault_id))


def _close_unkeyed(
    by_id: dict[str, list[tuple[float, str, str | None, dict[str, Any]]]],
    end: tuple[float, str, str | None, dict[str, Any]],
) -> None:
    t, name, target, _ = end
    open_starts = [
        (group[0][0], key)
        for key, group in by_id.items()
        if len(group) == 1
        and group[0][0] <= t
        and group[0][1] == name
        and group[0][2] == target
        and "fault_id" not in group[0][3]
    ]
    if open_starts:
        by_id[max(open_starts)[1]].append(end)
    else:  # an end whose start was lost: still a fault, at the only time we know
        by_id[f"{name}@{t:.3f}"] = [end]


def _fault(fault_id: str, group: list[tuple[float, str, str | None, dict[str, Any]]]) -> Fault:
    group = sorted(group, key=lambda e: e[0])
    starts = [e for e in group if e[3].get("phase", "start") != "end"]
    ends = [e for e in group if e[3].get("phase") == "end"]
    first = starts[0] if starts else group[0]
    last = ends[-1] if ends else None
    status = _opt_str(last[3].get("status")) if last else _opt_str(first[3].get("status"))
    activity = _opt_str(first[3].get("activity")) or (
        _opt_str(last[3].get("activity")) if last else None
    )
    # The end event's target names what was actually hit (e.g. the pods a selector matched).
    target = (last[2] if last else None) or first[2]
    return Fault(
        fault_id=fault_id,
        name=first[1],
        target=target,
        t_start=first[0],
        t_end=max(last[0], first[0]) if last else first[0],
        ended=last is not None,
        status=status,
        activity=activity,
    )


def fault_impact(
    run: RunData,
    *,
    window_s: float = 30.0,
    bucket_s: float = 5.0,
    tolerance: float = 0.10,
) -> list[FaultImpact]:
    """Per fault: what was in flight when it landed, P99/errors before vs after, recovery.

    ``window_s`` is the width of the before ``[t - window_s, t)`` and after
    ``[t, t + window_s)`` windows; ``bucket_s`` and ``tolerance`` define recovery
    (the first ``bucket_s`` bucket after ``t`` whose P99 is at most
    ``(1 + tolerance)`` times the before-window P99).
    """
    faults = fault_spans(run.events)
    if not faults:
        return []
    turns = _TurnArrays.of(run.turns)
    sessions = run.sessions
    s_start = sessions["t_start"].to_numpy(dtype="float64")
    s_end = sessions["t_end"].to_numpy(dtype="float64")
    s_id = sessions["session_id"].astype(str).to_numpy()
    s_verdict = sessions["verdict"].astype(str).to_numpy()
    req = run.requests
    r_end = (req["t_start"] + req["latency_ms"] / 1000.0).to_numpy(dtype="float64")
    r_err = req["error_kind"].notna().to_numpy(dtype=bool)

    out: list[FaultImpact] = []
    for fault in faults:
        t = fault.t_start
        in_flight = (s_start <= t) & (t < s_end)
        hit = turns.interrupted & (turns.end >= t) & (turns.start < fault.t_end + window_s)
        interrupted = in_flight & _among(s_id, turns.session[hit].astype(str).to_numpy())
        turn_live = (turns.start <= t) & (t < turns.end)
        before = _window(turns, r_end, r_err, t - window_s, t)
        after = _window(turns, r_end, r_err, t, t + window_s)
        recover = _time_to_recover(turns, t, before.p99_ms, bucket_s, tolerance)
        out.append(
            FaultImpact(
                fault_id=fault.fault_id,
                name=fault.name,
                target=fault.target,
                status=fault.status,
                activity=fault.activity,
                t=t - run.t0,
                t_epoch=t,
                duration_s=fault.t_end - fault.t_start,
                ended=fault.ended,
                sessions_in_flight=int(in_flight.sum()),
                session_verdicts=verdict_counts(s_verdict[in_flight]),
                sessions_interrupted=int(interrupted.sum()),
                interrupted_session_verdicts=verdict_counts(s_verdict[interrupted]),
                turns_in_flight=int(turn_live.sum()),
                turns_in_flight_ok=int((turn_live & turns.ok).sum()),
                turns_in_flight_ok_after_retry=int((turn_live & turns.ok & turns.retried).sum()),
                turns_in_flight_failed=int((turn_live & ~turns.ok).sum()),
                window_s=window_s,
                before=before,
                after=after,
                time_to_recover_s=recover,
                recovery=(
                    NO_BASELINE
                    if before.p99_ms is None
                    else (NOT_RECOVERED if recover is None else RECOVERED)
                ),
                overlapping=tuple(
                    other.fault_id
                    for other in faults
                    if other is not fault
                    and t - window_s <= other.t_start <= fault.t_end + window_s
                ),
            )
        )
    return out


def verdict_counts(verdicts: Iterable[str]) -> dict[str, int]:
    """Count verdicts, every known verdict present (0 when none), unknown ones appended."""
    counts = dict.fromkeys(VERDICTS, 0)
    values, n = np.unique(np.asarray(list(verdicts), dtype=object).astype(str), return_counts=True)
    for verdict, count in zip(values, n, strict=True):
        counts[str(verdict)] = int(count)
    return counts


@dataclass(frozen=True, slots=True)
class _TurnArrays:
    start: np.ndarray[Any, Any]
    end: np.ndarray[Any, Any]
    latency_ms: np.ndarray[Any, Any]
    ok: np.ndarray[Any, Any]
    retried: np.ndarray[Any, Any]
    interrupted: np.ndarray[Any, Any]
    session: pd.Series  # as recorded: a fault reads the ids of the few turns it hit

    @classmethod
    def of(cls, turns: pd.DataFrame) -> _TurnArrays:
        start = turns["t_start"].to_numpy(dtype="float64")
        end = turns["t_end"].to_numpy(dtype="float64")
        return cls(
            start=start,
            end=end,
            latency_ms=(end - start) * 1000.0,
            ok=turns["ok"].fillna(False).to_numpy(dtype=bool),
            retried=turns["attempts"].fillna(1).to_numpy(dtype="int64") > 1,
            interrupted=turns["interrupted"].fillna(False).to_numpy(dtype=bool),
            session=turns["session_id"],
        )


def _window(
    turns: _TurnArrays,
    r_end: np.ndarray[Any, Any],
    r_err: np.ndarray[Any, Any],
    lo: float,
    hi: float,
) -> WindowStats:
    inside = (turns.end >= lo) & (turns.end < hi)
    n = int(inside.sum())
    failed = int((inside & ~turns.ok).sum())
    ok_latency = turns.latency_ms[inside & turns.ok]
    req_inside = (r_end >= lo) & (r_end < hi)
    n_req = int(req_inside.sum())
    return WindowStats(
        turns=n,
        turns_failed=failed,
        # Epoch-second subtraction leaves sub-microsecond noise; ms to 3 decimals is exact enough.
        p99_ms=(
            round(float(np.percentile(ok_latency, 99, method="inverted_cdf")), 3)
            if ok_latency.size
            else None
        ),
        error_rate=failed / n if n else None,
        requests=n_req,
        request_error_rate=int((req_inside & r_err).sum()) / n_req if n_req else None,
    )


def _time_to_recover(
    turns: _TurnArrays, t: float, baseline: float | None, bucket_s: float, tolerance: float
) -> float | None:
    if baseline is None:
        return None
    after = turns.ok & (turns.end >= t)
    if not after.any():
        return None
    # Buckets are aligned on the fault; an empty bucket says nothing, so it is skipped.
    bucket = np.floor((turns.end[after] - t) / bucket_s).astype("int64")
    keys, p99 = grouped_percentile(bucket, turns.latency_ms[after], 99.0)
    back = keys[p99 <= baseline * (1.0 + tolerance)]
    return float(back[0] * bucket_s) if back.size else None


def grouped_percentile(
    keys: np.ndarray[Any, Any], values: np.ndarray[Any, Any], q: float
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Nearest-rank percentile ``q`` (0-100) of ``values`` per key, in one sort.

    Returns the sorted distinct keys and each key's percentile; agrees with
    :func:`loadlab.analysis.stats.percentile` (numpy's ``inverted_cdf``) group by group.
    """
    if keys.size == 0:
        return keys[:0], np.asarray(values, dtype="float64")[:0]
    order = np.lexsort((values, keys))
    sorted_keys = keys[order]
    sorted_values = np.asarray(values, dtype="float64")[order]
    distinct, first, counts = np.unique(sorted_keys, return_index=True, return_counts=True)
    rank = np.ceil(counts * (q / 100.0)).astype("int64") - 1
    rank = np.clip(rank, 0, counts - 1)
    return distinct, sorted_values[first + rank]


def _among(values: np.ndarray[Any, Any], of: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``np.isin(values, of)`` for object arrays of ids, by hashing instead of sorting.

    Sorting a run's 142,858 session ids took 0.15 s per fault (32 s with a missing
    id among them); NaN is in nothing, as with ``np.isin``.
    """
    return np.asarray(pd.Series(values, dtype=object).isin(of).to_numpy() & pd.notna(values))


def _opt_str(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)
