"""summary.md: the verdict, its evidence, the gates and the headline, in Markdown.

For a CI job summary or a pull-request comment: short, the verdict first, the
reasons first within it, and where the full report is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from loadlab.analysis.run_summary import RunSummary
from loadlab.report.slo import GateResult
from loadlab.report.verdict import Verdict
from loadlab.scenario.gates import GATES

__all__ = ["gate_value", "summary_markdown"]


def summary_markdown(
    summary: RunSummary,
    verdict: Verdict,
    gates: Sequence[GateResult],
    headline: str,
    files: dict[str, Path],
) -> str:
    """The text of summary.md."""
    state = "PASSED" if verdict.passed else "FAILED"
    lines = [f"# loadlab: {summary.run.name or 'run'}: {state}", ""]
    if verdict.reasons:
        lines += [f"- **{reason}**" for reason in verdict.reasons] + [""]
    if summary.harness_lateness_ms.warning is not None:
        lines += [f"> Warning: {summary.harness_lateness_ms.warning}", ""]
    lines += ["| evidence | status | detail |", "|---|---|---|"]
    lines += [f"| {e.source} | {_status(e.status)} | {_cell(e.detail)} |" for e in verdict.evidence]
    lines += ["", "## SLO gates", "", "| gate | actual | limit | result |", "|---|---|---|---|"]
    for g in gates:
        limit = gate_value(g, g.limit) + (" (default)" if g.default else "")
        lines.append(
            f"| `{g.name}` {_cell(g.label)} | {gate_value(g, g.actual)} | {limit} "
            f"| {_status(g.status)} |"
        )
    lines += ["", "## Headline", "", "```", headline, "```", "", "## Files", ""]
    lines += [f"- {what}: `{path}`" for what, path in files.items()]
    return "\n".join(lines) + "\n"


def gate_value(gate: GateResult, value: float | None) -> str:
    """A gate's actual or limit in its unit: ``5000 ms``, ``1.20%``, ``3``."""
    if value is None:
        return "no data"
    kind = _kind(gate.key)
    if kind == "ms":
        return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.2f} s"
    if kind == "fraction":
        return f"{value * 100:.2f}%"
    if kind == "ratio":
        return f"{value:.2f}x"
    return f"{value:g}"


def _kind(key: str) -> str:
    spec = GATES.get(key)
    return spec.kind if spec is not None else ""


def _status(status: str) -> str:
    return "**MISSED**" if status == "missed" else status


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
