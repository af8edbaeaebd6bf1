"""A misbehaving agent: docs/protocol.md over real HTTP/SSE (aiohttp), broken on purpose.

Runs on 127.0.0.1 (port 0) in a thread with its own event loop. The session id's
prefix (up to the first ``-``), or ``mode`` for every session, picks how it
misbehaves:

* ``overflow``: a well-formed turn whose ``done`` event carries a number loadlab
  cannot record; the attempt number picks which (``1e20`` beyond int64,
  ``Infinity``, ``NaN``, ``-1``, a string, a fraction), so retries meet them all;
* ``flood``: a valid answer of ``flood_bytes`` of tokens, then a valid ``done``;
* ``datalines``: ``flood_bytes`` of ``data:`` lines with no blank line to end the event;
* ``trickle``: one comment byte every ``trickle_s`` seconds, never an event;
* ``never``: no response at all; ``stall``: headers and ``meta``, then silence;
* ``reset``: the connection aborted after the first token;
* ``status5xx``: 503 with a JSON error; ``html``: 200 with an HTML page;
* ``garbage``: an event that is not UTF-8; ``headers``: 256 KiB of response headers;
* anything else: a healthy turn.

``/healthz`` answers 200, so loadlab's target check passes. ``served`` counts
turn requests; ``cut`` counts streams the client hung up on.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from typing import Any

from aiohttp import web

OVERFLOWS = ("1e20", "Infinity", "NaN", "-1", '"12"', "2.5")
"""The ``ddb_calls`` values of ``overflow`` turns, by attempt (raw JSON)."""

_CHUNK = 64 * 1024


def event(name: str, payload: Any) -> bytes:
    """One SSE event with a JSON payload."""
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


def _meta() -> bytes:
    return event("meta", {"instance_id": "hostile-1", "cold": False, "state_source": "memory"})


def _done(turn: int, ddb_calls: str = "1") -> bytes:
    state = json.dumps({"session_id": "s", "turn": turn, "cart": {}, "version": turn})
    body = f'{{"state": {state}, "downstream": {{"ddb_calls": {ddb_calls}, "ddb_rcu": 0.5}}}}'
    return f"event: done\ndata: {body}\n\n".encode()


class HostileAgent:
    """The misbehaving agent; ``url`` is set once it is started (use as a context manager)."""

    def __init__(
        self,
        *,
        mode: str | None = None,
        flood_bytes: int = 50 * 1024 * 1024,
        trickle_s: float = 8.0,
    ) -> None:
        self.mode = mode
        self.flood_bytes = flood_bytes
        self.trickle_s = trickle_s
        self.url = ""
        self.served = 0
        self.cut = 0
        self.attempts: Counter[tuple[str, int]] = Counter()
        self.turns_done: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None

    def __enter__(self) -> HostileAgent:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._closing is not None:
            self._loop.call_soon_threadsafe(self._closing.set)  # ends every held stream
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=20)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_post("/v1/sessions/{sid}/turns", self._turn)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _turn(self, request: web.Request) -> web.StreamResponse:
        sid = request.match_info["sid"]
        body = json.loads(await request.read())
        turn = int(body["turn"])
        self.served += 1
        self.attempts[(sid, turn)] += 1
        attempt = self.attempts[(sid, turn)]
        mode = self.mode or sid.split("-", 1)[0]
        if mode == "never":
            await self._hold()
            return web.Response(status=503)
        if mode == "status5xx":
            error = {"error": {"kind": "not_ready", "message": "warming up"}}
            return web.json_response(error, status=503)
        if mode == "html":
            return web.Response(
                text="<html><body>Bad gateway</body></html>", content_type="text/html"
            )
        headers = {"Content-Type": "text/event-stream"}
        if mode == "headers":
            headers |= {f"X-Pad-{i}": "p" * 1000 for i in range(256)}
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        try:
            await self._play(request, response, sid, mode, attempt)
        except (ConnectionError, OSError):
            self.cut += 1  # the client hung up: what it is meant to do with most of these
        return response

    async def _play(
        self,
        request: web.Request,
        response: web.StreamResponse,
        sid: str,
        mode: str,
        attempt: int,
    ) -> None:
        if mode == "trickle":
            await response.write(b":")
            while not await self._hold(self.trickle_s):
                await response.write(b":")
            return
        await response.write(_meta())
        if mode == "stall":
            await self._hold()
            return
        if mode == "garbage":
            await response.write(b"event: token\ndata: \xff\xfe not utf-8\n\n")
            await response.write_eof()
            return
        if mode == "datalines":
            line = b"data: " + b"x" * 1017 + b"\n"
            await self._flood(response, line * (_CHUNK // len(line)))
            return
        if mode == "flood":
            text = "y" * 1000
            await self._flood(response, event("token", {"text": text}) * 60)
        else:
            await response.write(event("token", {"text": "Sure."}))
        if mode == "reset":
            assert request.transport is not None
            request.transport.abort()  # the pod dies mid-stream
            return
        turn = self.turns_done[sid] + 1
        if mode == "overflow":
            await response.write(_done(turn, OVERFLOWS[(attempt - 1) % len(OVERFLOWS)]))
        else:
            self.turns_done[sid] = turn
            await response.write(_done(turn))
        await response.write_eof()

    async def _hold(self, seconds: float | None = None) -> bool:
        """Wait ``seconds`` (None: until the server closes); True once it is closing."""
        assert self._closing is not None
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _flood(self, response: web.StreamResponse, chunk: bytes) -> None:
        sent = 0
        while sent < self.flood_bytes:
            await response.write(chunk)
            sent += len(chunk)
