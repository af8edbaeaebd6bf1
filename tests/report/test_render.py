from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from loadlab.report.render import headline, render_run


def test_render_writes_all_three_files_from_the_run_directory(
    known_run: Callable[..., Path],
) -> None:
    run = known_run(slo={"p99_ms": 120_000, "error_rate": 0.5})
    out = render_run(run)
    summary = json.loads(out.summary_path.read_text())
    assert summary["turn_latency_ms"]["all"]["p99"] == 99_000
    html = out.html_path.read_text()
    assert "99.00 s" in html  # the P99 figure
    # The four timeline plots and the cold starts (the run records instance ids).
    assert html.count("data:image/png;base64,") == 5
    assert "delete pod" in html
    assert out.slo_passed
    suite = ET.parse(out.junit_path).getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "0"
    assert out.summary.to_json() | {"slo": summary["slo"]} == summary
    assert "turn latency P50 / P99" in headline(out.summary)


def test_missed_slo_is_a_junit_failure(known_run: Callable[..., Path]) -> None:
    run = known_run(slo={"p99_ms": 1000, "ttft_p99_ms": 1000})
    out = render_run(run)
    assert not out.slo_passed
    suite = ET.parse(out.junit_path).getroot()
    assert suite.get("failures") == "1"
    failure = suite.find("testcase[@name='p99_ms']/failure")
    assert failure is not None and "MISSED" in (failure.get("message") or "")


def test_report_of_an_empty_run_still_renders(tmp_path: Path) -> None:
    run = tmp_path / "empty"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"run_id": "e", "name": "empty"}))
    out = render_run(run)
    assert "no errors" in out.html_path.read_text()
    assert out.summary.totals.turns == 0
