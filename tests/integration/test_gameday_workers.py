"""`loadlab gameday --workers 2`: the experiment's load from a master and two workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadlab.analysis.rundata import load_run
from loadlab.orphans import running

REPO = Path(__file__).resolve().parents[2]
STORM = REPO / "chaos" / "llm-429-storm.json"

pytestmark = pytest.mark.integration


def test_a_game_day_with_two_workers_writes_one_run_directory(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "gameday", str(STORM), "--workers", "2",
            "--scenario", "ci_smoke.yaml", "--replicas", "2", "--stack-time-scale", "0.05",
            "--runs-root", str(runs), "--state-dir", str(tmp_path / "state"),
            "--var", "strike_when_in_flight:int=3", "--var", "fault_duration_s:float=6",
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=400, check=False,
        env=os.environ,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = runs.iterdir()
    assert json.loads((run_dir / "manifest.json").read_text())["role"] == "master"
    run = load_run(run_dir)
    assert len(set(run.turns["worker"])) == 2
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["locust"]["all_match"], summary["locust"]
    pids = [int(p) for p in (run_dir / "locust-workers.pid").read_text().split()]
    assert len(pids) == 2
    assert not [p for p in pids if running(p)]
