"""Stop conditions: live figures, the first breach, and what a breach does, in order."""

from __future__ import annotations

import pytest

from loadlab.app.locust_plugin.abort import AbortWatch, Breach, first_breach
from loadlab.chaos.stop import FaultReverted, revert_active_faults
from loadlab.load.context import ListSink
from loadlab.measure.live_status import LiveWindow
from loadlab.rows import SessionRecord, TurnRecord
from loadlab.scenario.gates import Gate

NOW = 1_000.0


def turn(t_end: float, latency_s: float, *, ok: bool = True, intent: str = "search") -> TurnRecord:
    return TurnRecord(
        t_start=t_end - latency_s,
        t_end=t_end,
        session_id="s",
        turn_index=0,
        intent=intent,
        ok=ok,
        attempts=1,
        latency_ms=latency_s * 1000,
        ttft_ms=100.0,
        interrupted=False,
    )


def session(t_end: float, verdict: str) -> SessionRecord:
    return SessionRecord(
        t_start=t_end - 10,
        t_end=t_end,
        session_id=f"s-{t_end}",
        persona="p",
        turns_planned=2,
        turns_done=2,
        verdict=verdict,
        verdict_reason="",
        seed=1,
        interrupted_turns=0,
    )


def test_live_figures_judge_the_window_and_wait_for_enough_turns() -> None:
    window = LiveWindow()
    for i in range(19):
        window.observe(turn(NOW - 1 - i * 0.1, 0.3))
    assert window.figure("p99_ms", window_s=5, now=NOW) is None, "19 turns say nothing yet"
    window.observe(turn(NOW - 0.5, 3.0))
    assert window.figure("p99_ms", window_s=5, now=NOW) == pytest.approx(3000.0)
    assert window.figure("p50_ms", window_s=None, now=NOW) == pytest.approx(300.0)
    # the oldest turns fall out of a short window: fewer than 20 left, nothing said
    assert window.figure("p99_ms", window_s=1.5, now=NOW) is None
    window.observe(turn(NOW - 0.2, 0.3, ok=False, intent="browse"))
    assert window.figure("error_rate", now=NOW) == 1 / 21
    assert window.figure("error_rate", intent="search", now=NOW) == 0.0
    window.observe(session(NOW - 30, "restarted"))
    window.observe(session(NOW - 1, "restarted"))
    assert window.figure("max_restarted", now=NOW) == 2.0
    assert window.figure("max_restarted", window_s=10, now=NOW) == 1.0
    assert window.figure("max_audit_disagreements", now=NOW) is None


def test_the_first_breach_names_the_gate_and_its_value() -> None:
    window = LiveWindow()
    for i in range(25):
        window.observe(turn(NOW - i * 0.1, 2.0))
    gates = (Gate(key="error_rate", limit=0.5, abort=True), Gate(key="p99_ms", limit=1500))
    breach = first_breach(window, gates, now=NOW)
    assert breach is not None and breach.gate.key == "p99_ms"
    assert breach.value == pytest.approx(2000.0)
    assert breach.message.startswith("turn latency P99: 2000") and "(limit 1500)" in breach.message
    relaxed = (Gate(key="p99_ms", limit=2000, abort=True),)
    assert first_breach(window, relaxed, now=NOW) is None, "at the limit is not beyond it"


def test_a_breach_is_recorded_then_faults_reverted_then_the_load_stopped_once() -> None:
    window = LiveWindow()
    for i in range(25):
        window.observe(turn(NOW - i * 0.1, 2.0))
    sink = ListSink()
    order: list[str] = []

    def revert() -> list[FaultReverted]:
        order.append("revert")
        return [FaultReverted(target="llm", outcome="reverted", detail="cleared")]

    def stop(breach: Breach) -> None:
        order.append(f"stop {breach.gate.name}")

    watch = AbortWatch(
        window=window,
        gates=(Gate(key="p99_ms", limit=1500, window_s=5, abort=True),),
        sink=sink,
        stop_load=stop,
        revert=revert,
        clock=lambda: NOW,
    )
    assert watch.check() is not None
    assert watch.check() is None, "a watch acts once"
    assert order == ["revert", "stop p99_ms[5s]"]
    events = [(e.kind, e.name) for e in sink.events]
    assert events == [("stop", "breach"), ("stop", "revert"), ("stop", "stop_load")]
    attrs = sink.events[0].attrs
    assert attrs["gate"] == "p99_ms[5s]" and attrs["limit"] == 1500.0


def test_reverting_with_nothing_configured_does_nothing() -> None:
    assert revert_active_faults({}) == []


def test_an_unreachable_fault_target_is_reported_not_raised() -> None:
    (result,) = revert_active_faults({"LOADLAB_LLM_URL": "http://127.0.0.1:9"})
    assert result.target == "llm" and result.outcome == "failed" and result.detail
