"""Whole ``loadlab run`` runs against the misbehaving agent (tests/hostile/hostile_agent.py).

Issue 14: an agent whose every ``done`` carries a number the run cannot hold
(1e20 beyond int64, Infinity, NaN ...) lost rows in the recorder and ended with
exit 0; a stream trickling a comment byte inside the idle timeout was never cut
and its sessions were judged ``clean`` with no turn done. Now every turn is
recorded with its right error kind, live.json and turns.parquet agree, no
session is clean, and the verdict fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hostile_agent import HostileAgent

pytestmark = pytest.mark.integration

SCENARIO = """\
name: hostile
seed: 5
time_scale: 0.05
target:
  protocol: reference
  timeout_s: {timeout_s}
  turn_deadline_s: {deadline_s}
shape:
  kind: soak
  users: 4
  ramp_s: 0
  duration_s: {duration_s}
session:
  turns: {{min: 2, max: 3}}
  think_time: {{distribution: uniform, min_s: 1, max_s: 2}}
retry:
  max_attempts: 2
  backoff_s: 1
  backoff_max_s: 1
"""


def _run(tmp_path: Path, agent: HostileAgent, **settings: float) -> tuple[int, str, Path]:
    scenario = tmp_path / "hostile.yaml"
    scenario.write_text(textwrap.dedent(SCENARIO.format(**settings)))
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "loadlab", "run", str(scenario), "--target", agent.url,
         "--run-dir", str(run_dir)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env=os.environ | {"LOADLAB_JWT_SECRET": "hostile-secret-0123456789abcdef0123"},
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr, run_dir


def test_unrecordable_numbers_lose_no_row_and_fail_the_run(tmp_path: Path) -> None:
    with HostileAgent(mode="overflow") as agent:
        code, output, run_dir = _run(tmp_path, agent, timeout_s=5, deadline_s=10, duration_s=100)
    assert agent.served >= 8, output[-3000:]
    live = json.loads((run_dir / "live.json").read_text())
    turns = pq.read_table(run_dir / "turns.parquet").to_pandas()
    requests = pq.read_table(run_dir / "requests.parquet").to_pandas()
    sessions = pq.read_table(run_dir / "sessions.parquet").to_pandas()
    assert live["turns_done"] == len(turns) > 0, output[-3000:]
    assert set(requests["error_kind"]) == {"malformed"}
    assert not turns["ok"].any()
    assert "clean" not in set(sessions["verdict"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["totals"]["turns"] == len(turns)
    assert code == 6, output[-3000:]


def test_a_trickling_agent_is_cut_at_the_deadline_and_no_session_is_clean(tmp_path: Path) -> None:
    with HostileAgent(mode="trickle", trickle_s=0.3) as agent:
        code, output, run_dir = _run(tmp_path, agent, timeout_s=1, deadline_s=1.5, duration_s=100)
    requests = pq.read_table(run_dir / "requests.parquet").to_pandas()
    sessions = pq.read_table(run_dir / "sessions.parquet").to_pandas()
    assert len(requests) > 0, output[-3000:]
    assert set(requests["error_kind"]) == {"deadline"}
    assert (requests["latency_ms"] < 3000).all()
    assert len(sessions) > 0 and "clean" not in set(sessions["verdict"])
    assert code == 6, output[-3000:]
