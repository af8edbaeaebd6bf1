"""The closing lines of a command: the verdict first, the headline, the files; the exit.

The exit code of ``run``, ``report`` and ``gameday`` is the verdict's
(:mod:`loadlab.report.verdict`): it weighs every piece of evidence (the run
ended, the experiment's journal, every SLO gate, the in-band session verdicts,
the out-of-band checkpoint audit). A missed one fails the command with
:class:`~loadlab.errors.VerdictFailed` (exit 6), its reasons printed first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from loadlab.errors import ChildFailed, SLOFailed, VerdictFailed
from loadlab.report.render import RenderedReport, headline, render_run

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def render_and_print(run_dir: Path, *, locust_rc: int | None) -> RenderedReport:
    """Render the report of a finished load run and print the verdict, headline and files.

    ``locust_rc``: Locust's exit code, or None while it still serves its web UI.
    """
    if not (run_dir / "manifest.json").exists():
        raise ChildFailed(
            f"Locust exited with code {locust_rc} before the run started; nothing was recorded",
            exit_code=locust_rc or 1,
            hint="read Locust's error above (a bad option or locustfile import error)",
        )
    print("loadlab: rendering the report ...", flush=True)
    out = render_run(run_dir)
    print_report(out)
    agreement = out.summary.locust
    if agreement is not None:
        state = "agree" if agreement.all_match else "DIFFER (see report)"
        print(f"  loadlab and Locust statistics {state}")
    print(f"run directory: {run_dir}")
    return out


def print_report(out: RenderedReport) -> None:
    """The verdict, the headline and gates, where the report is; summary.md to CI."""
    print_verdict(out)
    print_headline(out)
    print(f"report:        {out.html_path}")
    publish_step_summary(out)


def print_verdict(out: RenderedReport) -> None:
    """``verdict: PASS`` or ``verdict: FAIL`` with the reasons, then one line per evidence."""
    verdict = out.verdict
    if verdict.passed:
        print("verdict: PASS")
    else:
        print("verdict: FAIL - " + "; ".join(verdict.reasons))
    for evidence in verdict.evidence:
        print(f"  {evidence.source:<17} {evidence.status:<12} {evidence.detail}")


def print_headline(out: RenderedReport) -> None:
    """The headline table and one line per SLO gate."""
    print(headline(out.summary))
    for gate in out.gates:
        print(f"  SLO {gate.message}")


def publish_step_summary(out: RenderedReport) -> None:
    """Append summary.md to ``$GITHUB_STEP_SUMMARY`` when a CI system asks for it."""
    target = os.environ.get(STEP_SUMMARY_ENV)
    if not target or not out.markdown_path.is_file():
        return
    try:
        with open(target, "a", encoding="utf-8") as f:
            f.write(out.markdown_path.read_text(encoding="utf-8") + "\n")
    except OSError as exc:  # the run's own files are written; CI only loses its summary
        print(f"loadlab: could not append to ${STEP_SUMMARY_ENV}: {exc}", file=sys.stderr)


def check_locust(locust_rc: int) -> None:
    """Raise unless Locust ended normally (0, or 1 when some requests failed: that is data)."""
    if locust_rc not in (0, 1):
        raise ChildFailed(f"Locust exited with code {locust_rc}", exit_code=locust_rc)


def check_verdict(out: RenderedReport) -> None:
    """Raise (exit 6) unless every evidence passed.

    :class:`~loadlab.errors.SLOFailed` when only SLO gates were missed, else
    :class:`~loadlab.errors.VerdictFailed`.
    """
    verdict = out.verdict
    if verdict.passed:
        return
    missed = {e.source for e in verdict.evidence if e.status == "missed"}
    error = SLOFailed if missed == {"slo"} else VerdictFailed
    raise error(
        "the verdict is FAIL: " + "; ".join(verdict.reasons),
        hint="see the report; relax a gate in the scenario's slo block only on purpose "
        "(README: SLO gates)",
    )
