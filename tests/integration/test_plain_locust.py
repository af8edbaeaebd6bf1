"""Plain ``locust -f scenarios/shopping_assistant.py`` against the stack of ``loadlab up``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RunningStack  # tests/integration/conftest.py

from loadlab.analysis.rundata import load_run

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_plain_locust_finds_the_running_stacks_secret_and_a_small_default_scenario(
    embedded_stack: RunningStack, tmp_path: Path
) -> None:
    # No LOADLAB_JWT_SECRET and no --scenario: what a user of plain Locust types.
    env = {k: v for k, v in os.environ.items() if k != "LOADLAB_JWT_SECRET"}
    env["LOADLAB_STATE_DIR"] = str(embedded_stack.state_dir)
    proc = subprocess.run(
        [
            sys.executable, "-m", "locust", "-f", str(REPO / "scenarios" / "shopping_assistant.py"),
            "--host", embedded_stack.agent_url, "--headless", "-t", "30s", "-u", "50",
            "--run-dir", str(tmp_path / "run"), "--time-scale", "0.02",
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False, env=env,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), output[-3000:]
    assert "signing turns with the secret of the running embedded stack" in output
    assert "no --scenario given: running" in output and "ci_smoke.yaml" in output
    assert "-u/-t ignored" in output and "--peak-users" in output
    run = load_run(tmp_path / "run")
    assert len(run.turns) > 20
    assert not (run.turns["error_kind"] == "auth").any(), "a turn was refused (401/403)"
    assert embedded_stack.jwt_secret not in output
