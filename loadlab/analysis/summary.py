"""summary.json: the numbers a run is judged by, derived from the run directory only.

:func:`summarize` computes a :class:`~loadlab.analysis.run_summary.RunSummary`;
its ``to_json()`` is what summary.json holds.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from loadlab.analysis.coldstarts import cold_start_analysis
from loadlab.analysis.continuity import (
    Continuity,
    ResumeLatency,
    checkpoint_agreement,
    continuity,
)
from loadlab.analysis.impact import fault_impact, fault_spans
from loadlab.analysis.journal import JOURNAL, read_journal
from loadlab.analysis.lateness import harness_lateness
from loadlab.analysis.locust_agreement import locust_agreement
from loadlab.analysis.pressure import PressureSeries, pressure_summary
from loadlab.analysis.run_summary import (
    SUMMARY_VERSION,
    ColdStarts,
    Downstream,
    Errors,
    Experiment,
    FaultMark,
    IntentLatencies,
    NameLatencies,
    RunInfo,
    RunState,
    RunSummary,
    Sessions,
    Totals,
    json_number,
    json_safe,
)
from loadlab.analysis.rundata import RunData
from loadlab.analysis.stats import Distribution, percentile
from loadlab.analysis.timeseries import faults, timeseries
from loadlab.errors import RunDirectoryError
from loadlab.rows import ERROR_KINDS, VERDICTS

__all__ = ["SUMMARY_VERSION", "RunSummary", "run_state", "sessions_in_flight", "summarize"]

_DOWNSTREAM = (
    "ddb_calls",
    "ddb_rcu",
    "ddb_wcu",
    "llm_calls",
    "llm_retries",
    "llm_throttles",
    "tokens_in",
    "tokens_out",
)


def summarize(
    run: RunData,
    *,
    series: pd.DataFrame | None = None,
    pressure: PressureSeries | None = None,
) -> RunSummary:
    """Compute the run's summary (``to_json()`` gives summary.json).

    ``series`` (:func:`~loadlab.analysis.timeseries.timeseries` of ``run``) and
    ``pressure`` (:func:`~loadlab.analysis.pressure.pressure_series` of ``run``)
    are computed here unless given: the report draws them too.
    """
    if series is None:
        series = timeseries(run)
    duration = max(run.t_end - run.t0, 1e-9)
    turns, req = run.turns, run.requests
    user_latency = (turns["t_end"] - turns["t_start"]) * 1000.0 if len(turns) else pd.Series()
    problems = list(run.problems)
    # continuity and experiment add to problems: computed before the summary takes the list
    continuity_section = _continuity(run, problems)
    experiment = _experiment(run, problems)
    turn_latency = _by_intent(turns, user_latency)
    return RunSummary(
        version=SUMMARY_VERSION,
        run=_run_info(run, duration),
        totals=_totals(run, series, duration),
        turn_latency_ms=turn_latency,
        request_latency_ms=_by_name(req, "latency_ms"),
        ttft_ms=_by_intent(turns, turns["ttft_ms"] if len(turns) else pd.Series()),
        harness_lateness_ms=harness_lateness(turns, turn_latency.all.p99),
        errors=_errors(req, turns),
        sessions=_sessions(run.sessions),
        cold_starts=_cold_starts(run),
        downstream=_downstream(turns),
        pressure=json_safe(pressure_summary(run, series=pressure)),
        faults=tuple(
            FaultMark(
                t=json_number(f["t"]),
                name=f["name"],
                target=json_safe(f["target"]),
                attrs=json_safe(f["attrs"]),
            )
            for f in faults(run)
        ),
        fault_impact=tuple(fault_impact(run)),
        continuity=continuity_section,
        experiment=experiment,
        locust=locust_agreement(run),
        problems=tuple(problems),
    )


def _continuity(run: RunData, problems: list[str]) -> Continuity:
    try:
        audit = checkpoint_agreement(run)
    except RunDirectoryError as exc:
        problems.append(exc.message)
        audit = None
    return continuity(run, fault_spans(run.events), audit)


def _experiment(run: RunData, problems: list[str]) -> Experiment | None:
    path = Path(run.path) / JOURNAL
    if not path.exists():
        return None
    try:
        return Experiment(journal=read_journal(path), t0=run.t0)
    except RunDirectoryError as exc:
        problems.append(exc.message)
        return None


def _run_info(run: RunData, duration: float) -> RunInfo:
    m = run.manifest
    return RunInfo(
        id=json_safe(m.get("run_id")),
        name=json_safe(m.get("name")),
        path=str(run.path),
        started_at=json_safe(m.get("started_at")),
        ended_at=json_safe(m.get("ended_at")),
        end_reason=json_safe(m.get("end_reason")),
        state=run_state(m),
        stopped_by=json_safe(m.get("stopped_by")),
        sessions_in_flight=sessions_in_flight(run),
        duration_s=round(duration, 3),
        target=json_safe(m.get("target")),
        scenario=json_safe(m.get("scenario_path")),
        shape=json_safe((m.get("scenario") or {}).get("shape")),
        seed=json_safe(m.get("seed")),
    )


def run_state(manifest: dict[str, object]) -> RunState:
    """``incomplete`` without an end stamp, ``aborted`` by a stop condition, else ``ended``."""
    if manifest.get("ended_at") is None:
        return "incomplete"
    return "aborted" if manifest.get("end_reason") == "aborted" else "ended"


def sessions_in_flight(run: RunData) -> int:
    """Sessions that played a turn (or a request) but reached no verdict."""
    started: set[str] = set()
    for frame in (run.turns, run.requests):
        if len(frame) and "session_id" in frame:
            # unique() first: a row per request is a million strings to hash on a long run
            started |= _strings(frame["session_id"].dropna().unique())
    ended = _strings(run.sessions["session_id"].unique()) if len(run.sessions) else set()
    return len(started - ended)


def _strings(values: object) -> set[str]:
    # As an object array: iterating Arrow-backed strings makes a scalar per value.
    return set(map(str, np.asarray(values, dtype=object)))


def _totals(run: RunData, series: pd.DataFrame, duration: float) -> Totals:
    turns, req = run.turns, run.requests
    ok = int(turns["ok"].sum()) if len(turns) else 0
    failed_req = int(req["error_kind"].notna().sum()) if len(req) else 0
    return Totals(
        requests=len(req),
        requests_failed=failed_req,
        request_error_rate=_rate(failed_req, len(req)),
        turns=len(turns),
        turns_ok=ok,
        turn_error_rate=_rate(len(turns) - ok, len(turns)),
        turns_per_s_mean=_number(len(turns) / duration),
        turns_per_s_peak=_number(float(series["turns_per_s"].max()) if len(series) else 0.0),
        sessions=len(run.sessions),
        peak_users=_nanmax(series["users"]),
        peak_active_sessions=_nanmax(series["active_sessions"]),
        retried_turns=int((turns["attempts"] > 1).sum()) if len(turns) else 0,
    )


def _by_intent(turns: pd.DataFrame, values: pd.Series) -> IntentLatencies:
    if not len(turns):
        return IntentLatencies(all=Distribution.of([]), by_intent={})
    ok = turns["ok"].astype(bool)
    frame = pd.DataFrame({"intent": turns["intent"], "v": values})[ok]
    return IntentLatencies(
        all=Distribution.of(frame["v"]),
        by_intent={
            str(intent): Distribution.of(group["v"])
            for intent, group in frame.groupby("intent", sort=True)
        },
    )


def _by_name(req: pd.DataFrame, col: str) -> NameLatencies:
    if not len(req):
        return NameLatencies(all=Distribution.of([]), by_name={})
    return NameLatencies(
        all=Distribution.of(req[col]),
        by_name={
            str(name): Distribution.of(values)
            for name, values in req[col].groupby(req["name"], sort=True)
        },
    )


def _errors(req: pd.DataFrame, turns: pd.DataFrame) -> Errors:
    counts = dict.fromkeys(ERROR_KINDS, 0)
    if len(req):
        for kind, n in req["error_kind"].dropna().value_counts().items():
            counts[str(kind)] = int(n)
    total = len(req)
    examples: dict[str, str] = {}
    if len(req):
        failed = req[["error_kind", "error"]].dropna(subset=["error_kind"])
        for kind, group in failed.groupby("error_kind"):
            message = group["error"].dropna()
            if len(message):
                examples[str(kind)] = str(message.iloc[0])[:300]
    failed_turns = turns["error_kind"][~turns["ok"].astype(bool)] if len(turns) else None
    return Errors(
        by_kind=counts,
        rate_by_kind={k: _rate(v, total) for k, v in counts.items()},
        examples=examples,
        failed_turns_by_kind=(
            {str(k): int(v) for k, v in failed_turns.value_counts().items()}
            if failed_turns is not None and len(failed_turns)
            else {}
        ),
    )


def _sessions(sessions: pd.DataFrame) -> Sessions:
    verdicts = dict.fromkeys(VERDICTS, 0)
    if len(sessions):
        for verdict, n in sessions["verdict"].value_counts().items():
            verdicts[str(verdict)] = int(n)
    stopped = 0
    if len(sessions):
        stopped = int(sessions["verdict_reason"].astype(str).str.startswith("stopped").sum())
    resume = ResumeLatency.of(sessions)
    return Sessions(
        count=len(sessions),
        verdicts=verdicts,
        stopped_by_shape=stopped,
        resume_latency_ms=ResumeLatency(
            count=resume.count, p50=_opt_number(resume.p50), p99=_opt_number(resume.p99)
        ),
    )


def _cold_starts(run: RunData) -> ColdStarts:
    req, turns = run.requests, run.turns
    analysis = cold_start_analysis(run)
    if not len(req):
        return ColdStarts(
            count=0,
            instances=0,
            init_ms=Distribution.of([]),
            turn_p99_ms_cold=None,
            turn_p99_ms_warm=None,
            requests_seen=False,
            analysis=analysis,
        )
    cold = req["cold_start"].fillna(False).astype(bool)
    p99_cold = p99_warm = None
    if len(turns):
        # The latencies alone: filtering every column of a million turns took a second.
        cold_turn = turns["cold_start"].fillna(False).astype(bool)
        latency = (turns["t_end"] - turns["t_start"]) * 1000.0
        p99_cold, p99_warm = _p99(latency[cold_turn]), _p99(latency[~cold_turn])
    return ColdStarts(
        count=int(cold.sum()),
        instances=int(req["instance_id"].dropna().nunique()),
        init_ms=Distribution.of(req["init_ms"][cold]),
        turn_p99_ms_cold=p99_cold,
        turn_p99_ms_warm=p99_warm,
        requests_seen=True,
        analysis=analysis,
    )


def _p99(values: pd.Series) -> float | None:
    return _opt_number(percentile(values, 99)) if len(values) else None


def _downstream(turns: pd.DataFrame) -> Downstream:
    n = len(turns)
    totals = {c: (float(turns[c].sum()) if n else 0.0) for c in _DOWNSTREAM}
    return Downstream(
        totals={c: _number(v) for c, v in totals.items()},
        per_turn={c: _rate(v, n) for c, v in totals.items()},
    )


def _rate(part: float, whole: int) -> float:
    """``part / whole`` as summary.json holds it, 0.0 when ``whole`` is 0."""
    return _number(part / whole) if whole else 0.0


def _number(value: float) -> float:
    # Counts and their ratios: rounded as in the JSON; a non-finite value is kept
    # (RunSummary.to_json() writes it as null) so the attribute stays a float.
    return round(value, 6) if math.isfinite(value) else value


def _opt_number(value: float | None) -> float | None:
    return None if value is None else json_number(value)


def _nanmax(series: pd.Series) -> float | None:
    clean = series.dropna()
    return json_number(float(clean.max())) if len(clean) else None
