"""A test double of the remote agent: docs/protocol.md over real HTTP/SSE (aiohttp).

Each session gets a behaviour from its id, and the server remembers what it did
to whom, so a test can hold the harness's verdicts against the truth:

* ids starting ``garbage-``, ``slow-``, ``drip-``, ``throttle-``, ``status503-``,
  ``cut-`` select one fault for transport tests, ``healthy-`` none (``drip-``
  sends the end of the answer in pieces 0.3 s apart, longer in all than the
  client's 0.5 s timeout in the test but never idle for that long);
* any other id is assigned (by a stable hash) one of ``healthy``, ``resumable``
  (stream cut at the first attempt of turn 2, state kept, idempotent),
  ``duplicating`` (the same cut, but retries are re-applied) and ``forgetful``
  (the same cut, and the session state is lost).
"""

from __future__ import annotations

import asyncio
import json
import threading
import zlib
from collections import Counter
from typing import Any

import jwt
from aiohttp import web
from load_testkit import AgentModel

BEHAVIOURS = ("healthy", "resumable", "duplicating", "forgetful")


def behaviour_of(session_id: str) -> str:
    """The behaviour the server gives a session (stable across processes)."""
    return BEHAVIOURS[zlib.crc32(session_id.encode()) % len(BEHAVIOURS)]


class AgentServer:
    """Runs the double on 127.0.0.1 (port 0) in a thread with its own event loop."""

    def __init__(self, *, secret: str) -> None:
        self.secret = secret
        self.models = {
            "healthy": AgentModel(),
            "resumable": AgentModel(),
            "duplicating": AgentModel(idempotent=False),
            "forgetful": AgentModel(lose_state_on_cut=True),
            "fault": AgentModel(),
        }
        self.attempts: Counter[tuple[str, int]] = Counter()
        self.cut_sessions: dict[str, str] = {}
        self.turns_served = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> AgentServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=20)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/sessions/{sid}/turns", self._turn)
        app.router.add_get("/healthz", self._health)
        self._runner = web.AppRunner(app, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def _turn(self, request: web.Request) -> web.StreamResponse:
        sid = request.match_info["sid"]
        auth = request.headers.get("Authorization", "")
        try:
            claims = jwt.decode(auth.removeprefix("Bearer "), self.secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return _error(401, "unauthorized", "bad or expired token")
        if claims.get("sub") != sid:
            return _error(401, "unauthorized", "token is for another session")
        body = json.loads(await request.read())
        turn, key = int(body["turn"]), request.headers["Idempotency-Key"]
        self.attempts[(sid, turn)] += 1
        attempt = self.attempts[(sid, turn)]
        fault = sid.split("-", 1)[0] if "-" in sid else ""
        if fault == "throttle" and attempt == 1:
            return _error(429, "throttled", "slow down", headers={"Retry-After": "0"})
        if fault == "status503":
            return _error(503, "not_ready", "warming up")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if fault == "garbage":
            await response.write(b"event: token\ndata: \xff\xfe\x00 not utf-8\n\n")
            await response.write_eof()
            return response
        if fault in ("slow", "drip", "cut", "healthy"):
            behaviour = "healthy" if fault == "healthy" else "fault"
        else:
            behaviour = behaviour_of(sid)
        model = self.models[behaviour]
        head, tail = model.stream(sid, key, body["message"])
        for chunk in head:
            await response.write(chunk)
        if fault == "slow":
            await asyncio.sleep(1.0)  # longer than the client's timeout in the test
            return response
        cut = fault == "cut" or (behaviour != "healthy" and (turn, attempt) == (2, 1))
        if cut:
            self.cut_sessions[sid] = behaviour
            model.cut(sid)
            assert request.transport is not None
            request.transport.abort()  # the pod dies mid-stream
            return response
        for chunk in tail:
            if fault == "drip":
                await asyncio.sleep(0.3)
            await response.write(chunk)
        await response.write_eof()
        self.turns_served += 1
        return response


def _error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Any:
    return web.json_response(
        {"error": {"kind": kind, "message": message}}, status=status, headers=headers
    )
