"""The harness's Prometheus metrics: fed by rows, read by a real scrape of the endpoint."""

from __future__ import annotations

import json
import random
import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families
from row_samples import request_sample  # tests/row_samples.py

from loadlab.app.options import RunOptions
from loadlab.cli import main
from loadlab.errors import ConfigError
from loadlab.load.launch import LocustLaunch
from loadlab.measure.prom_metrics import (
    LATENCY_BUCKETS_S,
    MeteredSink,
    RunMetrics,
    check_metrics_port,
)
from loadlab.rows import (
    PressureSample,
    RequestSample,
    SessionRecord,
    TimelineEvent,
    TurnRecord,
    event_line,
    row_to_dict,
)

T0 = 1_700_000_000.0


def turn(i: int, *, ok: bool = True, kind: str | None = None, ttft: float | None = 400.0):
    return TurnRecord(
        t_start=T0 + i,
        t_end=T0 + i + 1.5,
        session_id=f"s{i}",
        turn_index=0,
        intent="search",
        ok=ok,
        attempts=1,
        latency_ms=1500.0,
        ttft_ms=ttft,
        interrupted=False,
        error_kind=kind,
        llm_calls=2,
        llm_throttles=1 if i == 0 else 0,
    )


def session(verdict: str) -> SessionRecord:
    return SessionRecord(
        session_id=verdict,
        persona="p",
        seed=1,
        t_start=T0,
        t_end=T0 + 5,
        turns_planned=3,
        turns_done=3,
        interrupted_turns=0,
        verdict=verdict,
        verdict_reason="",
    )


def request(cold: bool | None) -> RequestSample:
    return request_sample(t_start=T0, cold_start=cold)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[RunMetrics, str, Path]]:
    events = tmp_path / "events.jsonl"
    metrics = RunMetrics(
        users=lambda: 7,
        in_flight=lambda: {"turns_in_flight": 3, "awaiting_first_token": 1},
        events_path=events,
    )
    server = metrics.serve(0)
    try:
        yield metrics, server.url, events
    finally:
        server.close()


def test_rows_become_metrics_on_a_real_scrape(served: tuple[RunMetrics, str, Path]) -> None:
    metrics, url, _ = served
    sink_rows: list[object] = []

    class ListSink:
        def emit(self, row: object) -> None:
            sink_rows.append(row)

    sink = MeteredSink(ListSink(), metrics)
    for i in range(4):
        sink.emit(turn(i))
    sink.emit(turn(9, ok=False, kind="timeout", ttft=None))
    sink.emit(turn(10, ok=False, kind="something new", ttft=None))
    for verdict in ("clean", "clean", "resumed", "duplicated"):
        sink.emit(session(verdict))
    sink.emit(request(True))
    sink.emit(request(False))
    sink.emit(request(None))
    assert len(sink_rows) == 13  # every row still reaches the recorder

    got = scrape(url)
    assert got[("loadlab_run_users", ())] == 7
    assert got[("loadlab_run_turns_in_flight", (("stage", "all"),))] == 3
    assert got[("loadlab_run_turns_in_flight", (("stage", "awaiting_first_token"),))] == 1
    assert got[("loadlab_run_turn_seconds_count", ())] == 4
    assert got[("loadlab_run_turn_seconds_sum", ())] == pytest.approx(6.0)
    assert got[("loadlab_run_turn_seconds_bucket", (("le", "1.5"),))] == 4
    assert got[("loadlab_run_turn_seconds_bucket", (("le", "1.0"),))] == 0
    assert got[("loadlab_run_ttft_seconds_bucket", (("le", "0.5"),))] == 4
    assert got[("loadlab_run_turns_total", (("outcome", "ok"),))] == 4
    assert got[("loadlab_run_turns_total", (("outcome", "failed"),))] == 2
    assert got[("loadlab_run_turns_failed_total", (("kind", "timeout"),))] == 1
    assert got[("loadlab_run_turns_failed_total", (("kind", "other"),))] == 1
    # every kind and verdict is there from the start (0), so a query returns data at once
    assert got[("loadlab_run_turns_failed_total", (("kind", "throttled"),))] == 0
    assert got[("loadlab_run_sessions_total", (("verdict", "clean"),))] == 2
    assert got[("loadlab_run_sessions_total", (("verdict", "duplicated"),))] == 1
    assert got[("loadlab_run_sessions_total", (("verdict", "restarted"),))] == 0
    assert got[("loadlab_run_cold_starts_total", ())] == 1
    assert got[("loadlab_run_llm_calls_total", ())] == 12
    assert got[("loadlab_run_llm_throttles_total", ())] == 1
    assert got[("loadlab_run_faults_active", ())] == 0


