"""Locust load shapes: flash sale, step, spike, soak, and the scenario's own.

Each shape takes its parameters as keyword arguments with defaults, so it also
works in a plain locustfile (``class MyShape(FlashSale): ...`` or an instance
built by Locust with no arguments). :class:`ScenarioShape` reads the shape of
the scenario the run was started with from ``environment.loadlab``.

The arithmetic lives in :mod:`loadlab.load.curves`; the clock is a parameter
(monotonic by default) so tests can drive a shape through its ticks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from locust import LoadTestShape

from loadlab.errors import ConfigError
from loadlab.load.curves import Tick, shape_tick
from loadlab.scenario.files import parse_shape
from loadlab.scenario.model import FlashSaleShape, Shape, SoakShape, SpikeShape, StepShape

Clock = Callable[[], float]

# Frozen defaults: slotted dataclasses keep no class-level default values.
_FLASH = FlashSaleShape()
_STEP = StepShape()
_SPIKE = SpikeShape()
_SOAK = SoakShape()


class _CurveShape(LoadTestShape):
    """A LoadTestShape driven by a :class:`~loadlab.scenario.model.Shape` and a clock."""

    abstract = True

    def __init__(self, *, time_scale: float = 1.0, clock: Clock = time.perf_counter) -> None:
        if isinstance(time_scale, bool) or not time_scale > 0:
            raise ConfigError(
                f"time_scale must be a number > 0, got {time_scale!r}",
                hint="use 1.0 for real time, less to compress the shape",
            )
        self._clock = clock
        self.time_scale = time_scale
        super().__init__()  # type: ignore[no-untyped-call]
        self.start_time = clock()

    def reset_time(self) -> None:
        """Restart the shape's clock (Locust calls this when the shape starts)."""
        self.start_time = self._clock()

    def get_run_time(self) -> float:
        """Seconds since the shape started, on the shape's clock."""
        return float(self._clock() - self.start_time)

    def current_shape(self) -> Shape:
        """The shape parameters this instance follows."""
        raise NotImplementedError

    def tick(self) -> Tick | None:
        """``(users, spawn_rate)`` for now, or None when the test should end."""
        shape = self.current_shape()
        return shape_tick(shape, self.get_run_time(), self.time_scale)


def _build(kind: str, params: dict[str, Any], cls_name: str) -> Shape:
    fields = {k: v for k, v in params.items() if v is not None}
    return parse_shape({"kind": kind, **fields}, source=f"{cls_name}(...)")


class FlashSale(_CurveShape):
    """Baseline, a rush to ``peak_users`` over ``ramp_s``, a hold, a decay back."""

    def __init__(
        self,
        *,
        baseline_users: int = _FLASH.baseline_users,
        peak_users: int = _FLASH.peak_users,
        baseline_s: float = _FLASH.baseline_s,
        ramp_s: float = _FLASH.ramp_s,
        hold_s: float = _FLASH.hold_s,
        decay_s: float = _FLASH.decay_s,
        max_spawn_rate: float = _FLASH.max_spawn_rate,
        time_scale: float = 1.0,
        clock: Clock = time.perf_counter,
    ) -> None:
        self.shape = _build(
            "flash_sale",
            {
                "baseline_users": baseline_users,
                "peak_users": peak_users,
                "baseline_s": baseline_s,
                "ramp_s": ramp_s,
                "hold_s": hold_s,
                "decay_s": decay_s,
                "max_spawn_rate": max_spawn_rate,
            },
            type(self).__name__,
        )
        super().__init__(time_scale=time_scale, clock=clock)

    def current_shape(self) -> Shape:
        """The flash-sale parameters."""
        return self.shape


class Step(_CurveShape):
    """``steps`` levels of ``step_s`` seconds, from ``start_users`` up by ``step_users``."""

    def __init__(
        self,
        *,
        start_users: int = _STEP.start_users,
        step_users: int = _STEP.step_users,
        step_s: float = _STEP.step_s,
        steps: int = _STEP.steps,
        spawn_rate: float | None = None,
        time_scale: float = 1.0,
        clock: Clock = time.perf_counter,
    ) -> None:
        self.shape = _build(
            "step",
            {
                "start_users": start_users,
                "step_users": step_users,
                "step_s": step_s,
                "steps": steps,
                "spawn_rate": spawn_rate,
            },
            type(self).__name__,
        )
        super().__init__(time_scale=time_scale, clock=clock)

    def current_shape(self) -> Shape:
        """The step parameters."""
        return self.shape


class Spike(_CurveShape):
    """``base_users``, jumping to ``spike_users`` at ``at_s`` for ``spike_s``."""

    def __init__(
        self,
        *,
        base_users: int = _SPIKE.base_users,
        spike_users: int = _SPIKE.spike_users,
        at_s: float = _SPIKE.at_s,
        spike_s: float = _SPIKE.spike_s,
        total_s: float = _SPIKE.total_s,
        spawn_rate: float | None = None,
        time_scale: float = 1.0,
        clock: Clock = time.perf_counter,
    ) -> None:
        self.shape = _build(
            "spike",
            {
                "base_users": base_users,
                "spike_users": spike_users,
                "at_s": at_s,
                "spike_s": spike_s,
                "total_s": total_s,
                "spawn_rate": spawn_rate,
            },
            type(self).__name__,
        )
        super().__init__(time_scale=time_scale, clock=clock)

    def current_shape(self) -> Shape:
        """The spike parameters."""
        return self.shape


class Soak(_CurveShape):
    """A ramp to ``users`` over ``ramp_s``, held until ``duration_s``."""

    def __init__(
        self,
        *,
        users: int = _SOAK.users,
        ramp_s: float = _SOAK.ramp_s,
        duration_s: float = _SOAK.duration_s,
        time_scale: float = 1.0,
        clock: Clock = time.perf_counter,
    ) -> None:
        self.shape = _build(
            "soak",
            {"users": users, "ramp_s": ramp_s, "duration_s": duration_s},
            type(self).__name__,
        )
        super().__init__(time_scale=time_scale, clock=clock)

    def current_shape(self) -> Shape:
        """The soak parameters."""
        return self.shape


class ScenarioShape(_CurveShape):
    """The shape of the run's scenario, read from ``runner.environment.loadlab``.

    Locust builds shape instances before the runner exists, so the scenario is
    looked up on the first tick.
    """

    def __init__(self, *, clock: Clock = time.perf_counter) -> None:
        super().__init__(clock=clock)
        self._shape: Shape | None = None

    def current_shape(self) -> Shape:
        """The scenario's shape (and time scale), looked up once."""
        if self._shape is None:
            context = getattr(getattr(self.runner, "environment", None), "loadlab", None)
            if context is None:
                raise ConfigError(
                    "ScenarioShape needs environment.loadlab, which is not set",
                    hint="run through `loadlab run`, or use loadlab's locustfile "
                    "(locust -f loadlab/app/locustfile.py --scenario FILE)",
                )
            self._shape = context.scenario.shape
            self.time_scale = context.scenario.time_scale
        return self._shape
