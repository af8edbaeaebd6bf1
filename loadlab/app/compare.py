"""``loadlab compare``: runs side by side (e.g. the same flash sale on Lambda and on pods).

The first two runs get the full comparison page and table (figures, cost rows,
fidelity table). Every run also gets a column of its own in the cold-start
mitigation table (on-demand, provisioned N, snapstart, in-handler init, pods).
"""

from __future__ import annotations

from loadlab.analysis.cost.mitigations import mitigation_column
from loadlab.analysis.prices import load_prices
from loadlab.analysis.rundata import load_run
from loadlab.app.options import CompareOptions
from loadlab.report.compare import compare_runs, text_table
from loadlab.report.cost import mitigation_text


def execute(options: CompareOptions) -> int:
    """Write the comparison page, print its table and the mitigation columns; 0."""
    run_a, run_b = options.run_a, options.run_b
    out = options.out or run_b.parent / f"compare-{run_a.name}-vs-{run_b.name}.html"
    comparison = compare_runs(run_a, run_b, out=out)
    print(text_table(comparison))
    prices = load_prices()
    columns = tuple(
        mitigation_column(load_run(path), prices, name=path.name) for path in options.runs
    )
    print()
    print(mitigation_text(columns))
    print(f"comparison: {out}")
    return 0
