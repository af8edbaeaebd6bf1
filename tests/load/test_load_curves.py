"""Load curves: users and spawn rate at each moment of each shape, on a fake clock."""

from __future__ import annotations

import pytest

from loadlab.load.curves import shape_tick
from loadlab.scenario.model import FlashSaleShape, SoakShape, SpikeShape, StepShape

FLASH = FlashSaleShape(
    baseline_users=100,
    peak_users=5000,
    baseline_s=10,
    ramp_s=20,
    hold_s=30,
    decay_s=40,
    max_spawn_rate=500,
)


@pytest.mark.parametrize(
    ("t", "users", "rate"),
    [
        (0, 100, 500),  # baseline
        (9.9, 100, 500),
        (10, 100, 245),  # ramp starts: 4900 users over 20 s
        (20, 2550, 245),  # half way up
        (29.9, 4975, 245),
        (30, 5000, 500),  # hold
        (59.9, 5000, 500),
        (60, 5000, 122.5),  # decay: 4900 users over 40 s
        (80, 2550, 122.5),
        (99.9, 113, 122.5),
    ],
)
def test_flash_sale(t: float, users: int, rate: float) -> None:
    assert shape_tick(FLASH, t) == (users, pytest.approx(rate))


def test_flash_sale_ends() -> None:
    assert shape_tick(FLASH, 100) is None
    assert shape_tick(FLASH, 1e9) is None


def test_instant_rush_is_limited_by_max_spawn_rate() -> None:
    shape = FlashSaleShape(
        baseline_users=0, peak_users=5000, ramp_s=0, hold_s=10, decay_s=0, max_spawn_rate=250
    )
    assert shape_tick(shape, 0) == (5000, 250)
    assert shape_tick(shape, 10) is None


def test_steep_ramp_rate_is_capped() -> None:
    shape = FlashSaleShape(baseline_users=0, peak_users=5000, ramp_s=2, max_spawn_rate=300)
    assert shape_tick(shape, 1) == (2500, 300)


def test_time_scale_compresses_time_and_speeds_spawning() -> None:
    assert shape_tick(FLASH, 0.4, time_scale=0.02) == (2550, pytest.approx(245 / 0.02))
    assert shape_tick(FLASH, 2.0, time_scale=0.02) is None


@pytest.mark.parametrize(("t", "users"), [(0, 10), (59, 10), (60, 25), (150, 40), (179, 40)])
def test_step(t: float, users: int) -> None:
    shape = StepShape(start_users=10, step_users=15, step_s=60, steps=3)
    assert shape_tick(shape, t) == (users, 15.0)
    assert shape_tick(shape, 180) is None


def test_step_with_explicit_spawn_rate() -> None:
    assert shape_tick(StepShape(spawn_rate=2.5), 0) == (10, 2.5)


@pytest.mark.parametrize(
    ("t", "users"), [(0, 20), (59, 20), (60, 500), (119, 500), (120, 20), (299, 20)]
)
def test_spike(t: float, users: int) -> None:
    shape = SpikeShape(base_users=20, spike_users=500, at_s=60, spike_s=60, total_s=300)
    assert shape_tick(shape, t) == (users, 480.0)
    assert shape_tick(shape, 300) is None


@pytest.mark.parametrize(("t", "users"), [(0, 0), (5, 50), (10, 100), (3599, 100)])
def test_soak(t: float, users: int) -> None:
    shape = SoakShape(users=100, ramp_s=10, duration_s=3600)
    assert shape_tick(shape, t) == (users, 10.0)
    assert shape_tick(shape, 3600) is None


def test_negative_time_is_the_start() -> None:
    assert shape_tick(FLASH, -5) == shape_tick(FLASH, 0)
