"""A process that ended but was never reaped (a zombie) counts as ended.

An orphan's zombie stays until PID 1 reaps it; in a container whose PID 1 is no
init, that is never. ``os.kill(pid, 0)`` still answers for it, so every check of
"is the owner still there" goes through :func:`loadlab.orphans.running`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_states import state

from loadlab.chaos.aws_lambda.lease_store import Owner, _process_start
from loadlab.chaos.loadrun.actions import _reap
from loadlab.embedded.state import StackState
from loadlab.orphans import running

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")


def _state_letter(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def zombie() -> Iterator[tuple[int, float]]:
    """A child that has exited and is not reaped yet: its pid and when it started."""
    started_at = time.time()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while _state_letter(proc.pid) != "Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.01)
        yield proc.pid, started_at
    finally:
        proc.wait(timeout=30)


def test_a_zombie_is_not_running_though_signal_zero_reaches_it(zombie: tuple[int, float]) -> None:
    pid, _ = zombie
    os.kill(pid, 0)  # the trap: no ProcessLookupError for a zombie
    assert not running(pid)
    assert running(os.getpid())
    assert not running(2**22 + 12345)  # above pid_max: never a process


def test_a_lease_owner_that_ended_unreaped_is_gone(zombie: tuple[int, float]) -> None:
    pid, _ = zombie
    owner = Owner(host=socket.gethostname(), pid=pid, started=_process_start(pid))
    assert owner.started is not None  # the same process, not a reused pid
    assert owner.gone()
    assert not Owner.this_process().gone()


def test_a_stack_whose_owner_ended_unreaped_is_stale(
    zombie: tuple[int, float], tmp_path: Path
) -> None:
    pid, started_at = zombie
    path = tmp_path / "stack.json"
    state(pid=pid, started_at=started_at + 1.0).write(path)
    assert StackState.read(path) is not None
    assert StackState.read_running(path) is None
    state(pid=os.getpid(), started_at=started_at).write(path)
    assert StackState.read_running(path) is not None


def test_a_load_run_started_elsewhere_reads_as_ended_once_it_is_a_zombie() -> None:
    # The load run's pid belongs to another process's child (chaos run started it):
    # os.waitpid cannot reap it here, so its end is read from /proc.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys, time\n"
            "pid = os.fork()\n"
            "if pid == 0:\n    os._exit(3)\n"
            "print(pid, flush=True)\n"
            "time.sleep(60)  # never reaps its child\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        deadline = time.monotonic() + 30
        while _state_letter(child) != "Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.01)
        assert _reap(child) == 0  # ended (its code is its parent's to read)
    finally:
        parent.kill()
        parent.wait(timeout=30)
        if parent.stdout is not None:
            parent.stdout.close()
