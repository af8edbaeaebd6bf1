"""Lambda chaos test helpers: a tiny function, and an AWS stand-in that says AccessDenied."""

from __future__ import annotations

import asyncio
import io
import json
import threading
import zipfile
from collections.abc import Callable

import aiohttp
from aiohttp import web

TINY_HANDLER = """\
import os


def handler(event, context):
    return {"pid": os.getpid(), "nonce": os.environ.get("LOADLAB_CONFIG_NONCE")}
"""
DENIED_BY = "arn:aws:iam::123456789012:user/chaos-engineer"


def tiny_zip() -> bytes:
    """A function that answers its pid and nonce (no dependencies: it starts in milliseconds)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tiny.py", TINY_HANDLER)
    return buffer.getvalue()


Deny = Callable[[web.Request], str | None]
"""Returns the IAM action refused for a request, or None to pass it to the upstream."""


def ssm_denied(request: web.Request) -> str | None:
    """Every SSM call is refused."""
    target = request.headers.get("X-Amz-Target", "AmazonSSM.Unknown")
    return "ssm:" + target.rsplit(".", 1)[-1]


def put_concurrency_denied(request: web.Request) -> str | None:
    """Lambda's PutFunctionConcurrency is refused; every other call goes through."""
    if request.method == "PUT" and request.path.endswith("/concurrency"):
        return "lambda:PutFunctionConcurrency"
    return None


class AwsStandIn:
    """An AWS endpoint on 127.0.0.1 that answers AccessDenied as AWS does, else proxies.

    SSM (JSON 1.1) refuses with 400 and ``__type: AccessDeniedException``; Lambda
    (REST-JSON) with 403 and ``x-amzn-ErrorType: AccessDeniedException``.
    """

    def __init__(self, *, deny: Deny, upstream: str | None = None) -> None:
        self.deny = deny
        self.upstream = upstream
        self.refused: list[str] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def __enter__(self) -> AwsStandIn:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession()

    async def _stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.Response:
        action = self.deny(request)
        if action is not None:
            self.refused.append(action)
            message = (
                f"User: {DENIED_BY} is not authorized to perform: {action} because no "
                f"identity-based policy allows the {action} action"
            )
            if request.headers.get("X-Amz-Target"):
                body = {"__type": "AccessDeniedException", "message": message}
                return web.json_response(
                    body, status=400, content_type="application/x-amz-json-1.1"
                )
            return web.json_response(
                {"Message": message},
                status=403,
                headers={"x-amzn-ErrorType": "AccessDeniedException"},
            )
        assert self.upstream is not None and self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=await request.read(),
        ) as upstream:
            body = await upstream.read()
            passed = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
            }
            return web.Response(status=upstream.status, body=body, headers=passed)


def events_of(path: str) -> list[dict[str, object]]:
    """The lines of an ``events.jsonl``."""
    with open(path) as lines:
        return [json.loads(line) for line in lines]


def invoke(endpoint: str, name: str) -> dict[str, object]:
    """One direct invocation of a tiny function: its payload (``pid``, ``nonce``)."""
    from loadlab.embedded.aws_lambda.deploy import lambda_client

    client = lambda_client(
        endpoint_url=endpoint, region="us-east-1", access_key_id="t", secret_access_key="t"
    )
    try:
        answer = client.invoke(FunctionName=name, Payload=b"{}")
        return dict(json.loads(answer["Payload"].read()))
    finally:
        client.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (nothing answers there)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
