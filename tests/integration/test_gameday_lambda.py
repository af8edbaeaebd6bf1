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
    # Six shoppers: below the embedded function's 8 environments, so no turn is
    # throttled and every environment is busy when the kill order arrives.
    scenario = tmp_path / "lambda_smoke.yaml"
    text = (REPO / "scenarios" / "ci_smoke.yaml").read_text()
    text = text.replace("baseline_users: 5", "baseline_users: 3")
    scenario.write_text(text.replace("peak_users: 20", "peak_users: 6"))
    env = os.environ | {
        "LOADLAB_STRIKE_IN_FLIGHT": "3",
        "LOADLAB_FAULT_DURATION_S": "20",
        # every warm environment is chosen (at 0.5 a run of ~6 could draw none),
        # at the experiment's default moment: inside the LLM call, after the checkpoint
        "LOADLAB_KILL_FRACTION": "1.0",
    }
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "gameday",
            str(REPO / "chaos" / "lambda-env-kill-mid-session.json"), "--lambda",
            "--scenario", str(scenario), "--replicas", "1", "--stack-time-scale", "0.05",
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
