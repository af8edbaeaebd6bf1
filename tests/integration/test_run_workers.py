"""`loadlab run --workers 2`: a master and two workers on this machine, one run directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadlab.analysis.rundata import load_run

pytestmark = pytest.mark.integration


def test_two_workers_one_run_directory_counts_agree_with_the_master(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "run", "ci_smoke", "--embedded", "--workers", "2",
            "--users", "8", "--time-scale", "0.1", "--replicas", "2",
            "--stack-time-scale", "0.05", "--run-dir", str(run_dir),
            "--state-dir", str(tmp_path / "state"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode in (0, 6), proc.stdout[-3000:] + proc.stderr[-3000:]
    verdict = json.loads((run_dir / "summary.json").read_text())["verdict"]
    assert proc.returncode == (0 if verdict["passed"] else 6), verdict["reasons"]
    assert "master and 2 workers" in proc.stdout
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["role"] == "master"
    run = load_run(run_dir)
    workers = set(run.turns["worker"]) | set(run.sessions["worker"])
    assert len(workers) == 2, workers
    assert len(run.sessions) >= 8
    # Locust's master statistics (both workers merged) agree with loadlab's rows.
    summary = json.loads((run_dir / "summary.json").read_text())
    agreement = summary["locust"]
    assert agreement is not None and agreement["all_match"], agreement
    assert sum(row["locust_count"] for row in agreement["by_name"]) == sum(
        row["loadlab_count"] for row in agreement["by_name"]
    )
    assert sum(row["loadlab_count"] for row in agreement["by_name"]) > 0
    assert "agree" in proc.stdout


def test_workers_and_web_host_are_checked_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loadlab.cli import main

    runs = tmp_path / "runs"
    assert main(["run", "ci_smoke", "--embedded", "--workers", "-1", "--runs-root", str(runs)]) == 2
    assert main(["run", "ci_smoke", "--web-host", "localhost", "--runs-root", str(runs)]) == 2
    err = capsys.readouterr().err
    assert "--web-host 'localhost' is not an IP address" in err
    assert not runs.exists()
