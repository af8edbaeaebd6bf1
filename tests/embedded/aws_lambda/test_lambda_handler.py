"""The handler's agent in-process, with a real ministack DynamoDB and a real LLM simulator."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from lambda_support import (
    SECRET,
    SLOW_LLM,
    llm_server,
    new_session_id,
    one,
    sse_events,
    token_for,
    turn_event,
)

from loadlab.embedded.agent.config import AgentConfig
from loadlab.embedded.agent.events import MetaEvent, ProtocolEvent
from loadlab.embedded.aws_lambda import handler as handler_module
from loadlab.embedded.aws_lambda.runtime import LambdaAgent

pytestmark = pytest.mark.integration


def config(*, llm_url: str, ministack: str, table: str, **overrides: Any) -> AgentConfig:
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "llm_url": llm_url,
        "dynamodb_endpoint": ministack,
        "table": table,
        "time_scale": 0.01,
        "instance_id": "lambda-test",
    }
    return AgentConfig(**(values | overrides))


@pytest.fixture
def agent(llm_url: str, ministack: str, table: str) -> Iterator[LambdaAgent]:
    lambda_agent = LambdaAgent(config=config(llm_url=llm_url, ministack=ministack, table=table))
    lambda_agent.start()
    try:
        yield lambda_agent
    finally:
        lambda_agent.close()


def checkpoint(ministack: str, table: str, session_id: str) -> dict[str, Any] | None:
    client = boto3.client("dynamodb", endpoint_url=ministack, region_name="us-east-1")
    try:
        item = client.get_item(
            TableName=table, Key={"session_id": {"S": session_id}}, ConsistentRead=True
        )
    finally:
        client.close()
    return item.get("Item")


def test_a_direct_turn_starts_cold_then_runs_warm(
    agent: LambdaAgent, ministack: str, table: str
) -> None:
    session = new_session_id()
    first = agent.invoke(turn_event(session, 1, "Add P-0042 to my cart"), remaining_ms=30_000)
    second = agent.invoke(turn_event(session, 2, "Add P-0007 to my cart"), remaining_ms=30_000)

    assert first["statusCode"] == 200 and second["statusCode"] == 200
    assert first["headers"]["Content-Type"] == "text/event-stream"
    events1, events2 = sse_events(first["body"]), sse_events(second["body"])
    names = [name for name, _ in events1]
    assert names[0] == "meta" and names[-1] == "done" and "token" in names
    meta1, meta2 = one(events1, "meta"), one(events2, "meta")
    assert (meta1["cold"], meta2["cold"]) == (True, False)
    assert meta1["init_ms"] > 0 and meta1["instance_id"] == meta2["instance_id"] == "lambda-test"
    assert (meta1["state_source"], meta2["state_source"]) == ("new", "memory")
    state = one(events2, "done")["state"]
    assert state["turn"] == 2 and state["cart"] == {"P-0042": 1, "P-0007": 1}
    item = checkpoint(ministack, table, session)
    assert item is not None and item["turn"] == {"N": "2"}


def test_http_events_replays_and_refusals(agent: LambdaAgent) -> None:
    session = new_session_id()
    path = f"/v1/sessions/{session}/turns"
    headers = {
        "authorization": f"Bearer {token_for(session)}",
        "idempotency-key": "key-1",
        "content-type": "application/json",
    }
    event = {
        "version": "2.0",
        "rawPath": path,
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": path}},
        "body": json.dumps({"turn": 1, "message": "Add P-0042 to my cart"}),
        "isBase64Encoded": False,
    }
    applied = agent.invoke(event)
    replay = agent.invoke(event)
    assert applied["statusCode"] == replay["statusCode"] == 200
    assert one(sse_events(replay["body"]), "meta")["replayed"] is True
    assert one(sse_events(replay["body"]), "done")["state"]["cart"] == {"P-0042": 1}

    stale = agent.invoke(event | {"headers": headers | {"idempotency-key": "other"}})
    assert stale["statusCode"] == 409
    assert json.loads(stale["body"])["error"]["kind"] == "stale_turn"

    get_state = {
        "httpMethod": "GET",
        "path": f"/prod/v1/sessions/{session}",
        "headers": {"Authorization": headers["authorization"]},
    }
    state = agent.invoke(get_state)
    assert state["statusCode"] == 200 and json.loads(state["body"])["turn"] == 1
    health = agent.invoke({"httpMethod": "GET", "path": "/healthz", "headers": {}})
    assert json.loads(health["body"]) == {"status": "ok", "instance_id": "lambda-test"}
    unauthorised = agent.invoke(turn_event(session, 2, "hi") | {"token": "nope"})
    assert unauthorised["statusCode"] == 401


def test_the_function_time_limit_cuts_the_turn_after_its_checkpoint(
    ministack: str, table: str
) -> None:
    with llm_server(SLOW_LLM) as slow:
        lambda_agent = LambdaAgent(
            config=config(llm_url=slow.url, ministack=ministack, table=table)
        )
        lambda_agent.start()
        try:
            session = new_session_id()
            # 1.1 s left, 1 s kept back: 0.1 s for the turn, the LLM's first token takes ~3 s.
            reply = lambda_agent.invoke(turn_event(session, 1, "Add P-0042"), remaining_ms=1100)
        finally:
            lambda_agent.close()
    events = sse_events(reply["body"])
    assert reply["statusCode"] == 200
    assert [name for name, _ in events] == ["meta", "error"]
    assert "time limit" in one(events, "error")["message"]
    item = checkpoint(ministack, table, session)
    assert item is not None and item["cart"] == {"M": {"P-0042": {"N": "1"}}}


def test_the_event_hook_runs_mid_invocation(llm_url: str, ministack: str, table: str) -> None:
    seen: list[str] = []

    def hook(event: ProtocolEvent) -> None:
        seen.append(event.name)
        if isinstance(event, MetaEvent) and len(seen) == 1:
            raise RuntimeError("the environment dies here")

    lambda_agent = LambdaAgent(
        config=config(llm_url=llm_url, ministack=ministack, table=table), on_event=hook
    )
    lambda_agent.start()
    try:
        session = new_session_id()
        cut = lambda_agent.invoke(turn_event(session, 1, "Add P-0042"))
        whole = lambda_agent.invoke(turn_event(session, 1, "Add P-0042"))
    finally:
        lambda_agent.close()
    assert [name for name, _ in sse_events(cut["body"])] == ["meta", "error"]
    assert one(sse_events(cut["body"]), "error") == {"kind": "internal", "message": "RuntimeError"}
    # The retry with the same key finds the turn applied and replays it.
    assert one(sse_events(whole["body"]), "meta")["replayed"] is True
    assert seen[0] == "meta" and seen[1] == "meta" and seen[-1] == "done"


def test_the_module_handler_reports_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, llm_url: str, ministack: str, table: str
) -> None:
    handler_module.environment.cache_clear()
    broken = handler_module.handler(turn_event("s-1", 1, "hi"), None)
    assert broken["statusCode"] == 503
    assert "LOADLAB_JWT_SECRET" in json.loads(broken["body"])["error"]["message"]

    monkeypatch.setenv("LOADLAB_JWT_SECRET", SECRET)
    monkeypatch.setenv("LOADLAB_AGENT_LLM_URL", llm_url)
    monkeypatch.setenv("LOADLAB_AGENT_DYNAMODB_ENDPOINT", ministack)
    monkeypatch.setenv("LOADLAB_AGENT_TABLE", table)
    monkeypatch.setenv("LOADLAB_TIME_SCALE", "0.01")
    monkeypatch.setenv("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]0123456789abcdef")

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 30_000

    try:
        reply = handler_module.handler(turn_event(new_session_id(), 1, "hi"), Context())
        assert handler_module.environment() is handler_module.environment()
    finally:
        handler_module.environment().close()
        handler_module.environment.cache_clear()
    meta = one(sse_events(reply["body"]), "meta")
    assert meta["instance_id"] == f"lambda-{os.getpid()}-89abcdef" and meta["cold"] is True


def _function_env(
    monkeypatch: pytest.MonkeyPatch, llm_url: str, ministack: str, table: str
) -> None:
    monkeypatch.setenv("LOADLAB_JWT_SECRET", SECRET)
    monkeypatch.setenv("LOADLAB_AGENT_LLM_URL", llm_url)
    monkeypatch.setenv("LOADLAB_AGENT_DYNAMODB_ENDPOINT", ministack)
    monkeypatch.setenv("LOADLAB_AGENT_TABLE", table)
    monkeypatch.setenv("LOADLAB_TIME_SCALE", "0.01")
    monkeypatch.delenv("LOADLAB_AGENT_INSTANCE_ID", raising=False)


def test_snapshot_hooks_close_the_connections_and_a_restore_reopens_them(
    monkeypatch: pytest.MonkeyPatch, llm_url: str, ministack: str, table: str
) -> None:
    from loadlab.embedded.aws_lambda import snapstart

    if hasattr(snapstart, "_before"):  # loadlab's registry (AWS's runtime brings its own)
        monkeypatch.setattr(snapstart, "_before", [])
        monkeypatch.setattr(snapstart, "_after", [])
    _function_env(monkeypatch, llm_url, ministack, table)
    handler_module.environment.cache_clear()
    try:
        agent = handler_module.environment()
        snapshot_name = agent.instance_id
        snapstart.run_before_snapshot()
        assert not agent.agent.ready  # no socket, thread or loop is left in the snapshot
        snapstart.run_after_restore()
        assert agent.agent.ready
        # A copy of the snapshot names itself apart from it (and from other copies).
        assert agent.instance_id.startswith(snapshot_name + "-")
        reply = handler_module.handler(turn_event(new_session_id(), 1, "Add P-0042"), None)
        meta = one(sse_events(reply["body"]), "meta")
        assert meta["instance_id"] == agent.instance_id and meta["cold"] is True
    finally:
        handler_module.environment().close()
        handler_module.environment.cache_clear()
        # A restore names itself in os.environ (as a restored environment must); that
        # name must not outlive the test, or every agent started later inherits it.
        os.environ.pop("LOADLAB_AGENT_INSTANCE_ID", None)


def test_in_handler_init_runs_in_every_invocation_and_bad_scopes_are_named(
    monkeypatch: pytest.MonkeyPatch, llm_url: str, ministack: str, table: str
) -> None:
    _function_env(monkeypatch, llm_url, ministack, table)
    monkeypatch.setenv("LOADLAB_AGENT_INIT", "everywhere")
    handler_module.environment.cache_clear()
    refused = handler_module.handler(turn_event("s-1", 1, "hi"), None)
    assert refused["statusCode"] == 503
    message = json.loads(refused["body"])["error"]["message"]
    assert "LOADLAB_AGENT_INIT='everywhere'" in message

    monkeypatch.setenv("LOADLAB_AGENT_INIT", "handler")
    monkeypatch.setenv("LOADLAB_AGENT_INIT_MS", "2000")  # 20 ms at this time scale
    try:
        agent = handler_module.environment()
        assert not agent.agent.ready  # nothing at module scope
        session = new_session_id()
        metas = [
            one(
                sse_events(handler_module.handler(turn_event(session, n, "hi"), None)["body"]),
                "meta",
            )
            for n in (1, 2, 3)
        ]
    finally:
        handler_module.environment().close()
        handler_module.environment.cache_clear()
    assert [m["cold"] for m in metas] == [True, False, False]
    assert all(m["init_ms"] >= 20 for m in metas)
    assert len({m["init_ms"] for m in metas}) == 3  # each invocation measured its own
