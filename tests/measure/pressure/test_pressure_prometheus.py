"""Prometheus pressure sources against the real LLM simulator and a Prometheus query API."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from pressure_support import ServedSimulator

from loadlab.errors import ConfigError
from loadlab.measure.pressure.options import prometheus_source
from loadlab.measure.pressure.prometheus import (
    PrometheusQuery,
    PrometheusScrape,
    name_selector,
)

pytestmark = pytest.mark.integration


def by_key(rows: list[Any]) -> dict[tuple[str, str], float]:
    return {(r.metric, r.dimensions_json): r.value for r in rows}


def test_scrape_matches_the_simulators_own_counters(llm_simulator: ServedSimulator) -> None:
    statuses = [llm_simulator.chat() for _ in range(4)]
    assert 200 in statuses

    rows = PrometheusScrape(url=f"{llm_simulator.url}/metrics", clock=lambda: 1234.5).sample()

    values = by_key(rows)
    instance = f"{llm_simulator.url}/metrics"
    assert {r.source for r in rows} == {"prometheus"}
    assert {r.t for r in rows} == {1234.5}
    ok = json.dumps({"instance": instance, "status": "200"}, separators=(",", ":"))
    assert values[("loadlab_llm_requests_total", ok)] == statuses.count(200)
    assert values[("loadlab_llm_requests_total", ok)] == llm_simulator.counter(
        "loadlab_llm_requests_total", status="200"
    )
    plain = json.dumps({"instance": instance}, separators=(",", ":"))
    for name in ("loadlab_llm_prompt_tokens_total", "loadlab_llm_completion_tokens_total"):
        assert values[(name, plain)] == llm_simulator.counter(name) > 0
    if 429 in statuses:
        limited = json.dumps({"instance": instance, "status": "429"}, separators=(",", ":"))
        assert values[("loadlab_llm_requests_total", limited)] == statuses.count(429)
    assert values[("loadlab_llm_ttft_seconds_count", plain)] == statuses.count(200)
    assert any(r.metric == "loadlab_llm_ttft_seconds_bucket" for r in rows)
    assert not [r for r in rows if r.metric.endswith("_created")]
    assert all(json.loads(r.dimensions_json)["instance"] == instance for r in rows)


def test_the_allow_list_keeps_only_matching_names(llm_simulator: ServedSimulator) -> None:
    llm_simulator.chat()
    source = prometheus_source(f"{llm_simulator.url}/metrics#loadlab_llm_prompt_tokens,*_in_flight")

    names = {r.metric for r in source.sample()}

    assert names == {"loadlab_llm_prompt_tokens_total", "loadlab_llm_requests_in_flight"}


def test_a_bad_url_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="not an http"):
        PrometheusScrape(url="127.0.0.1:9/metrics")


def test_name_selector_is_a_promql_regex() -> None:
    assert name_selector(["loadlab_llm_*", "up"]) == '{__name__=~"loadlab_llm_.*|up"}'


@pytest.fixture
def fake_prometheus() -> Iterator[tuple[str, list[str]]]:
    """A Prometheus query API on 127.0.0.1:0 answering one instant vector; records queries."""
    queries: list[str] = []
    answer = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {
                    "metric": {
                        "__name__": "loadlab_agent_turns_total",
                        "instance": "10.0.0.7:8080",
                        "pod": "agent-1",
                        "intent": "search",
                        "status": "ok",
                    },
                    "value": [1700000000.5, "42"],
                },
                {
                    "metric": {"__name__": "loadlab_agent_turns_created", "pod": "agent-1"},
                    "value": [1700000000.5, "1699999000"],
                },
                {"metric": {"__name__": "loadlab_agent_init_seconds"}, "value": [1.0, "NaN"]},
            ],
        },
    }

    async def query(request: web.Request) -> web.Response:
        queries.append(request.query["query"])
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> int:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return int(runner.addresses[0][1])

    try:
        port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        yield f"http://127.0.0.1:{port}", queries
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_query_mode_gives_the_same_rows_from_a_prometheus_server(
    fake_prometheus: tuple[str, list[str]],
) -> None:
    base, queries = fake_prometheus
    source = prometheus_source(f"{base}/api/v1/query#loadlab_agent_*")
    assert isinstance(source, PrometheusQuery)

    rows = source.sample()

    assert queries == ['{__name__=~"loadlab_agent_.*"}']
    assert [(r.t, r.source, r.metric, r.value) for r in rows] == [
        (1700000000.5, "prometheus", "loadlab_agent_turns_total", 42.0)
    ]
    assert json.loads(rows[0].dimensions_json) == {
        "instance": "10.0.0.7:8080",
        "intent": "search",
        "pod": "agent-1",
        "status": "ok",
    }
