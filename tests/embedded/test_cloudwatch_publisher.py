"""The publisher's translation of Prometheus counters into CloudWatch datums (AWS's names)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from loadlab.embedded.cloudwatch_publisher import datums, read_dynamodb, read_llm

AT = datetime(2026, 1, 1, tzinfo=UTC)


def llm_text(*, ok: float, throttled: float, prompt: float, count: float, total: float) -> str:
    # One observation of 0.3 s lands in le=0.5; `count` - 1 more in le=2 (the last finite bound).
    in_half = 1.0 if count else 0.0
    return f"""\
# TYPE loadlab_llm_requests_total counter
loadlab_llm_requests_total{{status="200"}} {ok}
loadlab_llm_requests_total{{status="429"}} {throttled}
loadlab_llm_requests_total{{status="400"}} 5.0
loadlab_llm_requests_total{{status="499"}} 1.0
# TYPE loadlab_llm_prompt_tokens_total counter
loadlab_llm_prompt_tokens_total {prompt}
# TYPE loadlab_llm_completion_tokens_total counter
loadlab_llm_completion_tokens_total 7.0
# TYPE loadlab_llm_request_duration_seconds histogram
loadlab_llm_request_duration_seconds_bucket{{le="0.25"}} 0.0
loadlab_llm_request_duration_seconds_bucket{{le="0.5"}} {in_half}
loadlab_llm_request_duration_seconds_bucket{{le="2.0"}} {count}
loadlab_llm_request_duration_seconds_bucket{{le="+Inf"}} {count}
loadlab_llm_request_duration_seconds_count {count}
loadlab_llm_request_duration_seconds_sum {total}
"""


def by_name(data: list[Any]) -> dict[str, Any]:
    return {d["MetricName"]: d for d in data}


def test_increases_go_out_under_bedrock_names_with_the_model_id() -> None:
    first = read_llm(llm_text(ok=2, throttled=1, prompt=100, count=2, total=1.3), "sim-7")
    second = read_llm(llm_text(ok=5, throttled=4, prompt=250, count=5, total=4.3), "sim-7")

    out = by_name(datums(second, first, at=AT))

    assert set(out) == {
        "Invocations",
        "InvocationThrottles",
        "InputTokenCount",
        "OutputTokenCount",
        "InvocationLatency",
    }
    assert {d["Dimensions"][0]["Value"] for d in out.values()} == {"sim-7"}
    assert out["Invocations"]["Value"] == 3  # 200s (and 499s) only; 400s are client errors
    assert out["InvocationThrottles"]["Value"] == 3
    assert out["InputTokenCount"]["Value"] == 150
    assert out["OutputTokenCount"]["Value"] == 0
    assert out["InvocationLatency"]["Unit"] == "Milliseconds"
    assert out["InvocationLatency"]["StatisticValues"] == {
        "SampleCount": 3.0,
        "Sum": 3000.0,
        "Minimum": 500.0,  # all three new ones fell in (0.5, 2]
        "Maximum": 2000.0,
    }


def test_the_first_reading_counts_from_zero_and_a_restart_counts_again() -> None:
    before = read_llm(llm_text(ok=9, throttled=0, prompt=900, count=0, total=0), "m")
    restarted = read_llm(llm_text(ok=2, throttled=0, prompt=40, count=1, total=0.3), "m")

    assert by_name(datums(before, None, at=AT))["Invocations"]["Value"] == 10
    assert "InvocationLatency" not in by_name(datums(before, None, at=AT))
    after = by_name(datums(restarted, before, at=AT))
    assert after["Invocations"]["Value"] == 3
    assert after["InputTokenCount"]["Value"] == 40
    stats = after["InvocationLatency"]["StatisticValues"]
    assert (stats["SampleCount"], stats["Minimum"], stats["Maximum"]) == (1.0, 250.0, 500.0)


def test_dynamodb_gate_counters_become_dynamodb_metrics() -> None:
    text = """\
# TYPE loadlab_ddb_consumed_write_capacity_units_total counter
loadlab_ddb_consumed_write_capacity_units_total{table="carts",operation="PutItem"} 3.0
loadlab_ddb_consumed_write_capacity_units_total{table="carts",operation="UpdateItem"} 2.0
# TYPE loadlab_ddb_throttled_requests_total counter
loadlab_ddb_throttled_requests_total{table="carts",operation="PutItem"} 4.0
# TYPE something_else_total counter
something_else_total 1.0
"""
    out = datums(read_dynamodb(text), None, at=AT)

    assert [(d["MetricName"], d["Dimensions"], d["Value"]) for d in out] == [
        ("ConsumedWriteCapacityUnits", [{"Name": "TableName", "Value": "carts"}], 5.0),
        (
            "ThrottledRequests",
            [{"Name": "Operation", "Value": "PutItem"}, {"Name": "TableName", "Value": "carts"}],
            4.0,
        ),
    ]
