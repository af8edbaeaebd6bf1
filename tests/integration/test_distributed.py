"""Locust's distributed mode: a worker's rows reach the master's run directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RunningStack  # tests/integration/conftest.py

from loadlab.analysis.rundata import load_run

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadlab" / "app" / "locustfile.py"
SCENARIO = REPO / "scenarios" / "ci_smoke.yaml"

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_worker_rows_reach_the_masters_run_directory(
    embedded_stack: RunningStack, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    port = free_port()
    env = os.environ | {"LOADLAB_JWT_SECRET": embedded_stack.jwt_secret}
    common = ["-f", str(LOCUSTFILE), "--scenario", str(SCENARIO), "--time-scale", "0.02"]
    master = subprocess.Popen(
        [
            sys.executable, "-m", "locust", *common, "--master", "--headless",
            "--expect-workers", "1", "--master-bind-host", "127.0.0.1",
            "--master-bind-port", str(port), "--host", embedded_stack.agent_url,
            "--run-dir", str(run_dir), "--loglevel", "WARNING",
        ],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "locust", *common, "--worker", "--master-host", "127.0.0.1",
            "--master-port", str(port), "--loglevel", "WARNING",
        ],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        master_out, _ = master.communicate(timeout=180)
        worker.communicate(timeout=60)
    finally:
        for proc in (master, worker):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert master.returncode in (0, 1), master_out[-3000:]
    run = load_run(run_dir)
    assert json.loads((run_dir / "manifest.json").read_text())["role"] == "master"
    assert len(run.requests) > 20 and len(run.turns) > 20 and len(run.sessions) > 0
    workers = set(run.requests["worker"]) | set(run.turns["worker"])
    assert len(workers) == 1 and next(iter(workers)).startswith("w"), workers
    assert (run.sessions["verdict"] == "clean").all(), run.sessions["verdict"].value_counts()
    # The master's users samples come from the aggregated runner state.
    users = run.events[run.events["kind"] == "users"]
    assert users["attrs"].map(lambda a: a["users"]).max() > 0
