"""SLO gates: the scenario's ``slo`` block judged against the summary, and junit.xml."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadlab.analysis.run_summary import RunSummary

# gate name in the scenario -> (the figure it limits, human label)
_GATES: dict[str, tuple[Callable[[RunSummary], float | None], str]] = {
    "p99_ms": (lambda s: s.turn_latency_ms.all.p99, "turn latency P99 (ms)"),
    "p50_ms": (lambda s: s.turn_latency_ms.all.p50, "turn latency P50 (ms)"),
    "ttft_p99_ms": (lambda s: s.ttft_ms.all.p99, "time to first token P99 (ms)"),
    "error_rate": (lambda s: s.totals.turn_error_rate, "failed turns / all turns"),
    "max_restarted": (lambda s: s.sessions.verdicts.get("restarted"), "sessions restarted"),
    "max_duplicated": (lambda s: s.sessions.verdicts.get("duplicated"), "sessions duplicated"),
}


@dataclass(frozen=True, slots=True)
class GateResult:
    """One SLO gate and whether the run met it."""

    name: str
    label: str
    limit: float
    actual: float | None
    passed: bool

    @property
    def message(self) -> str:
        """One line for the console and junit."""
        verdict = "met" if self.passed else "MISSED"
        actual = "no data" if self.actual is None else f"{self.actual:g}"
        return f"{self.label}: {actual} (limit {self.limit:g}) {verdict}"


def evaluate(summary: RunSummary, slo: dict[str, Any] | None) -> list[GateResult]:
    """Judge each gate in ``slo`` (from the scenario) against ``summary``."""
    results: list[GateResult] = []
    for name, limit in (slo or {}).items():
        if limit is None or name not in _GATES:
            continue
        figure, label = _GATES[name]
        value = figure(summary)
        # summary.json has no NaN: a figure it would write as null has no data
        actual = float(value) if value is not None and math.isfinite(value) else None
        passed = actual is not None and actual <= float(limit)
        results.append(GateResult(name, label, float(limit), actual, passed))
    return results


def known_gates() -> tuple[str, ...]:
    """Gate names understood in a scenario's ``slo`` block."""
    return tuple(_GATES)


def write_junit(path: Path, run_name: str, gates: list[GateResult]) -> None:
    """Write gates as a JUnit XML test suite (one test case per gate)."""
    suite = ET.Element(
        "testsuite",
        name=f"loadlab.slo.{run_name}",
        tests=str(len(gates)),
        failures=str(sum(not g.passed for g in gates)),
        errors="0",
    )
    for gate in gates:
        case = ET.SubElement(suite, "testcase", classname=f"loadlab.slo.{run_name}", name=gate.name)
        if not gate.passed:
            failure = ET.SubElement(case, "failure", message=gate.message)
            failure.text = gate.message
        else:
            ET.SubElement(case, "system-out").text = gate.message
    tree = ET.ElementTree(suite)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
