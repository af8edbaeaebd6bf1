"""Helpers for the Lambda target tests: servers on their own thread, tokens, SSE bodies."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from typing import Any

import jwt
from aiohttp import web

from loadlab.embedded.llm.config import LatencyModel, SimulatorConfig
from loadlab.embedded.llm.server import create_app as create_llm_app

SECRET = "lambda-tests-secret-0123456789abcdefghij"  # >= 32 bytes, as HS256 wants
FAST_LLM = SimulatorConfig(
    latency=LatencyModel(min_output_tokens=4, max_output_tokens=8), time_scale=0.01, seed=5
)
# First token after ~3 s: a turn that a short time budget must cut after its meta event.
SLOW_LLM = SimulatorConfig(
    latency=LatencyModel(
        ttft_median_ms=3000, ttft_sigma=0.01, min_output_tokens=2, max_output_tokens=3
    ),
    time_scale=1.0,
    seed=5,
)


class ThreadedApp:
    """An aiohttp app on 127.0.0.1 (port 0), served by its own event loop on a thread."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def __enter__(self) -> ThreadedApp:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self._app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def llm_server(config: SimulatorConfig = FAST_LLM) -> ThreadedApp:
    """The LLM simulator on its own thread."""
    return ThreadedApp(create_llm_app(config))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_session_id() -> str:
    """A session id no other test uses."""
    return f"s-{uuid.uuid4().hex[:12]}"


def token_for(session_id: str, *, secret: str = SECRET, ttl_s: int = 600) -> str:
    """A session JWT as load users sign it."""
    now = int(time.time())
    return jwt.encode({"sub": session_id, "iat": now, "exp": now + ttl_s}, secret, "HS256")


def turn_event(
    session_id: str, turn: int, message: str, *, key: str | None = None, secret: str = SECRET
) -> dict[str, Any]:
    """A direct invocation event for one turn."""
    return {
        "session_id": session_id,
        "turn": turn,
        "message": message,
        "idempotency_key": key or f"{session_id}-t{turn}",
        "token": token_for(session_id, secret=secret),
    }


def sse_events(body: str) -> list[tuple[str, dict[str, Any]]]:
    """Parse an SSE body strictly: ``event:`` then one ``data:`` line, then a blank line."""
    events: list[tuple[str, dict[str, Any]]] = []
    for frame in body.split("\n\n"):
        if not frame:
            continue
        name_line, data_line = frame.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: "), frame
        events.append((name_line.removeprefix("event: "), json.loads(data_line[6:])))
    return events


def one(events: list[tuple[str, dict[str, Any]]], name: str) -> dict[str, Any]:
    """The data of the only event called ``name``."""
    found = [data for event, data in events if event == name]
    assert len(found) == 1, f"expected one {name!r} event, got {[e for e, _ in events]}"
    return found[0]
