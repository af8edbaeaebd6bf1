"""A run whose every turn is refused stops with a clear error instead of hammering the agent."""

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


def test_wrong_jwt_secret_stops_the_run_with_the_fix_and_keeps_its_data(
    embedded_stack: RunningStack, tmp_path: Path
) -> None:
    env = os.environ | {"LOADLAB_JWT_SECRET": "not-the-agents-secret-" + "x" * 32}
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "run", str(REPO / "scenarios" / "ci_smoke.yaml"),
            "--target", embedded_stack.agent_url, "--run-dir", str(tmp_path / "run"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False, env=env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "refused every turn so far (HTTP 401/403)" in proc.stderr
    assert "LOADLAB_JWT_SECRET" in proc.stderr
    run = load_run(tmp_path / "run")
    assert len(run.turns) >= 20 and not run.turns["ok"].any()
    assert set(run.turns["error_kind"]) == {"auth"}
    assert (tmp_path / "run" / "report.html").exists(), "the report is still written"
    assert "not-the-agents-secret" not in proc.stdout + proc.stderr
