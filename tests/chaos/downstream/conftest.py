"""Real servers for the downstream activities: the LLM simulator, ministack and a gate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from downstream_support import Gate, LoopThread, ManualClock

from loadlab.embedded.ddb_gate import DynamoDBGate
from loadlab.embedded.llm.config import LatencyModel, SimulatorConfig
from loadlab.embedded.llm.server import create_app
from loadlab.embedded.ministack import Ministack

ADMIN_TOKEN = "downstream-test-admin-token"


@pytest.fixture(autouse=True)
def admin_token(monkeypatch: pytest.MonkeyPatch) -> str:
    """The stack's token, where the harness passes it to the activities."""
    monkeypatch.setenv("LOADLAB_ADMIN_TOKEN", ADMIN_TOKEN)
    return ADMIN_TOKEN


FAST_LLM = SimulatorConfig(
    latency=LatencyModel(min_output_tokens=3, max_output_tokens=5), time_scale=0.01, seed=5
)


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@pytest.fixture
def llm_url(loop_thread: LoopThread) -> Iterator[str]:
    """A fresh LLM simulator (no fault) on 127.0.0.1."""
    url, runner = loop_thread.serve(create_app(FAST_LLM, admin_token=ADMIN_TOKEN))
    yield url
    loop_thread.run(runner.cleanup())


@pytest.fixture(scope="module")
def ministack_url(
    loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    ministack = Ministack(state_dir=Path(tmp_path_factory.mktemp("ministack")))
    url = loop_thread.run(ministack.start())
    yield url
    loop_thread.run(ministack.stop(grace_s=2.0))


@pytest.fixture
def gate(loop_thread: LoopThread, ministack_url: str) -> Iterator[Gate]:
    """A gate with unlimited default capacity whose lease clock the test moves."""
    wall = ManualClock(time.time())
    ddb_gate = DynamoDBGate(upstream_url=ministack_url, wall_clock=wall, admin_token=ADMIN_TOKEN)
    url = loop_thread.run(ddb_gate.start())
    yield Gate(url=url, ministack_url=ministack_url, wall=wall)
    loop_thread.run(ddb_gate.stop())
