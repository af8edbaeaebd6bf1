"""LiveWindow.snapshot: the window's turns, P99 and error rate as turns come and go."""

from __future__ import annotations

import random

from row_samples import request_sample  # tests/row_samples.py

from loadlab.measure.live_status import LiveWindow
from loadlab.rows import TurnRecord

T = 1_700_000_000.0


def _turn(
    t_end: float, latency_ms: float, ok: bool = True, ttft_ms: float | None = None
) -> TurnRecord:
    return TurnRecord(
        t_start=t_end - latency_ms / 1000.0,
        t_end=t_end,
        session_id="s",
        turn_index=1,
        intent="browse",
        ok=ok,
        attempts=1,
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
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


def test_window_percentiles_are_the_figures_of_the_window_late_rows_included() -> None:
    rng = random.Random(7)
    window = LiveWindow(window_s=10.0)
    ends = [T + rng.uniform(0, 40) for _ in range(2_000)]
    for k, t_end in enumerate(ends):  # arriving out of order, as forwarded rows do
        ok = k % 9 != 0
        window.observe(_turn(t_end, rng.uniform(50, 900), ok, None if k % 4 else 30.0 + k % 50))
    for now in (T + 12, T + 25, T + 41, T + 80):
        got = window.window_percentiles(now=now)
        for key in ("p50_ms", "p99_ms", "ttft_p99_ms"):
            want = window.figure(key, window_s=10.0, now=now, min_turns=1)
            assert got[key] == want, (now, key)
        window.snapshot(now=now)  # the once-a-second writer prunes the same deques
    assert window.window_percentiles(now=T + 80) == {
        "p50_ms": None,
        "p99_ms": None,
        "ttft_p99_ms": None,
    }


def test_a_long_run_through_a_bounded_window_keeps_its_figures() -> None:
    # Thousands of turns enter and leave (the columns are cut as their front
    # moves, and turns beyond max_samples push the oldest out): every snapshot
    # is what the turns then in the window say.
    rng = random.Random(11)
    window = LiveWindow(window_s=5.0, max_samples=1500)
    kept: list[tuple[float, float, bool]] = []
    for k in range(12_000):
        t_end, latency, ok = T + k / 400.0, rng.uniform(50, 900), k % 13 != 0
        window.observe(_turn(t_end, latency, ok))
        kept = [*kept[-1499:], (t_end, latency, ok)]
        if k % 997 == 0:
            now = t_end + 0.5
            inside = [row for row in kept if row[0] >= now - 5.0]
            snap = window.snapshot(now=now)["window"]
            assert snap["turns"] == len(inside)
            assert snap["error_rate"] == sum(not ok for *_, ok in inside) / len(inside)
            latencies = sorted(latency for _, latency, _ in inside)
            assert snap["p99_ms"] == round(latencies[-(-99 * len(latencies) // 100) - 1], 3)
            got = window.window_percentiles(now=now)["p50_ms"]
            assert got == window.figure("p50_ms", window_s=5.0, now=now, min_turns=1)


def test_environments_alive_counts_each_instance_once_while_it_answers() -> None:
    window = LiveWindow(window_s=10.0, max_samples=4)
    for k, instance in enumerate(["a", "a", "b", "a", "c", "c"]):
        window.observe(request_sample(t_start=T + k, latency_ms=0.0, instance_id=instance))
    # the deque holds the last 4 requests (b, a, c, c): 3 instances
    assert window.environments_alive(now=T + 6) == 3
    assert window.environments_alive(now=T + 12.5) == 2  # b (t=2) left: a, c
    assert window.environments_alive(now=T + 13.5) == 1  # a (t=3) left too: c
    assert window.environments_alive(now=T + 16) == 0


def test_the_window_drops_its_oldest_turns_up_to_the_first_still_inside() -> None:
    # As the turns came one by one: the front leaves while it ended before the window,
    # a turn that ended early but arrived after a later one stays until the front reaches it.
    rng = random.Random(5)
    window = LiveWindow(window_s=3.0)
    model: list[tuple[float, bool]] = []
    for k in range(6_000):
        t_end = T + k / 200.0 + rng.choice([0.0, 0.0, 0.0, -2.5, 1.0])
        ok = rng.random() > 0.2
        window.observe(_turn(t_end, 10.0, ok))
        model.append((t_end, ok))
        if k % 211 == 0:
            now = T + k / 200.0
            while model and model[0][0] < now - 3.0:
                model.pop(0)
            snap = window.snapshot(now=now)["window"]
            assert snap["turns"] == len(model)
            failed = sum(not ok for _, ok in model)
            assert snap["error_rate"] == (failed / len(model) if model else 0.0)
