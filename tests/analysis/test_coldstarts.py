"""Cold starts on the run timeline, against synthetic runs whose truth is known.

Seconds are since ``T0``. Every request is one turn (same session, index, start
and latency) unless a test says otherwise.

*Lambda-like run* (120 s, 1 s buckets): 20 environments, each cold on its first
request with init 800 ms.

* ``env-00`` .. ``env-04``: requests at ``5 + i + 10 k`` (k = 0..9); the first
  (cold) takes 1800 ms, the rest 500 ms, except env-00's at 55 s (warm, 3000 ms).
* Spike: ``env-05`` .. ``env-19`` cold at ``40 + 0.05 j`` (j = 0..14), 3000 ms each,
  so 15 requests are in flight from 40.70 s to 43.00 s and never more.
* Each spike environment then serves 10 warm requests of 200 ms at
  ``60 + 5 m + 0.1 j`` (m = 0..9).

215 turns: 150 x 200, 44 x 500, 5 x 1800 (cold), 16 x 3000 (15 cold). P99 (nearest
rank 213) is 3000 ms; 16 turns are at or above it, 15 of them cold; without the
20 cold turns (195 left, rank 194) P99 is 500 ms. Lambda pressure rows say the
init figures come from the REPORT line.

*Pod-like run* (130 s, 2 s buckets): a request every 0.25 s from 5 s to 124.75 s
(480), served round-robin (``alive[k % len(alive)]``) by pods a, b, c, d; pod b
is killed at 60 s (its last request starts at 59.25 s and drains by 63.25 s) and
its replacement e serves from 70 s (first at 70.75 s). Warm requests take 4 s,
each pod's first (cold) request 5 s; init 2000, 2100, 2200, 2300 ms for a..d and
3000 ms for e. In flight: 16 in steady state, plus the initial cold requests
still running: 20 first at 9.75 s.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from loadlab.analysis.coldstarts import cold_start_analysis, peak_in_flight
from loadlab.analysis.rundata import RunData, load_run
from loadlab.analysis.summary import summarize
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, RunManifest
from loadlab.rows import PressureSample, RequestSample, TimelineEvent, TurnRecord

T0 = 1_700_000_000.0


def _manifest(run_dir: RunDirectory, name: str, duration_s: float) -> None:
    run_dir.write_manifest(
        RunManifest(
            run_id=name,
            name=name,
            started_at=T0,
            scenario_path=None,
            scenario_sha256=None,
            scenario={},
            target={"url": "http://127.0.0.1:9"},
            versions={},
            seed=1,
            ended_at=T0 + duration_s,
        )
    )


def _emit(
    rec: RunRecorder,
    k: int,
    start: float,
    latency_s: float,
    instance: str,
    *,
    cold: bool,
    init_ms: float | None = None,
) -> None:
    """One request and its turn (session ``s<k>``, turn 1)."""
    rec.emit(
        RequestSample(
            t_start=T0 + start,
            name="turn:search",
            session_id=f"s{k}",
            turn_index=1,
            attempt=1,
            latency_ms=latency_s * 1000.0,
            ttft_ms=None,
            bytes=10,
            status=200,
            instance_id=instance,
            cold_start=cold,
            init_ms=init_ms,
        )
    )
    rec.emit(
        TurnRecord(
            t_start=T0 + start,
            t_end=T0 + start + latency_s,
            session_id=f"s{k}",
            turn_index=1,
            intent="search",
            ok=True,
            attempts=1,
            latency_ms=latency_s * 1000.0,
            ttft_ms=None,
            interrupted=False,
            instance_id=instance,
            cold_start=cold,
        )
    )


def build_lambda_run(path: Path) -> Path:
    """The Lambda-like run of the module docstring."""
    run_dir = RunDirectory(path)
    path.mkdir(parents=True)
    _manifest(run_dir, "lambda", 120.0)
    k = 0
    with RunRecorder(run_dir) as rec:

        def cold(start: float, latency_s: float, env: str) -> None:
            nonlocal k
            _emit(rec, k, start, latency_s, env, cold=True, init_ms=800.0)
            dims = json.dumps({"function": "agent", "figures": "report", "instance_id": env})
            for metric, value in (("cold_start", 1.0), ("init_ms", 800.0)):
                rec.emit(
                    PressureSample(
                        t=T0 + start,
                        source="lambda",
                        metric=metric,
                        value=value,
                        dimensions_json=dims,
                    )
                )
            k += 1

        for i in range(5):
            for n in range(10):
                start = 5.0 + i + 10 * n
                if n == 0:
                    cold(start, 1.8, f"env-{i:02d}")
                    continue
                _emit(rec, k, start, 3.0 if (i, n) == (0, 5) else 0.5, f"env-{i:02d}", cold=False)
                k += 1
        for j in range(15):
            cold(40.0 + 0.05 * j, 3.0, f"env-{5 + j:02d}")
        for m in range(10):
            for j in range(15):
                _emit(rec, k, 60.0 + 5 * m + 0.1 * j, 0.2, f"env-{5 + j:02d}", cold=False)
                k += 1
    return path


POD_INIT_MS = {"pod-a": 2000.0, "pod-b": 2100.0, "pod-c": 2200.0, "pod-d": 2300.0, "pod-e": 3000.0}


def build_pod_run(path: Path) -> Path:
    """The pod-like run of the module docstring."""
    run_dir = RunDirectory(path)
    path.mkdir(parents=True)
    _manifest(run_dir, "pods", 130.0)
    seen: set[str] = set()
    with RunRecorder(run_dir) as rec:
        for k in range(480):
            start = 5.0 + 0.25 * k
            if start < 60.0:
                alive = ["pod-a", "pod-b", "pod-c", "pod-d"]
            elif start < 70.0:
                alive = ["pod-a", "pod-c", "pod-d"]
            else:
                alive = ["pod-a", "pod-c", "pod-d", "pod-e"]
            pod = alive[k % len(alive)]
            is_cold = pod not in seen
            seen.add(pod)
            init = POD_INIT_MS[pod] if is_cold else None
            _emit(rec, k, start, 5.0 if is_cold else 4.0, pod, cold=is_cold, init_ms=init)
        rec.emit(
            TimelineEvent(
                t=T0 + 60.0,
                kind="fault",
                name="terminate pods",
                target="pod-b",
                attrs={"fault_id": "f1", "phase": "start"},
            )
        )
    return path


@pytest.fixture
def lambda_run(tmp_path: Path) -> RunData:
    return load_run(build_lambda_run(tmp_path / "lambda"))


@pytest.fixture
def pod_run(tmp_path: Path) -> RunData:
    return load_run(build_pod_run(tmp_path / "pods"))


def test_lambda_cold_starts_over_time_and_environments_alive(lambda_run: RunData) -> None:
    a = cold_start_analysis(lambda_run)
    assert a.recorded and a.bucket_s == 1.0
    tl = a.timeline.set_index("t")
    assert int(tl["cold_starts"].sum()) == 20
    assert [int(tl["cold_starts"][float(s)]) for s in (5, 6, 7, 8, 9, 10, 39, 40, 41)] == [
        1, 1, 1, 1, 1, 0, 0, 15, 0,
    ]  # fmt: skip
    # env-00..04 live 5+i .. 95.5+i (one retires a second); spike env j lives 40 .. 105.2+0.1j
    alive = tl["environments_alive"]
    assert [alive[float(s)] for s in (4, 5, 9, 39, 40, 95, 96, 99, 100, 105, 106, 107)] == [
        0, 1, 5, 5, 20, 20, 19, 16, 15, 15, 7, 0,
    ]  # fmt: skip
    in_flight = tl["peak_in_flight"]
    assert [int(in_flight[float(s)]) for s in (39, 40, 41, 42, 43, 44)] == [1, 15, 15, 15, 14, 0]


def test_lambda_needs_an_environment_per_concurrent_request(lambda_run: RunData) -> None:
    env = cold_start_analysis(lambda_run).environments
    assert env.created == 20 and env.counted_by == "instance_id"
    assert env.peak_concurrency == 15
    assert env.peak_concurrency_t == pytest.approx(40.70)
    assert env.per_peak_concurrency == pytest.approx(20 / 15)


def test_lambda_init_durations_and_their_source(lambda_run: RunData) -> None:
    init = cold_start_analysis(lambda_run).init
    assert init.count == 20
    assert (init.p50, init.p90, init.p99, init.max) == (800.0, 800.0, 800.0, 800.0)
    assert (init.source, init.sources, init.source_from) == ("report", {"report": 20}, "pressure")


def test_lambda_share_of_p99_explained_by_cold_starts(lambda_run: RunData) -> None:
    share = cold_start_analysis(lambda_run).p99_share
    assert (share.turns, share.cold_turns) == (215, 20)
    assert share.p99_ms_all == pytest.approx(3000.0)
    assert share.p99_ms_cold == pytest.approx(3000.0)
    assert share.p99_ms_warm == pytest.approx(500.0)
    assert share.p99_ms_without_cold == pytest.approx(500.0)
    assert share.p99_drop_ms == pytest.approx(2500.0)
    assert (share.tail_turns, share.tail_cold_turns) == (16, 15)
    assert share.tail_cold_share == pytest.approx(15 / 16)


def test_lambda_warm_up_ends_with_the_spike(lambda_run: RunData) -> None:
    w = cold_start_analysis(lambda_run).warm_up
    assert w.first_cold_start_s == pytest.approx(5.0)
    assert w.last_cold_start_s == pytest.approx(40.70)
    assert w.cold_starts_after == 0 and w.late == ()


def test_pods_serve_many_requests_each(pod_run: RunData) -> None:
    a = cold_start_analysis(pod_run)
    env = a.environments
    assert env.created == 5
    assert env.peak_concurrency == 20
    assert env.peak_concurrency_t == pytest.approx(9.75)
    assert env.per_peak_concurrency == pytest.approx(0.25)
    assert a.bucket_s == 2.0
    tl = a.timeline.set_index("t")
    assert int(tl["cold_starts"][4.0]) == 4 and int(tl["cold_starts"][70.0]) == 1
    assert int(tl["cold_starts"].sum()) == 5
    # b drains until 63.25 s, e is alive from 70.75 s
    alive = tl["environments_alive"]
    assert [alive[float(s)] for s in (2, 4, 60, 62, 64, 68, 70, 128)] == [0, 4, 4, 4, 3, 3, 4, 4]
    assert int(tl["peak_in_flight"][60.0]) == 16


def test_pods_have_one_late_cold_start_the_replacement(pod_run: RunData) -> None:
    a = cold_start_analysis(pod_run)
    w = a.warm_up
    assert w.first_cold_start_s == pytest.approx(5.0)
    assert w.last_cold_start_s == pytest.approx(70.75)
    assert w.cold_starts_after == 1
    assert [(x.t, x.instance_id) for x in w.late] == [(70.75, "pod-e")]
    init = a.init
    assert (init.count, init.p50, init.p90, init.max) == (5, 2200.0, 3000.0, 3000.0)
    assert init.mean == pytest.approx(11_600 / 5)
    assert init.source is None and init.sources == {}
    share = a.p99_share
    # 475 warm turns of 4 s, 5 cold of 5 s: P99 (rank 476) is 5 s, all of its tail cold.
    assert (share.p99_ms_all, share.p99_ms_without_cold) == (5000.0, 4000.0)
    assert (share.tail_turns, share.tail_cold_share) == (5, 1.0)


def test_a_turn_is_cold_when_any_of_its_requests_was(pod_run: RunData) -> None:
    # Clear the turns' own flags: the cold requests still mark their turns.
    turns = pod_run.turns.assign(cold_start=None)
    share = cold_start_analysis(dataclasses.replace(pod_run, turns=turns)).p99_share
    assert share.cold_turns == 5 and share.p99_ms_without_cold == 4000.0
    # Without any known warm turn there is no warm P99, but P99 without cold turns remains.
    assert share.p99_ms_warm is None


def test_optional_request_columns_name_the_init_source(lambda_run: RunData) -> None:
    req = lambda_run.requests.copy()
    cold = req["cold_start"].eq(True).to_numpy()
    source: list[str | None] = ["agent" if c else None for c in cold]
    for index in np.flatnonzero(cold)[:12]:
        source[index] = "report"
    req["init_source"] = source
    req["billed_ms"] = req["latency_ms"].round()
    init = cold_start_analysis(dataclasses.replace(lambda_run, requests=req)).init
    assert init.sources == {"agent": 8, "report": 12}
    assert (init.source, init.source_from) == ("mixed", "requests")


def test_a_run_without_instance_information_records_nothing(
    fault_run: Callable[..., Path],
) -> None:
    a = cold_start_analysis(load_run(fault_run()))
    assert not a.recorded
    assert a.environments.created == 0 and a.environments.counted_by == "none"
    assert a.timeline["environments_alive"].isna().all()
    assert a.warm_up.last_cold_start_s is None and a.init.count == 0


def test_summary_keeps_the_old_keys_and_adds_the_new(tmp_path: Path) -> None:
    s = summarize(load_run(build_lambda_run(tmp_path / "lambda"))).to_json()
    c = s["cold_starts"]
    assert (c["count"], c["instances"], c["init_ms"]["p50"]) == (20, 20, 800.0)
    assert c["turn_p99_ms_cold"] == 3000.0 and c["turn_p99_ms_warm"] == 500.0
    assert c["environments"]["peak_concurrency"] == 15
    assert c["p99_share"]["p99_ms_without_cold"] == 500.0
    assert c["warm_up"]["last_cold_start_s"] == pytest.approx(40.7)
    assert c["init"]["source"] == "report"
    assert len(c["timeline"]["t"]) == 120 and sum(c["timeline"]["cold_starts"]) == 20
    json.dumps(s, allow_nan=False)


def test_peak_in_flight_counts_half_open_intervals() -> None:
    # [0, 1) and [1, 2) never overlap; [0.5, 3) overlaps both.
    starts = np.array([0.0, 1.0, 0.5])
    ends = np.array([1.0, 2.0, 3.0])
    assert peak_in_flight(starts, ends) == (2, 0.5)
    assert peak_in_flight(np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0])) == (3, 0.0)
    assert peak_in_flight(np.array([]), np.array([]))[0] == 0
