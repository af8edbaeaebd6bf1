"""The gate language: every gate a scenario's ``slo`` block may set, in one catalog.

A gate bounds one figure of a run: ``p99_ms: 5000`` fails the run when the turn
latency P99 is above 5 s. The catalog here is the single source of truth: the
scenario validator accepts exactly its keys, the evaluator
(:mod:`loadlab.report.slo`) computes a figure for each, the report, summary.json
and junit.xml list each, and the README's gate table documents each (a test
checks all four).

A gate is written as a number (``p99_ms: 5000``) or as a mapping
``{max: 5000, window_s: 30, abort: true}``:

* ``window_s`` judges the worst window of that many seconds instead of the whole
  run (the worst 30 s P99; for a count, the most in any 30 s);
* ``abort`` asks the harness to stop the run as soon as a rolling window of
  turns and session verdicts breaks the gate (only gates marked ``live``);
* under ``intents: {search: {p99_ms: 3000}}`` a gate judges one intent's turns.

Some gates hold even when the scenario writes none (:data:`DEFAULT_LIMITS`):
a run that restarted or duplicated a session, failed more than 1 % of its turns
or disagreed with its checkpoint audit never passes unless the scenario relaxes
that gate on purpose (``max_restarted: 5``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_LIMITS",
    "GATES",
    "GATE_CATALOG",
    "Gate",
    "GateSpec",
    "LimitKind",
    "NoData",
]

LimitKind = Literal["ms", "fraction", "count", "ratio"]
"""What a limit is: milliseconds (> 0), a fraction 0..1, a whole count (>= 0), a ratio (>= 1)."""

NoData = Literal["missed", "not checked"]
"""What a gate is when the run has no figure for it: missed, or not checked (never fails)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GateSpec:
    """One entry of the catalog: what a gate key bounds and how it may be written.

    ``live`` gates can be judged during the run from a rolling window of turns
    and session verdicts, so they may ``abort``; ``windowed`` gates accept
    ``window_s``; ``per_intent`` gates may be set under ``intents``. ``no_data``
    says what the gate is when the run recorded nothing to judge (no audit, no
    resumed session, no downstream samples).
    """

    key: str
    label: str
    meaning: str
    unit: str
    kind: LimitKind
    windowed: bool = False
    live: bool = False
    per_intent: bool = False
    no_data: NoData = "missed"


def _latency(key: str, label: str, meaning: str) -> GateSpec:
    return GateSpec(
        key=key,
        label=label,
        meaning=meaning,
        unit="ms",
        kind="ms",
        windowed=True,
        live=True,
        per_intent=True,
    )


def _sessions(key: str, verdict: str) -> GateSpec:
    return GateSpec(
        key=key,
        label=f"sessions {verdict}",
        meaning=f"sessions whose in-band verdict is `{verdict}`",
        unit="sessions",
        kind="count",
        windowed=True,
        live=True,
    )


GATE_CATALOG: tuple[GateSpec, ...] = (
    _latency("p50_ms", "turn latency P50", "median latency of successful turns"),
    _latency("p95_ms", "turn latency P95", "95th percentile latency of successful turns"),
    _latency("p99_ms", "turn latency P99", "99th percentile latency of successful turns"),
    _latency("p999_ms", "turn latency P99.9", "99.9th percentile latency of successful turns"),
    _latency("ttft_p50_ms", "time to first token P50", "median time to first token"),
    _latency("ttft_p99_ms", "time to first token P99", "99th percentile time to first token"),
    GateSpec(
        key="error_rate",
        label="failed turns / all turns",
        meaning="share of turns that failed after every retry",
        unit="fraction",
        kind="fraction",
        windowed=True,
        live=True,
        per_intent=True,
    ),
    _sessions("max_restarted", "restarted"),
    _sessions("max_duplicated", "duplicated"),
    _sessions("max_failed_sessions", "failed"),
    GateSpec(
        key="max_audit_disagreements",
        label="checkpoint audit disagreements",
        meaning="sessions whose DynamoDB checkpoint (out-of-band audit) disagrees "
        "with the in-band verdict; not checked when the run has no audit",
        unit="sessions",
        kind="count",
        no_data="not checked",
    ),
    GateSpec(
        key="resume_p99_ms",
        label="resume latency P99",
        meaning="P99 of the time from the first interrupted attempt to the next "
        "successful turn; not checked when no session resumed",
        unit="ms",
        kind="ms",
        no_data="not checked",
    ),
    GateSpec(
        key="max_cold_start_share",
        label="cold turns / successful turns",
        meaning="share of successful turns that met a cold start; not checked when "
        "the target reports no cold starts",
        unit="fraction",
        kind="fraction",
        no_data="not checked",
    ),
    GateSpec(
        key="llm_429_rate",
        label="LLM 429s / LLM calls",
        meaning="share of the agent's LLM calls answered 429 (agent-reported); not "
        "checked without LLM calls",
        unit="fraction",
        kind="fraction",
        no_data="not checked",
    ),
    GateSpec(
        key="max_ddb_throttles",
        label="DynamoDB throttles",
        meaning="throttled DynamoDB requests over the run (Prometheus or CloudWatch "
        "samples); not checked without DynamoDB throttle samples",
        unit="requests",
        kind="count",
        no_data="not checked",
    ),
    GateSpec(
        key="max_amplification",
        label="LLM retry amplification",
        meaning="LLM calls per distinct LLM call, retries included (1.0: no retry); "
        "not checked without LLM calls",
        unit="x",
        kind="ratio",
        no_data="not checked",
    ),
)
"""Every gate, in the order reports list them."""

GATES: dict[str, GateSpec] = {spec.key: spec for spec in GATE_CATALOG}
"""The catalog by key."""

DEFAULT_LIMITS: dict[str, float] = {
    "max_restarted": 0.0,
    "max_duplicated": 0.0,
    "error_rate": 0.01,
    "max_audit_disagreements": 0.0,
}
"""Gates every run has unless its scenario sets the key (DESIGN.md, "The verdict")."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Gate:
    """One gate of a scenario: ``key``'s figure must stay at or below ``limit``.

    ``window_s`` judges the worst window of that many seconds (None: the whole
    run); ``abort`` stops the run early when a live window breaks it; ``intent``
    judges one intent's turns (None: all); ``default`` marks a gate the scenario
    did not write (see :data:`DEFAULT_LIMITS`).
    """

    key: str
    limit: float
    window_s: float | None = None
    abort: bool = False
    intent: str | None = None
    default: bool = False

    @property
    def spec(self) -> GateSpec:
        """The catalog entry of this gate."""
        return GATES[self.key]

    @property
    def name(self) -> str:
        """The gate as reports name it: ``p99_ms``, ``p99_ms[30s]``, ``search.p99_ms``."""
        name = self.key if self.intent is None else f"{self.intent}.{self.key}"
        return name if self.window_s is None else f"{name}[{self.window_s:g}s]"

    @property
    def label(self) -> str:
        """The figure in words, with its scope: ``turn latency P99 (search, worst 30 s)``."""
        scope = [s for s in (self.intent, self._window_words()) if s]
        return f"{self.spec.label} ({', '.join(scope)})" if scope else self.spec.label

    def _window_words(self) -> str | None:
        if self.window_s is None:
            return None
        if self.spec.kind == "count":
            return f"most in any {self.window_s:g} s"
        return f"worst {self.window_s:g} s"
