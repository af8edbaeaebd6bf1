"""``loadlab compare``: two runs side by side (e.g. the same flash sale on Lambda and on pods)."""

from __future__ import annotations

from loadlab.app.options import CompareOptions
from loadlab.report.compare import compare_runs, text_table


def execute(options: CompareOptions) -> int:
    """Write the comparison page and print its table; 0."""
    run_a, run_b = options.run_a, options.run_b
    out = options.out or run_b.parent / f"compare-{run_a.name}-vs-{run_b.name}.html"
    comparison = compare_runs(run_a, run_b, out=out)
    print(text_table(comparison))
    print(f"comparison: {out}")
    return 0
