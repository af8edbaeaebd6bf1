"""`loadlab gameday`: a Chaos Toolkit experiment against the embedded stack, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadlab.analysis.rundata import load_run

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = REPO / "chaos" / "pod-kill-mid-session.json"

pytestmark = pytest.mark.integration


def gameday(
    tmp_path: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "loadlab", "gameday", *extra,
            "--scenario", "ci_smoke.yaml", "--replicas", "2", "--stack-time-scale", "0.05",
            "--runs-root", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        env=os.environ | (env or {}),
    )  # fmt: skip


def test_pod_kill_experiment_lands_mid_turn_and_sessions_resume(tmp_path: Path) -> None:
    proc = gameday(tmp_path, str(EXPERIMENT), env={"LOADLAB_STRIKE_IN_FLIGHT": "3"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["status"] == "completed" and not journal["deviated"]
    run = load_run(run_dir)
    faults = run.events[run.events["kind"] == "fault"]
    assert list(faults["attrs"].map(lambda a: a["phase"])) == ["start", "end"]
    killed = faults.iloc[-1]["target"]
    assert killed.startswith("shopping-agent-"), killed
    t_kill = float(faults.iloc[0]["t"])
    in_flight = run.turns[(run.turns["t_start"] <= t_kill) & (run.turns["t_end"] >= t_kill)]
    assert len(in_flight) >= 1, "the kill must land while turns are in flight"
    verdicts = run.sessions["verdict"].value_counts().to_dict()
    assert verdicts.get("restarted", 0) == 0 and verdicts.get("duplicated", 0) == 0, verdicts
    assert "experiment:    completed, hypothesis met" in proc.stdout
    assert (run_dir / "report.html").exists() and (run_dir / "chaostoolkit.log").exists()


def test_a_selector_that_matches_no_pod_fails_clearly_and_keeps_the_journal(
    tmp_path: Path,
) -> None:
    proc = gameday(tmp_path, str(EXPERIMENT), env={"LOADLAB_POD_SELECTOR": "app=nothing-here"})
    assert proc.returncode != 0
    assert "no pods 'app=nothing-here' were found" in proc.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "journal.json").read_text())["status"] == "failed"


def test_malformed_experiment_is_refused_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"title": "x", "description": "y", "method": [,]}')
    proc = gameday(tmp_path, str(bad))
    assert proc.returncode == 2
    assert "is not valid JSON: line 1" in proc.stderr
    assert not (tmp_path / "state").exists(), "no stack may start for a bad experiment"
