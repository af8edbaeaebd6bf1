"""The agent's LLM calls: streaming, token counts, 429/5xx retries, failures mid-turn."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from agent_support import (
    LLM_ADMIN_HEADERS,
    Dynamo,
    agent_config,
    llm_simulator,
    new_session_id,
    post_turn,
    scripted_llm,
    serving,
    status_answer,
    streamed_answer,
    token_for,
)
from aiohttp import web

from loadlab.embedded.agent.llm import ChatMessage, LLMClient, LLMUnavailable
from loadlab.embedded.agent.service import AgentServer
from loadlab.embedded.agent.state import DownstreamCounts

pytestmark = pytest.mark.integration

PROMPT: list[ChatMessage] = [{"role": "user", "content": "x" * 400}]


async def _collect(app: web.Application, **client_args: Any) -> tuple[list[str], Any, Any]:
    counts = DownstreamCounts()
    pieces: list[str] = []
    error: LLMUnavailable | None = None
    async with serving(app) as url:
        client = LLMClient(base_url=url, model="m", time_scale=0.01, **client_args)
        await client.start()
        try:
            async for piece in client.stream(PROMPT, counts):
                pieces.append(piece)
        except LLMUnavailable as exc:
            error = exc
        finally:
            await client.close()
    return pieces, counts, error


def test_a_stream_yields_its_pieces_and_counts_usage_tokens() -> None:
    app, seen = scripted_llm(streamed_answer("Sure", ", here", " it is"))
    pieces, counts, error = asyncio.run(_collect(app))
    assert error is None and pieces == ["Sure", ", here", " it is"]
    assert (counts.llm_calls, counts.tokens_in, counts.tokens_out) == (1, 50, 3)
    assert seen == [0]


def test_without_usage_tokens_are_estimated() -> None:
    app, _ = scripted_llm(streamed_answer("a", "b", usage=False))
    _, counts, _ = asyncio.run(_collect(app))
    assert counts.tokens_out == 2 and counts.tokens_in == 100  # 400 characters / 4


def test_a_5xx_is_retried_after_a_backoff_and_counted() -> None:
    app, seen = scripted_llm(status_answer(503), streamed_answer("ok"))
    pieces, counts, error = asyncio.run(_collect(app))
    assert error is None and pieces == ["ok"]
    assert (counts.llm_calls, counts.llm_retries, counts.llm_throttles) == (2, 1, 0)
    assert seen == [0, 1]


def test_429s_beyond_the_budget_make_the_llm_unavailable() -> None:
    app, seen = scripted_llm(status_answer(429, {"Retry-After": "1"}))
    pieces, counts, error = asyncio.run(_collect(app, max_attempts=3))
    assert pieces == [] and isinstance(error, LLMUnavailable) and "429" in str(error)
    assert (counts.llm_calls, counts.llm_retries, counts.llm_throttles) == (3, 2, 3)
    assert len(seen) == 3


def test_a_client_error_and_a_broken_stream_are_not_retried() -> None:
    for app, seen in (
        scripted_llm(status_answer(400), streamed_answer("never")),
        scripted_llm(streamed_answer("half", usage=False, before_rest=_hang_up)),
    ):
        _, counts, error = asyncio.run(_collect(app))
        assert isinstance(error, LLMUnavailable)
        assert counts.llm_calls == 1 and seen == [0]


async def _hang_up() -> None:
    raise ConnectionResetError("the LLM went away mid-stream")


def test_a_turn_retries_a_429_honouring_retry_after(dynamo: Dynamo) -> None:
    sid = new_session_id()
    app, seen = scripted_llm(
        status_answer(429, {"Retry-After": "1"}), streamed_answer("Added", " it.")
    )

    async def scenario() -> Any:
        async with (
            serving(app) as llm_url,
            AgentServer(config=agent_config(llm_url=llm_url, dynamo=dynamo)) as server,
            aiohttp.ClientSession() as http,
        ):
            return await post_turn(http, server.url, sid, turn=1, message="add P-0100")

    reply = asyncio.run(scenario())
    assert reply.names() == ["meta", "token", "token", "done"] and reply.text == "Added it."
    done = reply.one("done")
    assert done["downstream"]["llm_calls"] == 2
    assert done["downstream"]["llm_retries"] == 1
    assert done["downstream"]["llm_throttles"] == 1
    assert done["state"]["cart"] == {"P-0100": 1}
    assert seen == [0, 1]


def test_an_llm_outage_ends_the_stream_with_an_error_and_the_retry_replays(
    dynamo: Dynamo,
) -> None:
    sid = new_session_id()

    async def scenario() -> tuple[Any, Any]:
        async with (
            llm_simulator() as llm_url,
            AgentServer(config=agent_config(llm_url=llm_url, dynamo=dynamo)) as server,
            aiohttp.ClientSession() as http,
        ):
            async with http.post(
                f"{llm_url}/admin/faults",
                json={"reject_fraction": 1.0, "expires_at": time.time() + 60},
                headers=LLM_ADMIN_HEADERS,
            ) as r:
                assert r.status == 200
            failed = await post_turn(http, server.url, sid, turn=1, message="add P-0150", key="k")
            async with http.delete(f"{llm_url}/admin/faults", headers=LLM_ADMIN_HEADERS) as r:
                assert r.status == 200
            retried = await post_turn(http, server.url, sid, turn=1, message="add P-0150", key="k")
            return failed, retried

    failed, retried = asyncio.run(scenario())
    assert failed.status == 200 and failed.names() == ["meta", "error"]
    assert failed.one("error")["kind"] == "llm_unavailable"
    # The cart change was checkpointed before the LLM call: the retry must not repeat it.
    assert retried.one("meta")["replayed"] is True
    assert retried.one("done")["state"]["cart"] == {"P-0150": 1}
    assert retried.one("done")["state"]["turn"] == 1


def test_stop_lets_an_in_flight_turn_finish_and_refuses_new_connections(
    dynamo: Dynamo,
) -> None:
    sid = new_session_id()

    async def scenario() -> tuple[list[str], bool, bool]:
        streaming, release = asyncio.Event(), asyncio.Event()

        async def pause_mid_answer() -> None:
            streaming.set()
            await release.wait()

        app, _ = scripted_llm(streamed_answer("one", " two", before_rest=pause_mid_answer))
        async with serving(app) as llm_url, aiohttp.ClientSession() as http:
            server = AgentServer(config=agent_config(llm_url=llm_url, dynamo=dynamo))
            await server.start()
            turn = asyncio.create_task(post_turn(http, server.url, sid, turn=1, message="add P-20"))
            await streaming.wait()
            stopping = asyncio.create_task(server.stop())
            refused = await _refused(server.url)
            stopped_early = stopping.done()
            release.set()
            reply = await turn
            await stopping
            return reply.names(), refused, stopped_early

    names, refused, stopped_early = asyncio.run(scenario())
    assert refused, "the stopping server still accepted connections"
    assert not stopped_early, "stop() returned before the in-flight turn finished"
    assert names == ["meta", "token", "token", "done"]


async def _refused(url: str) -> bool:
    """Whether new connections to ``url`` are refused within a few seconds."""
    async with aiohttp.ClientSession() as probe:
        for _ in range(300):
            try:
                async with probe.get(f"{url}/healthz") as r:
                    await r.read()
            except aiohttp.ClientConnectionError:
                return True
            await asyncio.sleep(0.01)
    return False


def test_events_reach_the_client_as_they_are_produced(dynamo: Dynamo) -> None:
    sid = new_session_id()

    async def scenario() -> tuple[list[str], list[str]]:
        release = asyncio.Event()

        async def hold() -> None:
            await release.wait()

        app, _ = scripted_llm(streamed_answer("first", " second", before_rest=hold))
        async with (
            serving(app) as llm_url,
            AgentServer(config=agent_config(llm_url=llm_url, dynamo=dynamo)) as server,
            aiohttp.ClientSession() as http,
        ):
            headers = {"Authorization": f"Bearer {token_for(sid)}", "Idempotency-Key": "k"}
            body = {"turn": 1, "message": "add P-0030"}
            url = f"{server.url}/v1/sessions/{sid}/turns"
            async with http.post(url, json=body, headers=headers) as response:
                before: list[str] = []
                while "event: token" not in before and len(before) < 20:
                    # the LLM holds the rest of its answer: nothing buffers these lines
                    line = await asyncio.wait_for(response.content.readline(), timeout=10)
                    before.append(line.decode().strip())
                release.set()
                after = [line.decode().strip() async for line in response.content]
            return before, after

    before, after = asyncio.run(scenario())
    assert before[0] == "event: meta"
    assert "event: done" not in before and "event: done" in after
