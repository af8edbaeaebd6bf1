"""A real embedded stack for integration tests, run on its own thread and event loop."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from stack_thread import StackThread  # tests/stack_thread.py

from loadlab.embedded.stack import EmbeddedStack


@dataclass(frozen=True)
class RunningStack:
    agent_url: str
    fleet_url: str
    jwt_secret: str
    state_dir: Path


@pytest.fixture(scope="module")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """ministack + LLM simulator + 2 agent pods, every latency compressed 20x.

    The stack's children die with the thread that started them (PDEATHSIG), so the
    thread lives until teardown and stops the stack itself (see ``StackThread``).
    """
    state_dir = tmp_path_factory.mktemp("stack")
    stack = EmbeddedStack(replicas=2, time_scale=0.05, state_dir=state_dir)
    with StackThread(stack) as running:
        state = running.state
        yield RunningStack(
            agent_url=state.endpoints.agent_url,
            fleet_url=state.endpoints.fleet_url,
            jwt_secret=state.jwt_secret,
            state_dir=state_dir,
        )
