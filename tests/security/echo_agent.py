"""An agent that leaks credentials: it echoes what it was sent, and more, in every error.

Runs on 127.0.0.1 (port 0) in a thread with its own event loop. Requests take
turns between three answers, each carrying the request's ``Authorization``
header and the canaries it was given:

* 401 with a JSON error body;
* 500 with a plain-text body;
* 200 ``text/event-stream`` whose only event is an ``error`` event.

``/healthz`` answers 200, so loadlab's target check passes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Sequence

from aiohttp import web


class EchoingAgent:
    """The leaking agent; ``url`` is set once it is started (use as a context manager)."""

    def __init__(self, *, canaries: Sequence[str]) -> None:
        self.canaries = tuple(canaries)
        self.url = ""
        self.served = 0
        self._turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> EchoingAgent:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_post("/v1/sessions/{session}/turns", self._turn_answer)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True})

    async def _turn_answer(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.served += 1
        leak = f"you sent Authorization: {request.headers.get('Authorization')}; " + "; ".join(
            self.canaries
        )
        mode = next(self._turn) % 3
        if mode == 0:
            return web.json_response(
                {"error": {"kind": "unauthorized", "message": leak}}, status=401
            )
        if mode == 1:
            return web.Response(status=500, text=f"internal error: {leak}")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        data = json.dumps({"kind": "llm_unavailable", "message": leak})
        await response.write(f"event: error\ndata: {data}\n\n".encode())
        await response.write_eof()
        return response
