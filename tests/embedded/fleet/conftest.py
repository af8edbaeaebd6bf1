"""Fixtures for the fleet tests: a stand-in replica that keeps the agent's contract."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from loadlab.orphans import running

# Behaves like the reference agent as far as the fleet can tell: initialises,
# binds the shared port with SO_REUSEPORT only then, prints one READY line, and
# answers each TCP connection with its instance id. Modes: "serve" (exit 0 on
# SIGTERM), "ignore-term" (logs SIGTERM and keeps serving), "crash" (exit 3 at once).
_REPLICA = textwrap.dedent(
    """
    import os, signal, socket, sys

    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    instance = os.environ.get("LOADLAB_AGENT_INSTANCE_ID") or os.environ["LOADLAB_POD_NAME"]
    if mode == "crash":
        print("crashing on purpose", file=sys.stderr, flush=True)
        sys.exit(3)

    def on_term(signum, frame):
        if mode == "ignore-term":
            print("SIGTERM received and ignored", file=sys.stderr, flush=True)
            return
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(64)
    print(
        f"READY pid={os.getpid()} instance={instance} init_ms=1.5 url=http://{host}:{port}",
        flush=True,
    )
    while True:
        try:
            conn, _ = sock.accept()
        except InterruptedError:
            continue
        with conn:
            conn.sendall(instance.encode() + b"\\n")
    """
)


@pytest.fixture
def replica_argv(tmp_path: Path) -> Callable[[str], list[str]]:
    """Return ``mode -> argv`` for the stand-in replica (with fleet placeholders)."""
    script = tmp_path / "replica.py"
    script.write_text(_REPLICA, encoding="utf-8")

    def argv(mode: str = "serve") -> list[str]:
        return [sys.executable, str(script), "{host}", "{port}", mode]

    return argv


def _children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


@pytest.fixture
def process_alive() -> Callable[[int], bool]:
    """``pid -> bool``: the process exists and is not a zombie."""
    return running


@pytest.fixture
def children_of() -> Callable[[int], list[int]]:
    """``pid -> [pid]``: that process's live children."""
    return _children_of
