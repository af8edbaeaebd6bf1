"""The agent over HTTP: the session protocol (docs/protocol.md) on aiohttp.

Routes: ``POST /v1/sessions/{session_id}/turns`` (SSE), ``GET /v1/sessions/{session_id}``,
``GET /healthz``, ``GET /metrics``.

:func:`serve` is what ``python -m loadlab.embedded.agent`` runs: it initialises the
agent, only then binds its socket (with ``SO_REUSEPORT``, so N processes share one
port and the kernel spreads connections over those that are ready), prints one
``READY`` line for the fleet supervisor, and on SIGTERM stops accepting, lets
in-flight turns finish within the grace period, and returns.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from contextlib import aclosing, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from loadlab.embedded.agent.auth import bearer_token, verify_session_token
from loadlab.embedded.agent.config import AgentConfig
from loadlab.embedded.agent.core import ShoppingAgent
from loadlab.embedded.agent.events import (
    DoneEvent,
    ErrorEvent,
    MetaEvent,
    TurnRejected,
    encode_sse,
)
from loadlab.embedded.agent.metrics import AgentMetrics
from loadlab.errors import StackError

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient

log = logging.getLogger(__name__)

SESSION_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
MAX_MESSAGE_CHARS = 4000
MAX_KEY_CHARS = 200
LISTEN_BACKLOG = 1024
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def _bad_request(message: str) -> TurnRejected:
    return TurnRejected(status=400, kind="bad_request", message=message)


@dataclass(slots=True, kw_only=True)
class _Routes:
    """The handlers, with what they share: the agent, its metrics, whether it drains."""

    agent: ShoppingAgent
    metrics: AgentMetrics
    draining: bool = False

    def _session(self, request: web.Request) -> str:
        session_id = request.match_info["session_id"]
        if not SESSION_ID.fullmatch(session_id):
            raise _bad_request("session ids are 1-128 characters from A-Z a-z 0-9 . _ : @ -")
        token = bearer_token(request.headers.get("Authorization"))
        verify_session_token(token, secret=self.agent.config.jwt_secret, session_id=session_id)
        return session_id

    def _check_ready(self) -> None:
        if self.draining or not self.agent.ready:
            message = "the instance is shutting down" if self.draining else "not initialised"
            raise TurnRejected(status=503, kind="not_ready", message=message)

    async def post_turn(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/sessions/{session_id}/turns``: one turn, answered as SSE."""
        began = time.perf_counter()
        intent, status = "unknown", "error"
        self.metrics.in_flight.inc()
        try:
            self._check_ready()
            session_id = self._session(request)
            turn, message = await _turn_body(request)
            key = _idempotency_key(request)
            async with aclosing(self.agent.handle_turn(session_id, turn, message, key)) as events:
                first = await anext(events)
                if isinstance(first, MetaEvent):
                    intent = first.intent
                    status = "replayed" if first.replayed else "ok"
                    if first.cold:
                        self.metrics.cold_starts.inc()
                response = web.StreamResponse(status=200, headers=SSE_HEADERS)
                await response.prepare(request)
                try:
                    await response.write(encode_sse(first))
                    async for event in events:
                        await response.write(encode_sse(event))
                        if isinstance(event, ErrorEvent):
                            status = "error"
                        elif isinstance(event, DoneEvent) and event.replayed:
                            status = "replayed"
                    await response.write_eof()
                except ConnectionResetError:
                    status = "disconnected"
                except Exception as exc:
                    log.exception("turn %d of %s failed mid-stream", turn, session_id)
                    status = "error"
                    failure = ErrorEvent(kind="internal", message=type(exc).__name__)
                    with suppress(ConnectionResetError):
                        await response.write(encode_sse(failure))
                        await response.write_eof()
                return response
        except TurnRejected as rejected:
            status = rejected.kind
            return web.json_response(rejected.body(), status=rejected.status)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.turns.labels(intent, status).inc()
            self.metrics.turn_seconds.labels(intent).observe(time.perf_counter() - began)

    async def get_session(self, request: web.Request) -> web.Response:
        """``GET /v1/sessions/{session_id}``: the session's state object."""
        try:
            self._check_ready()
            state = await self.agent.session_state(self._session(request))
        except TurnRejected as rejected:
            return web.json_response(rejected.body(), status=rejected.status)
        return web.json_response(state.to_json())

    async def healthz(self, _request: web.Request) -> web.Response:
        """``GET /healthz``: 200 once initialised, 503 while shutting down."""
        body = {"status": "ok", "instance_id": self.agent.instance_id}
        if self.draining or not self.agent.ready:
            return web.json_response(body | {"status": "draining"}, status=503)
        return web.json_response(body)

    async def metrics_text(self, _request: web.Request) -> web.Response:
        """``GET /metrics``: Prometheus text."""
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


async def _turn_body(request: web.Request) -> tuple[int, str]:
    try:
        body: Any = await request.json()
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise _bad_request('the body must be JSON: {"turn": 1, "message": "..."}') from None
    if not isinstance(body, dict):
        raise _bad_request('the body must be a JSON object: {"turn": 1, "message": "..."}')
    turn, message = body.get("turn"), body.get("message")
    if isinstance(turn, bool) or not isinstance(turn, int) or turn < 1:
        raise _bad_request(f"turn must be an integer >= 1, got {json.dumps(turn)}")
    if not isinstance(message, str) or not message.strip():
        raise _bad_request("message must be a non-empty string")
    if len(message) > MAX_MESSAGE_CHARS:
        raise _bad_request(f"message is longer than {MAX_MESSAGE_CHARS} characters")
    return turn, message


