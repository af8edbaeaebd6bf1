"""SLO gates judged: every gate of the scenario (defaults included) against the run.

The gates come from the manifest through
:func:`loadlab.scenario.files.slo_from_manifest` (the one reader); the catalog
is :mod:`loadlab.scenario.gates`. Each catalog key has one figure here (the
whole-run figure from the :class:`RunSummary`; windowed and per-intent figures
from the run's turns and sessions), and :func:`catalog_problems` says when the
two lists part ways.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from loadlab.analysis.gate_figures import ddb_throttles, turn_error_rate, worst_window
from loadlab.analysis.run_summary import RunSummary
from loadlab.analysis.rundata import RunData
from loadlab.analysis.stats import Distribution
from loadlab.scenario.gates import GATES, Gate
from loadlab.scenario.model import SLO

GateStatus = Literal["met", "missed", "not checked"]

Figure = Callable[[RunSummary, RunData, Gate], float | None]


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate and whether the run met it.

    ``actual`` is None when the run has no figure for the gate: the gate is then
    missed, or "not checked" for gates whose evidence is optional (no audit, no
    resumed session). ``passed`` is False only for a missed gate.
    """

    name: str
    label: str
    limit: float
    actual: float | None
    passed: bool
    window_s: float | None = None
    intent: str | None = None
    default: bool = False
    abort: bool = False
    key: str = ""
    status: GateStatus = "met"

    @property
    def message(self) -> str:
        """One line for the console and junit, e.g.
        ``sessions restarted: 3 (limit 0, default) MISSED``."""
        verdict = {"met": "met", "missed": "MISSED", "not checked": "not checked"}[self.status]
        unit = {"ms": " ms", "ratio": "x"}.get(GATES[self.key].kind, "") if self.key else ""
        actual = "no data" if self.actual is None else f"{self.actual:g}{unit}"
        limit = f"limit {self.limit:g}{unit}" + (", default" if self.default else "")
        return f"{self.label}: {actual} ({limit}) {verdict}"

    def to_json(self) -> dict[str, object]:
        """One entry of summary.json's ``slo`` list."""
        return {
            "gate": self.name,
            "key": self.key or self.name,
            "label": self.label,
            "limit": self.limit,
            "actual": self.actual,
            "passed": self.passed,
            "status": self.status,
            "window_s": self.window_s,
            "intent": self.intent,
            "default": self.default,
            "abort": self.abort,
            "message": self.message,
        }


def _turn_percentile(attr: str, ttft: bool = False) -> Figure:
    def figure(s: RunSummary, run: RunData, gate: Gate) -> float | None:
        source = s.ttft_ms if ttft else s.turn_latency_ms
        dist = source.all if gate.intent is None else source.by_intent.get(gate.intent)
        value: float | None = getattr(dist or Distribution.of([]), attr)
        return value

    return figure


def _error_rate(s: RunSummary, run: RunData, gate: Gate) -> float | None:
    if gate.intent is not None:
        return turn_error_rate(run, gate.intent)
    # no turn at all is no evidence: summary.json's 0.0 would pass an empty run
    return s.totals.turn_error_rate if s.totals.turns else None


def _verdicts(verdict: str) -> Figure:
    return lambda s, run, gate: float(s.sessions.verdicts.get(verdict, 0))


def _audit(s: RunSummary, run: RunData, gate: Gate) -> float | None:
    oob = s.continuity.out_of_band
    return None if oob is None else float(oob.disagree)


def _resume_p99(s: RunSummary, run: RunData, gate: Gate) -> float | None:
    return s.sessions.resume_latency_ms.p99


def _cold_share(s: RunSummary, run: RunData, gate: Gate) -> float | None:
    share = s.cold_starts.analysis.p99_share
    if not s.cold_starts.analysis.recorded or not share.turns:
        return None
    return share.cold_turns / share.turns


