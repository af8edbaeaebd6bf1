"""A real embedded stack for integration tests, run on its own thread and event loop."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadlab.embedded.stack import EmbeddedStack


@dataclass(frozen=True)
class RunningStack:
    agent_url: str
    fleet_url: str
    jwt_secret: str


@pytest.fixture(scope="module")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """ministack + LLM simulator + 2 agent pods, every latency compressed 20x.

    The stack's children die with the thread that started them (PDEATHSIG), so the
    thread lives until teardown and stops the stack itself.
    """
    state_dir = tmp_path_factory.mktemp("stack")
    loop = asyncio.new_event_loop()
    stack = EmbeddedStack(replicas=2, time_scale=0.05, state_dir=state_dir)
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(stack.start())
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(stack.stop())

    thread = threading.Thread(target=run, name="embedded-stack", daemon=True)
    thread.start()
    assert started.wait(120), "the embedded stack did not start within 120 s"
    if failure:
        raise failure[0]
    data = json.loads(Path(stack.stack_file).read_text())
    try:
        yield RunningStack(
            agent_url=data["endpoints"]["agent_url"],
            fleet_url=data["endpoints"]["fleet_url"],
            jwt_secret=data["jwt_secret"],
        )
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)
        loop.close()
