"""Invocation events in (direct, HTTP API 2.0, REST 1.0), validated as the pod agent does."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from lambda_support import SECRET, token_for, turn_event

from loadlab.embedded.agent import service
from loadlab.embedded.agent.events import TurnRejected
from loadlab.embedded.aws_lambda import calls
from loadlab.embedded.aws_lambda.calls import (
    HealthCall,
    ProxyResponse,
    SessionCall,
    TurnCall,
    parse_call,
)


def http_v2(
    method: str, path: str, *, headers: dict[str, str] | None = None, body: str | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in (headers or {}).items()},
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = body
    return event


def http_v1(
    method: str, path: str, *, headers: dict[str, str] | None = None, body: str | None = None
) -> dict[str, Any]:
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers or {},
        "requestContext": {"stage": "prod", "httpMethod": method},
        "body": body,
        "isBase64Encoded": False,
    }


def turn_headers(session_id: str, key: str = "k-1") -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token_for(session_id)}",
        "Idempotency-Key": key,
        "Content-Type": "application/json",
    }


def rejected(event: object) -> TurnRejected:
    with pytest.raises(TurnRejected) as info:
        parse_call(event, jwt_secret=SECRET)
    return info.value


def test_the_rules_are_the_pod_agents() -> None:
    assert calls.SESSION_ID.pattern == service.SESSION_ID.pattern
    assert calls.MAX_MESSAGE_CHARS == service.MAX_MESSAGE_CHARS
    assert calls.MAX_KEY_CHARS == service.MAX_KEY_CHARS


def test_direct_invocation() -> None:
    call = parse_call(turn_event("s-1", 3, "Add P-0042", key="key-3"), jwt_secret=SECRET)
    assert call == TurnCall(session_id="s-1", turn=3, message="Add P-0042", idempotency_key="key-3")


@pytest.mark.parametrize("shape", [http_v2, http_v1])
def test_http_turns_with_or_without_a_stage(shape: Any) -> None:
    body = json.dumps({"turn": 2, "message": "Compare P-0001 and P-0002"})
    for path in ("/v1/sessions/s%3A9/turns", "/prod/v1/sessions/s%3A9/turns/"):
        event = shape("POST", path, headers=turn_headers("s:9"), body=body)
        assert parse_call(event, jwt_secret=SECRET) == TurnCall(
            session_id="s:9", turn=2, message="Compare P-0001 and P-0002", idempotency_key="k-1"
        )


def test_a_base64_body_is_decoded() -> None:
    body = base64.b64encode(json.dumps({"turn": 1, "message": "hi"}).encode()).decode()
    event = http_v2("POST", "/v1/sessions/s-1/turns", headers=turn_headers("s-1"), body=body)
    event["isBase64Encoded"] = True
    call = parse_call(event, jwt_secret=SECRET)
    assert isinstance(call, TurnCall) and call.message == "hi"


def test_state_and_health_routes() -> None:
    auth = {"authorization": f"Bearer {token_for('s-1')}"}
    assert parse_call(http_v2("GET", "/v1/sessions/s-1", headers=auth), jwt_secret=SECRET) == (
        SessionCall(session_id="s-1")
    )
    assert parse_call(http_v1("GET", "/healthz"), jwt_secret=SECRET) == HealthCall()


@pytest.mark.parametrize(
    ("event", "status", "kind", "words"),
    [
        ([1, 2], 400, "bad_request", "JSON object"),
        (turn_event("bad id!", 1, "hi"), 400, "bad_request", "session ids"),
        (turn_event("s-1", 1, "hi") | {"token": ""}, 401, "auth", "token"),
        (
            turn_event("s-1", 1, "hi", secret="another-secret-0123456789abcdefghijk"),
            401,
            "auth",
            "",
        ),
        (turn_event("s-1", 1, "hi") | {"session_id": "s-2"}, 401, "auth", "another session"),
        (turn_event("s-1", 0, "hi"), 400, "bad_request", "turn must be an integer"),
        (turn_event("s-1", True, "hi"), 400, "bad_request", "turn must be an integer"),  # type: ignore[arg-type]
        (turn_event("s-1", 1, "   "), 400, "bad_request", "message"),
        (turn_event("s-1", 1, "x" * 4001), 400, "bad_request", "longer than 4000"),
        (
            turn_event("s-1", 1, "hi") | {"idempotency_key": ""},
            400,
            "bad_request",
            "idempotency_key",
        ),
    ],
    ids=[
        "not-object",
        "session-id",
        "no-token",
        "bad-signature",
        "other-session",
        "turn-0",
        "turn-bool",
        "blank-message",
        "long-message",
        "no-key",
    ],
)
def test_direct_refusals(event: object, status: int, kind: str, words: str) -> None:
    refusal = rejected(event)
    assert (refusal.status, refusal.kind) == (status, kind)
    assert words in refusal.message


def test_http_refusals_come_in_the_pod_agents_order() -> None:
    path = "/v1/sessions/s-1/turns"
    good = json.dumps({"turn": 1, "message": "hi"})
    # A bad token is refused before a bad body, and a bad body before a missing key.
    no_auth = http_v2("POST", path, headers={"Idempotency-Key": "k"}, body="{oops")
    assert (rejected(no_auth).status, rejected(no_auth).kind) == (401, "auth")
    bad_body = http_v2("POST", path, headers={"Authorization": f"Bearer {token_for('s-1')}"})
    assert rejected(bad_body).kind == "bad_request" and "JSON" in rejected(bad_body).message
    no_key = http_v2(
        "POST", path, headers={"Authorization": f"Bearer {token_for('s-1')}"}, body=good
    )
    assert "Idempotency-Key" in rejected(no_key).message
    wrong_method = http_v2("GET", path, headers=turn_headers("s-1"))
    assert (rejected(wrong_method).status, rejected(wrong_method).kind) == (
        405,
        "method_not_allowed",
    )
    assert rejected(http_v1("GET", "/v2/elsewhere")).status == 404


def test_proxy_responses() -> None:
    response = ProxyResponse.rejected(TurnRejected(status=409, kind="stale_turn", message="m"))
    assert response.to_lambda() == {
        "statusCode": 409,
        "headers": {"Content-Type": "application/json"},
        "body": '{"error":{"kind":"stale_turn","message":"m"}}',
        "isBase64Encoded": False,
    }
