"""A real ministack (and gates in front of it) on a background event loop.

ministack dies with the thread that started it (PDEATHSIG), so it is started on
a thread that lives as long as the fixture. Tests call boto3 (blocking) from the
main thread while the gate serves on that loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gate_support import ADMIN_TOKEN, TIMEOUT, LoopThread

from loadlab.embedded.ddb_gate import DynamoDBGate
from loadlab.embedded.ministack import Ministack


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture(scope="module")
def ministack_url(
    loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    ministack = Ministack(
        state_dir=Path(tmp_path_factory.mktemp("ministack")), start_timeout_s=TIMEOUT
    )
    url = loop_thread.run(ministack.start())
    yield url
    loop_thread.run(ministack.stop(grace_s=2.0))


@pytest.fixture
def start_gate(
    loop_thread: LoopThread, ministack_url: str
) -> Iterator[Callable[..., DynamoDBGate]]:
    """Start a gate in front of the module's ministack (stopped after the test)."""
    gates: list[DynamoDBGate] = []

    def start(**options: Any) -> DynamoDBGate:
        gate = DynamoDBGate(upstream_url=ministack_url, **{"admin_token": ADMIN_TOKEN, **options})
        loop_thread.run(gate.start())
        gates.append(gate)
        return gate

    yield start
    for gate in gates:
        loop_thread.run(gate.stop())
