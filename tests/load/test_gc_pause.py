"""CollectorPause: no cyclic collection while the load runs; the run's objects frozen until stop."""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Iterator

import gevent
import pytest

from loadlab.load.adapters import ReferenceAdapter
from loadlab.load.auth import SessionCredentials
from loadlab.load.client import AgentClient
from loadlab.load.context import ListSink
from loadlab.load.gc_pause import CollectorPause
from loadlab.load.player import SessionPlayer
from loadlab.load.transport import (
    ConnectFailed,
    StreamingResponse,
    StreamReset,
    TransportTimeout,
)
from loadlab.scenario import parse_scenario
from loadlab.scenario.script import plan_session


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.enable()


class Session:
    """A stand-in for a live session: a tracked object that outlives a tick."""


def test_no_collection_runs_while_the_load_runs_and_the_collector_comes_back_at_stop() -> None:
    pause = CollectorPause(interval_s=10)
    pause.start()
    assert pause.running and not gc.isenabled()
    collections = [g["collections"] for g in gc.get_stats()]
    survivors = [Session() for _ in range(20_000)]
    for _ in range(30):  # what used to be hundreds of young collections
        [[] for _ in range(20_000)]
    assert [g["collections"] for g in gc.get_stats()] == collections
    pause.stop()
    assert not pause.running and gc.isenabled() and gc.get_freeze_count() == 0
    assert len(survivors) == 20_000


def test_a_collector_that_was_off_stays_off_after_stop() -> None:
    gc.disable()
    pause = CollectorPause(interval_s=10).start()
    pause.stop()
    assert not gc.isenabled()


def test_objects_alive_at_a_tick_are_frozen_and_given_back_at_stop() -> None:
    pause = CollectorPause(interval_s=0.01)
    pause.start()
    sessions = [Session() for _ in range(1000)]
    frozen = gc.get_freeze_count()
    gevent.sleep(0.05)  # a few ticks on the loop
    assert pause.freezes >= 2
    assert gc.get_freeze_count() >= frozen + len(sessions)
    pause.stop()
    assert gc.get_freeze_count() == 0
    assert sum(isinstance(o, Session) for o in gc.get_objects()) == len(sessions)
    ticks = pause.freezes
    gevent.sleep(0.03)
    assert pause.freezes == ticks  # stopped means stopped


def test_a_cycle_made_during_the_load_is_collected_after_stop() -> None:
    pause = CollectorPause(interval_s=10)
    pause.start()
    cycle: list[object] = []
    cycle.append(cycle)
    pause.tick()
    del cycle
    pause.stop()
    assert gc.collect() >= 1


class _Flaky:
    """A transport whose every request fails, each of four ways in turn."""

    def __init__(self) -> None:
        self.count = itertools.count()

    def open(self, method: str, url: str, headers: object, body: bytes, timeout: float) -> object:
        kind = next(self.count) % 5
        if kind == 0:
            raise StreamReset("connection reset by peer")
        if kind == 1:
            raise TransportTimeout("no response within 1 s")
        if kind == 2:
            raise ConnectFailed("cannot connect")
        if kind == 3:

            def cut() -> Iterator[bytes]:
                yield b'event: meta\ndata: {"instance_id": "i-1"}\n\n'
                raise StreamReset("connection closed mid-stream")

            return StreamingResponse(200, {"content-type": "text/event-stream"}, cut())
        body = b'{"error": {"kind": "overloaded", "message": "try later"}}'
        return StreamingResponse(503, {"content-type": "application/json"}, iter([body]))


def test_failed_turns_leave_no_cyclic_garbage() -> None:
    # What makes the pause safe: with the collector off, anything a turn leaves in a
    # reference cycle would stay until the load stops. Failed attempts (exceptions
    # and their tracebacks) are where cycles usually come from.
    scenario = parse_scenario(
        {
            "name": "gc",
            "target": {"protocol": "reference"},
            "shape": {"kind": "soak", "users": 1, "ramp_s": 1, "duration_s": 10},
            "retry": {"max_attempts": 3, "backoff_s": 0.1, "backoff_max_s": 0.2},
        }
    )
    client = AgentClient(transport=_Flaky(), adapter=ReferenceAdapter(), base_url="http://x")
    sink = ListSink()
    gc.collect()
    gc.disable()
    for i in range(200):
        player = SessionPlayer(
            spec=plan_session(scenario, i, session_id=f"s-{i}"),
            client=client,
            retry=scenario.retry,
            sink=sink,
            credentials=SessionCredentials(secret="x" * 32, session_id=f"s-{i}"),
            sleep=lambda _s: None,
        )
        while not player.done:
            player.play_next_turn(due=time.perf_counter())
        player.finish()
    assert len(sink.requests) >= 400 and not any(r.error_kind is None for r in sink.requests)
    del sink, player, client
    assert gc.collect() == 0


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_s must be > 0, got 0"):
        CollectorPause(interval_s=0)
