"""The simulator over real HTTP: OpenAI wire format, errors, quotas, metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from llm_support import FAST, chat, decode, metric, served, sse_data

from loadlab.embedded.llm.config import LatencyModel, Quotas, SimulatorConfig

pytestmark = pytest.mark.integration


def test_stream_sends_token_chunks_finish_usage_and_done() -> None:
    async def scenario() -> list[str]:
        async with served(FAST) as s:
            body = chat(stream=True, stream_options={"include_usage": True})
            async with s.post("/v1/chat/completions", json=body) as r:
                assert r.status == 200
                assert r.headers["Content-Type"].startswith("text/event-stream")
                return await sse_data(r)

    payloads = asyncio.run(scenario())
    assert payloads[-1] == "[DONE]"
    chunks = [decode(p) for p in payloads[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    *tokens, finish, usage_chunk = chunks
    assert tokens[0]["choices"][0]["delta"]["role"] == "assistant"
    pieces = [c["choices"][0]["delta"]["content"] for c in tokens]
    assert all(p.strip() and len(p.split()) == 1 for p in pieces)
    assert all(c["choices"][0]["finish_reason"] is None and c["usage"] is None for c in tokens)
    assert finish["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["completion_tokens"] == len(pieces)
    assert 5 <= len(pieces) <= 12
    assert usage["prompt_tokens"] == 7  # "hello, shopping assistant" is 25 chars
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stream_without_include_usage_has_no_usage() -> None:
    async def scenario() -> list[str]:
        async with served(FAST) as s, s.post("/v1/chat/completions", json=chat(stream=True)) as r:
            return await sse_data(r)

    payloads = asyncio.run(scenario())
    assert payloads[-1] == "[DONE]"
    chunks = [decode(p) for p in payloads[:-1]]
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_non_streaming_completion_and_max_tokens_cap() -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with served(FAST) as s:
            async with s.post("/v1/chat/completions", json=chat("x" * 40)) as r:
                assert r.status == 200
                full = await r.json()
            async with s.post("/v1/chat/completions", json=chat(max_tokens=2)) as r:
                capped = await r.json()
            return full, capped

    full, capped = asyncio.run(scenario())
    assert full["object"] == "chat.completion" and full["model"] == "m"
    choice = full["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    assert full["usage"]["prompt_tokens"] == 10
    assert full["usage"]["completion_tokens"] == len(choice["message"]["content"].split())
    assert capped["usage"]["completion_tokens"] == 2
    assert capped["choices"][0]["finish_reason"] == "length"


def test_same_seed_gives_the_same_text_in_two_apps_of_one_process() -> None:
    async def content(config: SimulatorConfig) -> str:
        async with served(config) as s, s.post("/v1/chat/completions", json=chat()) as r:
            return str((await r.json())["choices"][0]["message"]["content"])

    async def scenario() -> tuple[str, str, str]:
        return (
            await content(FAST),
            await content(FAST),
            await content(dataclasses.replace(FAST, seed=8)),
        )

    first, again, other = asyncio.run(scenario())
    assert first == again
    assert first != other


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[]", "invalid_body"),
        (json.dumps({"model": "m"}).encode(), "missing_messages"),
        (json.dumps({"messages": []}).encode(), "missing_messages"),
        (json.dumps({"messages": ["hi"]}).encode(), "invalid_message"),
        (json.dumps(chat(max_tokens=0)).encode(), "invalid_max_tokens"),
        (json.dumps(chat(stream="yes")).encode(), "invalid_stream"),
    ],
)
def test_bad_requests_get_400_with_openai_error(data: bytes, code: str) -> None:
    async def scenario() -> tuple[int, dict[str, Any]]:
        async with served(FAST) as s:
            headers = {"Content-Type": "application/json"}
            async with s.post("/v1/chat/completions", data=data, headers=headers) as r:
                return r.status, await r.json()

    status, body = asyncio.run(scenario())
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_models_and_healthz() -> None:
    async def scenario() -> tuple[dict[str, Any], int]:
        async with served(FAST) as s:
            async with s.get("/v1/models") as r:
                models = await r.json()
            async with s.get("/healthz") as r:
                return models, r.status

    models, health = asyncio.run(scenario())
    assert models["data"][0]["id"] == FAST.model
    assert health == 200


def test_rpm_quota_answers_429_with_retry_after() -> None:
    config = dataclasses.replace(FAST, quotas=Quotas(rpm=1))

    async def scenario() -> tuple[int, int, dict[str, str], dict[str, Any]]:
        async with served(config) as s:
            async with s.post("/v1/chat/completions", json=chat()) as first:
                await first.read()
            async with s.post("/v1/chat/completions", json=chat()) as second:
                headers = dict(second.headers)
                return first.status, second.status, headers, await second.json()

    first, second, headers, body = asyncio.run(scenario())
    assert (first, second) == (200, 429)
    assert int(headers["Retry-After"]) == 1  # the window is 0.6 s at time_scale 0.01
    assert 1 <= int(headers["retry-after-ms"]) <= 600
    assert body["error"]["type"] == "rate_limit_exceeded"
    assert body["error"]["code"] == "rpm"


def test_concurrency_limit_rejects_while_a_stream_is_open() -> None:
    # One token a second: the first stream stays open while the second request arrives.
    slow = LatencyModel(token_interval_median_ms=100_000, min_output_tokens=5, max_output_tokens=5)
    config = dataclasses.replace(FAST, latency=slow, quotas=Quotas(max_concurrency=1))

    async def scenario() -> tuple[int, dict[str, Any], str]:
        async with served(config) as s:
            async with s.post("/v1/chat/completions", json=chat(stream=True)) as first:
                await first.content.readline()  # first token sent: the request is in flight
                async with s.post("/v1/chat/completions", json=chat()) as second:
                    body = await second.json()
                    status = second.status
                    first.close()
            async with s.get("/metrics") as r:
                return status, body, await r.text()

    status, body, text = asyncio.run(scenario())
    assert status == 429
    assert body["error"]["type"] == "concurrency_limit"
    assert metric(text, 'loadlab_llm_rate_limited_total{reason="concurrency"}') == 1


def test_metrics_count_requests_tokens_and_latency() -> None:
    config = dataclasses.replace(FAST, quotas=Quotas(rpm=2))

    async def scenario() -> tuple[list[int], str, str]:
        async with served(config) as s:
            statuses = []
            for body in (chat("y" * 8), chat("y" * 8, stream=True), chat("z")):
                async with s.post("/v1/chat/completions", json=body) as r:
                    await r.read()
                    statuses.append(r.status)
            async with s.post("/v1/chat/completions", data=b"{") as r:
                statuses.append(r.status)
            async with s.get("/metrics") as r:
                return statuses, r.headers["Content-Type"], await r.text()

    statuses, content_type, text = asyncio.run(scenario())
    assert statuses == [200, 200, 429, 400]
    assert content_type.startswith("text/plain")
    assert metric(text, 'loadlab_llm_requests_total{status="200"}') == 2
    assert metric(text, 'loadlab_llm_requests_total{status="429"}') == 1
    assert metric(text, 'loadlab_llm_requests_total{status="400"}') == 1
    assert metric(text, 'loadlab_llm_rate_limited_total{reason="rpm"}') == 1
    assert metric(text, "loadlab_llm_requests_in_flight") == 0
    assert metric(text, "loadlab_llm_prompt_tokens_total") == 4
    assert 10 <= metric(text, "loadlab_llm_completion_tokens_total") <= 24
    assert metric(text, "loadlab_llm_ttft_seconds_count") == 2
    assert metric(text, "loadlab_llm_request_duration_seconds_count") == 2


def test_finished_requests_give_their_concurrency_slot_back() -> None:
    config = dataclasses.replace(FAST, quotas=Quotas(max_concurrency=1))

    async def scenario() -> list[int]:
        async with served(config) as s:
            statuses = []
            for stream in (False, True, False):
                async with s.post("/v1/chat/completions", json=chat(stream=stream)) as r:
                    await r.read()
                    statuses.append(r.status)
            return statuses

    assert asyncio.run(scenario()) == [200, 200, 200]
