"""What an invocation asks the agent function for, and the response shape it gets back.

Three event shapes arrive at the same handler:

* a **direct invocation** (``Invoke`` with a JSON payload, what loadlab's Lambda
  transport sends)::

      {"session_id": "...", "turn": 3, "message": "Add P-0042 to my cart",
       "idempotency_key": "...", "token": "<session JWT>"}

* an **HTTP API (payload 2.0) or Function URL** event (``version: "2.0"``,
  ``rawPath``, ``requestContext.http.method``, lower-case ``headers``);
* a **REST API (payload 1.0)** event (``httpMethod``, ``path``, ``headers``).

HTTP events route like the pod agent (docs/protocol.md): ``POST
/v1/sessions/{id}/turns``, ``GET /v1/sessions/{id}``, ``GET /healthz``; a stage
prefix before ``/v1`` is allowed. Every request is checked in the pod agent's
order and with its limits: session id, then the token, then the body, then the
``Idempotency-Key``; a refusal is a :class:`~loadlab.embedded.agent.events.TurnRejected`.

Every shape is answered with a proxy response (:class:`ProxyResponse`):
``statusCode``, ``headers`` and a text ``body``: the SSE events of the turn, or
a JSON error body. Lambda's buffered responses cannot stream, so the body holds
the whole event stream at once.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from loadlab.embedded.agent.auth import bearer_token, verify_session_token
from loadlab.embedded.agent.events import TurnRejected

# The pod agent's rules (loadlab.embedded.agent.service); a test keeps them equal.
SESSION_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
MAX_MESSAGE_CHARS = 4000
MAX_KEY_CHARS = 200

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
JSON_HEADERS = {"Content-Type": "application/json"}

_TURNS = re.compile(r"(?:^|/)v1/sessions/([^/]+)/turns/?$")
_SESSION = re.compile(r"(?:^|/)v1/sessions/([^/]+)/?$")
_HEALTH = re.compile(r"(?:^|/)healthz/?$")
_BODY_HINT = '{"turn": 1, "message": "..."}'


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnCall:
    """One turn to play, already validated and authenticated."""

    session_id: str
    turn: int
    message: str
    idempotency_key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCall:
    """Read a session's checkpointed state (``GET /v1/sessions/{id}``)."""

    session_id: str


@dataclass(frozen=True, slots=True)
class HealthCall:
    """``GET /healthz``."""


Call = TurnCall | SessionCall | HealthCall


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyResponse:
    """A Lambda proxy response: what API Gateway and Function URLs turn into HTTP."""

    status: int
    body: str
    headers: Mapping[str, str] = field(default_factory=lambda: dict(JSON_HEADERS))

    def to_lambda(self) -> dict[str, Any]:
        """The handler's return value."""
        return {
            "statusCode": self.status,
            "headers": dict(self.headers),
            "body": self.body,
            "isBase64Encoded": False,
        }

    @classmethod
    def json(cls, status: int, payload: Mapping[str, Any]) -> ProxyResponse:
        """A JSON response."""
        return cls(status=status, body=json.dumps(payload, separators=(",", ":")))

    @classmethod
    def rejected(cls, rejection: TurnRejected) -> ProxyResponse:
        """The protocol's error response for a refused request."""
        return cls.json(rejection.status, rejection.body())


def _bad_request(message: str) -> TurnRejected:
    return TurnRejected(status=400, kind="bad_request", message=message)


def parse_call(event: object, *, jwt_secret: str) -> Call:
    """Validate and authenticate an invocation event; raise ``TurnRejected`` if refused."""
    if not isinstance(event, Mapping):
        raise _bad_request("the event must be a JSON object")
    if "httpMethod" in event or "rawPath" in event or "requestContext" in event:
        return _http_call(event, jwt_secret=jwt_secret)
    return _direct_call(event, jwt_secret=jwt_secret)


