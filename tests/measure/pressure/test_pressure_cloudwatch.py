"""The CloudWatch source against a real ministack, fed by PutMetricData and by the publisher."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pressure_support import ListSink, ServedSimulator, cloudwatch_client, free_port

from loadlab.embedded.cloudwatch_publisher import CloudWatchPublisher
from loadlab.errors import ConfigError
from loadlab.measure.pressure import CloudWatchSource, PressureSampler

pytestmark = pytest.mark.integration


@pytest.fixture
def client(ministack: str) -> Iterator[Any]:
    cw = cloudwatch_client(ministack)
    try:
        yield cw
    finally:
        cw.close()


def put(client: Any, table: str, metric: str, value: float, at: float, **dims: str) -> None:
    client.put_metric_data(
        Namespace="AWS/DynamoDB",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [
                    {"Name": k, "Value": v} for k, v in {"TableName": table, **dims}.items()
                ],
                "Timestamp": datetime.fromtimestamp(at, UTC),
                "Value": value,
                "Unit": "Count",
            }
        ],
    )


def table_rows(rows: list[Any]) -> dict[tuple[str, str, float], float]:
    out = {}
    for r in rows:
        dims = json.loads(r.dimensions_json)
        out[(r.metric, json.dumps(dims, sort_keys=True), r.t)] = r.value
    return out


def dims(**values: object) -> str:
    return json.dumps(values, sort_keys=True)


def test_datapoints_come_back_under_aws_names_once_each(client: Any) -> None:
    second = math.floor(time.time()) - 5
    put(client, "orders", "ConsumedReadCapacityUnits", 3, second + 0.1)
    put(client, "orders", "ConsumedReadCapacityUnits", 4, second + 0.2)
    put(client, "orders", "ThrottledRequests", 2, second + 0.3, Operation="PutItem")
    put(client, "other-table", "ConsumedReadCapacityUnits", 99, second + 0.1)
    source = CloudWatchSource(client=client, resources={"TableName": ["orders"]}, period_s=1)

    rows = source.sample()

    assert {r.source for r in rows} == {"cloudwatch"}
    assert table_rows(rows) == {
        (
            "AWS/DynamoDB/ConsumedReadCapacityUnits",
            dims(TableName="orders", stat="Sum", period_s=1),
            second,
        ): 7.0,
        (
            "AWS/DynamoDB/ConsumedReadCapacityUnits",
            dims(TableName="orders", stat="SampleCount", period_s=1),
            second,
        ): 2.0,
        (
            "AWS/DynamoDB/ThrottledRequests",
            dims(TableName="orders", Operation="PutItem", stat="Sum", period_s=1),
            second,
        ): 2.0,
    }
    assert source.sample() == []  # nothing new: nothing emitted twice

    put(client, "orders", "ConsumedReadCapacityUnits", 5, second + 0.4)  # late data
    revised = table_rows(source.sample())
    assert revised == {
        (
            "AWS/DynamoDB/ConsumedReadCapacityUnits",
            dims(TableName="orders", stat="Sum", period_s=1),
            second,
        ): 12.0,
        (
            "AWS/DynamoDB/ConsumedReadCapacityUnits",
            dims(TableName="orders", stat="SampleCount", period_s=1),
            second,
        ): 3.0,
    }


def test_an_open_period_waits_for_the_final_poll(client: Any) -> None:
    now = time.time()
    put(client, "carts", "WriteThrottleEvents", 1, now)
    source = CloudWatchSource(
        client=client, resources={"TableName": ["carts"]}, period_s=60, settle_s=60
    )

    assert source.sample() == []
    (row,) = source.sample(final=True)
    assert row.metric == "AWS/DynamoDB/WriteThrottleEvents"
    assert row.t == math.floor(now / 60) * 60 and row.value == 1.0


def test_the_publisher_puts_the_simulators_figures_and_the_source_reads_them(
    client: Any, ministack: str, llm_simulator: ServedSimulator
) -> None:
    async def publish() -> tuple[list[int], int]:
        publisher = CloudWatchPublisher(
            client=cloudwatch_client(ministack), llm_url=llm_simulator.url, interval_s=1
        )
        try:
            await publisher.publish_once()
            statuses = [await asyncio.to_thread(llm_simulator.chat) for _ in range(4)]
            return statuses, await publisher.publish_once()
        finally:
            await publisher.stop()

    statuses, put_count = asyncio.run(publish())
    assert put_count == 5  # four counters and the latency statistic set
    source = CloudWatchSource(client=client, resources={"ModelId": ["*"]}, period_s=1)

    totals: dict[tuple[str, str], float] = defaultdict(float)
    for row in source.sample(final=True):
        d = json.loads(row.dimensions_json)
        assert d["ModelId"] == "loadlab-sim-1"
        totals[(row.metric, d["stat"])] += row.value

    ok = statuses.count(200)
    assert totals[("AWS/Bedrock/Invocations", "Sum")] == ok
    assert totals[("AWS/Bedrock/InvocationThrottles", "Sum")] == statuses.count(429)
    assert totals[("AWS/Bedrock/InputTokenCount", "Sum")] == llm_simulator.counter(
        "loadlab_llm_prompt_tokens_total"
    )
    assert totals[("AWS/Bedrock/OutputTokenCount", "Sum")] == llm_simulator.counter(
        "loadlab_llm_completion_tokens_total"
    )
    assert totals[("AWS/Bedrock/InvocationLatency", "SampleCount")] == ok
    duration_ms = 1000 * llm_simulator.counter("loadlab_llm_request_duration_seconds_sum")
    assert totals[("AWS/Bedrock/InvocationLatency", "Sum")] == pytest.approx(duration_ms)


def test_an_unreachable_endpoint_is_counted_with_the_fix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = cloudwatch_client(f"http://127.0.0.1:{free_port()}")
    source = CloudWatchSource(client=dead, period_s=60)
    sampler = PressureSampler(sources=[source], interval_s=5, sink=ListSink())
    with caplog.at_level(logging.WARNING, logger="loadlab.pressure"):
        assert sampler.poll_once() == 0
    dead.close()

    assert sampler.errors == {source.label: 1}
    assert "AWS_ENDPOINT_URL" in caplog.text


def test_a_period_cloudwatch_refuses_is_a_config_error(client: Any) -> None:
    with pytest.raises(ConfigError, match="1, 5, 10, 30 or a multiple of 60"):
        CloudWatchSource(client=client, period_s=45)