def _llm_429_rate(s: RunSummary, run: RunData, gate: Gate) -> float | None:
    calls = s.downstream.totals.get("llm_calls", 0.0)
    return s.downstream.totals.get("llm_throttles", 0.0) / calls if calls else None


def _ddb_throttles(s: RunSummary, run: RunData, gate: Gate) -> float | None:
    return ddb_throttles(run)


def _amplification(s: RunSummary, run: RunData, gate: Gate) -> float | None:
    calls = s.downstream.totals.get("llm_calls", 0.0)
    distinct = calls - s.downstream.totals.get("llm_retries", 0.0)
    return calls / distinct if calls and distinct > 0 else None


FIGURES: dict[str, Figure] = {
    "p50_ms": _turn_percentile("p50"),
    "p95_ms": _turn_percentile("p95"),
    "p99_ms": _turn_percentile("p99"),
    "p999_ms": _turn_percentile("p99_9"),
    "ttft_p50_ms": _turn_percentile("p50", ttft=True),
    "ttft_p99_ms": _turn_percentile("p99", ttft=True),
    "error_rate": _error_rate,
    "max_restarted": _verdicts("restarted"),
    "max_duplicated": _verdicts("duplicated"),
    "max_failed_sessions": _verdicts("failed"),
    "max_audit_disagreements": _audit,
    "resume_p99_ms": _resume_p99,
    "max_cold_start_share": _cold_share,
    "llm_429_rate": _llm_429_rate,
    "max_ddb_throttles": _ddb_throttles,
    "max_amplification": _amplification,
}
"""The figure each gate key bounds (whole run; windowed gates go through ``worst_window``)."""

# gate key -> the figure name of analysis.gate_figures.worst_window
_WINDOWED: dict[str, str] = {
    "p50_ms": "p50",
    "p95_ms": "p95",
    "p99_ms": "p99",
    "p999_ms": "p999",
    "ttft_p50_ms": "ttft_p50",
    "ttft_p99_ms": "ttft_p99",
    "error_rate": "error_rate",
    "max_restarted": "restarted",
    "max_duplicated": "duplicated",
    "max_failed_sessions": "failed",
}


def catalog_problems(
    figures: Mapping[str, object] = FIGURES,
    windowed: Iterable[str] = _WINDOWED,
) -> list[str]:
    """Where the evaluator and the gate catalog disagree (empty when they agree)."""
    problems = [
        f"gate {k!r} is in the catalog but has no figure" for k in GATES if k not in figures
    ]
    problems += [f"figure {k!r} is no gate of the catalog" for k in figures if k not in GATES]
    window_keys = set(windowed)
    problems += [
        f"gate {k!r} takes a window but has no windowed figure"
        for k, spec in GATES.items()
        if spec.windowed and k not in window_keys
    ]
    return problems


def evaluate(summary: RunSummary, run: RunData, slo: SLO) -> list[GateResult]:
    """Judge every gate of ``slo`` (defaults included) against the run."""
    return [judge(summary, run, gate) for gate in slo.gates]


def judge(summary: RunSummary, run: RunData, gate: Gate) -> GateResult:
    """One gate against the run."""
    if gate.window_s is not None:
        value = worst_window(run, _WINDOWED[gate.key], gate.window_s, gate.intent)
    else:
        value = FIGURES[gate.key](summary, run, gate)
    # as summary.json holds figures: 6 decimals, and no NaN (a null figure has no data)
    actual = round(float(value), 6) if value is not None and math.isfinite(value) else None
    status: GateStatus = gate.spec.no_data
    if actual is not None:
        status = "met" if actual <= gate.limit else "missed"
    return GateResult(
        name=gate.name,
        label=gate.label,
        limit=gate.limit,
        actual=actual,
        passed=status != "missed",
        window_s=gate.window_s,
        intent=gate.intent,
        default=gate.default,
        abort=gate.abort,
        key=gate.key,
        status=status,
    )


def known_gates() -> tuple[str, ...]:
    """Gate keys understood in a scenario's ``slo`` block (the catalog's)."""
    return tuple(GATES)
