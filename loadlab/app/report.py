"""``loadlab report``: re-derive summary.json, report.html and junit.xml from a run directory."""

from __future__ import annotations

from loadlab.app.closing import check_verdict, print_headline, print_verdict
from loadlab.app.options import ReportOptions
from loadlab.report.render import render_run


def execute(options: ReportOptions) -> int:
    """Render the report; 0, or raise VerdictFailed (exit 6) when the evidence fails the run."""
    out = render_run(options.run_dir)
    print_verdict(out)
    print_headline(out)
    print(f"report: {out.html_path}")
    check_verdict(out)
    return 0