def _idempotency_key(request: web.Request) -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > MAX_KEY_CHARS:
        raise _bad_request(f"send an Idempotency-Key header of 1-{MAX_KEY_CHARS} characters")
    return key


ROUTES_KEY = web.AppKey("loadlab_agent_routes", _Routes)


def create_app(agent: ShoppingAgent, *, metrics: AgentMetrics | None = None) -> web.Application:
    """The aiohttp application serving ``agent`` (which the caller starts and closes)."""
    routes = _Routes(agent=agent, metrics=metrics or AgentMetrics())
    app = web.Application()
    app[ROUTES_KEY] = routes
    app.router.add_post("/v1/sessions/{session_id}/turns", routes.post_turn)
    app.router.add_get("/v1/sessions/{session_id}", routes.get_session)
    app.router.add_get("/healthz", routes.healthz)
    app.router.add_get("/metrics", routes.metrics_text)
    return app


def bind_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A listening, non-blocking TCP socket on ``host:port`` (``SO_REUSEPORT`` if asked).

    Raises :class:`~loadlab.errors.StackError` if the address cannot be bound.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise StackError(
            f"cannot resolve agent host {host!r}: {exc}", hint="use 127.0.0.1"
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        hint = "pick a free port, or start every process sharing it with --reuse-port"
        raise StackError(f"cannot listen on {host}:{port}: {exc}", hint=hint) from None
    return sock


class AgentServer:
    """One agent instance listening on a socket: ``async with AgentServer(...) as server``."""

    def __init__(
        self,
        *,
        config: AgentConfig,
        host: str = "127.0.0.1",
        port: int = 0,
        reuse_port: bool = False,
        metrics_port: int | None = None,
        dynamodb_client: DynamoDBClient | None = None,
    ) -> None:
        self.config = config
        self.host = host
        self.port = port
        self.reuse_port = reuse_port
        # Replicas share `port`, so a scrape there reaches any one of them: each also
        # serves its own /metrics on a private port (0 picks one) for Prometheus.
        self.metrics_port = metrics_port
        self.metrics_url: str | None = None
        self._metrics_runner: web.AppRunner | None = None
        self.agent = ShoppingAgent(config=config, dynamodb_client=dynamodb_client)
        self.metrics = AgentMetrics()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080`` (the bound port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Initialise the agent, then bind and serve (never listening before it is ready)."""
        await self.agent.start()
        self.metrics.init_seconds.set((self.agent.init_ms or 0.0) / 1000)
        try:
            sock = bind_socket(self.host, self.port, reuse_port=self.reuse_port)
        except StackError:
            await self.agent.close()
            raise
        self.port = sock.getsockname()[1]
        app = create_app(self.agent, metrics=self.metrics)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.config.shutdown_grace_s)
        await runner.setup()
        self._runner = runner
        await web.SockSite(runner, sock, backlog=LISTEN_BACKLOG).start()
        if self.metrics_port is not None:
            await self._serve_metrics(self.metrics_port)

    async def _serve_metrics(self, port: int) -> None:
        async def metrics_text(_request: web.Request) -> web.Response:
            return web.Response(
                body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

        app = web.Application()
        app.router.add_get("/metrics", metrics_text)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._metrics_runner = runner
        site = web.TCPSite(runner, self.host, port)
        await site.start()
        bound = runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.metrics_url = f"http://{host}:{bound}/metrics"

    async def stop(self) -> None:
        """Stop accepting, let in-flight turns finish (up to the grace period), close."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.app[ROUTES_KEY].draining = True
            await runner.cleanup()
        metrics_runner, self._metrics_runner = self._metrics_runner, None
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await self.agent.close()

    async def __aenter__(self) -> AgentServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def ready_line(server: AgentServer) -> str:
    """The line the fleet supervisor waits for."""
    init_ms = server.agent.init_ms or 0.0
    return (
        f"READY pid={os.getpid()} instance={server.agent.instance_id} "
        f"init_ms={init_ms:.1f} url={server.url}"
        + (f" metrics={server.metrics_url}" if server.metrics_url else "")
    )


async def serve(
    config: AgentConfig,
    *,
    host: str,
    port: int,
    reuse_port: bool = True,
    metrics_port: int | None = None,
    out: TextIO | None = None,
) -> None:
    """Run one agent instance until SIGTERM or SIGINT, then drain and return.

    Prints the ``READY`` line to ``out`` (default stdout) once it listens.
    """
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stopping.set)
    server = AgentServer(
        config=config, host=host, port=port, reuse_port=reuse_port, metrics_port=metrics_port
    )
    try:
        await server.start()
        if not stopping.is_set():
            print(ready_line(server), file=out or sys.stdout, flush=True)
        await stopping.wait()
        log.info("agent %s draining", config.instance_id)
    finally:
        await server.stop()
        for sig in signals:
            loop.remove_signal_handler(sig)
