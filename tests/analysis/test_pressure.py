"""Downstream pressure against a run whose true counts are known.

The run (``build_pressure_run``) lasts 120 s on 1 s buckets; seconds are since T0.

* Quotas in the manifest: ``llm_rpm`` 60, ``ddb_wcu`` 5. Fault ``f1`` (an LLM 429
  storm on target ``llm``) starts at 60, its action returns at 60.2 announcing
  ``rpm`` 30 until 90 (``expires_at``); an action clearing the faults of ``llm``
  (``active: false``) ends at 85, so the storm's window is [60, 85].
* Turns: 10 ``search`` turns 10..20 and one ``add_to_cart`` turn at 100 (outside
  the window: 1 LLM call, 3 DynamoDB operations, 2 WCU, 200/50 tokens each);
  10 ``add_to_cart`` turns 65..84 inside it (3 LLM calls, 2 retries, 2 429s each).
* Prometheus, sampled every second 0..119: ``loadlab_llm_requests_total``
  status 200 at 2/s with a restart at 50 (the counter drops to 2) and a baseline
  of 100 from before the run; status 429 at 3/s over 63..89;
  ``loadlab_llm_rate_limited_total`` reason ``rpm`` (baseline 5) at 3/s over
  63..89 and reason ``fault`` at 1/s over 79..89, a series first scraped at 80
  (value 1); WCU at 4/s with a restart at
  40; ``loadlab_llm_requests_in_flight`` 3 on instance a (scraped every 5 s),
  plus 5 on b over 10..19.
* CloudWatch (``period_s`` 10): ``AWS/DynamoDB/ThrottledRequests`` Sum 0 at 30
  and 20 at 40 (first read as 10, then revised), ``AWS/Lambda/ConcurrentExecutions``
  Maximum 7 at 0 and 9 at 10.
* One agent request answered 429 at 70 (10 ms).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loadlab.analysis.amplification import TURN_COSTS
from loadlab.analysis.pressure import pressure_series, pressure_summary
from loadlab.analysis.resample import counter_increase, turn_columns
from loadlab.analysis.rundata import load_run
from loadlab.analysis.summary import summarize
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, RunManifest
from loadlab.rows import PressureSample, RequestSample, TimelineEvent, TurnRecord

T0 = 1_700_000_000.0


def _labels(**labels: str) -> str:
    return json.dumps(labels, sort_keys=True, separators=(",", ":"))


def _turn(start: float, end: float, intent: str, *, llm_calls: int, retries: int = 0) -> TurnRecord:
    return TurnRecord(
        t_start=T0 + start,
        t_end=T0 + end,
        session_id=f"s-{start:g}",
        turn_index=1,
        intent=intent,
        ok=True,
        attempts=1,
        latency_ms=(end - start) * 1000.0,
        ttft_ms=None,
        interrupted=False,
        ddb_calls=3,
        ddb_rcu=0.5,
        ddb_wcu=2.0,
        llm_calls=llm_calls,
        llm_retries=retries,
        llm_throttles=retries,
        tokens_in=200,
        tokens_out=50,
    )


def _prom(t: float, metric: str, value: float, **labels: str) -> PressureSample:
    return PressureSample(
        t=T0 + t, source="prometheus", metric=metric, value=value, dimensions_json=_labels(**labels)
    )


def _cw(t: float, metric: str, stat: str, value: float) -> PressureSample:
    dims = {"TableName": "loadlab-checkpoints", "period_s": 10, "stat": stat}
    return PressureSample(
        t=T0 + t,
        source="cloudwatch",
        metric=metric,
        value=value,
        dimensions_json=json.dumps(dims, sort_keys=True),
    )


def build_pressure_run(path: Path, *, with_samples: bool = True) -> Path:
    """The run described in the module docstring (``with_samples=False``: no pressure rows)."""
    run_dir = RunDirectory(path)
    path.mkdir(parents=True)
    run_dir.write_manifest(
        RunManifest(
            run_id="pressure",
            name="pressure",
            started_at=T0,
            scenario_path=None,
            scenario_sha256=None,
            scenario={},
            target={"url": "http://127.0.0.1:9"},
            versions={},
            seed=3,
            ended_at=T0 + 120,
            extra={"quotas": {"llm_rpm": 60, "ddb_wcu": 5}},
        )
    )
    with RunRecorder(run_dir) as rec:
        for k in range(10):
            rec.emit(_turn(10 + k, 10.5 + k, "search", llm_calls=1))
            rec.emit(_turn(65 + 2 * k, 66 + 2 * k, "add_to_cart", llm_calls=3, retries=2))
        rec.emit(_turn(100, 101, "add_to_cart", llm_calls=1))
        rec.emit(
            RequestSample(
                t_start=T0 + 70,
                name="turn:add_to_cart",
                session_id="s-70",
                turn_index=1,
                attempt=1,
                latency_ms=10.0,
                ttft_ms=None,
                bytes=0,
                status=429,
                error_kind="throttled",
            )
        )
        for t in range(0, 120, 10):
            rec.emit(TimelineEvent(t=T0 + t, kind="users", name="users", attrs={"users": t}))
        storm = {"fault_id": "f1", "activity": "loadlab.chaos.downstream.llm_429_storm"}
        rec.emit(
            TimelineEvent(
                t=T0 + 60, kind="fault", name="429 storm", attrs=storm | {"phase": "start"}
            )
        )
        rec.emit(
            TimelineEvent(
                t=T0 + 60.2,
                kind="fault",
                name="429 storm",
                target="llm",
                attrs=storm
                | {"phase": "end", "status": "succeeded", "rpm": 30, "expires_at": T0 + 90},
            )
        )
        rec.emit(
            TimelineEvent(
                t=T0 + 85,
                kind="fault",
                name="clear llm faults",
                target="llm",
                attrs={"fault_id": "f2", "phase": "end", "status": "succeeded", "active": False},
            )
        )
        if not with_samples:
            return path
        for t in range(120):
            ok = 100 + 2 * t if t < 50 else 2 * (t - 49)
            rec.emit(_prom(t, "loadlab_llm_requests_total", ok, instance="a", status="200"))
            refused = 3 * min(max(t - 63, 0), 26)
            rec.emit(_prom(t, "loadlab_llm_requests_total", refused, instance="a", status="429"))
            rpm = 5 + refused
            rec.emit(_prom(t, "loadlab_llm_rate_limited_total", rpm, instance="a", reason="rpm"))
            if t >= 80:  # a labelled child exists only once first incremented
                fault = min(t - 79, 10)
                rec.emit(
                    _prom(t, "loadlab_llm_rate_limited_total", fault, instance="a", reason="fault")
                )
            wcu = 50 + 4 * t if t < 40 else 4 * (t - 39)
            metric = "loadlab_ddb_consumed_write_capacity_units_total"
            rec.emit(_prom(t, metric, wcu, instance="gate", table="loadlab-checkpoints"))
            if t % 5 == 0:
                rec.emit(_prom(t, "loadlab_llm_requests_in_flight", 3, instance="a"))
            if 10 <= t < 20:
                rec.emit(_prom(t, "loadlab_llm_requests_in_flight", 5, instance="b"))
        throttled = "AWS/DynamoDB/ThrottledRequests"
        rec.emit(_cw(30, throttled, "Sum", 0))
        rec.emit(_cw(40, throttled, "Sum", 10))
        rec.emit(_cw(40, throttled, "Sum", 20))  # CloudWatch revised the period: last wins
        rec.emit(_cw(0, "AWS/Lambda/ConcurrentExecutions", "Maximum", 7))
        rec.emit(_cw(10, "AWS/Lambda/ConcurrentExecutions", "Maximum", 9))
    return path


@pytest.fixture
def pressure_run(tmp_path: Path) -> Path:
    return build_pressure_run(tmp_path / "pressure")


def test_counter_increase_reads_a_drop_as_a_restart() -> None:
    assert counter_increase(np.array([5.0, 7.0, 2.0, 4.0])).tolist() == [0.0, 2.0, 4.0, 6.0]
    assert counter_increase(np.array([3.0])).tolist() == [0.0]


def test_amplification_per_turn_and_by_intent(pressure_run: Path) -> None:
    p = pressure_summary(load_run(pressure_run))
    amp = p["amplification"]
    assert amp["turns"] == 21
    assert amp["totals"]["llm_calls"] == 41  # 10 + 30 + 1
    assert amp["per_turn"]["llm_calls"] == pytest.approx(41 / 21)
    assert amp["per_turn"]["ddb_calls"] == 3.0
    assert amp["per_turn"]["ddb_wcu"] == 2.0
    assert amp["per_turn"]["tokens_in"] == 200.0
    assert amp["by_intent"]["search"]["turns"] == 10
    assert amp["by_intent"]["search"]["per_turn"]["llm_calls"] == 1.0
    assert amp["by_intent"]["add_to_cart"]["per_turn"]["llm_calls"] == pytest.approx(31 / 11)
    assert amp["by_intent"]["add_to_cart"]["per_turn"]["llm_retries"] == pytest.approx(20 / 11)


def test_retry_amplification_inside_the_fault_window_its_expiry_included(
    pressure_run: Path,
) -> None:
    retry = pressure_summary(load_run(pressure_run))["retry_amplification"]
    # The storm's action returned at 60.2, but it lasted until it was cleared (85):
    # the turns of 65..84 are inside it, and the clearing is no fault of its own.
    assert retry["in_fault"]["turns"] == 10
    assert retry["outside"]["turns"] == 11
    assert retry["in_fault"]["per_turn"]["llm_calls"] == 3.0
    assert retry["outside"]["per_turn"]["llm_calls"] == 1.0
    assert retry["ratio"]["llm_calls"] == 3.0
    assert retry["ratio"]["ddb_wcu"] == 1.0
    assert retry["ratio"]["llm_retries"] is None  # no retries outside: no baseline
    (window,) = retry["windows"]
    assert window["fault_id"] == "f1"
    assert (window["t"], window["t_end"]) == (pytest.approx(60.0), pytest.approx(85.0))
    assert window["turns"] == 10


def test_counters_become_rates_across_a_restart(pressure_run: Path) -> None:
    ps = pressure_series(load_run(pressure_run))
    assert ps.width_s == 1.0
    ok_and_429 = ps.frame["prometheus:loadlab_llm_requests_total"].to_numpy()
    expected = np.full(120, 2.0)
    expected[63:89] += 3.0
    expected[119] = np.nan  # after the last scrape: unknown, not zero
    np.testing.assert_allclose(ok_and_429, expected)
    wcu = ps.frame["prometheus:loadlab_ddb_consumed_write_capacity_units_total"].to_numpy()
    np.testing.assert_allclose(wcu[:119], 4.0)  # the restart at 40 is no dip, no spike
    assert np.nansum(wcu) == pytest.approx(4 * 119)


def test_gauges_sum_instances_and_cloudwatch_spreads_over_its_period(pressure_run: Path) -> None:
    ps = pressure_series(load_run(pressure_run))
    in_flight = ps.frame["prometheus:loadlab_llm_requests_in_flight"].to_numpy()
    # a's 3 holds between its scrapes, and is unknown after its last one (115)
    assert in_flight[9] == 3 and in_flight[10] == 8 and in_flight[19] == 8 and in_flight[20] == 3
    assert in_flight[114] == 3 and in_flight[115] == 3 and np.isnan(in_flight[116])
    throttles = ps.frame["cloudwatch:AWS/DynamoDB/ThrottledRequests:Sum"].to_numpy()
    # CloudWatch was read from 0 (the Lambda datapoints): no datapoint there means none.
    np.testing.assert_allclose(throttles[0:40], 0.0)
    np.testing.assert_allclose(throttles[40:50], 2.0)  # the revised 20 over 10 s
    # After the last period CloudWatch answered for, the value is unknown.
    assert np.isnan(throttles[50:]).all()
    held = ps.frame["cloudwatch:AWS/Lambda/ConcurrentExecutions:Maximum"].to_numpy()
    assert held[0] == 7 and held[9] == 7 and held[10] == 9 and held[19] == 9


def test_peaks_and_headroom_against_the_quota_in_force(pressure_run: Path) -> None:
    p = pressure_summary(load_run(pressure_run))
    peaks = p["peaks"]
    assert peaks["llm_requests_per_s"]["value"] == 5.0
    assert peaks["llm_requests_per_s"]["t"] == 63.0
    assert peaks["llm_requests_per_s"]["source"] == "prometheus"
    # 26 s at 5/s and 34 s at 2/s in the trailing minute ending with bucket 88
    assert peaks["llm_rpm"]["value"] == pytest.approx(198.0)
    assert peaks["llm_rpm"]["t"] == 88.0
    assert peaks["llm_429_per_s"]["value"] == 4.0 and peaks["llm_429_per_s"]["t"] == 79.0
    assert peaks["llm_in_flight"]["value"] == 8.0
    assert peaks["ddb_wcu_per_s"]["value"] == 4.0
    assert peaks["ddb_throttles_per_s"]["value"] == 2.0
    assert peaks["ddb_throttles_per_s"]["source"] == "cloudwatch"
    assert peaks["ddb_calls_per_s"]["source"] == "turns"  # no sampled source for it

    rpm = p["headroom"]["llm_rpm"]
    assert rpm["limit"] == 60
    # set to 30 by the storm until it was cleared at 85 (before its expiry at 90)
    assert rpm["limit_changes"] == [
        {
            "t": pytest.approx(60.2),
            "until": pytest.approx(85.0),
            "value": 30.0,
            "fault": "429 storm",
        }
    ]
    # In the minute ending with bucket 84: 22 s at 5/s and 38 s at 2/s, 186 requests
    # against the storm's 30: 6.2 times the quota (refused attempts included).
    assert rpm["peak_utilisation"] == pytest.approx(6.2)
    assert rpm["t_peak_utilisation"] == 84.0
    assert rpm["headroom"] == pytest.approx(-5.2)
    wcu = p["headroom"]["ddb_wcu"]
    assert (wcu["peak"], wcu["limit"]) == (4.0, 5)
    assert wcu["peak_utilisation"] == pytest.approx(0.8)
    assert wcu["headroom"] == pytest.approx(0.2)
    assert set(p["headroom"]) == {"llm_rpm", "ddb_wcu"}  # no tpm or rcu quota known


def test_first_hit_of_each_quota_on_the_timeline(pressure_run: Path) -> None:
    hits = pressure_summary(load_run(pressure_run))["first_hit"]
    llm = hits["llm"]
    # The rpm counter's baseline of 5 (from before the run) is no hit; it moved 63 -> 64.
    assert (llm["t"], llm["not_before"], llm["source"]) == (64.0, 63.0, "prometheus")
    assert llm["t_epoch"] == T0 + 64
    assert "reason=rpm" in llm["evidence"] and "+3" in llm["evidence"]
    # The reason=fault series appeared at 80 with 1: it started from 0 at the scrape before.
    assert llm["by_reason"] == {"rpm": 64.0, "fault": 80.0}
    assert llm["sources"]["turns"]["t"] == 66.0  # the first throttled turn ended at 66
    assert llm["sources"]["turns"]["not_before"] == 65.0
    ddb = hits["ddb"]
    assert (ddb["t"], ddb["not_before"], ddb["source"]) == (50.0, 40.0, "cloudwatch")
    assert hits["agent"]["t"] == pytest.approx(70.01)
    assert "lambda" not in hits


def test_summary_carries_the_section_as_strict_json(pressure_run: Path) -> None:
    s = summarize(load_run(pressure_run))
    text = json.dumps(s.to_json()["pressure"], allow_nan=False)
    p = json.loads(text)
    assert p["sources"] == ["cloudwatch", "prometheus"]
    assert p["samples"] == {"cloudwatch": 5, "prometheus": 120 * 4 + 24 + 10 + 40}
    keys = {row["key"] for row in p["series"]}
    assert "cloudwatch:AWS/Lambda/ConcurrentExecutions:Maximum" in keys
    assert not any(k.startswith(("turns:", "limit:")) for k in keys)


def test_without_samples_the_turns_still_give_amplification_and_peaks(tmp_path: Path) -> None:
    p = pressure_summary(load_run(build_pressure_run(tmp_path / "bare", with_samples=False)))
    assert p["sources"] == [] and p["series"] == []
    assert p["retry_amplification"]["ratio"]["llm_calls"] == 3.0
    assert p["peaks"]["llm_requests_per_s"]["source"] == "turns"
    # each in-fault turn (3 calls) ends alone in its 1 s bucket
    assert p["peaks"]["llm_requests_per_s"]["value"] == 3.0
    assert p["first_hit"]["llm"]["source"] == "turns"
    assert p["first_hit"]["llm"]["t"] == 66.0
    assert "ddb" not in p["first_hit"]


def test_agent_counts_are_spread_over_each_turn(tmp_path: Path) -> None:
    path = tmp_path / "long"
    path.mkdir()
    run_dir = RunDirectory(path)
    run_dir.write_manifest(
        RunManifest(
            run_id="long",
            name="long",
            started_at=T0,
            scenario_path=None,
            scenario_sha256=None,
            scenario={},
            target={},
            versions={},
            seed=0,
            ended_at=T0 + 60,
        )
    )
    with RunRecorder(run_dir) as rec:
        rec.emit(_turn(30, 34, "search", llm_calls=8))  # 8 calls over 4 s
        rec.emit(_turn(40, 40, "search", llm_calls=5))  # an instant turn counts where it ended
    ps = pressure_series(load_run(path))
    calls = ps.frame["turns:llm_calls"].to_numpy()
    expected = np.zeros(60)
    expected[30:34] = 2.0
    expected[40] = 5.0
    np.testing.assert_allclose(calls, expected, atol=1e-9)


def test_a_limit_set_in_simulated_time_is_converted_to_real_time(
    known_run: Callable[..., Path],
) -> None:
    """A DynamoDB cut of 0.5 WCU per simulated second at time_scale 0.05 is 10 WCU/s."""
    from loadlab.analysis.pressure import _limits

    path = known_run()
    event = {
        "t": 1_700_000_050.0,
        "kind": "fault",
        "name": "dynamodb capacity cut",
        "target": "gate",
        "lease_expires": None,
        "attrs": {"phase": "end", "wcu": 0.5, "time_scale": 0.05, "expires_at": 1_700_000_080.0},
    }
    with (path / "events.jsonl").open("a") as fh:
        fh.write(json.dumps(event) + "\n")
    _, changes = _limits(load_run(path))
    (change,) = [c for c in changes if c.quota == "ddb_wcu"]
    assert change.value == pytest.approx(10.0)


def test_per_turn_counts_are_spread_over_each_turn_as_a_brute_force_sum_says() -> None:
    rng = np.random.default_rng(11)
    n = 400
    start = rng.uniform(0.0, 50.0, n)
    end = start + np.where(rng.random(n) < 0.2, 0.0, rng.exponential(3.0, n))  # some instant
    start[:3] = end[:3] = [10.0, 20.0, 50.0]  # instant turns on bucket edges
    turns = pd.DataFrame(
        {
            "t_start": 1_000.0 + start,
            "t_end": 1_000.0 + end,
            **{c: rng.integers(0, 4, n).astype(float) for c in TURN_COSTS[1:]},
        }
    )
    edges = 1_000.0 + np.arange(0.0, 61.0, 5.0)
    got = dict(turn_columns(turns, edges))  # SeriesInfo -> rate per bucket
    for info, rates in got.items():
        w = turns[info.metric].to_numpy()
        expected = []
        for lo, hi in itertools.pairwise(edges):
            d = np.maximum(turns["t_end"] - turns["t_start"], 1e-12).to_numpy()
            share = (np.minimum(turns["t_end"], hi) - np.maximum(turns["t_start"], lo)) / d
            ramped = np.clip(share.to_numpy(), 0.0, 1.0)
            instant = (turns["t_end"] - turns["t_start"]).to_numpy() <= 1e-9
            at = turns["t_end"].to_numpy()
            inside = np.where(instant, (at >= lo) & (at < hi), ramped)
            expected.append(float((w * inside).sum()) / (hi - lo))
        assert rates == pytest.approx(expected, abs=1e-9), info.key
    assert len(got) == len(TURN_COSTS) - 1
