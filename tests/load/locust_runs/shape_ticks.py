"""Drive the Locust shapes on a fake clock; print their ticks as JSON.

Run in its own process (it imports locust); see tests/load/test_load_locust.py.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

from loadlab.errors import ConfigError
from loadlab.load.context import ListSink, LoadContext
from loadlab.load.shapes import FlashSale, ScenarioShape, Soak, Spike, Step
from loadlab.scenario import parse_scenario


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def ticks(shape: object, clock: FakeClock, times: list[float]) -> list[object]:
    shape.reset_time()  # type: ignore[attr-defined]
    start = clock.now
    out = []
    for t in times:
        clock.now = start + t
        out.append(shape.tick())  # type: ignore[attr-defined]
    return out


def main() -> None:
    clock = FakeClock()
    out: dict[str, object] = {}
    out["flash_sale"] = ticks(
        FlashSale(
            baseline_users=10,
            peak_users=110,
            ramp_s=10,
            hold_s=10,
            decay_s=10,
            max_spawn_rate=50,
            clock=clock,
        ),
        clock,
        [0, 5, 10, 25, 30],
    )
    out["step"] = ticks(
        Step(start_users=1, step_users=2, step_s=10, steps=2, clock=clock), clock, [0, 10, 20]
    )
    out["spike"] = ticks(
        Spike(base_users=1, spike_users=9, at_s=5, spike_s=5, total_s=20, clock=clock),
        clock,
        [0, 6, 12, 20],
    )
    out["soak_scaled"] = ticks(
        Soak(users=10, ramp_s=10, duration_s=100, time_scale=0.1, clock=clock), clock, [0.5, 5, 10]
    )
    out["default_flash_sale"] = FlashSale().tick() is not None
    try:
        FlashSale(peak_users=-1)
        out["bad_args"] = None
    except ConfigError as exc:
        out["bad_args"] = str(exc)
    scenario = parse_scenario(
        {
            "name": "s",
            "time_scale": 0.5,
            "shape": {"kind": "soak", "users": 4, "ramp_s": 0, "duration_s": 10},
        }
    )
    shape = ScenarioShape(clock=clock)
    shape.runner = SimpleNamespace(
        environment=SimpleNamespace(
            loadlab=LoadContext(scenario=scenario, target_url="http://127.0.0.1:1", sink=ListSink())
        )
    )
    out["scenario_shape"] = ticks(shape, clock, [0, 4.9, 5])
    unset = ScenarioShape(clock=clock)
    unset.runner = SimpleNamespace(environment=SimpleNamespace())
    try:
        unset.tick()
        out["unset"] = None
    except ConfigError as exc:
        out["unset"] = str(exc)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
