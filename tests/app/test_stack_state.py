"""``stack.json``: one typed reader and writer (StackState)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from loadlab.embedded.state import LocalAWS, StackEndpoints, StackState
from loadlab.errors import StackError


def state(**overrides: object) -> StackState:
    values: dict[str, object] = {
        "pid": os.getpid(),
        "started_at": 1.5,
        "endpoints": StackEndpoints(
            agent_url="http://127.0.0.1:8001",
            aws_endpoint_url="http://127.0.0.1:8002",
            llm_url="http://127.0.0.1:8003",
            fleet_url="http://127.0.0.1:8004",
            region="eu-west-1",
            table="checkpoints",
            lambda_function="agent",
            lambda_url="http://127.0.0.1:8005/fn",
        ),
        "jwt_secret": "jwt-canary",
        "aws": LocalAWS(
            endpoint_url="http://127.0.0.1:8002",
            region="eu-west-1",
            access_key_id="key-canary",
            secret_access_key="secret-canary",
        ),
        "replicas": 3,
        "time_scale": 0.05,
        "agent_mode": "correct",
        "seed": 9,
        "pids": {"ministack": 10, "llm": None},
        "logs": {"llm": "/tmp/llm.log"},
    }
    values |= overrides
    return StackState(**values)  # type: ignore[arg-type]


def test_write_then_read_gives_the_same_state_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    original = state()
    original.write(path)
    assert StackState.read(path) == original
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_secrets_stay_out_of_the_repr() -> None:
    text = repr(state())
    assert "jwt-canary" not in text and "secret-canary" not in text and "key-canary" not in text


def test_no_file_is_no_state_and_a_dead_owner_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    assert StackState.read(path) is None
    state(pid=2**22 + 12345).write(path)  # above pid_max: never a live process
    assert StackState.read(path) is not None
    assert StackState.read_running(path) is None
    state().write(path)
    assert StackState.read_running(path) == state()


@pytest.mark.parametrize("text", ["{", "[]", '{"format": 99}', json.dumps({"format": 1, "pid": 1})])
def test_a_bad_file_raises_a_stack_error_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "stack.json"
    path.write_text(text)
    with pytest.raises(StackError, match=r"stack\.json cannot be read") as caught:
        StackState.read(path)
    assert caught.value.hint is not None and str(path) in caught.value.hint


def test_serves_matches_any_of_the_stacks_origins() -> None:
    current = state()
    assert current.serves("http://127.0.0.1:8001/turn")
    assert current.serves("http://127.0.0.1:8005/fn")
    assert not current.serves("http://127.0.0.1:9999/")
    assert not current.serves("http://[::1")


def test_aws_env_points_boto3_at_the_local_account() -> None:
    env = state().aws.env()
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:8002"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
