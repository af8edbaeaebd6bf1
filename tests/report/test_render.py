from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from loadlab.analysis.rundata import UNREAD_COLUMNS, load_run
from loadlab.analysis.summary import summarize
from loadlab.report.render import headline, render_run
from loadlab.report.slo import evaluate
from loadlab.rows import ROW_TYPES, column_names
from loadlab.scenario.files import slo_from_manifest

GOLDEN_RUN = Path(__file__).parents[1] / "golden" / "run"


def test_render_writes_all_four_files_from_the_run_directory(
    known_run: Callable[..., Path],
) -> None:
    # the known run restarted one session: the default gate of 0 is relaxed to 1
    run = known_run(slo={"p99_ms": 120_000, "error_rate": 0.5, "max_restarted": 1})
    out = render_run(run)
    summary = json.loads(out.summary_path.read_text())
    assert summary["turn_latency_ms"]["all"]["p99"] == 99_000
    html = out.html_path.read_text()
    assert "99.00 s" in html  # the P99 figure
    # The four timeline plots and the cold starts (the run records instance ids).
    assert html.count("data:image/png;base64,") == 5
    assert "delete pod" in html
    assert out.slo_passed and out.verdict.passed
    root = ET.parse(out.junit_path).getroot()
    # 6 evidence sources, 5 gates (3 written, 2 defaults); skipped: no journal, no
    # audit (as evidence and as the default gate)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("11", "0", "3")
    extra = {"slo": summary["slo"], "verdict": summary["verdict"]}
    assert out.summary.to_json() | extra == summary
    assert out.markdown_path.read_text().startswith("# loadlab: known: PASSED")
    assert "turn latency P50 / P99" in headline(out.summary)


def test_missed_slo_is_a_junit_failure(known_run: Callable[..., Path]) -> None:
    run = known_run(slo={"p99_ms": 1000, "ttft_p99_ms": 1000})
    out = render_run(run)
    assert not out.slo_passed and not out.verdict.passed
    suite = ET.parse(out.junit_path).getroot().find("testsuite[@name='loadlab.slo']")
    assert suite is not None
    # p99_ms and the default max_restarted (the known run restarted one session)
    assert suite.get("failures") == "2"
    failure = suite.find("testcase[@name='p99_ms']/failure")
    assert failure is not None
    assert failure.get("message") == "turn latency P99: 99000 ms (limit 1000 ms) MISSED"


def test_report_of_an_empty_run_still_renders(tmp_path: Path) -> None:
    run = tmp_path / "empty"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"run_id": "e", "name": "empty"}))
    out = render_run(run)
    assert "no errors" in out.html_path.read_text()
    assert out.summary.totals.turns == 0


def test_the_columns_the_report_leaves_unread_change_no_figure(
    known_run: Callable[..., Path], tmp_path: Path
) -> None:
    for table, unread in UNREAD_COLUMNS.items():  # a renamed column is not silently read again
        assert set(unread) < set(column_names(ROW_TYPES[table])), table
    slo = {
        "p99_ms": {"max": 120_000, "window_s": 10},
        "ttft_p99_ms": {"max": 5_000, "window_s": 10},
        "error_rate": {"max": 0.5, "window_s": 10},
        "max_restarted": {"max": 1, "window_s": 10},
        "intents": {"search": {"p99_ms": 99_000, "error_rate": 0.01}},
    }
    golden = shutil.copytree(GOLDEN_RUN, tmp_path / "golden")  # faults, pressure, an audit
    for path in (golden, known_run(slo=slo)):
        out = render_run(path)
        whole = load_run(path)  # every column
        summary = summarize(whole)
        assert out.summary.to_json() == summary.to_json()
        written = (whole.manifest.get("scenario") or {}).get("slo")
        gates = evaluate(summary, whole, slo_from_manifest(written, source="manifest.json"))
        assert [g.to_json() for g in out.gates] == [g.to_json() for g in gates]
