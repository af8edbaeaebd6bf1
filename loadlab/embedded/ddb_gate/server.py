"""The gate's HTTP side: a reverse proxy to ministack with an admin API.

DynamoDB JSON requests (``X-Amz-Target: DynamoDB_20120810.<Operation>``) on the
data plane are admitted or refused by the :class:`CapacityGate`; everything else
(the control plane, other AWS services, ministack's own endpoints) is passed
through untouched. A refused request is answered as DynamoDB answers it::

    HTTP/1.1 400 Bad Request
    Content-Type: application/x-amz-json-1.0

    {"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
     "message":"The level of configured provisioned throughput for the table was exceeded. ..."}

which botocore raises as ``ProvisionedThroughputExceededException`` and retries
as throttling. The gate's own routes: ``GET /metrics`` (Prometheus) and
``GET|POST|DELETE /admin/capacity``; the admin routes need the stack's token and
refuse an override without a lease of at most 15 minutes
(:mod:`loadlab.embedded.admin_auth`).
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from prometheus_client import CONTENT_TYPE_LATEST

from loadlab.embedded.admin_auth import LeaseRefused, admin_token_from_env, require_token
from loadlab.embedded.ddb_gate.capacity import DEFAULT_BURST_S, CapacitySettings, CapacityValueError
from loadlab.embedded.ddb_gate.state import CapacityGate
from loadlab.embedded.ddb_gate.units import Classified, classify, consumed
from loadlab.errors import ConfigError

__all__ = ["GATE_KEY", "THROTTLE_BODY", "DynamoDBGate", "create_app"]

HOST = "127.0.0.1"
TARGET_PREFIX = "DynamoDB_20120810."
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
THROTTLE_BODY = (
    b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",'
    b'"message":"The level of configured provisioned throughput for the table was exceeded. '
    b'Consider increasing your provisioning level with the UpdateTable API."}'
)
# Hop-by-hop (RFC 9110 7.6.1) or recomputed by aiohttp on each side of the proxy.
_NOT_FORWARDED = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE",
        "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length", "Expect",
    )
)  # fmt: skip

GATE_KEY = web.AppKey("loadlab_ddb_gate", CapacityGate)
_HTTP_KEY = web.AppKey("loadlab_ddb_gate_http", aiohttp.ClientSession)


def _forwardable(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _NOT_FORWARDED)


def _decoded(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _admin_error(message: str) -> web.Response:
    return web.json_response(
        {"error": {"kind": "invalid_capacity", "message": message}}, status=400
    )


class _Routes:
    """Handlers bound to one gate and one upstream."""

    def __init__(self, gate: CapacityGate, upstream_url: str) -> None:
        self._gate = gate
        self._upstream = upstream_url.rstrip("/")

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        """Any other route: gate the DynamoDB data plane, pass everything else through."""
        body = await request.read()
        target = request.headers.get("X-Amz-Target", "")
        payload = _json_object(body) if target.startswith(TARGET_PREFIX) else None
        classified = (
            None if payload is None else classify(target.removeprefix(TARGET_PREFIX), payload)
        )
        if classified is None or payload is None:
            status, headers, answer = await self._forward(request, body)
            return web.Response(status=status, headers=headers, body=answer)
        refused = self._gate.refused_tables(classified)
        if refused:
            self._gate.throttled(classified, refused)
            return web.Response(
                status=400,
                body=THROTTLE_BODY,
                headers={"Content-Type": JSON_CONTENT_TYPE, "x-amzn-RequestId": str(uuid.uuid4())},
            )
        status, headers, answer = await self._forward(request, body)
        self._charge(classified, payload, status, headers, answer)
        return web.Response(status=status, headers=headers, body=answer)

    def _charge(
        self,
        classified: Classified,
        payload: dict[str, Any],
        status: int,
        headers: CIMultiDict[str],
        answer: bytes,
    ) -> None:
        try:
            parsed = _json_object(_decoded(answer, headers.get("Content-Encoding", "").lower()))
        except (OSError, zlib.error):
            parsed = None
        if 200 <= status < 300:
            used = consumed(classified, payload, parsed or {})
        else:
            code = str((parsed or {}).get("__type", "")).rsplit("#", 1)[-1]
            used = consumed(classified, payload, None, error_code=code)
        self._gate.charge(classified, status, used)

    async def _forward(
        self, request: web.Request, body: bytes
    ) -> tuple[int, CIMultiDict[str], bytes]:
        http = request.app[_HTTP_KEY]
        try:
            async with http.request(
                request.method,
                self._upstream + request.rel_url.raw_path_qs,
                headers=_forwardable(request.headers),
                data=body,
                allow_redirects=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            ) as upstream:
                answer = await upstream.read()
                return upstream.status, _forwardable(upstream.headers), answer
        except (aiohttp.ClientError, TimeoutError) as exc:
            message = f"the DynamoDB gate could not reach {self._upstream}: {exc!r}"
            return (
                502,
                CIMultiDict({"Content-Type": "application/json"}),
                json.dumps({"message": message}).encode(),
            )

    async def get_capacity(self, _request: web.Request) -> web.Response:
        """``GET /admin/capacity``: settings, lease and counters per table and operation."""
        return web.json_response(self._gate.view())

    async def post_capacity(self, request: web.Request) -> web.Response:
        """``POST /admin/capacity``: partial update of rcu, wcu, burst_s, expires_at."""
        try:
            self._gate.update(await request.json())
        except (CapacityValueError, LeaseRefused) as exc:
            return _admin_error(str(exc))
        except ValueError as exc:  # malformed JSON
            return _admin_error(f"the body is not valid JSON: {exc}")
        return web.json_response(self._gate.view())

    async def delete_capacity(self, _request: web.Request) -> web.Response:
        """``DELETE /admin/capacity``: the configured defaults apply again."""
        self._gate.restore()
        return web.json_response(self._gate.view())

    async def metrics(self, _request: web.Request) -> web.Response:
        """``GET /metrics`` in Prometheus text format."""
        return web.Response(
            body=self._gate.render_metrics(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def _unauthorized(_request: web.Request, message: str) -> web.Response:
    return web.json_response({"error": {"kind": "unauthorized", "message": message}}, status=401)


def create_app(
    gate: CapacityGate,
    *,
    upstream_url: str,
    request_timeout_s: float = 30.0,
    admin_token: str | None = None,
) -> web.Application:
    """The gate's aiohttp application in front of ``upstream_url`` (``app[GATE_KEY]``).

    ``admin_token`` guards ``/admin/``; default: ``LOADLAB_ADMIN_TOKEN`` (see
    :func:`~loadlab.embedded.admin_auth.admin_token_from_env`).
    """
    routes = _Routes(gate, upstream_url)
    token = admin_token_from_env() if admin_token is None else admin_token
    app = web.Application(
        client_max_size=64 * 1024**2,
        middlewares=[require_token(token, prefixes=("/admin/",), refuse=_unauthorized)],
    )
    app[GATE_KEY] = gate

    async def upstream_session(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        # auto_decompress off: bodies pass through byte for byte, encodings included.
        async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as http:
            app[_HTTP_KEY] = http
            yield

    app.cleanup_ctx.append(upstream_session)
    app.router.add_get("/metrics", routes.metrics)
    app.router.add_get("/admin/capacity", routes.get_capacity)
    app.router.add_post("/admin/capacity", routes.post_capacity)
    app.router.add_delete("/admin/capacity", routes.delete_capacity)
    app.router.add_route("*", "/{tail:.*}", routes.proxy)
    return app


class DynamoDBGate:
    """A capacity gate served on 127.0.0.1 (``port`` 0 picks one) in front of ``upstream_url``.

    ``rcu``/``wcu`` are the configured capacity units per simulated second
    (``None``: unlimited, the default, so nothing changes unless asked);
    ``burst_s`` the seconds of unused capacity a table may save up. Run it in
    the event loop of its owner: ``async with DynamoDBGate(...) as gate``.
    """

    def __init__(
        self,
        *,
        upstream_url: str,
        rcu: float | None = None,
        wcu: float | None = None,
        burst_s: float = DEFAULT_BURST_S,
        time_scale: float = 1.0,
        port: int = 0,
        request_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        admin_token: str | None = None,
    ) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"DynamoDB gate: upstream_url={upstream_url!r} is not an http(s) URL",
                hint="give ministack's URL, e.g. http://127.0.0.1:4566",
            )
        try:
            defaults = CapacitySettings(rcu=rcu, wcu=wcu, burst_s=burst_s)
            self.state = CapacityGate(
                defaults=defaults, time_scale=time_scale, clock=clock, wall_clock=wall_clock
            )
        except ValueError as exc:
            raise ConfigError(
                f"DynamoDB gate: {exc}",
                hint="give rcu/wcu >= 0 (or None for unlimited), burst_s >= 0, time_scale > 0",
            ) from None
        self._upstream_url = upstream_url
        self._admin_token = admin_token
        self._port = port
        self._request_timeout_s = request_timeout_s
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        if self._url is None:
            raise RuntimeError("DynamoDBGate.url is known only after start()")
        return self._url

    async def start(self) -> str:
        """Start serving; return the base URL (the DynamoDB endpoint to give clients)."""
        if self._url is not None:
            return self._url
        app = create_app(
            self.state,
            upstream_url=self._upstream_url,
            request_timeout_s=self._request_timeout_s,
            admin_token=self._admin_token,
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, HOST, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._url = f"http://{HOST}:{runner.addresses[0][1]}"
        return self._url

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        runner, self._runner, self._url = self._runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> DynamoDBGate:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
