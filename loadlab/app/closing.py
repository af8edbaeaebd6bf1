"""The closing lines of a command: headline, gates, where the files are; the exit verdict."""

from __future__ import annotations

from pathlib import Path

from loadlab.errors import ChildFailed, SLOFailed
from loadlab.report.render import RenderedReport, headline, render_run


def render_and_print(run_dir: Path, *, locust_rc: int) -> RenderedReport:
    """Render the report of a finished load run and print its headline and gates."""
    if not (run_dir / "manifest.json").exists():
        raise ChildFailed(
            f"Locust exited with code {locust_rc} before the run started; nothing was recorded",
            exit_code=locust_rc,
            hint="read Locust's error above (a bad option or locustfile import error)",
        )
    print("loadlab: rendering the report ...", flush=True)
    out = render_run(run_dir)
    print_headline(out)
    agreement = out.summary.locust
    if agreement is not None:
        state = "agree" if agreement.all_match else "DIFFER (see report)"
        print(f"  loadlab and Locust statistics {state}")
    print(f"run directory: {run_dir}")
    print(f"report:        {out.html_path}")
    return out


def print_headline(out: RenderedReport) -> None:
    """The headline table and one line per SLO gate."""
    print(headline(out.summary))
    for gate in out.gates:
        print(f"  SLO {gate.message}")


def check_locust(locust_rc: int) -> None:
    """Raise unless Locust ended normally (0, or 1 when some requests failed: that is data)."""
    if locust_rc not in (0, 1):
        raise ChildFailed(f"Locust exited with code {locust_rc}", exit_code=locust_rc)


def check_slo(out: RenderedReport) -> None:
    """Raise :class:`~loadlab.errors.SLOFailed` when a gate was missed."""
    missed = [gate for gate in out.gates if not gate.passed]
    if missed:
        raise SLOFailed(
            f"{len(missed)} of {len(out.gates)} SLO gates missed: "
            + "; ".join(gate.message for gate in missed),
            hint="see the report; relax a gate in the scenario's slo block only on purpose",
        )
