"""The shipped pod-kill game day fails an agent that loses state, and passes one that does not.

Each agent mode breaks checkpointing one way (DESIGN.md, "The session protocol
and the continuity oracle"); the game day must exit 6 for each, naming the
evidence, and exit 0 for the correct agent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from junitparser import JUnitXml

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = REPO / "chaos" / "pod-kill-mid-session.json"

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# ci_smoke (20 shoppers, 20x faster) against 2 pods: strike once a few turns of
# sessions with state, one of them with a cart, are in flight.
STRIKE = {
    "LOADLAB_STRIKE_IN_FLIGHT": "3",
    "LOADLAB_STRIKE_AT_STAKE": "3",
    "LOADLAB_STRIKE_WITH_CART": "1",
}


def gameday(tmp_path: Path, mode: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "gameday", str(EXPERIMENT), "--agent-mode", mode,
            "--scenario", "ci_smoke.yaml", "--replicas", "2", "--stack-time-scale", "0.05",
            "--runs-root", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=400, check=False,
        env=os.environ | STRIKE,
    )  # fmt: skip
    (run_dir,) = (tmp_path / "runs").iterdir()
    return proc, run_dir


def failed_cases(run_dir: Path) -> dict[str, str]:
    junit = JUnitXml.fromfile(str(run_dir / "junit.xml"))
    return {
        case.name: str(result.message)
        for suite in junit
        for case in suite
        for result in case.result
        if result._tag == "failure"
    }


def test_the_correct_agent_passes_every_evidence(tmp_path: Path) -> None:
    proc, run_dir = gameday(tmp_path, "correct")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "verdict: PASS" in proc.stdout
    assert failed_cases(run_dir) == {}
    verdict = json.loads((run_dir / "summary.json").read_text())["verdict"]
    assert verdict["passed"] and {e["source"] for e in verdict["evidence"]} >= {
        "run", "experiment", "slo", "sessions", "checkpoint_audit",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "caught_by"),
    [
        ("no_checkpoint", ("max_restarted", "max_audit_disagreements")),
        ("checkpoint_before_side_effect", ("max_restarted", "max_audit_disagreements")),
        ("no_idempotency", ("max_duplicated",)),
    ],
)
def test_an_agent_that_loses_state_fails_the_game_day(
    tmp_path: Path, mode: str, caught_by: tuple[str, ...]
) -> None:
    proc, run_dir = gameday(tmp_path, mode)
    assert proc.returncode == 6, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "verdict: FAIL" in proc.stdout
    failed = failed_cases(run_dir)
    assert any(name in failed for name in caught_by), (mode, failed)
    for name in caught_by:
        if name in failed:
            assert "limit 0" in failed[name], failed[name]
