"""Under ``--master``/``--worker`` the master's loadlab tab shows what the worker played."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from stack_thread import StackThread  # tests/stack_thread.py

from loadlab.analysis.rundata import load_run
from loadlab.embedded.stack import EmbeddedStack
from loadlab.rows import VERDICTS

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadlab" / "app" / "locustfile.py"
SCENARIO = REPO / "scenarios" / "ci_smoke.yaml"
FORWARD_LAG_S = 1.0  # a worker sends its rows every 0.5 s

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        data: dict[str, Any] = json.loads(answer.read())
        return data


def _post(url: str, data: bytes = b"") -> None:
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10):
        pass


def _tab(stats: dict[str, Any]) -> dict[tuple[str, str], str]:
    [entry] = stats["extended_stats"]
    return {(r["section"], r["figure"]): r["value"] for r in entry["data"]}


def test_the_masters_tab_merges_what_the_worker_forwards(tmp_path: Path) -> None:
    web, master_port = _free_port(), _free_port()
    base = f"http://127.0.0.1:{web}"
    run_dir = tmp_path / "run"
    stack = EmbeddedStack(replicas=2, time_scale=0.05, state_dir=tmp_path / "state")
    with StackThread(stack) as running:
        env = os.environ | {"LOADLAB_JWT_SECRET": running.state.jwt_secret}
        common = ["-f", str(LOCUSTFILE), "--scenario", str(SCENARIO), "--time-scale", "0.1"]
        master = subprocess.Popen(
            [
                sys.executable, "-m", "locust", *common, "--master",
                "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port),
                "--web-host", "127.0.0.1", "--web-port", str(web),
                "--host", running.state.endpoints.agent_url, "--run-dir", str(run_dir),
                "--loglevel", "WARNING",
            ],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "locust", *common, "--worker",
                "--master-host", "127.0.0.1", "--master-port", str(master_port),
                "--loglevel", "WARNING",
            ],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:  # the web UI is up and the worker has connected
                try:
                    if _get(base + "/stats/requests").get("worker_count") == 1:
                        break
                except OSError:
                    pass
                assert master.poll() is None and time.monotonic() < deadline
                time.sleep(0.3)
            _post(base + "/swarm", b"user_count=1&spawn_rate=1")  # the shape decides
            while True:
                tab = _tab(_get(base + "/stats/requests"))
                if int(tab[("sessions", "clean")]) >= 3:
                    break
                assert master.poll() is None and time.monotonic() < deadline + 60
                time.sleep(0.5)
            _post(base + "/stop")
            out, _ = master.communicate(timeout=60)
            worker.wait(timeout=30)
        finally:
            for proc in (master, worker):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    assert master.returncode in (0, 1), out[-3000:]
    # the master played no user: all of this came from the worker, forwarded
    assert int(tab[("environments", "alive (answered in the last 30 s)")]) >= 1
    assert int(tab[("environments", "cold starts")]) >= 1
    assert not tab[("turns", "P99 (last 30 s, successful turns)")].startswith("no turns")
    run = load_run(run_dir)
    assert set(run.sessions["worker"]) != {"local"}
    as_of = float(tab[("run", "as of (epoch s)")])
    for verdict in VERDICTS:
        is_verdict = run.sessions["verdict"] == verdict
        surely = int((is_verdict & (run.sessions["t_end"] <= as_of - FORWARD_LAG_S)).sum())
        at_most = int((is_verdict & (run.sessions["t_end"] <= as_of)).sum())
        assert surely <= int(tab[("sessions", verdict)]) <= at_most, (verdict, tab)
