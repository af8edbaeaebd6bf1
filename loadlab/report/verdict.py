"""One verdict from all the evidence a run gathered (DESIGN.md, "The verdict").

A pass must mean something. The verdict weighs six sources, one
:class:`Evidence` line each:

* ``run``: did the run end (manifest ``ended_at``)? A run with no end is
  incomplete and never green;
* ``experiment``: the Chaos Toolkit journal, when the run has one;
* ``slo``: every gate, defaults included;
* ``sessions``: the in-band session verdicts against the continuity gates;
* ``checkpoint_audit``: the out-of-band audit against ``max_audit_disagreements``
  (not checked, and no failure, when the run has no audit: only runs against the
  embedded stack are audited);
* ``recording``: the record itself. Missed when anything of it could not be
  read or had to be repaired (the run's ``problems``: unreadable parts,
  malformed event lines, values the recorder could not store as sent), or when
  loadlab's rows and Locust's own statistics of the same run disagree: figures
  from an incomplete record cannot pass.

The run passes when no evidence is missed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from loadlab.analysis.journal import JOURNAL, ExperimentOutcome
from loadlab.analysis.run_summary import RunSummary
from loadlab.analysis.rundata import RunData
from loadlab.report.slo import GateResult

__all__ = ["SOURCES", "Evidence", "EvidenceStatus", "Verdict", "judge_run"]

EvidenceStatus = Literal["met", "missed", "not checked"]

SOURCES: tuple[str, ...] = (
    "run",
    "experiment",
    "slo",
    "sessions",
    "checkpoint_audit",
    "recording",
)
"""The evidence sources, in the order the verdict lists them."""

_CONTINUITY = (
    ("restarted", "max_restarted"),
    ("duplicated", "max_duplicated"),
    ("failed", "max_failed_sessions"),
)
_MAX_NAMED = 5


@dataclass(frozen=True, slots=True)
class Evidence:
    """One source of evidence and what it says: ``met``, ``missed`` or ``not checked``."""

    source: str
    status: EvidenceStatus
    detail: str

    @property
    def line(self) -> str:
        """``slo: missed: 2 of 6 gates missed ...``."""
        return f"{self.source}: {self.status}: {self.detail}"

    def to_json(self) -> dict[str, str]:
        """``{source, status, detail}``."""
        return {"source": self.source, "status": self.status, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Verdict:
    """Every piece of evidence, and whether the run passed (no evidence missed)."""

    evidence: tuple[Evidence, ...]

    @property
    def passed(self) -> bool:
        """True when no evidence was missed."""
        return all(e.status != "missed" for e in self.evidence)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why the run failed: each missed evidence's line, in order (empty on a pass)."""
        return tuple(e.line for e in self.evidence if e.status == "missed")

    def get(self, source: str) -> Evidence | None:
        """The evidence of ``source``, or None."""
        return next((e for e in self.evidence if e.source == source), None)

    def to_json(self) -> dict[str, Any]:
        """summary.json's ``verdict``: ``{passed, reasons, evidence}``."""
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "evidence": [e.to_json() for e in self.evidence],
        }


def judge_run(run: RunData, summary: RunSummary, gates: Sequence[GateResult]) -> Verdict:
    """The verdict of a run from its directory, its summary and its judged gates."""
    return Verdict(
        evidence=(
            run_evidence(run, summary),
            experiment_evidence(summary, journal_exists=(Path(run.path) / JOURNAL).exists()),
            slo_evidence(gates),
            sessions_evidence(summary, gates),
            audit_evidence(summary, gates),
            recording_evidence(summary),
        )
    )


def run_evidence(run: RunData, summary: RunSummary) -> Evidence:
    """Did the run end, and not by a stop condition? The manifest says (``ended_at``,
    ``end_reason``, ``aborted_by``, ``stopped_by``); without an end, what was still
    in flight."""
    info = summary.run
    if info.state == "aborted":
        by = run.manifest.get("aborted_by") or "an abort gate"
        return Evidence(
            "run", "missed", f"aborted after {info.duration_s:g} s: {by} (stop condition)"
        )
    if info.state == "ended":
        reason = f" ({info.end_reason})" if info.end_reason else ""
        stopped = _STOPPED_BY.get(info.stopped_by or "", "")
        return Evidence("run", "met", f"ended{reason}{stopped} after {info.duration_s:g} s")
    return Evidence(
        "run",
        "missed",
        f"incomplete: the run has no end (manifest ended_at), {info.sessions_in_flight} "
        "session(s) still in flight when the record stops; a run that did not end cannot "
        "pass: the harness was killed or crashed before the load stopped, so what those "
        "sessions and the rest of the load would have shown is unknown",
    )


_STOPPED_BY = {
    "interrupt": ", stopped by an interrupt (Ctrl-C)",
    "web_ui": ", stopped from the web UI",
    "terminated": ", stopped by a signal",
}


