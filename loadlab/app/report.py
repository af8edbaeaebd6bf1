"""``loadlab report``: re-derive summary.json, report.html and junit.xml from a run directory."""

from __future__ import annotations

from loadlab.app.closing import check_slo, print_headline
from loadlab.app.options import ReportOptions
from loadlab.report.render import render_run


def execute(options: ReportOptions) -> int:
    """Render the report; 0, or raise SLOFailed (exit 6) when a gate was missed."""
    out = render_run(options.run_dir)
    print_headline(out)
    print(f"report: {out.html_path}")
    check_slo(out)
    return 0
