"""Cold starts and what they cost, from the request and turn rows of a run.

A *cold start* is a request that a new instance (a Lambda execution environment,
a pod) served first, flagged ``cold_start`` by whoever saw it (Lambda's
``REPORT`` line or the agent's ``meta`` event). This module answers, on the run
timeline:

* when the cold starts happened and how many environments were alive
  (an environment lives from its first request's start to its last request's
  end), bucket by bucket (:func:`loadlab.analysis.timeseries.bucket_width`);
* how long initialisation took (``init_ms`` of cold requests), and whose
  figures those are when the requests say (an optional ``init_source`` column)
  or the Lambda pressure rows do (their ``figures`` dimension);
* how many environments served the peak concurrency: on Lambda each request in
  flight needs an environment of its own, so environments >= peak concurrency;
  on pods a few instances serve many;
* how much of the turn P99 cold starts explain;
* how long the run took to warm up, and which cold starts came after the first
  minute (on pods: a replacement for a killed pod).

Times are seconds since the run started, like the rest of summary.json.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from loadlab.analysis.rundata import RunData
from loadlab.analysis.stats import percentile
from loadlab.analysis.timeseries import bucket_width

__all__ = [
    "WARM_UP_S",
    "ColdStartAnalysis",
    "ColdStartShare",
    "Environments",
    "InitDurations",
    "LateColdStart",
    "WarmUp",
    "cold_start_analysis",
    "peak_in_flight",
]

WARM_UP_S = 60.0
"""Cold starts after this many seconds are listed as late (after warm-up)."""

# Requests the target never served (refused connection, 429) hold no environment.
_NOT_SERVED = frozenset({"connect", "throttled"})
_LATE_LISTED = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class InitDurations:
    """Initialisation time of the cold requests (ms) and where the figures came from.

    ``source`` is the one source of all figures (``report``: Lambda's REPORT
    line, ``agent``: the agent's own measurement), ``mixed`` when several, None
    when the run does not say; ``sources`` counts the figures by source and
    ``source_from`` names where that was read (``requests`` or ``pressure``).
    """

    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    mean: float | None
    source: str | None
    sources: dict[str, int]
    source_from: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Environments:
    """Environments created against the concurrency they served.

    ``created`` counts distinct instance ids (``counted_by="instance_id"``) or,
    when requests carry none, cold starts (``"cold_start"``). ``peak_concurrency``
    is the most requests in flight at once (served ones only), first reached at
    ``peak_concurrency_t``; ``per_peak_concurrency`` is ``created`` over it.
    """

    created: int
    counted_by: str
    peak_concurrency: int
    peak_concurrency_t: float | None
    per_peak_concurrency: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ColdStartShare:
    """How much of the turn P99 cold starts explain (successful turns, as shoppers saw them).

    A turn is cold when its own flag says so or one of its requests was a cold
    start. ``p99_ms_warm`` is over turns known to be warm, ``p99_ms_without_cold``
    over every turn not known to be cold (what P99 would be without cold starts),
    ``p99_drop_ms`` the difference to ``p99_ms_all``. ``tail_turns`` are the turns
    at or above ``p99_ms_all`` (the ones that set it), ``tail_cold_share`` the
    fraction of them that were cold.
    """

    turns: int
    cold_turns: int
    p99_ms_all: float | None
    p99_ms_warm: float | None
    p99_ms_cold: float | None
    p99_ms_without_cold: float | None
    p99_drop_ms: float | None
    tail_turns: int
    tail_cold_turns: int
    tail_cold_share: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LateColdStart:
    """A cold start after the warm-up period."""

    t: float
    instance_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class WarmUp:
    """When the cold starts happened relative to the run start.

    ``cold_starts_after`` counts those at or after ``after_s``; ``late`` lists
    the first of them (pods should have none unless one was replaced).
    """

    first_cold_start_s: float | None
    last_cold_start_s: float | None
    after_s: float
    cold_starts_after: int
    late: tuple[LateColdStart, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ColdStartAnalysis:
    """Everything this module derives from one run.

    ``timeline`` has one row per bucket of ``bucket_s`` seconds: ``t`` (bucket
    start), ``cold_starts``, ``environments_alive`` (NaN when requests carry no
    instance id) and ``peak_in_flight``. ``recorded`` is False when no request
    carries an instance id or a cold-start flag: the target told nothing.
    """

    recorded: bool
    bucket_s: float
    timeline: pd.DataFrame
    init: InitDurations
    environments: Environments
    p99_share: ColdStartShare
    warm_up: WarmUp

    def to_json(self) -> dict[str, Any]:
        """The keys added to summary.json's ``cold_starts`` section."""
        timeline = {
            col: [None if _isnan(v) else v for v in self.timeline[col].tolist()]
            for col in self.timeline.columns
        }
        return {
            "recorded": self.recorded,
            "bucket_s": self.bucket_s,
            "timeline": timeline,
            "init": asdict(self.init),
            "environments": asdict(self.environments),
            "p99_share": asdict(self.p99_share),
            "warm_up": asdict(self.warm_up) | {"late": [asdict(x) for x in self.warm_up.late]},
        }


def cold_start_analysis(run: RunData, *, after_s: float = WARM_UP_S) -> ColdStartAnalysis:
    """Cold starts of ``run`` on its timeline, their cost, and the environments behind them."""
    req = run.requests
    cold_req = req[_flag(req, "cold_start")]
    has_ids = bool(len(req)) and bool(req["instance_id"].notna().any())
    recorded = has_ids or (bool(len(req)) and bool(req["cold_start"].notna().any()))
    flight = _InFlight.of(req)
    width, timeline = _timeline(run, cold_req, has_ids, flight)
    return ColdStartAnalysis(
        recorded=recorded,
        bucket_s=width,
        timeline=timeline,
        init=_init(run, cold_req),
        environments=_environments(run, len(cold_req), has_ids, flight),
        p99_share=_share(run.turns, cold_req),
        warm_up=_warm_up(cold_req, run.t0, after_s),
    )


def peak_in_flight(starts: np.ndarray[Any, Any], ends: np.ndarray[Any, Any]) -> tuple[int, float]:
    """The most intervals ``[start, end)`` open at once, and the first start reaching it.

    A sweep over start and end times: the count can only rise at a start, so it
    is evaluated at each start (an interval ending exactly then no longer counts).
    Returns ``(0, nan)`` for no intervals.
    """
    if not len(starts):
        return 0, math.nan
    order = np.argsort(starts, kind="stable")
    s = np.asarray(starts, dtype="float64")[order]
    return _first_peak(s, _open_at(s, np.sort(np.asarray(ends, dtype="float64")), s))


def _first_peak(
    sorted_starts: np.ndarray[Any, Any], open_at_starts: np.ndarray[Any, Any]
) -> tuple[int, float]:
    best = int(np.argmax(open_at_starts))
    return int(open_at_starts[best]), float(sorted_starts[best])


def _open_at(
    sorted_starts: np.ndarray[Any, Any],
    sorted_ends: np.ndarray[Any, Any],
    at: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:
    opened = np.searchsorted(sorted_starts, at, side="right")
    closed = np.searchsorted(sorted_ends, at, side="right")
    return np.asarray(opened - closed)


def _flag(frame: pd.DataFrame, col: str) -> pd.Series:
    """True where a nullable boolean column is True (None and NaN count as not)."""
    return frame[col].eq(True).astype(bool)


@dataclass(frozen=True, slots=True)
class _InFlight:
    """The starts and the ends of the served requests, each sorted, and how many
    were in flight at each start (once for the timeline and the peak: a million
    requests take a second to sort and count twice)."""

    starts: np.ndarray[Any, Any]
    ends: np.ndarray[Any, Any]
    open_at_starts: np.ndarray[Any, Any]

    @classmethod
    def of(cls, req: pd.DataFrame) -> _InFlight:
        if not len(req):
            return cls(starts=np.zeros(0), ends=np.zeros(0), open_at_starts=np.zeros(0, dtype=int))
        kept = req["latency_ms"].notna() & ~req["error_kind"].isin(_NOT_SERVED)
        start = req["t_start"][kept].to_numpy(dtype="float64")
        starts = np.sort(start)
        ends = np.sort(start + req["latency_ms"][kept].to_numpy(dtype="float64") / 1000.0)
        return cls(starts=starts, ends=ends, open_at_starts=_open_at(starts, ends, starts))


def _timeline(
    run: RunData, cold_req: pd.DataFrame, has_ids: bool, flight: _InFlight
) -> tuple[float, pd.DataFrame]:
    """Per-bucket cold starts, environments alive and peak in flight (buckets as timeseries)."""
    t0 = run.t0
    duration = max(run.t_end - t0, 1.0)
    width = bucket_width(duration)
    n = math.ceil(duration / width) or 1
    edges = t0 + np.arange(n) * width

    def bucket(times: pd.Series | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        rel = (np.asarray(times, dtype="float64") - t0) // width
        return np.asarray(np.clip(rel.astype(int), 0, n - 1))

    cold = np.bincount(bucket(cold_req["t_start"]), minlength=n) if len(cold_req) else np.zeros(n)
    req = run.requests
    alive = np.full(n, np.nan)
    if has_ids:
        with_id = req.loc[req["instance_id"].notna(), ["instance_id", "t_start", "latency_ms"]]
        last = with_id["t_start"] + with_id["latency_ms"].fillna(0.0) / 1000.0
        spans = (
            pd.DataFrame({"id": with_id["instance_id"], "start": with_id["t_start"], "end": last})
            .groupby("id")
            .agg(start=("start", "min"), end=("end", "max"))
        )
        # +1 in the bucket of an environment's first request, -1 after its last.
        steps = np.zeros(n + 1)
        np.add.at(steps, bucket(spans["start"]), 1)
        np.add.at(steps, bucket(spans["end"]) + 1, -1)
        alive = np.cumsum(steps[:-1])
    peak = np.zeros(n, dtype=int)
    if len(flight.starts):
        # Within a bucket the count peaks at its start or at one of its requests' starts.
        peak = _open_at(flight.starts, flight.ends, edges).astype(int)
        np.maximum.at(peak, bucket(flight.starts), flight.open_at_starts.astype(int))
    frame = pd.DataFrame(
        {
            "t": np.arange(n) * width,
            "cold_starts": np.asarray(cold, dtype=int),
            "environments_alive": alive,
            "peak_in_flight": peak,
        }
    )
    return width, frame


def _init(run: RunData, cold_req: pd.DataFrame) -> InitDurations:
    values = cold_req["init_ms"].dropna() if len(cold_req) else pd.Series(dtype="float64")
    sources: dict[str, int] = {}
    source_from: str | None = None
    if "init_source" in cold_req.columns:
        known = cold_req.loc[cold_req["init_ms"].notna(), "init_source"].dropna()
        sources = {str(k): int(v) for k, v in known.value_counts().sort_index().items()}
        source_from = "requests" if sources else None
    if not sources:
        sources = _pressure_init_sources(run.pressure)
        source_from = "pressure" if sources else None
    source = None if not sources else (next(iter(sources)) if len(sources) == 1 else "mixed")
    return InitDurations(
        count=len(values),
        p50=percentile(values, 50),
        p90=percentile(values, 90),
        p99=percentile(values, 99),
        max=float(values.max()) if len(values) else None,
        mean=float(values.mean()) if len(values) else None,
        source=source,
        sources=sources,
        source_from=source_from,
    )


def _pressure_init_sources(pressure: pd.DataFrame) -> dict[str, int]:
    """Counts of the ``figures`` dimension of Lambda ``init_ms`` pressure rows."""
    if not len(pressure):
        return {}
    rows = pressure[(pressure["source"] == "lambda") & (pressure["metric"] == "init_ms")]
    counts: dict[str, int] = {}
    for dims in rows["dimensions_json"]:
        try:
            figures = json.loads(dims).get("figures")
        except (TypeError, ValueError, AttributeError):
            continue
        if isinstance(figures, str) and figures != "none":
            counts[figures] = counts.get(figures, 0) + 1
    return dict(sorted(counts.items()))


def _environments(run: RunData, cold_starts: int, has_ids: bool, flight: _InFlight) -> Environments:
    req = run.requests
    created = int(req["instance_id"].dropna().nunique()) if has_ids else cold_starts
    peak, at = 0, math.nan
    if len(flight.starts):  # as peak_in_flight() of the served requests
        peak, at = _first_peak(flight.starts, flight.open_at_starts)
    return Environments(
        created=created,
        counted_by="instance_id" if has_ids else ("cold_start" if cold_starts else "none"),
        peak_concurrency=peak,
        peak_concurrency_t=None if math.isnan(at) else at - run.t0,
        per_peak_concurrency=created / peak if peak else None,
    )


def _share(turns: pd.DataFrame, cold_req: pd.DataFrame) -> ColdStartShare:
    used = ["t_start", "t_end", "cold_start", "session_id", "turn_index"]
    # Only the columns used: filtering every column of a million turns took a second.
    ok = turns.loc[turns["ok"].eq(True), used] if len(turns) else turns
    if not len(ok):
        return ColdStartShare(
            turns=0,
            cold_turns=0,
            p99_ms_all=None,
            p99_ms_warm=None,
            p99_ms_cold=None,
            p99_ms_without_cold=None,
            p99_drop_ms=None,
            tail_turns=0,
            tail_cold_turns=0,
            tail_cold_share=None,
        )
    latency = (ok["t_end"] - ok["t_start"]) * 1000.0
    cold = _flag(ok, "cold_start")
    if len(cold_req):
        # The turn row keeps the last attempt's flag; a cold earlier attempt counts too.
        keys = pd.MultiIndex.from_frame(cold_req[["session_id", "turn_index"]])
        # Only a turn of a session with a cold request can match: those few are compared.
        ids = ok["session_id"]
        maybe = (ids.isin(cold_req["session_id"]) | ids.isna()).to_numpy(dtype=bool)
        found = np.zeros(len(ok), dtype=bool)
        found[maybe] = pd.MultiIndex.from_frame(ok.loc[maybe, ["session_id", "turn_index"]]).isin(
            keys
        )
        cold = cold | pd.Series(found, index=ok.index)
    warm = ok["cold_start"].eq(False) & ~cold
    p99_all = percentile(latency, 99)
    p99_without = percentile(latency[~cold], 99)
    tail = latency >= p99_all if p99_all is not None else pd.Series(False, index=ok.index)
    tail_turns, tail_cold = int(tail.sum()), int((tail & cold).sum())
    return ColdStartShare(
        turns=len(ok),
        cold_turns=int(cold.sum()),
        p99_ms_all=p99_all,
        p99_ms_warm=percentile(latency[warm], 99),
        p99_ms_cold=percentile(latency[cold], 99),
        p99_ms_without_cold=p99_without,
        p99_drop_ms=(
            p99_all - p99_without if p99_all is not None and p99_without is not None else None
        ),
        tail_turns=tail_turns,
        tail_cold_turns=tail_cold,
        tail_cold_share=tail_cold / tail_turns if tail_turns else None,
    )


def _warm_up(cold_req: pd.DataFrame, t0: float, after_s: float) -> WarmUp:
    if not len(cold_req):
        return WarmUp(
            first_cold_start_s=None,
            last_cold_start_s=None,
            after_s=after_s,
            cold_starts_after=0,
            late=(),
        )
    ordered = cold_req.sort_values("t_start", kind="stable")
    rel = ordered["t_start"].to_numpy(dtype="float64") - t0
    late = ordered[rel >= after_s]
    first = late.head(_LATE_LISTED)
    listed = tuple(
        LateColdStart(t=float(t) - t0, instance_id=None if pd.isna(i) else str(i))
        for t, i in zip(first["t_start"], first["instance_id"], strict=True)
    )
    return WarmUp(
        first_cold_start_s=float(rel[0]),
        last_cold_start_s=float(rel[-1]),
        after_s=after_s,
        cold_starts_after=len(late),
        late=listed,
    )


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
