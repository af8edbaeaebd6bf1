"""LiveWindow.snapshot: the window's turns, P99 and error rate as turns come and go."""

from __future__ import annotations

from loadlab.measure.live_status import LiveWindow
from loadlab.rows import TurnRecord

T = 1_700_000_000.0


def _turn(t_end: float, latency_ms: float, ok: bool = True) -> TurnRecord:
    return TurnRecord(
        t_start=t_end - latency_ms / 1000.0,
        t_end=t_end,
        session_id="s",
        turn_index=1,
        intent="browse",
        ok=ok,
        attempts=1,
        latency_ms=latency_ms,
        ttft_ms=None,
        interrupted=False,
        error_kind=None if ok else "reset",
    )


def test_failures_and_latencies_leave_the_window_with_their_turns() -> None:
    window = LiveWindow(window_s=10.0)
    window.observe(_turn(T, 900.0, ok=False))
    for k in range(1, 4):
        window.observe(_turn(T + k, 100.0 * k))
    snap = window.snapshot(now=T + 5)
    assert snap["window"] == {"turns": 4, "p99_ms": 900.0, "error_rate": 0.25}
    # the failed 900 ms turn ended 10.5 s before: out of the window, with its failure
    snap = window.snapshot(now=T + 10.5)
    assert snap["window"] == {"turns": 3, "p99_ms": 300.0, "error_rate": 0.0}
    assert (snap["turns_done"], snap["turns_failed"]) == (4, 1)
    assert window.snapshot(now=T + 60)["window"] == {"turns": 0, "p99_ms": None, "error_rate": 0.0}


def test_a_turn_pushed_out_by_the_sample_limit_takes_its_failure_along() -> None:
    window = LiveWindow(window_s=30.0, max_samples=3)
    window.observe(_turn(T, 50.0, ok=False))
    for k in range(1, 4):
        window.observe(_turn(T + k, 10.0))
    assert window.snapshot(now=T + 5)["window"] == {"turns": 3, "p99_ms": 10.0, "error_rate": 0.0}
    window.observe(_turn(T + 6, 20.0, ok=False))
    assert window.snapshot(now=T + 7)["window"]["error_rate"] == 1 / 3