def experiment_evidence(summary: RunSummary, *, journal_exists: bool) -> Evidence:
    """The Chaos Toolkit journal: completed and not deviated is met."""
    if summary.experiment is None:
        if journal_exists:
            return Evidence("experiment", "missed", f"{JOURNAL} is not a readable journal")
        return Evidence("experiment", "not checked", "no Chaos Toolkit journal in the run")
    journal = summary.experiment.journal
    title = f"'{journal.title}' " if journal.title else ""
    if journal.deviated:
        probes = "; ".join(
            f"probe '{p.name}' ({p.phase}) returned {_compact(p.value)}, "
            f"tolerance {_compact(p.tolerance)}"
            for p in journal.deviated_probes[:_MAX_NAMED]
        )
        return Evidence(
            "experiment", "missed", f"{title}deviated: {probes or 'steady state not met'}"
        )
    if journal.status != "completed":
        failed = failed_activities(journal)
        named = "; ".join(
            f"{a.type} '{a.name}' {a.status}" + (f": {a.error}" if a.error else "")
            for a in failed[:_MAX_NAMED]
        )
        return Evidence(
            "experiment",
            "missed",
            f"{title}{journal.status or 'unknown status'}" + (f": {named}" if named else ""),
        )
    met = journal.hypothesis_met
    hypothesis = "steady state met" if met else "no steady-state hypothesis"
    return Evidence("experiment", "met", f"{title}completed, {hypothesis}")


def failed_activities(journal: ExperimentOutcome) -> tuple[Any, ...]:
    """Method activities that did not succeed."""
    return tuple(a for a in journal.method if a.status not in (None, "succeeded"))


def slo_evidence(gates: Sequence[GateResult]) -> Evidence:
    """Every gate: ``N of M gates met``, the missed ones named."""
    missed = [g for g in gates if g.status == "missed"]
    unchecked = [g for g in gates if g.status == "not checked"]
    judged = len(gates) - len(unchecked)
    detail = f"{judged - len(missed)} of {judged} gates met"
    if unchecked:
        detail += f" ({len(unchecked)} not checked: {', '.join(g.name for g in unchecked)})"
    if missed:
        detail += "; missed: " + ", ".join(
            f"{g.name} ({_figure(g.actual)}, limit {g.limit:g}{', default' if g.default else ''})"
            for g in missed
        )
    return Evidence("slo", "missed" if missed else "met", detail)


def sessions_evidence(summary: RunSummary, gates: Sequence[GateResult]) -> Evidence:
    """The in-band session verdicts against the continuity gates."""
    sessions = summary.sessions
    if not sessions.count:
        return Evidence("sessions", "missed", "no session reached a verdict: nothing was tested")
    parts: list[str] = []
    missed = False
    for verdict, key in _CONTINUITY:
        n = sessions.verdicts.get(verdict, 0)
        gate = _whole_run_gate(gates, key)
        if gate is None:
            parts.append(f"{n} {verdict} (no limit)")
            continue
        default = ", default" if gate.default else ""
        state = " MISSED" if gate.status == "missed" else ""
        parts.append(f"{n} {verdict} (limit {gate.limit:g}{default}){state}")
        missed = missed or gate.status == "missed"
    ok = sessions.verdicts.get("clean", 0) + sessions.verdicts.get("resumed", 0)
    detail = f"{sessions.count} sessions, {ok} clean or resumed: " + ", ".join(parts)
    return Evidence("sessions", "missed" if missed else "met", detail)


def audit_evidence(summary: RunSummary, gates: Sequence[GateResult]) -> Evidence:
    """The out-of-band checkpoint audit against ``max_audit_disagreements``."""
    oob = summary.continuity.out_of_band
    if oob is None:
        return Evidence(
            "checkpoint_audit",
            "not checked",
            "no out-of-band audit (checkpoints.parquet): only runs against the "
            "embedded stack are audited",
        )
    gate = _whole_run_gate(gates, "max_audit_disagreements")
    detail = f"{oob.agree} of {oob.compared} sessions agree, {oob.disagree} disagree"
    if oob.disagreement_kinds:
        detail += " (" + ", ".join(f"{n} {k}" for k, n in oob.disagreement_kinds.items()) + ")"
    if gate is None:
        return Evidence("checkpoint_audit", "met", detail + " (no limit)")
    default = ", default" if gate.default else ""
    detail += f" (limit {gate.limit:g}{default})"
    return Evidence("checkpoint_audit", "missed" if gate.status == "missed" else "met", detail)


def recording_evidence(summary: RunSummary) -> Evidence:
    """The record itself: read whole, stored as sent, and in agreement with Locust's count."""
    missed: list[str] = []
    if summary.problems:
        first = summary.problems[0]
        more = f" (+{len(summary.problems) - 1} more)" if len(summary.problems) > 1 else ""
        missed.append(f"{len(summary.problems)} problem(s) in the record: {first}{more}")
    agreement = summary.locust
    if agreement is not None and not agreement.all_match:
        differ = [r for r in agreement.by_name if not (r.count_match and r.median_match)]
        named = ", ".join(
            f"{r.name} ({r.loadlab_count} rows vs {r.locust_count} in Locust)" for r in differ
        )
        missed.append(f"loadlab's rows and Locust's statistics differ: {named}"[:400])
    if missed:
        return Evidence("recording", "missed", "; ".join(missed))
    if agreement is None:
        return Evidence("recording", "met", "every part read, nothing repaired (no Locust figures)")
    total = sum(r.loadlab_count for r in agreement.by_name)
    return Evidence(
        "recording",
        "met",
        f"every part read, nothing repaired; {total} requests, as Locust counted them",
    )


def _figure(value: float | None) -> str:
    return "no data" if value is None else f"{value:g}"


def _whole_run_gate(gates: Sequence[GateResult], key: str) -> GateResult | None:
    return next((g for g in gates if g.key == key and g.intent is None), None)


def _compact(value: Any) -> str:
    text = json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= 80 else text[:77] + "..."
