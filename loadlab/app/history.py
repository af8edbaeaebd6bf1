"""``loadlab history``: per experiment, how the game days went, and which run got worse."""

from __future__ import annotations

from loadlab.analysis.history import build_history
from loadlab.app.options import HistoryOptions
from loadlab.errors import VerdictFailed
from loadlab.report.history import history_table, write_history_html


def execute(options: HistoryOptions) -> int:
    """Print the table, write the page; 0, or exit 6 when an experiment's newest run regressed."""
    history = build_history(options.paths, last=options.last, tolerance=options.tolerance)
    print(history_table(history))
    out = options.out or options.paths[0] / "history.html"
    write_history_html(history, out)
    print(f"history: {out}")
    regressed = history.newest_regressed()
    if regressed and not options.no_fail:
        raise VerdictFailed(
            f"{len(regressed)} experiment(s) got worse in their newest run: "
            + "; ".join(r.line for r in regressed),
            hint="look at the runs named above; --no-fail prints the trend without failing",
        )
    return 0
