"""Load curves: how many concurrent sessions a shape wants at a given moment.

:func:`shape_tick` is the arithmetic behind the Locust shapes in
:mod:`loadlab.load.shapes`, kept free of Locust so it can be checked directly.
A tick is ``(users, spawn_rate)``, or None once the shape is over.

Ramps are expressed as a moving target (the target grows each tick) with a
spawn rate matching the ramp's slope, so Locust spreads the arrivals evenly
instead of spawning each second's users in one burst. ``time_scale`` divides
the clock (a 60 s ramp at ``time_scale`` 0.1 lasts 6 s) and multiplies the
spawn rates, so the curve keeps its shape.
"""

from __future__ import annotations

from loadlab.scenario.model import FlashSaleShape, Shape, SoakShape, SpikeShape, StepShape

Tick = tuple[int, float]


def shape_tick(shape: Shape, run_time_s: float, time_scale: float = 1.0) -> Tick | None:
    """Return ``(users, spawn_rate)`` for ``shape`` at ``run_time_s``, or None when done."""
    t = max(0.0, run_time_s) / time_scale
    if isinstance(shape, FlashSaleShape):
        tick = _flash_sale(shape, t)
    elif isinstance(shape, StepShape):
        tick = _step(shape, t)
    elif isinstance(shape, SpikeShape):
        tick = _spike(shape, t)
    else:
        tick = _soak(shape, t)
    if tick is None:
        return None
    users, rate = tick
    return users, rate / time_scale


def _slope_rate(delta_users: int, seconds: float, cap: float | None = None) -> float:
    rate = float(max(1, delta_users)) if seconds <= 0 else max(1.0, delta_users / seconds)
    return rate if cap is None else min(rate, cap)


def _flash_sale(s: FlashSaleShape, t: float) -> Tick | None:
    rise = s.peak_users - s.baseline_users
    if t < s.baseline_s:
        return s.baseline_users, s.max_spawn_rate
    t -= s.baseline_s
    if t < s.ramp_s:
        users = s.baseline_users + int(rise * t / s.ramp_s)
        return users, _slope_rate(rise, s.ramp_s, cap=s.max_spawn_rate)
    t -= s.ramp_s
    if t < s.hold_s:
        return s.peak_users, s.max_spawn_rate
    t -= s.hold_s
    if t < s.decay_s:
        users = s.peak_users - int(rise * t / s.decay_s)
        return users, _slope_rate(rise, s.decay_s, cap=s.max_spawn_rate)
    return None


def _step(s: StepShape, t: float) -> Tick | None:
    level = int(t // s.step_s)
    if level >= s.steps:
        return None
    rate = s.spawn_rate or float(max(1, s.step_users, s.start_users))
    return s.start_users + level * s.step_users, rate


def _spike(s: SpikeShape, t: float) -> Tick | None:
    if t >= s.total_s:
        return None
    rate = s.spawn_rate or float(max(1, abs(s.spike_users - s.base_users)))
    if s.at_s <= t < s.at_s + s.spike_s:
        return s.spike_users, rate
    return s.base_users, rate


def _soak(s: SoakShape, t: float) -> Tick | None:
    if t >= s.duration_s:
        return None
    if t < s.ramp_s:
        return int(s.users * t / s.ramp_s), _slope_rate(s.users, s.ramp_s)
    return s.users, _slope_rate(s.users, s.ramp_s)
