"""`loadlab gameday --lambda`: Lambda environments killed mid-turn, sessions judged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadlab.analysis.rundata import load_run

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_environment_kill_lands_mid_invocation_and_every_session_gets_a_verdict(
    tmp_path: Path,
) -> None:
    env = os.environ | {"LOADLAB_STRIKE_IN_FLIGHT": "3", "LOADLAB_FAULT_DURATION_S": "10"}
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "gameday",
            str(REPO / "chaos" / "lambda-env-kill-mid-session.json"), "--lambda",
            "--scenario", "ci_smoke.yaml", "--replicas", "1", "--stack-time-scale", "0.05",
            "--runs-root", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=400, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    run = load_run(run_dir)
    assert json.loads((run_dir / "journal.json").read_text())["status"] == "completed"
    assert run.manifest["scenario"]["target"]["protocol"] == "lambda"
    # killed environments: invocations that died in flight, retried on fresh environments
    assert (run.requests["error_kind"] == "reset").any(), "no invocation was cut mid-turn"
    verdicts = run.sessions["verdict"].value_counts().to_dict()
    assert verdicts.get("resumed", 0) > 0, verdicts
    assert verdicts.get("restarted", 0) == 0 and verdicts.get("duplicated", 0) == 0, verdicts
    checkpoints = json.loads((run_dir / "summary.json").read_text())["continuity"]["out_of_band"]
    assert checkpoints is not None and checkpoints["disagree"] == 0
