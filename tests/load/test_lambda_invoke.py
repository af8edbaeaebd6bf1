"""The Lambda transport against a stubbed Lambda API (botocore's Stubber) and real sockets.

The Stubber replaces the network under a real boto3 client: what is faked is the
Lambda service's answers, never loadlab's code.
"""

from __future__ import annotations

import base64
import io
import json
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from loadlab.errors import ConfigError
from loadlab.load.adapters import ReferenceAdapter, TurnRequest
from loadlab.load.aws_lambda.invoke import (
    LambdaInvocation,
    LambdaTransport,
    invocation_event,
    invoke_client,
)
from loadlab.load.client import AgentClient, TurnResult

RID = "0b6c1a52-5d0e-4c47-9a51-5f1f6f1b2c3d"
REPORT = (
    f"START RequestId: {RID} Version: $LATEST\nEND RequestId: {RID}\n"
    f"REPORT RequestId: {RID}\tDuration: 812.40 ms\tBilled Duration: 813 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 96 MB\tInit Duration: 1203.55 ms\t\n"
)


def sse(*events: tuple[str, dict[str, Any]]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def agent_turn(*, cold: bool, turn: int = 1) -> str:
    meta = {
        "instance_id": "lambda-42-abcdef12",
        "cold": cold,
        "init_ms": 950.0,
        "state_source": "new",
        "intent": "add_to_cart",
        "replayed": False,
    }
    done = {
        "state": {"session_id": "s-1", "turn": turn, "cart": {"P-0042": 1}, "version": turn},
        "replayed": False,
        "downstream": {"ddb_calls": 2, "llm_calls": 1, "tokens_out": 2},
    }
    return sse(
        ("meta", meta), ("token", {"text": "Added"}), ("token", {"text": " it."}), ("done", done)
    )


def proxy(body: str, status: int = 200, content_type: str = "text/event-stream") -> bytes:
    response = {"statusCode": status, "headers": {"Content-Type": content_type}, "body": body}
    return json.dumps(response).encode()


def payload(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


@pytest.fixture
def lambda_api() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def send(client: Any, invocations: list[LambdaInvocation] | None = None) -> TurnResult:
    transport = LambdaTransport(
        client=client,
        function="loadlab-agent",
        on_invocation=None if invocations is None else invocations.append,
    )
    agent = AgentClient(
        transport=transport, adapter=ReferenceAdapter(), base_url="http://127.0.0.1:4566"
    )
    return agent.send_turn(
        TurnRequest(
            session_id="s-1",
            turn_index=1,
            message="Add P-0042 to my cart",
            idempotency_key="s-1-t1",
            token="the.jwt.token",
        )
    )


def test_a_turn_is_a_direct_invocation_and_its_answer_the_agent_stream(
    lambda_api: tuple[Any, Stubber],
) -> None:
    client, stubber = lambda_api
    event = {
        "session_id": "s-1",
        "turn": 1,
        "message": "Add P-0042 to my cart",
        "idempotency_key": "s-1-t1",
        "token": "the.jwt.token",
    }
    stubber.add_response(
        "invoke",
        {"StatusCode": 200, "Payload": payload(proxy(agent_turn(cold=True)))},
        expected_params={
            "FunctionName": "loadlab-agent",
            "InvocationType": "RequestResponse",
            "LogType": "Tail",
            "Payload": json.dumps(event, separators=(",", ":")).encode(),
        },
    )
    invocations: list[LambdaInvocation] = []
    result = send(client, invocations)

    assert result.ok and result.status == 200 and result.tokens == 2
    assert result.text == "Added it."
    assert result.meta is not None and result.meta.cold is True
    assert result.done is not None and result.done.state is not None
    assert result.done.state.cart == (("P-0042", 1),)
    (invocation,) = invocations
    assert invocation.figures == "agent" and invocation.cold_start is True
    assert invocation.init_ms == 950.0 and invocation.duration_ms is None
    assert invocation.instance_id == "lambda-42-abcdef12"
    assert (invocation.session_id, invocation.turn_index, invocation.status) == ("s-1", 1, 200)


def test_report_figures_win_over_the_agents_when_the_log_tail_has_them(
    lambda_api: tuple[Any, Stubber],
) -> None:
    client, stubber = lambda_api
    log_result = base64.b64encode(REPORT.encode()).decode()
    body = payload(proxy(agent_turn(cold=False)))
    stubber.add_response("invoke", {"StatusCode": 200, "Payload": body, "LogResult": log_result})
    invocations: list[LambdaInvocation] = []
    assert send(client, invocations).ok
    (invocation,) = invocations
    assert invocation.figures == "report"
    assert invocation.cold_start is True and invocation.init_ms == 1203.55
    assert (invocation.duration_ms, invocation.billed_duration_ms) == (812.40, 813.0)
    assert (invocation.memory_size_mb, invocation.max_memory_used_mb) == (512, 96)
    rows = {row.metric: row for row in invocation.pressure_samples()}
    assert set(rows) == {
        "invoke_ms",
        "cold_start",
        "init_ms",
        "duration_ms",
        "billed_duration_ms",
        "max_memory_used_mb",
        "memory_size_mb",
    }
    assert rows["memory_size_mb"].value == 512.0  # what the cost model bills GB-s by
    assert rows["billed_duration_ms"].value == 813.0 and rows["init_ms"].value == 1203.55
    assert {row.source for row in rows.values()} == {"lambda"}
    assert json.loads(rows["init_ms"].dimensions_json)["figures"] == "report"


def test_throttling_is_a_429_with_its_retry_after(lambda_api: tuple[Any, Stubber]) -> None:
    client, stubber = lambda_api
    stubber.add_client_error(
        "invoke",
        service_error_code="TooManyRequestsException",
        service_message="Rate Exceeded: function loadlab-agent at ReservedConcurrentExecutions",
        http_status_code=429,
        response_meta={"HTTPHeaders": {"retry-after": "1"}},
    )
    invocations: list[LambdaInvocation] = []
    result = send(client, invocations)
    assert (result.error_kind, result.status, result.retry_after_s) == ("throttled", 429, 1.0)
    assert result.agent_error_kind == "throttled"
    assert "ReservedConcurrentExecutions" in (result.error or "")
    (invocation,) = invocations
    assert invocation.throttled and invocation.figures == "none"
    assert [row.metric for row in invocation.pressure_samples()] == ["invoke_ms", "throttled"]


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("ResourceNotFoundException", 404, "http_status"),
        ("ServiceException", 500, "http_status"),
        ("AccessDeniedException", 403, "auth"),
    ],
)
def test_other_api_errors_keep_their_status(
    lambda_api: tuple[Any, Stubber], code: str, status: int, kind: str
) -> None:
    client, stubber = lambda_api
    stubber.add_client_error("invoke", service_error_code=code, http_status_code=status)
    result = send(client)
    assert (result.error_kind, result.status, result.agent_error_kind) == (kind, status, code)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ({"errorMessage": "Worker process died", "errorType": "Runtime.HandlerError"}, "reset"),
        ({"errorMessage": "exit status 137", "errorType": "Runtime.ExitError"}, "reset"),
        ({"errorMessage": "Task timed out after 30.00 seconds"}, "timeout"),
        ({"errorMessage": "2026-01-01 Task timed out", "errorType": "Sandbox.Timedout"}, "timeout"),
    ],
)
def test_function_errors_are_broken_exchanges(
    lambda_api: tuple[Any, Stubber], error: dict[str, str], kind: str
) -> None:
    client, stubber = lambda_api
    body = payload(json.dumps(error).encode())
    stubber.add_response(
        "invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": body}
    )
    invocations: list[LambdaInvocation] = []
    result = send(client, invocations)
    assert result.error_kind == kind and result.meta is None
    assert invocations[0].function_error == "Unhandled"


