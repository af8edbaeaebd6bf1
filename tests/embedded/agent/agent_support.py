"""Helpers for the agent tests: real servers on 127.0.0.1 port 0, tokens, SSE parsing."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import boto3
import jwt
from aiohttp import web

from loadlab.embedded.agent.config import AgentConfig
from loadlab.embedded.llm.config import LatencyModel, SimulatorConfig
from loadlab.embedded.llm.server import create_app as create_llm_app

SECRET = "agent-tests-secret-0123456789abcdefghijkl"  # >= 32 bytes, as HS256 wants
FAST_LLM = SimulatorConfig(
    latency=LatencyModel(min_output_tokens=4, max_output_tokens=8), time_scale=0.01, seed=3
)


@dataclass(frozen=True, slots=True)
class Dynamo:
    """Where the tests' checkpoint table lives."""

    endpoint: str
    table: str

    def client(self) -> Any:
        """A DynamoDB client with dummy credentials (close it after use)."""
        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def item(self, session_id: str) -> dict[str, Any] | None:
        """The checkpoint item of a session, read out of band."""
        client = self.client()
        try:
            response = client.get_item(
                TableName=self.table, Key={"session_id": {"S": session_id}}, ConsistentRead=True
            )
        finally:
            client.close()
        return response.get("Item")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_session_id() -> str:
    """A session id no other test uses."""
    return f"s-{uuid.uuid4().hex[:12]}"


def token_for(session_id: str, *, secret: str = SECRET, ttl_s: float = 600) -> str:
    """A session JWT as load users sign it."""
    now = int(time.time())
    return jwt.encode({"sub": session_id, "iat": now, "exp": now + int(ttl_s)}, secret, "HS256")


def agent_config(*, llm_url: str, dynamo: Dynamo | None = None, **overrides: Any) -> AgentConfig:
    """A fast agent config (time scale 0.01) against the given LLM and table."""
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "llm_url": llm_url,
        "time_scale": 0.01,
        "dynamodb_endpoint": dynamo.endpoint if dynamo else "http://127.0.0.1:9",
        "table": dynamo.table if dynamo else "unused-table",
    }
    return AgentConfig(**(values | overrides))


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1:0 and yield its base URL."""
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


LLM_ADMIN_TOKEN = "agent-test-llm-admin-token"
LLM_ADMIN_HEADERS = {"Authorization": f"Bearer {LLM_ADMIN_TOKEN}"}


def llm_simulator(
    config: SimulatorConfig = FAST_LLM,
) -> contextlib.AbstractAsyncContextManager[str]:
    """The LLM simulator on 127.0.0.1:0 (yields its base URL); its admin API takes
    :data:`LLM_ADMIN_HEADERS`."""
    return serving(create_llm_app(config, admin_token=LLM_ADMIN_TOKEN))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def scripted_llm(*steps: Handler) -> tuple[web.Application, list[int]]:
    """A stand-in remote LLM answering request n with ``steps[min(n, last)]``.

    Returns the app and a list that receives each answered request's number.
    """
    seen: list[int] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.json()
        seen.append(len(seen))
        return await steps[min(len(seen) - 1, len(steps) - 1)](request)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    return app, seen


def streamed_answer(
    *pieces: str, usage: bool = True, before_rest: Callable[[], Awaitable[None]] | None = None
) -> Handler:
    """An OpenAI streaming answer of ``pieces`` (usage chunk optional; may pause after the
    first piece until ``before_rest`` returns)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for index, piece in enumerate(pieces):
            chunk = {"object": "chat.completion.chunk", "choices": [{"delta": {"content": piece}}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if index == 0 and before_rest is not None:
                await before_rest()
        if usage:
            tail = {"choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": len(pieces)}}
            await response.write(f"data: {json.dumps(tail)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    return answer


def status_answer(status: int, headers: dict[str, str] | None = None) -> Handler:
    """An OpenAI-style error answer."""

    async def answer(_request: web.Request) -> web.StreamResponse:
        body = {"error": {"message": f"status {status}", "type": "rate_limit_exceeded"}}
        return web.json_response(body, status=status, headers=headers)

    return answer


@dataclass
class TurnReply:
    """What the agent answered to one turn: status, and the SSE events or the error body."""

    status: int
    content_type: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    body: dict[str, Any] | None = None

    def names(self) -> list[str]:
        """The event names, in order."""
        return [name for name, _ in self.events]

    def one(self, name: str) -> dict[str, Any]:
        """The data of the only event called ``name``."""
        found = [data for n, data in self.events if n == name]
        assert len(found) == 1, f"expected one {name!r} event, got {self.names()}"
        return found[0]

    @property
    def text(self) -> str:
        """The streamed answer."""
        return "".join(data["text"] for name, data in self.events if name == "token")


async def read_sse(response: aiohttp.ClientResponse) -> list[tuple[str, dict[str, Any]]]:
    """Parse an SSE body strictly: ``event:`` then one ``data:`` line, then a blank line."""
    events: list[tuple[str, dict[str, Any]]] = []
    name: str | None = None
    data: dict[str, Any] | None = None
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            assert name is None, f"two event lines in a row: {line!r}"
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            assert name is not None and data is None, f"data without event: {line!r}"
            data = json.loads(line.removeprefix("data: "))
        else:
            assert line == "" and name is not None and data is not None, f"bad line {line!r}"
            events.append((name, data))
            name, data = None, None
    assert name is None, "the stream ended inside an event"
    return events


async def post_turn(
    http: aiohttp.ClientSession,
    base_url: str,
    session_id: str,
    *,
    turn: int,
    message: str,
    key: str | None = None,
    token: str | None = None,
) -> TurnReply:
    """Play one turn over HTTP and read the whole answer."""
    headers = {
        "Authorization": f"Bearer {token or token_for(session_id)}",
        "Idempotency-Key": key or f"{session_id}-t{turn}",
        "Accept": "text/event-stream",
    }
    url = f"{base_url}/v1/sessions/{session_id}/turns"
    async with http.post(url, json={"turn": turn, "message": message}, headers=headers) as response:
        reply = TurnReply(status=response.status, content_type=response.content_type)
        if response.status == 200:
            reply.events = await read_sse(response)
        else:
            reply.body = await response.json()
        return reply
