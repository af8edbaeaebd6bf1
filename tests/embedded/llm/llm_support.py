"""Helpers for the LLM simulator tests: a real app on 127.0.0.1 port 0, SSE and metrics parsing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from loadlab.embedded.llm.config import LatencyModel, SimulatorConfig
from loadlab.embedded.llm.server import create_app

ADMIN_TOKEN = "llm-test-admin-token"
"""The token the test simulator's admin API requires; every test session sends it."""

# Fast and short: a completion takes a few milliseconds.
FAST = SimulatorConfig(
    latency=LatencyModel(min_output_tokens=5, max_output_tokens=12), time_scale=0.01, seed=7
)


@contextlib.asynccontextmanager
async def served(config: SimulatorConfig) -> AsyncIterator[aiohttp.ClientSession]:
    """Run the simulator on 127.0.0.1:0 and yield a client session bound to it."""
    # A short shutdown grace: tests that abandon a stream must not wait for it.
    runner = web.AppRunner(create_app(config, admin_token=ADMIN_TOKEN), shutdown_timeout=0.2)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as session:
            yield session
    finally:
        await runner.cleanup()


def chat(content: str = "hello, shopping assistant", **extra: Any) -> dict[str, Any]:
    """A chat-completions request body."""
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


async def sse_data(response: aiohttp.ClientResponse) -> list[str]:
    """The ``data:`` payloads of an SSE response, in order."""
    payloads = []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("data: "):
            payloads.append(line.removeprefix("data: "))
        else:
            assert line == "", f"unexpected SSE line {line!r}"
    return payloads


def metric(text: str, sample: str) -> float:
    """The value of one sample line (``name{labels}``) of Prometheus text, or fail."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    raise AssertionError(f"{sample} not in metrics:\n{text}")


def decode(payload: str) -> dict[str, Any]:
    """One JSON chunk."""
    value = json.loads(payload)
    assert isinstance(value, dict)
    return value
