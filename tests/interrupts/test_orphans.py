"""A Locust started by a Chaos Toolkit activity dies with the process that started it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from loadlab.orphans import running

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "ci_smoke.yaml"

pytestmark = pytest.mark.integration

# What `chaos run` does with the experiment's start_load action, then killed half-way.
_CHAOS_LIKE = """
import sys, time
from loadlab.chaos.loadrun.actions import start_load
started = start_load(sys.argv[1], run_dir=sys.argv[2], target_url=sys.argv[3])
print(started["pid"], flush=True)
time.sleep(600)
"""


def _refused_url() -> str:
    """A loopback URL nobody listens on: the load runs, every turn a connect error."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_sigkill_of_the_experiment_process_takes_its_locust_with_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    parent = subprocess.Popen(
        [sys.executable, "-c", _CHAOS_LIKE, str(SCENARIO), str(run_dir), _refused_url()],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"LOADLAB_JWT_SECRET": "orphan-test-secret"},
        start_new_session=True,
    )
    locust: psutil.Process | None = None
    try:
        assert parent.stdout is not None
        locust = psutil.Process(int(parent.stdout.readline()))
        deadline = time.monotonic() + 60
        while not (run_dir / "live.json").exists():  # Locust is up and recording
            assert time.monotonic() < deadline, "Locust never started recording"
            assert locust.is_running()
            time.sleep(0.2)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        psutil.wait_procs([locust], timeout=2.0)
        # dead, though maybe a zombie where PID 1 does not reap (a container without init)
        assert not running(locust.pid), f"Locust {locust.pid} outlived the process that started it"
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        if locust is not None and locust.is_running():  # the orphan this test exists to catch
            locust.kill()
