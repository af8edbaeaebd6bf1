"""``loadlab report`` on a run whose harness was killed: incomplete, never green (exit 6)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from loadlab.cli import main

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "run"
# the golden run's own failures relaxed, so only the run's end decides
RELAXED = {"error_rate": 0.2, "max_restarted": 1, "max_duplicated": 1, "max_audit_disagreements": 1}


def _golden(tmp_path: Path, *, ended: bool) -> Path:
    run = tmp_path / "golden"
    shutil.copytree(GOLDEN, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.setdefault("scenario", {})["slo"] = RELAXED
    if not ended:  # as a SIGKILLed harness leaves it: no end stamp
        for key in ("ended_at", "end_reason", "stopped_by"):
            manifest.pop(key, None)
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def test_the_relaxed_golden_run_passes_when_it_ended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(_golden(tmp_path, ended=True))]) == 0
    assert "verdict: PASS" in capsys.readouterr().out


def test_the_same_run_without_an_end_is_incomplete_and_exits_6(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _golden(tmp_path, ended=False)
    assert main(["report", str(run)]) == 6
    out = capsys.readouterr()
    verdict_line = out.out.splitlines()[0]
    assert verdict_line.startswith("verdict: FAIL - run: missed: incomplete: the run has no end")
    assert "a run that did not end cannot pass" in verdict_line
    assert "incomplete" in out.err  # the error line names why the command failed
    summary = json.loads((run / "summary.json").read_text())
    assert summary["run"]["state"] == "incomplete"
    assert summary["run"]["stopped_by"] is None
    assert summary["verdict"]["passed"] is False
    assert "INCOMPLETE: the run has no end" in (run / "report.html").read_text()
