"""Helpers for the downstream activity tests: servers on a background event loop."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")
TIMEOUT = 30.0


class LoopThread:
    """An event loop on its own thread; :meth:`run` waits for a coroutine on it.

    The activities under test are blocking (urllib, boto3), so the servers they
    talk to must run on another thread.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="downstream-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT)

    def serve(self, app: web.Application) -> tuple[str, web.AppRunner]:
        """Serve ``app`` on 127.0.0.1:0; return its URL and runner (clean it up after)."""

        async def start() -> tuple[str, web.AppRunner]:
            runner = web.AppRunner(app, shutdown_timeout=0.2)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            return f"http://127.0.0.1:{runner.addresses[0][1]}", runner

        return self.run(start())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT)
        self.loop.close()


@dataclass(frozen=True)
class Gate:
    """A capacity gate in front of ministack, with the wall clock it judges leases by."""

    url: str
    ministack_url: str
    wall: ManualClock


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def chat_status(llm_url: str) -> int:
    """The status the LLM answers one small chat completion with."""
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    request = urllib.request.Request(
        f"{llm_url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)
