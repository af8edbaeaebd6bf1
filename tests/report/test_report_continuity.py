from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loadlab.report.render import headline, render_run

T0 = 1_700_000_000.0


def _section(html: str, anchor: str) -> str:
    """The HTML from the heading with ``id=anchor`` to the next h2."""
    match = re.search(rf'<h2 id="{anchor}">.*?(?=<h2|</body>)', html, re.S)
    assert match, f"no section {anchor}"
    return match.group(0)


def _write_audit(path: Path) -> None:
    pq.write_table(
        pa.table(
            {
                "session_id": ["s-A", "s-B", "s-C"],
                "found": [True, True, True],
                "oob_verdict": ["restarted", "failed", "clean"],
                "reason": ["cart lost", "", ""],
            }
        ),
        path / "checkpoints.parquet",
    )


def test_fault_impact_and_continuity_tables(fault_run: Callable[..., Path]) -> None:
    path = fault_run()
    _write_audit(path)
    out = render_run(path)
    html = out.html_path.read_text()

    impact = _section(html, "fault-impact")
    rows = impact.split("<tr>")[2:]
    assert len(rows) == 2
    f1, f2 = rows
    assert "terminate pods" in f1 and "pod-1" in f1 and "succeeded" in f1
    assert "4 → clean 1, resumed 1, restarted 1, failed 1" in f1
    assert "3 → 2 / 1 / " in f1
    assert "190 ms → 5000 ms" in f1
    assert "1.64% → 4.55%" in f1  # failed turns 1/61 -> 3/66
    assert "after 15 s" in f1
    assert "throttle function" in f2 and "no end" in f2 and "after 10 s" in f2

    continuity = _section(html, "continuity")
    assert "<tr><td>all</td><td>8</td><td>3</td><td>1</td><td>1</td><td>1</td><td>2</td></tr>" in (
        continuity
    )
    cells = "".join(f"<td>{n}</td>" for n in (5, 1, 1, 1, 0, 2))
    assert f"<tr><td>touched by a fault</td>{cells}</tr>" in continuity
    cells = "".join(f"<td>{n}</td>" for n in (3, 2, 0, 0, 1, 0))
    assert f"<tr><td>not touched</td>{cells}</tr>" in continuity
    assert "P50 <b>4000 ms</b> · P99 <b>4000 ms</b>" in continuity
    assert "Out-of-band check" in continuity
    assert '<td class="bad">2 of 3</td>' in continuity
    assert '<tr><td>s-A</td><td>resumed</td><td class="bad">restarted</td>' in continuity
    assert 'id="experiment"' not in html

    text = headline(out.summary)
    assert "fault @100s terminate pods" in text
    assert "P99 190 ms → 5000 ms, recovered after 15 s" in text
    touched = "clean=1 resumed=1 restarted=1 duplicated=0 failed=2"
    assert re.search(rf"sessions touched by faults +{touched}\n", text)
    assert re.search(r"out-of-band agreement +2 / 3 \(1 differ\)", text)


def test_latency_that_never_recovers_is_flagged(fault_run: Callable[..., Path]) -> None:
    out = render_run(fault_run(recover_at=None))
    f1, f2 = _section(out.html_path.read_text(), "fault-impact").split("<tr>")[2:]
    assert '<td class="bad">not recovered</td>' in f1
    # f2's baseline already holds turn C (2.2 s): the lasting 400 ms is within it
    assert '<td class="good">after 10 s</td>' in f2
    lines = headline(out.summary).splitlines()
    (kill,) = [line for line in lines if "fault @100s" in line]
    assert kill.endswith("P99 190 ms → 5000 ms, not recovered")


def test_a_run_without_faults_journal_or_audit_has_no_such_sections(tmp_path: Path) -> None:
    run = tmp_path / "plain"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"run_id": "p", "name": "plain"}))
    out = render_run(run)
    html = out.html_path.read_text()
    assert 'id="fault-impact"' not in html
    assert 'id="experiment"' not in html
    assert "Out-of-band" not in html
    assert "touched by a fault" not in html
    assert 'id="continuity"' in html
    text = headline(out.summary)
    assert "fault @" not in text and "experiment" not in text


def test_names_from_events_and_journals_are_escaped(fault_run: Callable[..., Path]) -> None:
    path = fault_run()
    evil = {
        "t": T0 + 150,
        "kind": "fault",
        "name": "<script>alert(1)</script>",
        "target": '<img src=x onerror="boom">',
        "attrs": {"fault_id": "evil", "phase": "start"},
    }
    with (path / "events.jsonl").open("a") as fh:
        fh.write(json.dumps(evil) + "\n")
    probe = {"type": "probe", "name": "<b>probe</b>", "tolerance": "<i>t</i>"}
    journal = {
        "status": "completed",
        "deviated": True,
        "experiment": {"title": "<svg onload=x>"},
        "steady_states": {
            "before": {"steady_state_met": True, "probes": []},
            "after": {
                "steady_state_met": False,
                "probes": [{"activity": probe, "output": "</td><script>", "status": "succeeded",
                            "tolerance_met": False}],
            },
            "during": [],
        },
        "run": [],
        "rollbacks": [],
    }  # fmt: skip
    (path / "journal.json").write_text(json.dumps(journal))
    html = render_run(path).html_path.read_text()
    for raw in ("<script>", "<img src=x", "<svg onload", "<b>probe</b>", "<i>t</i>"):
        assert raw not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;probe&lt;/b&gt;" in html


@pytest.mark.integration  # the journal comes from a real `chaos run`
def test_the_experiment_outcome_section(
    fault_run: Callable[..., Path], chaos_journals: dict[str, Path]
) -> None:
    path = fault_run()
    shutil.copy(chaos_journals["deviated"], path / "journal.json")
    out = render_run(path)
    section = _section(out.html_path.read_text(), "experiment")
    assert "the marker survives" in section
    assert '<span class="bad">deviated</span>' in section
    assert '<span class="bad">not met</span>' in section
    assert "deviated probe <b>marker-exists</b>" in section
    assert re.search(r"<td>after</td><td>marker-exists</td><td>true</td><td>false</td>", section)
    assert re.search(
        r"method action</td><td>remove-missing</td>\s*<td class=\"bad\">failed", section
    )
    assert "no-such-dir" in section
    assert "rollback action</td><td>restore-marker" in section
    text = headline(out.summary)
    assert "experiment" in text and "deviated (probe 'marker-exists' out of tolerance)" in text

    shutil.copy(chaos_journals["met"], path / "journal.json")
    met = render_run(path)
    section = _section(met.html_path.read_text(), "experiment")
    assert '<span class="good">met</span>' in section and "deviated probe" not in section
    assert "completed (steady state met)" in headline(met.summary)
