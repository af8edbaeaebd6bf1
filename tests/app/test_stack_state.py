"""``stack.json``: one typed reader and writer (StackState)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import psutil
import pytest
from stack_states import state

from loadlab.embedded.state import StackState
from loadlab.errors import StackError


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


def test_a_pid_taken_by_a_later_process_is_not_the_owner(tmp_path: Path) -> None:
    # After a reboot (or pids wrapping around), the owner's pid can name another
    # process: one that started after the stack's state was written is not it.
    path = tmp_path / "stack.json"
    state(started_at=psutil.Process().create_time() - 60.0).write(path)
    assert StackState.read_running(path) is None
    state().write(path)  # written after this process started: it is the owner
    assert StackState.read_running(path) is not None


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
