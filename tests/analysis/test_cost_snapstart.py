"""SnapStart billing and the per-mitigation compare columns, against runs computed by hand.

*SnapStart run*: the Lambda run of test_cost (100 s, 512 MB, 10 sessions, 4
environments then 36 warm invocations of 400 ms) whose 4 environments were
restored in 150 ms each (cold invocations of 650 ms)::

    duration   4 x 0.5 s + 36 x 0.4 s = 16.4 s x 0.5 GB = 8.2 GB-s
    restore    4 x 0.15 s = 0.6 s     x 0.5 GB          = 0.3 GB-s   (duration rate)
    restores   4 x 0.5 GB = 2 GB restored x 0.0001397998
    cache      3 h (the minimum) = 10,800 s x 0.5 GB = 5,400 GB-s x 0.0000015046
    requests   40 x 0.0000002
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cost import _run, lambda_run, pods_run

from loadlab.analysis.cost import cost_estimate, snapstart_charges
from loadlab.analysis.cost.mitigations import mitigation_column, mitigation_of
from loadlab.analysis.prices import load_prices
from loadlab.analysis.rundata import load_run
from loadlab.cli import main
from loadlab.errors import ConfigError
from loadlab.report.cost import mitigation_text

GB_S = 0.0000166667
RESTORE_GB = 0.0001397998
CACHE_GB_S = 0.0000015046


def snapstart_run(path: Path, *, in_handler: bool = False) -> Path:
    reqs: list[tuple[float, float, str, bool, float | None, str | None]] = []
    for i in range(4):
        reqs.append((1 + 0.1 * i, 650.0, f"e{i}", True, 150.0, None))
    for n in range(9):
        for i in range(4):
            reqs.append((10 + 10 * n + i, 400.0, f"e{i}", False, None, None))
    target: dict[str, object] = {
        "url": "http://127.0.0.1:9",
        "transport": "lambda",
        "function": "agent",
        "memory_mb": 512,
        "snapstart": 1,
    }
    if in_handler:
        target["agent_init_in_handler"] = 1
    return _run(path, target, reqs, sessions=10)


def test_restores_billed_as_aws_bills_snapstart(tmp_path: Path) -> None:
    estimate = cost_estimate(load_run(snapstart_run(tmp_path / "snap")), load_prices())
    snap = estimate.model("lambda_snapstart")
    assert snap.basis == "measured" and snap.cold_starts == 4
    expected = 40 * 0.0000002 + (8.2 + 0.3) * GB_S + 2 * RESTORE_GB + 5400 * CACHE_GB_S
    assert snap.compute_usd == pytest.approx(expected, rel=1e-9)
    assert round(snap.compute_usd or 0, 6) == round(expected, 6)
    # No INIT per cold start: the restores replace it.
    assert not any("INIT" in line.item for line in snap.compute)
    # The restore time is not an INIT: on-demand is not guessed from it.
    lam = estimate.model("lambda")
    assert lam.missing and "without --snapstart" in lam.missing
    assert estimate.break_even_requests_per_day is None or estimate.break_even_note


def test_cache_is_billed_for_the_run_when_longer_than_three_hours() -> None:
    lines = snapstart_charges(
        load_prices(), memory_mb=1024, restores=10, restore_s=2.0, cached_s=4 * 3600
    )
    by_key = {line.price_key: line for line in lines}
    assert by_key["lambda_snapstart_cache_gb_second"].quantity == 4 * 3600
    assert by_key["lambda_snapstart_restore_gb"].usd == pytest.approx(10 * RESTORE_GB)
    assert by_key["lambda_gb_second"].usd == pytest.approx(2.0 * GB_S)


def test_an_on_demand_run_says_snapstart_is_not_measured(tmp_path: Path) -> None:
    estimate = cost_estimate(load_run(lambda_run(tmp_path / "lam")), load_prices())
    snap = estimate.model("lambda_snapstart")
    assert snap.basis == "missing" and snap.total_usd is None
    assert snap.missing and "--snapstart" in snap.missing


def test_a_price_table_without_snapstart_prices_names_the_key(tmp_path: Path) -> None:
    table = (Path(load_prices().path)).read_text()
    trimmed = tmp_path / "prices.yaml"
    start = table.index("  lambda_snapstart_restore_gb:")
    end = table.index("  eks_cluster_hour:")
    trimmed.write_text(table[:start] + table[end:])
    run = load_run(snapstart_run(tmp_path / "snap"))
    from loadlab.analysis.prices import load_prices as load

    with pytest.raises(ConfigError, match="no price 'lambda_snapstart_restore_gb'") as caught:
        cost_estimate(run, load(trimmed))
    assert caught.value.hint and "--set lambda_snapstart_restore_gb=VALUE" in caught.value.hint


def test_mitigation_of_each_run(tmp_path: Path) -> None:
    assert mitigation_of(load_run(lambda_run(tmp_path / "a"))) == "on-demand"
    assert mitigation_of(load_run(snapstart_run(tmp_path / "b"))) == "snapstart"
    handler = load_run(snapstart_run(tmp_path / "c", in_handler=True))
    assert mitigation_of(handler) == "snapstart + in-handler init"
    assert mitigation_of(load_run(pods_run(tmp_path / "d"))) == "pods"


def test_compare_prints_one_column_per_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [
        lambda_run(tmp_path / "on-demand"),
        snapstart_run(tmp_path / "snap"),
        pods_run(tmp_path / "pods"),
    ]
    assert main(["compare", *map(str, runs), "--out", str(tmp_path / "c.html")]) == 0
    out = capsys.readouterr().out
    table = out[out.index("cold-start mitigations") :]
    header = next(line for line in table.splitlines() if "on-demand" in line)
    assert header.index("on-demand") < header.index("snapstart") < header.index("pods")
    init_row = next(line for line in table.splitlines() if "init (or restore) P50" in line)
    assert "2,000 ms" in init_row and "150 ms" in init_row
    cost_row = next(line for line in table.splitlines() if "per 1,000 sessions" in line)
    assert cost_row.count("$") == 3


def test_columns_hold_the_figures_by_hand(tmp_path: Path) -> None:
    prices = load_prices()
    snap = mitigation_column(load_run(snapstart_run(tmp_path / "s")), prices, name="s")
    lam = mitigation_column(load_run(lambda_run(tmp_path / "l")), prices, name="l")
    assert snap.figures["cold_starts"] == lam.figures["cold_starts"] == 4
    assert snap.figures["init_p50_ms"] == 150 and lam.figures["init_p50_ms"] == 2000
    assert snap.cost_model == "lambda_snapstart" and lam.cost_model == "lambda"
    total = cost_estimate(load_run(tmp_path / "s"), prices).model("lambda_snapstart").total_usd
    assert snap.figures["usd_per_1000_sessions"] == pytest.approx((total or 0) / 10 * 1000)
    text = mitigation_text((lam, snap))
    assert "snapstart" in text and "on-demand" in text


def test_the_pair_comparison_prices_a_snapstart_run_on_snapstart(tmp_path: Path) -> None:
    from loadlab.report.compare import compare_runs

    comparison = compare_runs(snapstart_run(tmp_path / "snap"), pods_run(tmp_path / "pods"))
    rows = {label: (a, b) for label, a, b, _ in comparison.rows}
    snap_total = cost_estimate(load_run(tmp_path / "snap"), load_prices()).model("lambda_snapstart")
    assert rows["cost of the run (its own platform)"][0] == snap_total.total_usd
    assert rows["$ per 1,000 sessions: Lambda with SnapStart"][0] is not None