def test_buckets_span_a_tenth_of_a_second_to_thirty() -> None:
    assert LATENCY_BUCKETS_S[0] == 0.1
    assert LATENCY_BUCKETS_S[-1] == 30.0
    assert list(LATENCY_BUCKETS_S) == sorted(LATENCY_BUCKETS_S)


def test_faults_are_followed_on_the_events_file(
    served: tuple[RunMetrics, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url, events = served
    now = 1_800_000_000.0
    monkeypatch.setattr("loadlab.measure.prom_metrics.time.time", lambda: now)

    def fault(name: str, target: str, phase: str, fault_id: str | None, lease: float | None):
        attrs = {"phase": phase} | ({"fault_id": fault_id} if fault_id else {})
        return event_line(
            TimelineEvent(
                t=now - 10, kind="fault", name=name, target=target, lease_expires=lease, attrs=attrs
            )
        )

    lines = [
        fault("delete pod", "agent-abc", "start", "f1", None),
        event_line(TimelineEvent(t=now, kind="phase", name="test_start")),
        fault("llm 429 storm", "llm", "start", "f2", now + 30),
        fault("throttle", "fn", "start", "f3", now - 1),  # lease already expired
        fault("unkeyed", "x", "start", None, None),
    ]
    events.write_text("\n".join(lines) + "\n")
    got = scrape(url)
    assert got[("loadlab_run_faults_active", ())] == 3
    assert got[("loadlab_run_faults_started", ())] == 4
    assert (
        got[("loadlab_run_fault_active", (("fault", "delete pod"), ("target", "agent-abc")))] == 1
    )
    assert got[("loadlab_run_fault_active", (("fault", "throttle"), ("target", "fn")))] == 0

    # the ends arrive later, the last line still being written when the first scrape comes
    tail = fault("delete pod", "agent-abc", "end", "f1", None) + "\n"
    tail += fault("unkeyed", "x", "end", None, None) + "\n"
    with events.open("a") as f:
        f.write(tail[:-20])
    assert scrape(url)[("loadlab_run_faults_active", ())] == 2  # the unkeyed end is incomplete
    with events.open("a") as f:
        f.write(tail[-20:])
    got = scrape(url)
    assert got[("loadlab_run_faults_active", ())] == 1
    assert (
        got[("loadlab_run_fault_active", (("fault", "delete pod"), ("target", "agent-abc")))] == 0
    )

    # the storm's action returns at once, the storm lasts its lease: active until then
    with events.open("a") as f:
        f.write(fault("llm 429 storm", "llm", "end", "f2", now + 30) + "\n")
    storm = ("loadlab_run_fault_active", (("fault", "llm 429 storm"), ("target", "llm")))
    assert scrape(url)[storm] == 1
    monkeypatch.setattr("loadlab.measure.prom_metrics.time.time", lambda: now + 30)
    got = scrape(url)
    assert got[storm] == 0 and got[("loadlab_run_faults_active", ())] == 0


def test_pressure_samples_keep_the_latest_sum_per_signal_and_source(
    served: tuple[RunMetrics, str, Path],
) -> None:
    metrics, url, _ = served
    for value, op in ((3.0, "GetItem"), (4.0, "PutItem")):
        metrics.observe(
            PressureSample(
                t=T0,
                source="prometheus",
                metric="loadlab_ddb_throttled_requests_total",
                value=value,
                dimensions_json=json.dumps({"operation": op}),
            )
        )
    metrics.observe(  # a newer value of the same series replaces the older one
        PressureSample(
            t=T0 + 5,
            source="prometheus",
            metric="loadlab_ddb_throttled_requests_total",
            value=6.0,
            dimensions_json=json.dumps({"operation": "PutItem"}),
        )
    )
    for stat, value in (("Sum", 2.0), ("SampleCount", 50.0)):
        metrics.observe(
            PressureSample(
                t=T0,
                source="cloudwatch",
                metric="AWS/Bedrock/InvocationThrottles",
                value=value,
                dimensions_json=json.dumps({"ModelId": "m", "stat": stat}),
            )
        )
    metrics.observe(PressureSample(t=T0, source="prometheus", metric="unrelated", value=1.0))
    got = scrape(url)
    assert (
        got[("loadlab_run_pressure", (("signal", "ddb_throttles"), ("source", "prometheus")))] == 9
    )
    assert (
        got[("loadlab_run_pressure", (("signal", "llm_throttles"), ("source", "cloudwatch")))] == 2
    )
    assert len([k for k in got if k[0] == "loadlab_run_pressure"]) == 2


def test_rows_forwarded_by_workers_count_too(served: tuple[RunMetrics, str, Path]) -> None:
    metrics, url, _ = served
    metrics.observe_dicts("turns", [row_to_dict(turn(1)), {"garbage": 1}, "not a row"])
    metrics.observe_dicts("sessions", [row_to_dict(session("restarted"))])
    metrics.observe_dicts("events", [{"kind": "phase"}])
    got = scrape(url)
    assert got[("loadlab_run_turn_seconds_count", ())] == 1
    assert got[("loadlab_run_sessions_total", (("verdict", "restarted"),))] == 1


def test_a_scrape_before_the_run_is_wired_or_while_it_breaks_is_answered(tmp_path: Path) -> None:
    def broken() -> int:
        raise AttributeError("runner is None during start-up")

    metrics = RunMetrics(users=broken, in_flight=None, events_path=tmp_path / "missing.jsonl")
    server = metrics.serve(0)
    try:
        got = scrape(server.url)
    finally:
        server.close()
    assert got[("loadlab_run_users", ())] == 0
    assert got[("loadlab_run_turns_in_flight", (("stage", "all"),))] == 0
    assert got[("loadlab_run_faults_active", ())] == 0


def test_scrapes_while_rows_pour_in_never_fail(served: tuple[RunMetrics, str, Path]) -> None:
    metrics, url, _ = served
    done = threading.Event()

    def pour() -> None:
        i = 0
        while not done.is_set():
            metrics.observe(turn(i))
            metrics.observe(
                PressureSample(
                    t=T0,
                    source="prometheus",
                    metric="loadlab_llm_requests_total",
                    value=float(i),
                    dimensions_json=json.dumps({"i": i}),
                )
            )
            i += 1

    worker = threading.Thread(target=pour)
    worker.start()
    try:
        for _ in range(20):
            assert ("loadlab_run_users", ()) in scrape(url)
    finally:
        done.set()
        worker.join()


def test_no_row_is_lost_while_another_thread_adds_up() -> None:
    # Rows are queued without a lock; a scrape adding them up meanwhile must
    # neither lose nor count twice a row queued while it works.
    metrics = RunMetrics()
    per_thread, threads = 6000, 3

    def pour(offset: int) -> None:
        for i in range(per_thread):
            metrics.observe(turn(offset + i))

    pourers = [threading.Thread(target=pour, args=(k * per_thread,)) for k in range(threads)]
    for worker in pourers:
        worker.start()
    while any(w.is_alive() for w in pourers):
        metrics.totals()
    for worker in pourers:
        worker.join()
    totals = metrics.totals()
    assert sum(totals.turns.values()) == per_thread * threads
    assert int(totals.turn_buckets.sum()) == totals.turns["ok"]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield holder.getsockname()[1]


def test_a_port_in_use_is_refused_naming_it(busy_port: int) -> None:
    with pytest.raises(ConfigError) as caught:
        check_metrics_port(busy_port)
    assert f"--metrics-port {busy_port}" in str(caught.value)
    assert "already in use" in str(caught.value)
    assert caught.value.exit_code == 2
    with pytest.raises(ConfigError, match=f"127.0.0.1:{busy_port} is already in use"):
        RunMetrics().serve(busy_port)


@pytest.mark.parametrize("port", [-1, 65536])
def test_a_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ConfigError, match=f"--metrics-port {port} out of range"):
        check_metrics_port(port)


def test_zero_means_no_endpoint() -> None:
    check_metrics_port(0)


def test_run_with_a_metrics_port_in_use_exits_2_before_anything_starts(
    busy_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            "ci_smoke",
            "--embedded",
            "--metrics-port",
            str(busy_port),
            "--runs-root",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"--metrics-port {busy_port}" in err and "already in use" in err
    assert not (tmp_path / "runs").exists()


def test_the_locust_command_line_carries_the_port_only_when_asked(tmp_path: Path) -> None:
    base = {"scenario_path": tmp_path / "s.yaml", "target_url": "http://x", "run_dir": tmp_path}
    assert "--metrics-port" not in LocustLaunch(**base).argv()
    argv = LocustLaunch(**base, metrics_port=9646).argv()
    assert argv[argv.index("--metrics-port") + 1] == "9646"


def test_gameday_passes_the_port_to_the_experiments_locust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, str] = {}

    class Stop(Exception):
        pass

    def capture(path: Path, experiment: object, env: dict[str, str]) -> None:
        seen.update(env)
        raise Stop

    monkeypatch.setattr("loadlab.app.gameday.validate_experiment", capture)
    repo = Path(__file__).resolve().parents[2]
    argv = ["gameday", str(repo / "chaos" / "pod-kill-mid-session.json"),
            "--runs-root", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"),
            "--metrics-port", "0"]  # fmt: skip
    with pytest.raises(Stop):
        main(argv)
    assert "LOADLAB_METRICS_PORT" not in seen
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(Stop):
        main([*argv[:-1], str(port)])
    assert seen["LOADLAB_METRICS_PORT"] == str(port)


def test_the_locust_option_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from loadlab.app.locust_plugin.options import add_arguments

    monkeypatch.setenv("LOADLAB_METRICS_PORT", "9646")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).metrics_port == 9646
    assert parser.parse_args(["--metrics-port", "0"]).metrics_port == 0


