"""`loadlab gameday --lambda`: Lambda environments killed mid-turn, sessions judged.

The shipped experiment with its own default scenario (scenarios/lambda_sale.yaml,
sized to the embedded function's 8 environments): the correct agent resumes every
session with under 2 % of turns failed; an agent without checkpoints fails it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadlab.analysis.rundata import load_run

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = REPO / "chaos" / "lambda-env-kill-mid-session.json"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def gameday(tmp_path: Path, mode: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    env = os.environ | {
        # every warm environment is chosen (at 0.5 a run of 8 could draw none), at the
        # experiment's default moment: inside the LLM call, after the checkpoint
        "LOADLAB_KILL_FRACTION": "1.0",
    }
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "gameday", str(EXPERIMENT), "--lambda",
            "--agent-mode", mode, "--replicas", "1", "--stack-time-scale", "0.25",
            "--runs-root", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=500, check=False, env=env,
    )  # fmt: skip
    (run_dir,) = (tmp_path / "runs").iterdir()
    return proc, run_dir


def test_environment_kill_lands_mid_invocation_and_every_session_resumes(
    tmp_path: Path,
) -> None:
    proc, run_dir = gameday(tmp_path, "correct")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    assert "peaks at" not in proc.stderr, "the default scenario fits the function"
    run = load_run(run_dir)
    assert json.loads((run_dir / "journal.json").read_text())["status"] == "completed"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["scenario"]["name"] == "lambda_sale"
    assert manifest["target"]["transport"] == "lambda"
    # killed environments: invocations that died in flight, retried on fresh environments
    assert (run.requests["error_kind"] == "reset").any(), "no invocation was cut mid-turn"
    verdicts = run.sessions["verdict"].value_counts().to_dict()
    assert verdicts.get("resumed", 0) > 0, verdicts
    assert verdicts.get("restarted", 0) == 0 and verdicts.get("duplicated", 0) == 0, verdicts
    failed_share = float((~run.turns["ok"].astype(bool)).mean())
    assert failed_share < 0.02, f"{failed_share:.1%} of turns failed"
    summary = json.loads((run_dir / "summary.json").read_text())
    checkpoints = summary["continuity"]["out_of_band"]
    assert checkpoints is not None and checkpoints["disagree"] == 0
    assert summary["verdict"]["passed"]


def test_an_agent_without_checkpoints_fails_the_lambda_game_day(tmp_path: Path) -> None:
    proc, run_dir = gameday(tmp_path, "no_checkpoint")
    assert proc.returncode == 6, proc.stdout[-4000:] + proc.stderr[-3000:]
    verdict = json.loads((run_dir / "summary.json").read_text())["verdict"]
    missed = {e["source"] for e in verdict["evidence"] if e["status"] == "missed"}
    assert missed & {"sessions", "checkpoint_audit"}, verdict
