"""junit.xml: the verdict as CI systems show it.

A ``testsuites`` root with up to three suites:

* ``loadlab.verdict``: one test case per evidence source (run, experiment,
  slo, sessions, checkpoint_audit);
* ``loadlab.slo``: one per gate, named by its key, window and intent
  (``p99_ms``, ``p99_ms[30s]``, ``search.p99_ms``); the failure message names
  the value and the limit;
* ``loadlab.experiment`` (with a Chaos Toolkit journal): one per steady-state
  probe before and after the method, one per method activity that failed.

Missed is a ``<failure>``, not checked a ``<skipped>``; a method activity that
failed while the experiment still completed is skipped too (the experiment
tolerated it), so junit.xml fails exactly when the verdict does.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadlab.analysis.journal import ExperimentOutcome, ProbeResult
from loadlab.redact import Redactor
from loadlab.report.slo import GateResult
from loadlab.report.verdict import Verdict, failed_activities

__all__ = ["write_junit"]


@dataclass(frozen=True, slots=True)
class _Case:
    name: str
    outcome: str  # "passed", "failure", "skipped"
    message: str


def write_junit(
    path: Path,
    run_name: str,
    verdict: Verdict,
    gates: Sequence[GateResult],
    experiment: ExperimentOutcome | None,
) -> None:
    """Write the verdict, the gates and the experiment as JUnit XML (see the module docstring)."""
    suites: list[tuple[str, list[_Case]]] = [
        ("verdict", [_evidence_case(e.source, e.status, e.detail) for e in verdict.evidence]),
        ("slo", [_gate_case(g) for g in gates]),
    ]
    if experiment is not None:
        completed = experiment.status == "completed" and not experiment.deviated
        suites.append(("experiment", _experiment_cases(experiment, completed=completed)))
    root = ET.Element("testsuites", name=f"loadlab.{run_name}")
    for name, cases in suites:
        _suite(root, f"loadlab.{name}", run_name, cases)
    for attr in ("tests", "failures", "errors", "skipped"):
        root.set(attr, str(sum(int(s.get(attr, "0")) for s in root)))
    tree = ET.ElementTree(root)
    ET.indent(tree)
    text = ET.tostring(root, encoding="unicode", xml_declaration=True)
    # the last line before the file: no credential an error quoted reaches CI
    path.write_text(Redactor.from_env()(text) + "\n", encoding="utf-8")


def _suite(root: ET.Element, name: str, run_name: str, cases: list[_Case]) -> None:
    suite = ET.SubElement(
        root,
        "testsuite",
        name=name,
        tests=str(len(cases)),
        failures=str(sum(c.outcome == "failure" for c in cases)),
        errors="0",
        skipped=str(sum(c.outcome == "skipped" for c in cases)),
    )
    for c in cases:
        case = ET.SubElement(suite, "testcase", classname=f"{name}.{run_name}", name=c.name)
        if c.outcome == "failure":
            ET.SubElement(case, "failure", message=c.message).text = c.message
        elif c.outcome == "skipped":
            ET.SubElement(case, "skipped", message=c.message)
        else:
            ET.SubElement(case, "system-out").text = c.message


def _evidence_case(source: str, status: str, detail: str) -> _Case:
    outcome = {"met": "passed", "missed": "failure"}.get(status, "skipped")
    return _Case(source, outcome, f"{status}: {detail}")


def _gate_case(gate: GateResult) -> _Case:
    outcome = {"met": "passed", "missed": "failure"}.get(gate.status, "skipped")
    return _Case(gate.name, outcome, gate.message)


def _experiment_cases(journal: ExperimentOutcome, *, completed: bool) -> list[_Case]:
    cases: list[_Case] = []
    for phase, state in (("before", journal.before), ("after", journal.after)):
        for probe in state.probes if state is not None else ():
            cases.append(_probe_case(phase, probe))
    for activity in failed_activities(journal):
        message = f"{activity.type} '{activity.name}' {activity.status}" + (
            f": {activity.error}" if activity.error else ""
        )
        if completed:
            cases.append(_Case(f"method: {activity.name}", "skipped", f"{message} (tolerated)"))
        else:
            cases.append(_Case(f"method: {activity.name}", "failure", message))
    return cases


def _probe_case(phase: str, probe: ProbeResult) -> _Case:
    name = f"steady state {phase}: {probe.name}"
    text = f"returned {_compact(probe.value)}, tolerance {_compact(probe.tolerance)}"
    if probe.tolerance_met is False:
        return _Case(name, "failure", f"out of tolerance: {text}")
    if probe.status not in (None, "succeeded"):
        return _Case(name, "failure", f"probe {probe.status}: {text}")
    return _Case(name, "passed", f"within tolerance: {text}")


def _compact(value: Any) -> str:
    text = json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= 200 else text[:197] + "..."