def _direct_call(event: Mapping[str, Any], *, jwt_secret: str) -> TurnCall:
    session_id = _session_id(event.get("session_id"))
    token = event.get("token")
    if not isinstance(token, str) or not token.strip():
        raise TurnRejected(status=401, kind="auth", message="send the session JWT as 'token'")
    verify_session_token(token.strip(), secret=jwt_secret, session_id=session_id)
    turn, message = _turn_fields(event)
    key = event.get("idempotency_key")
    return TurnCall(
        session_id=session_id,
        turn=turn,
        message=message,
        idempotency_key=_idempotency_key(
            key if isinstance(key, str) else None, what="an 'idempotency_key'"
        ),
    )


def _http_call(event: Mapping[str, Any], *, jwt_secret: str) -> Call:
    context = event.get("requestContext") or {}
    http = context.get("http") if isinstance(context, Mapping) else None
    if isinstance(http, Mapping) and "method" in http:
        method = str(http["method"])  # payload 2.0
        path = str(event.get("rawPath") or http.get("path") or "/")
    else:
        method = str(event.get("httpMethod", ""))  # payload 1.0
        path = str(event.get("path") or "/")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    method = method.upper()
    if turns := _TURNS.search(path):
        _require_method(method, "POST", path)
        session_id = _session_id(unquote(turns.group(1)))
        _authenticate(headers.get("authorization"), session_id, jwt_secret)
        turn, message = _turn_fields(_json_body(event))
        key = _idempotency_key(headers.get("idempotency-key"))
        return TurnCall(session_id=session_id, turn=turn, message=message, idempotency_key=key)
    if session := _SESSION.search(path):
        _require_method(method, "GET", path)
        session_id = _session_id(unquote(session.group(1)))
        _authenticate(headers.get("authorization"), session_id, jwt_secret)
        return SessionCall(session_id=session_id)
    if _HEALTH.search(path):
        _require_method(method, "GET", path)
        return HealthCall()
    raise TurnRejected(status=404, kind="not_found", message=f"no route for {method} {path}")


def _require_method(method: str, allowed: str, path: str) -> None:
    if method != allowed:
        raise TurnRejected(
            status=405, kind="method_not_allowed", message=f"{path} accepts {allowed}, not {method}"
        )


def _session_id(value: object) -> str:
    if not isinstance(value, str) or not SESSION_ID.fullmatch(value):
        raise _bad_request("session ids are 1-128 characters from A-Z a-z 0-9 . _ : @ -")
    return value


def _authenticate(authorization: str | None, session_id: str, secret: str) -> None:
    verify_session_token(bearer_token(authorization), secret=secret, session_id=session_id)


def _json_body(event: Mapping[str, Any]) -> object:
    raw = event.get("body")
    if raw is None:
        raise _bad_request(f"the body must be JSON: {_BODY_HINT}")
    try:
        text = (
            base64.b64decode(str(raw), validate=True).decode("utf-8")
            if event.get("isBase64Encoded")
            else str(raw)
        )
        return json.loads(text)
    except (ValueError, binascii.Error):  # JSON, UTF-8 and base64 errors alike
        raise _bad_request(f"the body must be JSON: {_BODY_HINT}") from None


def _turn_fields(body: object) -> tuple[int, str]:
    if not isinstance(body, Mapping):
        raise _bad_request(f"the body must be a JSON object: {_BODY_HINT}")
    turn, message = body.get("turn"), body.get("message")
    if isinstance(turn, bool) or not isinstance(turn, int) or turn < 1:
        raise _bad_request(f"turn must be an integer >= 1, got {json.dumps(turn)}")
    if not isinstance(message, str) or not message.strip():
        raise _bad_request("message must be a non-empty string")
    if len(message) > MAX_MESSAGE_CHARS:
        raise _bad_request(f"message is longer than {MAX_MESSAGE_CHARS} characters")
    return turn, message


def _idempotency_key(value: str | None, *, what: str = "an Idempotency-Key header") -> str:
    key = (value or "").strip()
    if not key or len(key) > MAX_KEY_CHARS:
        raise _bad_request(f"send {what} of 1-{MAX_KEY_CHARS} characters")
    return key
