"""YoungGarbageCollection: what is alive at each tick leaves the collector's sight, until stop."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import gevent
import pytest

from loadlab.load.young_gc import OLDEST_OFF, YoungGarbageCollection


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


class Session:
    """A stand-in for a live session: a tracked object that outlives a tick."""


def test_objects_alive_at_a_tick_are_frozen_and_given_back_at_stop() -> None:
    young = YoungGarbageCollection(interval_s=0.01)
    young.start()
    assert young.running and gc.get_freeze_count() > 0
    sessions = [Session() for _ in range(1000)]
    frozen = gc.get_freeze_count()
    gevent.sleep(0.05)  # a few ticks on the loop
    assert young.freezes >= 2
    assert gc.get_freeze_count() >= frozen + len(sessions)
    # a collection of the oldest generation no longer walks them
    assert not any(isinstance(o, Session) for o in gc.get_objects(generation=2))
    young.stop()
    assert not young.running and gc.get_freeze_count() == 0
    assert sum(isinstance(o, Session) for o in gc.get_objects()) == len(sessions)
    ticks = young.freezes
    gevent.sleep(0.03)
    assert young.freezes == ticks  # stopped means stopped


def test_the_oldest_generation_is_not_collected_while_the_load_runs() -> None:
    before = gc.get_threshold()
    young = YoungGarbageCollection(interval_s=10)
    young.start()
    assert gc.get_threshold() == (before[0], before[1], OLDEST_OFF)
    survivors = [Session() for _ in range(50_000)]
    full = gc.get_stats()[2]["collections"]
    for _ in range(30):  # hundreds of young collections, each survivor reaching the oldest
        [[] for _ in range(before[0] * 20)]
    assert gc.get_stats()[2]["collections"] == full
    young.stop()
    assert gc.get_threshold() == before
    assert len(survivors) == 50_000


def test_a_frozen_cycle_is_collected_after_stop() -> None:
    young = YoungGarbageCollection(interval_s=10)
    young.start()
    cycle: list[object] = []
    cycle.append(cycle)
    young.tick()
    del cycle
    assert gc.collect() == 0  # frozen: the collector does not see it
    young.stop()
    assert gc.collect() >= 1


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_s must be > 0, got 0"):
        YoungGarbageCollection(interval_s=0)
