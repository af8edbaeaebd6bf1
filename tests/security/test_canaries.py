"""Canary secrets: a real run against an agent that echoes credentials leaks none of them.

The agent (``echo_agent.py``) answers every turn with an error quoting the
session's bearer JWT, the configured JWT secret and API key, an ``sk-`` key, an
AWS access key id and a URL with a password. Every file of the run directory
(parquet cells read back, and raw bytes), and loadlab's stdout and stderr, must
hold none of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from echo_agent import EchoingAgent  # tests/security/echo_agent.py

REPO = Path(__file__).resolve().parents[2]
# the header of every HS256 JWT loadlab mints ({"alg":"HS256","typ":"JWT"})
JWT_HEADER = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

SCENARIO = """\
name: canaries
seed: 3
time_scale: 0.05
target:
  protocol: reference
  timeout_s: 5
shape:
  kind: flash_sale
  baseline_users: 2
  peak_users: 6
  ramp_s: 40
  hold_s: 100
  decay_s: 20
  max_spawn_rate: 20
session:
  turns: {min: 2, max: 3}
  think_time: {distribution: uniform, min_s: 1, max_s: 2}
retry:
  max_attempts: 2
  backoff_s: 1
  backoff_max_s: 1
"""


def _leaks(text: str, canaries: list[str]) -> list[str]:
    return [c for c in canaries if c in text]


@pytest.mark.integration
def test_no_canary_reaches_the_run_directory_or_the_terminal(tmp_path: Path) -> None:
    jwt_secret = "canary-jwt-secret-" + secrets.token_hex(12)
    api_key = "canary-api-key-" + secrets.token_hex(12)
    sk_key = "sk-canary" + secrets.token_hex(16)
    aws_id = "AKIA" + secrets.token_hex(8).upper()
    password = "canarypw" + secrets.token_hex(4)
    echoed = [
        f"the signing secret is {jwt_secret}",
        f"your key {api_key} is revoked",
        f"try {sk_key}",
        f"as {aws_id}",
        f"from http://shop:{password}@127.0.0.1:9/",
    ]
    canaries = [jwt_secret, api_key, sk_key, aws_id, password, JWT_HEADER]
    scenario = tmp_path / "canaries.yaml"
    scenario.write_text(textwrap.dedent(SCENARIO))
    run_dir = tmp_path / "run"
    env = os.environ | {"LOADLAB_JWT_SECRET": jwt_secret, "LOADLAB_OPENAI_API_KEY": api_key}
    with EchoingAgent(canaries=echoed) as agent:
        proc = subprocess.run(
            [sys.executable, "-m", "loadlab", "run", str(scenario), "--target", agent.url,
             "--run-dir", str(run_dir)],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False, env=env,
        )  # fmt: skip
        served = agent.served
    output = proc.stdout + proc.stderr
    assert served >= 10, output[-3000:]
    assert (run_dir / "summary.json").exists() and (run_dir / "report.html").exists(), output

    # the echoes did reach the record, redacted
    errors = pq.read_table(run_dir / "requests.parquet").column("error").to_pylist()
    assert any(e and "[REDACTED]" in e for e in errors), errors[:5]

    assert _leaks(output, canaries) == []
    checked = 0
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        found = [c for c in canaries if c.encode() in raw]
        assert found == [], f"{path.relative_to(run_dir)} holds {found}"
        if path.suffix == ".parquet":
            cells = " ".join(map(str, pq.read_table(path).to_pylist()))
            assert _leaks(cells, canaries) == [], f"{path.relative_to(run_dir)} (cells)"
        checked += 1
    assert checked >= 8


def _run_capturing_the_stack(
    argv: list[str], *, cwd: Path, state_dir: Path, env: dict[str, str] | None = None
) -> tuple[dict[str, str], str, str, str]:
    """Run ``python -m loadlab ARGV``; read stack.json and the kubeconfig while it runs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadlab", *argv],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ | {"LOADLAB_STATE_DIR": str(state_dir)} | (env or {}),
    )  # fmt: skip
    stack: dict[str, str] = {}
    kubeconfig = ""
    try:
        deadline = time.monotonic() + 120
        while not stack and time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(FileNotFoundError, ValueError):
                kubeconfig = (state_dir / "kubeconfig").read_text()
                stack = json.loads((state_dir / "stack.json").read_text())
            time.sleep(0.2)
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert stack, out[-2000:] + err[-2000:]
    return stack, kubeconfig, out, err


def _assert_no_stack_credential(
    stack: dict[str, str], kubeconfig: str, output: str, run_dir: Path, state_dir: Path
) -> None:
    token, secret = stack["admin_token"], stack["jwt_secret"]
    assert token in kubeconfig
    assert _leaks(output, [token, secret]) == []
    files = sorted(p for p in run_dir.rglob("*") if p.is_file())
    assert len(files) >= 8
    for path in files:
        raw = path.read_bytes()
        assert token.encode() not in raw and secret.encode() not in raw, path
    assert not (state_dir / "kubeconfig").exists() and not (state_dir / "stack.json").exists()


@pytest.mark.integration
def test_the_stack_token_and_secret_never_reach_the_run_directory_or_the_terminal(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "short.yaml"
    scenario.write_text(textwrap.dedent(SCENARIO))
    state_dir, run_dir = tmp_path / "state", tmp_path / "run"
    stack, kubeconfig, out, err = _run_capturing_the_stack(
        ["run", str(scenario), "--embedded", "--replicas", "1", "--stack-time-scale", "0.05",
         "--state-dir", str(state_dir), "--run-dir", str(run_dir)],
        cwd=tmp_path, state_dir=state_dir,
    )  # fmt: skip
    assert (run_dir / "summary.json").exists(), out[-2000:] + err[-2000:]
    _assert_no_stack_credential(stack, kubeconfig, out + err, run_dir, state_dir)


@pytest.mark.integration
def test_a_game_day_with_an_llm_fault_keeps_the_stack_token_out_of_its_run_directory(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "state"
    stack, kubeconfig, out, err = _run_capturing_the_stack(
        ["gameday", str(REPO / "chaos" / "llm-429-storm.json"), "--scenario", "ci_smoke.yaml",
         "--replicas", "2", "--stack-time-scale", "0.05", "--runs-root", str(tmp_path / "runs"),
         "--state-dir", str(state_dir)],
        cwd=tmp_path, state_dir=state_dir,
        env={"LOADLAB_STRIKE_IN_FLIGHT": "3", "LOADLAB_FAULT_DURATION_S": "5"},
    )  # fmt: skip
    (run_dir,) = (tmp_path / "runs").iterdir()
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["status"] == "completed", out[-2000:] + err[-2000:]
    storm = [r for r in journal["run"] if r["activity"]["name"] == "llm-429-storm"]
    assert [r["status"] for r in storm] == ["succeeded"], "the fault went in with the token"
    assert (run_dir / "chaostoolkit.log").exists()
    _assert_no_stack_credential(stack, kubeconfig, out + err, run_dir, state_dir)
