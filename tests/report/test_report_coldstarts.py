"""The "Cold starts" section of report.html, its headline rows and compare rows.

The known run (tests/conftest.py): request i (1..100) starts at i s, lasts i s, on
``pod-{i % 3}``; the first three are cold (init 800 ms). Request i is in flight
over [i, 2i), so the most at once is 50, first at 99 s (requests 50..99). Turn i
takes i s: P99 is 99 s, the tail (99 s, 100 s) is warm, and without the three
fast cold turns P99 moves up to 100 s (nearest rank 97 of 97).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from loadlab.report.compare import compare_runs, text_table
from loadlab.report.render import headline, render_run


def _section(html: str, anchor: str) -> str:
    match = re.search(rf'<h2 id="{anchor}">.*?(?=<h2|</body>)', html, re.S)
    assert match, f"no section {anchor}"
    return match.group(0)


def _rows(section: str) -> dict[str, str]:
    """Table rows as ``{first cell text: second cell text}``."""
    out: dict[str, str] = {}
    for row in re.findall(r"<tr>(.*?)</tr>", section, re.S):
        cells = [re.sub(r"<.*?>", "", c).strip() for c in re.findall(r"<td.*?>(.*?)</td>", row)]
        if len(cells) == 2:
            out[cells[0]] = cells[1]
    return out


def _without_cold_starts(run: Path, copy: Path) -> Path:
    """A copy of ``run`` in which no request or turn was a cold start."""
    shutil.copytree(run, copy)
    for table in ("requests", "turns"):
        frame = pd.read_parquet(copy / f"{table}.parquet")
        frame["cold_start"] = False
        if table == "requests":
            frame["init_ms"] = None
        shutil.rmtree(copy / f"{table}.parquet")
        (copy / f"{table}.parquet").mkdir()
        frame.to_parquet(copy / f"{table}.parquet" / "part-000000.parquet")
    return copy


def test_cold_start_section_plot_and_headline(known_run: Callable[..., Path]) -> None:
    out = render_run(known_run())
    html = out.html_path.read_text()
    section = _section(html, "cold-starts")
    assert 'alt="cold_starts"' in section and "data:image/png;base64," in section
    rows = _rows(section)
    assert rows["cold starts"] == "3"
    assert rows["environments created"] == "3"
    assert rows["peak requests in flight"] == "50 at 99.0 s"
    assert rows["environments per request in flight at the peak"] == "0.06"
    assert rows["init duration P50 / P90 / P99 / max (3)"] == "800 ms / 800 ms / 800 ms / 800 ms"
    assert rows["init figures from"] == "not recorded"
    assert rows["turn P99 without cold turns (drop)"] == "100.00 s (-1000 ms)"
    assert rows["turns at or above P99 that were cold"] == "0 of 2 (0.00%)"
    assert rows["first / last cold start"] == "1.0 s / 3.0 s"
    assert rows["cold starts after the first 60 s"] == "0"

    text = headline(out.summary)
    assert re.search(
        r"environments / peak concurrency +3 / 50 \(0\.06 per request in flight\)", text
    )
    assert re.search(r"last cold start +@3\.0s \(0 after 60 s\)", text)
    assert re.search(r"turn P99 → without cold turns +99\.00 s → 100\.00 s \(0 of 2 ", text)


def test_a_run_without_cold_starts_still_shows_its_environments(
    known_run: Callable[..., Path], tmp_path: Path
) -> None:
    out = render_run(_without_cold_starts(known_run(), tmp_path / "warm"))
    section = _section(out.html_path.read_text(), "cold-starts")
    assert 'alt="cold_starts"' in section
    rows = _rows(section)
    assert rows["cold starts"] == "0"
    assert rows["environments created"] == "3"
    assert rows["first / last cold start"] == "— / —"
    assert rows["turns at or above P99 that were cold"] == "0 of 2 (0.00%)"
    text = headline(out.summary)
    assert "environments / peak concurrency" in text and "last cold start" not in text


def test_a_run_without_instance_information_says_so(fault_run: Callable[..., Path]) -> None:
    out = render_run(fault_run())
    html = out.html_path.read_text()
    section = _section(html, "cold-starts")
    assert "no cold-start information" in section and "<img" not in section
    assert 'alt="cold_starts"' not in html
    assert "environments / peak concurrency" not in headline(out.summary)


def test_compare_shows_environments_concurrency_and_the_cold_share(
    known_run: Callable[..., Path], tmp_path: Path
) -> None:
    run_a = known_run()
    run_b = _without_cold_starts(run_a, tmp_path / "b")
    comparison = compare_runs(run_a, run_b)
    rows = {label: (a, b) for label, a, b, _ in comparison.rows}
    assert rows["environments created"] == (3, 3)
    assert rows["peak concurrency"] == (50, 50)
    assert rows["turn P99 without cold turns"] == (100_000, 99_000)
    assert rows["slow turns (P99+) that were cold"] == (0.0, 0.0)
    assert rows["last cold start"] == (3.0, None)
    line = next(x for x in text_table(comparison).splitlines() if "last cold start" in x)
    assert re.search(r"last cold start +3\.0 s +—$", line)
