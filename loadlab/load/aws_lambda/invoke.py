"""The Lambda transport: a turn through the Lambda ``Invoke`` API, read as the agent's stream.

:class:`LambdaTransport` is a :class:`~loadlab.load.transport.Transport`: the
:class:`~loadlab.load.client.AgentClient` prepares the same HTTP request as for
a pod (``POST /v1/sessions/{id}/turns``, JWT, ``Idempotency-Key``), and the
transport sends it as a direct invocation event (``{"session_id", "turn",
"message", "idempotency_key", "token"}``) with ``InvocationType=RequestResponse``
and ``LogType=Tail``. Any other request goes as an HTTP API (payload 2.0)
event. The function answers with a proxy response (``statusCode``,
``headers``, ``body``: the SSE text of the whole turn, Lambda does not stream),
which the transport hands back as a :class:`~loadlab.load.transport.StreamingResponse`,
so the same adapter, ledger, retries and verdicts apply. Time to first token
is therefore the whole invocation's time.

How Lambda's own outcomes map onto the client's error kinds:

* ``TooManyRequestsException`` (reserved or account concurrency): status 429
  with its ``Retry-After`` → ``throttled``;
* any other Invoke API error (404 no such function, 5xx …): that HTTP status →
  ``http_status`` (401/403 → ``auth``);
* ``FunctionError`` with ``Sandbox.Timedout`` or "Task timed out":
  :class:`~loadlab.load.transport.TransportTimeout` → ``timeout``;
* any other ``FunctionError`` (the environment died: ``Runtime.ExitError``,
  ministack's "Worker process died"): :class:`~loadlab.load.transport.StreamReset`
  → ``reset``, retried with the same idempotency key like a cut stream;
* no connection, read timeout, connection closed: ``connect``, ``timeout``, ``reset``;
* a payload that is not a proxy response: ``malformed``.

Each invocation is also described by a :class:`LambdaInvocation` passed to
``on_invocation``: the ``REPORT`` figures from ``LogResult`` when the Lambda
service puts them there (AWS does; ministack does not), else the cold flag and
``init_ms`` of the agent's ``meta`` event; ``figures`` says which
(``report``, ``agent`` or ``none``). :meth:`LambdaInvocation.pressure_samples`
turns it into ``pressure`` rows.

The per-call ``timeout`` cannot be applied to one boto3 call: the client's
``read_timeout`` (see :func:`invoke_client`) bounds each invocation instead.
boto3 does blocking socket I/O through urllib3, which Locust's gevent
monkey-patching makes cooperative, so one client serves every user of a Locust
process.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from loadlab.errors import ConfigError
from loadlab.load.aws_lambda.log_report import LambdaReport, report_from_log_result
from loadlab.load.payloads import AgentMeta, PayloadError, load_json_object, parse_meta
from loadlab.load.sse import SSEEvent, SSEParser
from loadlab.load.transport import (
    ConnectFailed,
    MalformedResponse,
    StreamingResponse,
    StreamReset,
    TransportTimeout,
    forget_traceback,
)
from loadlab.rows import PressureSample

if TYPE_CHECKING:
    from types_boto3_lambda.client import LambdaClient

FiguresSource = Literal["report", "agent", "none"]
DEFAULT_REGION = "us-east-1"
_TURNS = re.compile(r"/v1/sessions/([^/]+)/turns/?$")
_TIMEOUT_TYPES = frozenset({"Sandbox.Timedout"})


@dataclass(frozen=True, slots=True, kw_only=True)
class LambdaInvocation:
    """One ``Invoke`` call as the load generator saw it (durations in ms).

    ``status`` is the Invoke API's HTTP status (0 when none came back);
    ``figures`` says where ``cold_start``/``init_ms`` come from: Lambda's
    ``REPORT`` line, the agent's ``meta`` event, or nowhere.
    """

    t_start: float
    function: str
    session_id: str | None
    turn_index: int | None
    latency_ms: float
    status: int
    function_error: str | None = None
    request_id: str | None = None
    figures: FiguresSource = "none"
    cold_start: bool | None = None
    init_ms: float | None = None
    duration_ms: float | None = None
    billed_duration_ms: float | None = None
    memory_size_mb: int | None = None
    max_memory_used_mb: int | None = None
    instance_id: str | None = None

    @property
    def throttled(self) -> bool:
        """True when Lambda refused the invocation with a 429."""
        return self.status == 429

    def pressure_samples(self) -> list[PressureSample]:
        """``pressure`` rows (source ``lambda``) for this invocation."""
        dims = json.dumps(
            {
                "function": self.function,
                "figures": self.figures,
                "instance_id": self.instance_id,
                "session_id": self.session_id,
                "turn": self.turn_index,
                "status": self.status,
                "function_error": self.function_error,
            },
            separators=(",", ":"),
        )
        values: list[tuple[str, float | None]] = [
            ("invoke_ms", self.latency_ms),
            ("throttled", 1.0 if self.throttled else None),
            ("cold_start", None if self.cold_start is None else float(self.cold_start)),
            ("init_ms", self.init_ms if self.cold_start else None),
            ("duration_ms", self.duration_ms),
            ("billed_duration_ms", self.billed_duration_ms),
            ("max_memory_used_mb", _float(self.max_memory_used_mb)),
            ("memory_size_mb", _float(self.memory_size_mb)),
        ]
        return [
            PressureSample(
                t=self.t_start, source="lambda", metric=metric, value=value, dimensions_json=dims
            )
            for metric, value in values
            if value is not None
        ]


def _float(value: int | None) -> float | None:
    """The figure as a float; None when absent or beyond a float (a REPORT line gone wrong)."""
    if value is None:
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def invoke_client(
    *,
    endpoint_url: str | None,
    region: str | None = None,
    timeout_s: float = 30.0,
    max_connections: int = 100,
) -> LambdaClient:
    """A Lambda client for load: no SDK retries, a read timeout above ``timeout_s``.

    botocore would otherwise retry throttles and timeouts itself, hiding them
    from the session's ledger. Credentials come from the default chain; a
    missing region falls back to us-east-1. Raises :class:`~loadlab.errors.ConfigError`
    when there are no credentials at all.
    """
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    if session.get_credentials() is None:
        raise ConfigError(
            "no AWS credentials for the Lambda target",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any value for ministack)",
        )
    return session.client(
        "lambda",
        endpoint_url=endpoint_url,
        region_name=session.region_name or DEFAULT_REGION,
        config=Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=min(timeout_s, 10.0),
            read_timeout=timeout_s,
            max_pool_connections=max_connections,
            tcp_keepalive=True,
        ),
    )


class LambdaTransport:
    """A :class:`~loadlab.load.transport.Transport` over ``lambda:Invoke`` (see the module doc)."""

    def __init__(
        self,
        *,
        client: LambdaClient,
        function: str,
        qualifier: str | None = None,
        on_invocation: Callable[[LambdaInvocation], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self.function = function
        self._qualifier = qualifier
        self._on_invocation = on_invocation
        self._clock = clock
        self._wall = wall

    def open(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,
    ) -> StreamingResponse:
        """Invoke the function with the request; return its proxy response as a stream."""
        event, session_id, turn = invocation_event(method, url, headers, body)
        request: dict[str, Any] = {
            "FunctionName": self.function,
            "InvocationType": "RequestResponse",
            "LogType": "Tail",
            "Payload": json.dumps(event, separators=(",", ":")).encode(),
        }
        if self._qualifier is not None:
            request["Qualifier"] = self._qualifier
        record = _Record(
            function=self.function,
            session_id=session_id,
            turn=turn,
            callback=self._on_invocation,
            clock=self._clock,
            t_start=self._wall(),
        )
        try:
            # A plain dict: the stubs declare FunctionError and LogResult always present.
            response: dict[str, Any] = dict(self._client.invoke(**request))
            payload = response["Payload"].read()
        except ClientError as exc:
            return record.refused(exc)
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            record.done(status=0)
            forget_traceback(exc)
            raise TransportTimeout(f"Lambda did not answer: {exc}") from None
        except EndpointConnectionError as exc:
            record.done(status=0)
            forget_traceback(exc)
            raise ConnectFailed(f"cannot reach the Lambda API: {exc}") from None
        except (ConnectionClosedError, HTTPClientError) as exc:
            record.done(status=0)
            forget_traceback(exc)
            raise StreamReset(f"the Lambda API connection broke: {exc}") from None
        meta = response.get("ResponseMetadata", {})
        status = int(meta.get("HTTPStatusCode", 200))
        request_id = meta.get("RequestId")
        report = report_from_log_result(response.get("LogResult"))
        function_error = response.get("FunctionError")
        if function_error is not None:
            record.done(status=status, request_id=request_id, report=report, error=function_error)
            raise _function_failure(function_error, payload)
        proxy = _proxy_response(payload)
        record.done(
            status=status, request_id=request_id, report=report, meta=_first_meta(proxy.body)
        )
        return StreamingResponse(
            status=proxy.status, headers=proxy.headers, chunks=_lines(proxy.body)
        )


@dataclass(frozen=True, slots=True)
class _Proxy:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _Record:
    """Builds and hands over the :class:`LambdaInvocation` of one call."""

    def __init__(
        self,
        *,
        function: str,
        session_id: str | None,
        turn: int | None,
        callback: Callable[[LambdaInvocation], None] | None,
        clock: Callable[[], float],
        t_start: float,
    ) -> None:
        self._function = function
        self._session_id = session_id
        self._turn = turn
        self._callback = callback
        self._clock = clock
        self._t_start = t_start
        self._t0 = clock()

    def done(
        self,
        *,
        status: int,
        request_id: str | None = None,
        report: LambdaReport | None = None,
        meta: AgentMeta | None = None,
        error: str | None = None,
    ) -> None:
        callback = self._callback
        if callback is None:
            return
        figures: FiguresSource = "none"
        cold: bool | None = None
        init_ms: float | None = None
        if report is not None:
            figures, cold = "report", report.cold_start
            init_ms = report.init_duration_ms or report.restore_duration_ms
        elif meta is not None and meta.cold is not None:
            figures, cold, init_ms = "agent", meta.cold, meta.init_ms
        callback(
            LambdaInvocation(
                t_start=self._t_start,
                function=self._function,
                session_id=self._session_id,
                turn_index=self._turn,
                latency_ms=(self._clock() - self._t0) * 1000.0,
                status=status,
                function_error=error,
                request_id=request_id,
                figures=figures,
                cold_start=cold,
                init_ms=init_ms,
                duration_ms=None if report is None else report.duration_ms,
                billed_duration_ms=None if report is None else report.billed_duration_ms,
                memory_size_mb=None if report is None else report.memory_size_mb,
                max_memory_used_mb=None if report is None else report.max_memory_used_mb,
                instance_id=None if meta is None else meta.instance_id,
            )
        )

    def refused(self, exc: ClientError) -> StreamingResponse:
        """The Invoke API's own error as an HTTP response (429 keeps its Retry-After)."""
        meta = exc.response.get("ResponseMetadata", {})
        status = int(meta.get("HTTPStatusCode") or 500)
        self.done(status=status, request_id=meta.get("RequestId"))
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "ClientError")
        kind = "throttled" if status == 429 else code
        message = str(error.get("Message") or code)
        headers = {"content-type": "application/json"}
        retry_after = {k.lower(): v for k, v in meta.get("HTTPHeaders", {}).items()}.get(
            "retry-after"
        )
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        body = json.dumps({"error": {"kind": kind, "message": f"{code}: {message}"}}).encode()
        return StreamingResponse(status=status, headers=headers, chunks=iter((body,)))


