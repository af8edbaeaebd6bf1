"""``loadlab cost``: what a run cost, and would cost on Lambda (on-demand, provisioned) and pods.

With two run directories (a Lambda run and a pods run of the same scenario),
each is priced on its own platform and the break-even in requests/day is taken
between the two measured bills.
"""

from __future__ import annotations

import json

from loadlab.analysis.cost import CostEstimate, cost_estimate
from loadlab.analysis.prices import load_prices
from loadlab.analysis.rundata import load_run
from loadlab.app.options import CostOptions
from loadlab.errors import ConfigError
from loadlab.report.cost import cost_text, pair_text


def execute(options: CostOptions) -> int:
    """Print the cost table of each run (and the pair's break-even); 0."""
    prices = load_prices(options.prices)
    if options.overrides:
        prices = prices.with_overrides(dict(options.overrides))
    estimates: list[CostEstimate] = []
    for path in options.runs:
        estimates.append(cost_estimate(load_run(path), prices, platform=options.platform))
    if options.json:
        print(json.dumps([e.to_json() for e in estimates], indent=2, allow_nan=False))
        return 0
    for path, estimate in zip(options.runs, estimates, strict=True):
        print(cost_text(estimate, path.name))
        print()
    if len(estimates) == 2:
        kinds = {e.usage.platform: e for e in estimates}
        if set(kinds) != {"lambda", "pods"}:
            raise ConfigError(
                "two runs are priced against each other only when one ran on Lambda and the "
                f"other on pods; these ran on {estimates[0].usage.platform} and "
                f"{estimates[1].usage.platform}",
                hint="pass one Lambda run and one pods run, or one run at a time",
            )
        print(pair_text(kinds["lambda"], kinds["pods"]))
    return 0