@pytest.mark.parametrize(
    "data",
    [b"not json", b'{"no": "statusCode"}', b'"a string"', b'{"statusCode": 200, "body": 5}'],
)
def test_a_payload_that_is_not_an_agent_response_is_malformed(
    lambda_api: tuple[Any, Stubber], data: bytes
) -> None:
    client, stubber = lambda_api
    stubber.add_response("invoke", {"StatusCode": 200, "Payload": payload(data)})
    result = send(client)
    assert result.error_kind == "malformed"


def test_the_agents_own_refusals_come_through_as_http(lambda_api: tuple[Any, Stubber]) -> None:
    client, stubber = lambda_api
    refusal = json.dumps({"error": {"kind": "stale_turn", "message": "turn 1 is not after 3"}})
    body = payload(proxy(refusal, status=409, content_type="application/json"))
    stubber.add_response("invoke", {"StatusCode": 200, "Payload": body})
    result = send(client)
    assert (result.error_kind, result.status, result.agent_error_kind) == (
        "http_status",
        409,
        "stale_turn",
    )


def test_requests_that_are_not_turns_become_http_api_events() -> None:
    event, session_id, turn = invocation_event(
        "GET", "http://x/v1/sessions/s%3A1?full=1", {"Authorization": "Bearer t"}, b""
    )
    assert (session_id, turn) == (None, None)
    assert event["rawPath"] == "/v1/sessions/s%3A1" and event["rawQueryString"] == "full=1"
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["headers"] == {"authorization": "Bearer t"} and "body" not in event
    # A turn whose body is not JSON goes as HTTP too, so the agent answers its 400.
    event, session_id, _ = invocation_event("POST", "http://x/v1/sessions/s/turns", {}, b"{oops")
    assert session_id is None and event["body"] == "{oops"


def test_invoke_client_needs_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="no AWS credentials"):
        invoke_client(endpoint_url="http://127.0.0.1:9")


def test_unreachable_and_silent_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused_port = closed.getsockname()[1]
    client = invoke_client(endpoint_url=f"http://127.0.0.1:{refused_port}", timeout_s=0.5)
    try:
        result = send(client)
        assert (result.error_kind, result.status) == ("connect", 0)
    finally:
        client.close()
    # A listener that never answers: the kernel accepts, nobody reads.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        client = invoke_client(
            endpoint_url=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.3
        )
        try:
            assert send(client).error_kind == "timeout"
        finally:
            client.close()


def test_a_memory_figure_beyond_a_float_is_dropped_not_raised() -> None:
    from loadlab.load.aws_lambda.invoke import LambdaInvocation

    invocation = LambdaInvocation(
        t_start=1.0,
        function="f",
        session_id="s",
        turn_index=0,
        latency_ms=5.0,
        status=200,
        memory_size_mb=10**400,
        max_memory_used_mb=64,
    )
    metrics = {sample.metric: sample.value for sample in invocation.pressure_samples()}
    assert "memory_size_mb" not in metrics
    assert metrics["max_memory_used_mb"] == 64.0


def test_the_provisioned_concurrency_of_a_qualified_function_is_asked_of_its_qualifier() -> None:
    from loadlab.load.aws_lambda.invoke import function_and_qualifier as _name_and_qualifier

    assert _name_and_qualifier("agent") == ("agent", "$LATEST")
    assert _name_and_qualifier("agent:live") == ("agent", "live")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:agent"
    assert _name_and_qualifier(arn) == (arn, "$LATEST")
    assert _name_and_qualifier(arn + ":7") == (arn, "7")
