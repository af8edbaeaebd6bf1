"""The agent over real HTTP, with a real ministack and the real LLM simulator."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from agent_support import (
    SECRET,
    Dynamo,
    agent_config,
    llm_simulator,
    new_session_id,
    post_turn,
    token_for,
)

from loadlab.embedded.agent.service import AgentServer

pytestmark = pytest.mark.integration


def test_a_turn_streams_meta_tokens_and_done_with_state_and_costs(dynamo: Dynamo) -> None:
    sid = new_session_id()

    async def scenario() -> tuple[Any, ...]:
        async with (
            llm_simulator() as llm_url,
            AgentServer(config=agent_config(llm_url=llm_url, dynamo=dynamo)) as server,
            aiohttp.ClientSession() as http,
        ):
            first = await post_turn(http, server.url, sid, turn=1, message="Add P-0042 to my cart")
            second = await post_turn(
                http, server.url, sid, turn=2, message="What is my total at checkout?"
            )
            headers = {"Authorization": f"Bearer {token_for(sid)}"}
            async with http.get(f"{server.url}/v1/sessions/{sid}", headers=headers) as r:
                assert r.status == 200
                state = await r.json()
            return first, second, state

    first, second, state = asyncio.run(scenario())
    assert first.status == 200 and first.content_type == "text/event-stream"
    names = first.names()
    assert names[0] == "meta" and names[-1] == "done"
    assert set(names[1:-1]) == {"token"} and len(names) >= 3
    assert first.text.strip()
    meta = first.one("meta")
    assert meta["cold"] is True and meta["init_ms"] > 0 and meta["instance_id"]
    assert meta["state_source"] == "new" and meta["intent"] == "add_to_cart"
    assert meta["replayed"] is False
    done = first.one("done")
    assert done["state"] == {"session_id": sid, "turn": 1, "cart": {"P-0042": 1}, "version": 1}
    assert done["replayed"] is False
    costs = done["downstream"]
    assert costs["ddb_calls"] == 2  # one consistent read, one conditional write
    assert costs["ddb_rcu"] > 0 and costs["ddb_wcu"] > 0
    assert (costs["llm_calls"], costs["llm_retries"], costs["llm_throttles"]) == (1, 0, 0)
    assert costs["tokens_in"] > 0 and costs["tokens_out"] > 0

    meta2, done2 = second.one("meta"), second.one("done")
    assert meta2["cold"] is False and meta2["state_source"] == "memory"
    assert meta2["intent"] == "checkout_question"
    assert done2["state"] == {"session_id": sid, "turn": 2, "cart": {"P-0042": 1}, "version": 2}
    assert done2["downstream"]["ddb_calls"] == 1  # served from memory: the write only
    assert state == done2["state"]

    item = dynamo.item(sid)
    assert item is not None
    assert item["version"] == {"N": "2"} and item["turn"] == {"N": "2"}
    assert item["cart"] == {"M": {"P-0042": {"N": "1"}}}
    assert item["applied_keys"]["M"] == {f"{sid}-t1": {"N": "1"}, f"{sid}-t2": {"N": "2"}}
    assert float(item["updated_at"]["N"]) > 0


def test_state_survives_an_agent_restart_through_the_checkpoint(dynamo: Dynamo) -> None:
    sid = new_session_id()

    async def scenario() -> tuple[Any, Any]:
        async with llm_simulator() as llm_url, aiohttp.ClientSession() as http:
            config = agent_config(llm_url=llm_url, dynamo=dynamo)
            async with AgentServer(config=config) as first_instance:
                before = await post_turn(
                    http, first_instance.url, sid, turn=1, message="add P-0007 please"
                )
            async with AgentServer(config=config) as second_instance:
                after = await post_turn(
                    http, second_instance.url, sid, turn=2, message="Add P-0011 too"
                )
            return before, after

    before, after = asyncio.run(scenario())
    assert before.one("done")["state"]["cart"] == {"P-0007": 1}
    meta = after.one("meta")
    assert meta["state_source"] == "checkpoint" and meta["cold"] is True
    assert after.one("done")["state"] == {
        "session_id": sid,
        "turn": 2,
        "cart": {"P-0007": 1, "P-0011": 1},
        "version": 2,
    }


def test_a_replayed_idempotency_key_does_not_apply_the_side_effect_twice(dynamo: Dynamo) -> None:
    sid = new_session_id()

    async def scenario() -> list[Any]:
        async with llm_simulator() as llm_url, aiohttp.ClientSession() as http:
            config = agent_config(llm_url=llm_url, dynamo=dynamo)
            add: dict[str, Any] = {"turn": 1, "message": "Add P-0001", "key": "k-1"}
            async with AgentServer(config=config) as server:
                replies = [await post_turn(http, server.url, sid, **add) for _ in range(2)]
            async with AgentServer(config=config) as other:  # the retry lands elsewhere
                replies.append(await post_turn(http, other.url, sid, **add))
            return replies

    applied, replay_same, replay_other = asyncio.run(scenario())
    assert applied.one("done")["replayed"] is False
    expected = {"session_id": sid, "turn": 1, "cart": {"P-0001": 1}, "version": 1}
    for replay, source in ((replay_same, "memory"), (replay_other, "checkpoint")):
        assert replay.one("meta")["replayed"] is True
        assert replay.one("meta")["state_source"] == source
        done = replay.one("done")
        assert done["replayed"] is True and done["state"] == expected
        assert done["downstream"]["ddb_wcu"] == 0  # nothing written
    assert dynamo.item(sid)["cart"] == {"M": {"P-0001": {"N": "1"}}}  # type: ignore[index]


def test_a_turn_that_lost_a_race_reloads_the_checkpoint_and_applies_once(dynamo: Dynamo) -> None:
    sid = new_session_id()

    async def scenario() -> Any:
        async with llm_simulator() as llm_url, aiohttp.ClientSession() as http:
            config = agent_config(llm_url=llm_url, dynamo=dynamo)
            async with AgentServer(config=config) as a, AgentServer(config=config) as b:
                await post_turn(http, a.url, sid, turn=1, message="add P-0003")
                await post_turn(http, b.url, sid, turn=2, message="add P-0004")
                # a still caches version 1: its write is refused, it reloads version 2
                return await post_turn(http, a.url, sid, turn=3, message="add P-0005")

    reply = asyncio.run(scenario())
    assert reply.one("meta")["state_source"] == "checkpoint"
    assert reply.one("done")["state"] == {
        "session_id": sid,
        "turn": 3,
        "cart": {"P-0003": 1, "P-0004": 1, "P-0005": 1},
        "version": 3,
    }


def test_an_old_turn_with_an_unknown_key_is_refused_as_stale(dynamo: Dynamo) -> None:
    sid = new_session_id()

    async def scenario() -> Any:
        async with (
            llm_simulator() as llm_url,
            AgentServer(config=agent_config(llm_url=llm_url, dynamo=dynamo)) as server,
            aiohttp.ClientSession() as http,
        ):
            await post_turn(http, server.url, sid, turn=1, message="add P-0002")
            await post_turn(http, server.url, sid, turn=2, message="show me shoes")
            return await post_turn(http, server.url, sid, turn=2, message="add P-0002", key="new")

    reply = asyncio.run(scenario())
    assert reply.status == 409
    assert reply.body is not None and reply.body["error"]["kind"] == "stale_turn"
    assert dynamo.item(sid)["turn"] == {"N": "2"}  # type: ignore[index]


@pytest.mark.parametrize(
    ("case", "token"),
    [
        (
            "bad signature",
            lambda sid: token_for(sid, secret="not-the-secret-but-just-as-long-as-it-0123"),
        ),
        ("wrong sub", lambda sid: token_for("someone-else")),
        ("expired", lambda sid: token_for(sid, ttl_s=-60)),
        ("not a jwt", lambda sid: "garbage"),
    ],
)
def test_a_bad_token_is_refused_with_401(case: str, token: Any) -> None:
    sid = new_session_id()

    async def scenario() -> tuple[Any, int]:
        async with (
            llm_simulator() as llm_url,
            AgentServer(config=agent_config(llm_url=llm_url)) as server,
            aiohttp.ClientSession() as http,
        ):
            reply = await post_turn(http, server.url, sid, turn=1, message="hi", token=token(sid))
            url = f"{server.url}/v1/sessions/{sid}"
            async with http.get(url, headers={"Authorization": f"Bearer {token(sid)}"}) as r:
                return reply, r.status

    reply, get_status = asyncio.run(scenario())
    assert reply.status == 401, case
    assert reply.body is not None and reply.body["error"]["kind"] == "auth"
    assert SECRET not in str(reply.body)
    assert get_status == 401


def test_a_missing_token_key_or_bad_body_is_refused(dynamo: Dynamo) -> None:
    sid = new_session_id()

    async def scenario() -> list[tuple[int, str]]:
        async with (
            llm_simulator() as llm_url,
            AgentServer(config=agent_config(llm_url=llm_url, dynamo=dynamo)) as server,
            aiohttp.ClientSession() as http,
        ):
            url = f"{server.url}/v1/sessions/{sid}/turns"
            auth = {"Authorization": f"Bearer {token_for(sid)}"}
            cases: list[tuple[dict[str, str], Any]] = [
                ({"Idempotency-Key": "k"}, {"turn": 1, "message": "hi"}),  # no token
                (auth, {"turn": 1, "message": "hi"}),  # no key
                (auth | {"Idempotency-Key": "k"}, {"turn": 0, "message": "hi"}),
                (auth | {"Idempotency-Key": "k"}, {"turn": 1, "message": "  "}),
                (auth | {"Idempotency-Key": "k"}, ["not", "an", "object"]),
            ]
            results = []
            for headers, body in cases:
                async with http.post(url, json=body, headers=headers) as r:
                    results.append((r.status, (await r.json())["error"]["kind"]))
            return results

    assert asyncio.run(scenario()) == [
        (401, "auth"),
        (400, "bad_request"),
        (400, "bad_request"),
        (400, "bad_request"),
        (400, "bad_request"),
    ]
    assert dynamo.item(sid) is None


def test_healthz_and_metrics_report_the_turns(dynamo: Dynamo) -> None:
    sid = new_session_id()

    async def scenario() -> tuple[int, dict[str, Any], str]:
        async with (
            llm_simulator() as llm_url,
            AgentServer(config=agent_config(llm_url=llm_url, dynamo=dynamo)) as server,
            aiohttp.ClientSession() as http,
        ):
            await post_turn(http, server.url, sid, turn=1, message="add P-0009")
            await post_turn(http, server.url, sid, turn=1, message="add P-0009")  # replay
            await post_turn(http, server.url, sid, turn=1, message="add P-0009", token="x")
            async with http.get(f"{server.url}/healthz") as r:
                health_status, health = r.status, await r.json()
            async with http.get(f"{server.url}/metrics") as r:
                return health_status, health, await r.text()

    status, health, metrics = asyncio.run(scenario())
    assert status == 200 and health["status"] == "ok"
    assert 'loadlab_agent_turns_total{intent="add_to_cart",status="ok"} 1.0' in metrics
    assert 'loadlab_agent_turns_total{intent="add_to_cart",status="replayed"} 1.0' in metrics
    assert 'loadlab_agent_turns_total{intent="unknown",status="auth"} 1.0' in metrics
    assert "loadlab_agent_cold_starts_total 1.0" in metrics
    assert "loadlab_agent_turns_in_flight 0.0" in metrics
    assert 'loadlab_agent_turn_seconds_count{intent="add_to_cart"} 2.0' in metrics