def invocation_event(
    method: str, url: str, headers: Mapping[str, str], body: bytes
) -> tuple[dict[str, Any], str | None, int | None]:
    """The event for one prepared request, with its session id and turn when it is a turn.

    A well-formed ``POST …/v1/sessions/{id}/turns`` becomes a direct invocation;
    anything else an HTTP API (payload 2.0) event, so the function answers it
    as the pod agent would (including its 400s).
    """
    parts = urlsplit(url)
    lower = {k.lower(): v for k, v in headers.items()}
    match = _TURNS.search(parts.path)
    if method.upper() == "POST" and match is not None:
        try:
            fields = json.loads(body)
        except ValueError:
            fields = None
        if isinstance(fields, dict) and {"turn", "message"} <= fields.keys():
            scheme, _, token = lower.get("authorization", "").partition(" ")
            session_id = unquote(match.group(1))
            turn = fields["turn"]
            event: dict[str, Any] = {
                "session_id": session_id,
                "turn": turn,
                "message": fields["message"],
                "idempotency_key": lower.get("idempotency-key", ""),
                "token": token.strip() if scheme.lower() == "bearer" else "",
            }
            return event, session_id, turn if isinstance(turn, int) else None
    http_event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": lower,
        "requestContext": {
            "http": {
                "method": method.upper(),
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "loadlab",
            },
            "routeKey": "$default",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    if body:
        http_event["body"] = body.decode("utf-8", errors="replace")
    return http_event, None, None


def _function_failure(function_error: str, payload: bytes) -> Exception:
    try:
        detail = json.loads(payload)
    except ValueError:
        detail = None
    if not isinstance(detail, dict):
        detail = {}
    error_type = str(detail.get("errorType") or function_error)
    message = str(detail.get("errorMessage") or "")[:300]
    if error_type in _TIMEOUT_TYPES or message.startswith("Task timed out"):
        return TransportTimeout(f"the function timed out: {message}")
    return StreamReset(f"the function failed ({function_error}): {error_type}: {message}")


def _proxy_response(payload: bytes) -> _Proxy:
    try:
        response = json.loads(payload)
    except ValueError:
        raise MalformedResponse(f"the function's payload is not JSON: {payload[:100]!r}") from None
    if not isinstance(response, dict) or not isinstance(response.get("statusCode"), int):
        raise MalformedResponse(
            f"the function's payload is not a proxy response (statusCode): {payload[:100]!r}"
        )
    raw_headers = response.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise MalformedResponse("the proxy response's headers are not an object")
    body = response.get("body") or ""
    if not isinstance(body, str):
        raise MalformedResponse("the proxy response's body is not a string")
    if response.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except binascii.Error:
            raise MalformedResponse("the proxy response's body is not base64") from None
    else:
        data = body.encode("utf-8")
    headers = {str(k).lower(): str(v) for k, v in raw_headers.items()}
    return _Proxy(status=response["statusCode"], headers=headers, body=data)


def _lines(body: bytes) -> Iterator[bytes]:
    """The body line by line, as a streamed response would arrive (all at once here)."""
    yield from body.splitlines(keepends=True)


def _first_meta(body: bytes) -> AgentMeta | None:
    parser = SSEParser()
    for item in parser.feed(body):
        if isinstance(item, SSEEvent) and item.event == "meta":
            try:
                return parse_meta(load_json_object(item.data))
            except PayloadError:
                return None
    return None


def function_and_qualifier(function: str) -> tuple[str, str]:
    """``fn:live`` or ``arn:...:function:fn:live`` -> (function, ``live``); unqualified:
    ``$LATEST`` (where the embedded Lambda keeps its provisioned environments)."""
    parts = function.split(":")
    if function.startswith("arn:"):
        return ":".join(parts[:7]), parts[7] if len(parts) > 7 else "$LATEST"
    return (parts[0], parts[1]) if len(parts) == 2 else (function, "$LATEST")