def test_run_web_with_its_port_in_use_exits_2_before_anything_starts(
    busy_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "ci_smoke", "--embedded", "--web", "--web-port", str(busy_port)]
    code = main([*argv, "--runs-root", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"--web-port {busy_port}: 127.0.0.1:{busy_port} is already in use" in err, err
    assert "--web-port 8090" in err  # the fix, with an example
    assert not (tmp_path / "runs").exists()
    # headless, the web port is not used and not checked
    RunOptions(scenario="ci_smoke", web_port=busy_port)


def test_the_histograms_count_as_prometheus_clients_own_histogram() -> None:
    """Bucket counts and sums added up in bulk are those of prometheus_client's Histogram."""
    rng = random.Random(11)
    # values on the bounds (le: at most), between them, past the last, and very small
    seconds = [*LATENCY_BUCKETS_S, 0.0001, 45.0] + [rng.uniform(0, 40) for _ in range(5000)]
    metrics = RunMetrics()
    reference = CollectorRegistry()
    turn_h = Histogram("ref_turn", "r", buckets=LATENCY_BUCKETS_S, registry=reference)
    ttft_h = Histogram("ref_ttft", "r", buckets=LATENCY_BUCKETS_S, registry=reference)
    for i, s in enumerate(seconds):
        ttft_ms = None if i % 5 == 0 else s * 250.0
        row = TurnRecord(
            t_start=T0, t_end=T0 + s, session_id="s", turn_index=i, intent="search", ok=i % 7 != 0,
            attempts=1, latency_ms=s * 1000.0, ttft_ms=ttft_ms, interrupted=False,
            error_kind=None if i % 7 else ("reset", "timeout", "no-such-kind")[i % 3],
        )  # fmt: skip
        metrics.observe(row)
        if row.ok:
            turn_h.observe(row.t_end - row.t_start)
            if ttft_ms is not None:
                ttft_h.observe(ttft_ms / 1000.0)
    # rows wait for at most 2,048 before they are added up (bounded memory without a scrape)
    assert len(metrics._pending) < 2048
    ours = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in metrics.registry.collect()
        for s in family.samples
    }
    theirs = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in reference.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }
    for (name, labels), value in theirs.items():
        mine = name.replace("ref_turn", "loadlab_run_turn_seconds").replace(
            "ref_ttft", "loadlab_run_ttft_seconds"
        )
        assert ours[(mine, labels)] == pytest.approx(value, rel=1e-12), (mine, labels)
    failed = sum(1 for i in range(len(seconds)) if i % 7 == 0)
    assert ours[("loadlab_run_turns_total", (("outcome", "failed"),))] == failed
    assert ours[("loadlab_run_turns_failed_total", (("kind", "other"),))] == sum(
        1 for i in range(len(seconds)) if i % 7 == 0 and i % 3 == 2
    )
