from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from loadlab.report.compare import compare_runs, format_value, text_table


def test_compare_puts_both_runs_figures_side_by_side(
    known_run: Callable[..., Path], tmp_path: Path
) -> None:
    run_a = known_run()
    run_b = tmp_path / "b"
    shutil.copytree(run_a, run_b)
    # B: every session restarted, to see the difference in the table
    sessions = pd.read_parquet(run_b / "sessions.parquet")
    sessions["verdict"] = "restarted"
    shutil.rmtree(run_b / "sessions.parquet")
    (run_b / "sessions.parquet").mkdir()
    sessions.to_parquet(run_b / "sessions.parquet" / "part-000000.parquet")
    out = tmp_path / "compare.html"
    comparison = compare_runs(run_a, run_b, out=out)
    rows = {label: (a, b) for label, a, b, _ in comparison.rows}
    assert rows["turn latency P99"] == (99_000, 99_000)
    assert rows["sessions restarted"] == (1, 10)
    assert rows["cold starts"] == (3, 3)
    assert "sessions restarted" in text_table(comparison)
    html = out.read_text()
    assert html.count("<tr>") == len(comparison.rows) + 1 and "data:image/png" in html


def test_values_are_formatted_by_unit() -> None:
    assert format_value(99_000, "ms") == "99.00 s"
    assert format_value(120.4, "ms") == "120 ms"
    assert format_value(0.0123, "pct") == "1.23%"
    assert format_value(None, "n") == "—"
