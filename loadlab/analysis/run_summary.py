"""The typed summary of a run: :class:`RunSummary` and its sections.

:func:`loadlab.analysis.summary.summarize` computes it; ``RunSummary.to_json()``
is summary.json (without the ``slo`` key the report adds). Sections computed by
other analysis modules are their own objects (:class:`Continuity`,
:class:`FaultImpact`, :class:`ColdStartAnalysis`, :class:`ExperimentOutcome`,
:class:`LocustAgreement`); the ``pressure`` section stays the JSON mapping
:func:`loadlab.analysis.pressure.pressure_summary` returns.

In the JSON, every float is rounded to 6 decimals and NaN or infinity becomes
null; the attributes of the sections defined here already hold those values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from loadlab.analysis.coldstarts import ColdStartAnalysis
from loadlab.analysis.continuity import Continuity, ResumeLatency
from loadlab.analysis.impact import FaultImpact
from loadlab.analysis.journal import ExperimentOutcome
from loadlab.analysis.lateness import HarnessLateness
from loadlab.analysis.locust_agreement import LocustAgreement
from loadlab.analysis.stats import Distribution

__all__ = [
    "SUMMARY_VERSION",
    "ColdStarts",
    "Downstream",
    "Errors",
    "Experiment",
    "FaultMark",
    "IntentLatencies",
    "NameLatencies",
    "RunInfo",
    "RunState",
    "RunSummary",
    "Sessions",
    "Totals",
    "json_number",
    "json_safe",
]

SUMMARY_VERSION = 1

RunState = Literal["ended", "aborted", "incomplete"]
"""How a run ended: ``ended`` (its shape, a Ctrl-C, Stop in the web UI: see
``stopped_by``), ``aborted`` (a stop condition), or ``incomplete``: the manifest
has no end, because the harness was killed or crashed before it could stamp one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """What ran: the manifest's names, times and settings, and where the run directory is.

    The manifest values are as the manifest holds them (None when absent);
    ``duration_s`` is the length of the run's timeline. ``state`` says whether the
    run ended (:data:`RunState`), ``stopped_by`` what stopped its load (``shape``,
    ``interrupt``, ``web_ui``, ``abort_gate``, ``terminated``; None for runs that
    predate it or never ended), and ``sessions_in_flight`` counts the sessions
    that played a turn or a request but reached no verdict: cut off mid-run when
    the record stops.
    """

    id: str | None
    name: str | None
    path: str
    started_at: float | None
    ended_at: float | None
    end_reason: str | None
    state: RunState
    stopped_by: str | None
    sessions_in_flight: int
    duration_s: float
    target: Any
    scenario: str | None
    shape: Any
    seed: int | None

    def to_json(self) -> dict[str, Any]:
        """summary.json's ``run`` section."""
        return {
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "state": self.state,
            "stopped_by": self.stopped_by,
            "sessions_in_flight": self.sessions_in_flight,
            "duration_s": self.duration_s,
            "target": self.target,
            "scenario": self.scenario,
            "shape": self.shape,
            "seed": self.seed,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    """Counts and rates of the whole run.

    Error rates are failed over all (0.0 when there were none); ``peak_users``
    and ``peak_active_sessions`` are None when the run recorded no samples.
    """

    requests: int
    requests_failed: int
    request_error_rate: float
    turns: int
    turns_ok: int
    turn_error_rate: float
    turns_per_s_mean: float
    turns_per_s_peak: float
    sessions: int
    peak_users: float | None
    peak_active_sessions: float | None
    retried_turns: int

    def to_json(self) -> dict[str, Any]:
        """summary.json's ``totals`` section."""
        return {
            "requests": self.requests,
            "requests_failed": self.requests_failed,
            "request_error_rate": self.request_error_rate,
            "turns": self.turns,
            "turns_ok": self.turns_ok,
            "turn_error_rate": self.turn_error_rate,
            "turns_per_s_mean": self.turns_per_s_mean,
            "turns_per_s_peak": self.turns_per_s_peak,
            "sessions": self.sessions,
            "peak_users": self.peak_users,
            "peak_active_sessions": self.peak_active_sessions,
            "retried_turns": self.retried_turns,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class IntentLatencies:
    """A latency of successful turns (ms): over all of them and per intent (sorted)."""

    all: Distribution
    by_intent: dict[str, Distribution]

    def to_json(self) -> dict[str, Any]:
        """``{all, by_intent}``."""
        return {
            "all": self.all.to_json(),
            "by_intent": {k: d.to_json() for k, d in self.by_intent.items()},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NameLatencies:
    """A latency of requests (ms): over all of them and per request name (sorted)."""

    all: Distribution
    by_name: dict[str, Distribution]

    def to_json(self) -> dict[str, Any]:
        """``{all, by_name}``."""
        return {
            "all": self.all.to_json(),
            "by_name": {k: d.to_json() for k, d in self.by_name.items()},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Errors:
    """Failed requests by error kind (every kind present), with one example message each.

    ``failed_turns_by_kind`` counts failed turns by the error kind of their last attempt.
    """

    by_kind: dict[str, int]
    rate_by_kind: dict[str, float]
    examples: dict[str, str]
    failed_turns_by_kind: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """summary.json's ``errors`` section."""
        return {
            "by_kind": dict(self.by_kind),
            "rate_by_kind": dict(self.rate_by_kind),
            "examples": dict(self.examples),
            "failed_turns_by_kind": dict(self.failed_turns_by_kind),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Sessions:
    """Sessions and their verdicts (every known verdict present).

    ``stopped_by_shape`` sessions were still running when the load stopped (the
    shape's end, or what ``RunInfo.stopped_by`` names) and ended them.
    """

    count: int
    verdicts: dict[str, int]
    stopped_by_shape: int
    resume_latency_ms: ResumeLatency

    def to_json(self) -> dict[str, Any]:
        """summary.json's ``sessions`` section."""
        return {
            "count": self.count,
            "verdicts": dict(self.verdicts),
            "stopped_by_shape": self.stopped_by_shape,
            "resume_latency_ms": self.resume_latency_ms.to_json(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ColdStarts:
    """Cold starts: counted from the request rows, and analysed on the timeline.

    ``turn_p99_ms_cold`` / ``_warm`` are the P99 of turns flagged cold / not cold
    (all turns, failed ones included). ``requests_seen`` is False when the run
    recorded no request, and summary.json then leaves those two keys out.
    """

    count: int
    instances: int
    init_ms: Distribution
    turn_p99_ms_cold: float | None
    turn_p99_ms_warm: float | None
    requests_seen: bool
    analysis: ColdStartAnalysis

    def to_json(self) -> dict[str, Any]:
        """summary.json's ``cold_starts`` section."""
        out: dict[str, Any] = {
            "count": self.count,
            "instances": self.instances,
            "init_ms": self.init_ms.to_json(),
        }
        if self.requests_seen:
            out["turn_p99_ms_cold"] = self.turn_p99_ms_cold
            out["turn_p99_ms_warm"] = self.turn_p99_ms_warm
        return out | self.analysis.to_json()


@dataclass(frozen=True, slots=True, kw_only=True)
class Downstream:
    """What the turns reported doing downstream: totals and per turn, by counter."""

    totals: dict[str, float]
    per_turn: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        """summary.json's ``downstream`` section."""
        return {"totals": dict(self.totals), "per_turn": dict(self.per_turn)}


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultMark:
    """One ``fault`` event: ``t`` seconds after the run start, what and whom it hit."""

    t: float | None
    name: str
    target: Any
    attrs: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """One entry of summary.json's ``faults``."""
        return {"t": self.t, "name": self.name, "target": self.target, "attrs": self.attrs}


@dataclass(frozen=True, slots=True, kw_only=True)
class Experiment:
    """The Chaos Toolkit experiment run with the load, from its journal.

    ``t0`` is the run's start, which puts the journal's activities on the run timeline.
    """

    journal: ExperimentOutcome
    t0: float

    def to_json(self) -> dict[str, Any]:
        """summary.json's ``experiment`` section."""
        return self.journal.to_json(self.t0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """The numbers a run is judged by (summary.json), derived from its run directory only.

    ``experiment`` is None without a journal, ``locust`` None without Locust's
    own statistics; ``problems`` lists what could not be read.
    """

    version: int
    run: RunInfo
    totals: Totals
    turn_latency_ms: IntentLatencies
    request_latency_ms: NameLatencies
    ttft_ms: IntentLatencies
    harness_lateness_ms: HarnessLateness
    errors: Errors
    sessions: Sessions
    cold_starts: ColdStarts
    downstream: Downstream
    pressure: dict[str, Any]
    faults: tuple[FaultMark, ...]
    fault_impact: tuple[FaultImpact, ...]
    continuity: Continuity
    experiment: Experiment | None
    locust: LocustAgreement | None
    problems: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """summary.json as a dict: JSON-safe (NaN and infinity are None), floats to 6 decimals."""
        out: dict[str, Any] = json_safe(
            {
                "version": self.version,
                "run": self.run.to_json(),
                "totals": self.totals.to_json(),
                "turn_latency_ms": self.turn_latency_ms.to_json(),
                "request_latency_ms": self.request_latency_ms.to_json(),
                "ttft_ms": self.ttft_ms.to_json(),
                "harness_lateness_ms": self.harness_lateness_ms.to_json(),
                "errors": self.errors.to_json(),
                "sessions": self.sessions.to_json(),
                "cold_starts": self.cold_starts.to_json(),
                "downstream": self.downstream.to_json(),
                "pressure": self.pressure,
                "faults": [f.to_json() for f in self.faults],
                "fault_impact": [impact.to_json() for impact in self.fault_impact],
                "continuity": self.continuity.to_json(),
                "experiment": self.experiment.to_json() if self.experiment else None,
                "locust": self.locust.to_json() if self.locust else None,
                "problems": list(self.problems),
            }
        )
        return out


def json_number(value: float) -> float | None:
    """A float as summary.json holds it: rounded to 6 decimals, None for NaN or infinity."""
    safe: float | None = json_safe(float(value))
    return safe


def json_safe(value: Any) -> Any:
    """``value`` with string keys, lists for tuples, Python scalars for numpy ones,
    floats rounded to 6 decimals and None for NaN or infinity."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    return value
