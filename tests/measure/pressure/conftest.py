"""Real servers for the pressure tests: an LLM simulator on its own thread, and ministack."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web
from pressure_support import FAST, ServedSimulator

from loadlab.embedded.llm.server import SIMULATOR_KEY, create_app


@pytest.fixture
def llm_simulator() -> Iterator[ServedSimulator]:
    """The real LLM simulator app on 127.0.0.1:0, served by a thread's event loop."""
    loop = asyncio.new_event_loop()
    app = create_app(FAST)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    thread = threading.Thread(target=loop.run_forever, name="llm-simulator", daemon=True)
    thread.start()

    async def start() -> int:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return int(runner.addresses[0][1])

    try:
        port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        yield ServedSimulator(url=f"http://127.0.0.1:{port}", simulator=app[SIMULATOR_KEY])
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
