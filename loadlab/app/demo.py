"""``loadlab demo``: the embedded stack, a short flash sale, one pod deleted mid-sale, report."""

from __future__ import annotations

import asyncio

from loadlab.app.closing import check_locust, check_verdict, render_and_print
from loadlab.app.embedded import audit_embedded, delete_pod_mid_sale, embedded_stack, pressure_env
from loadlab.app.locust_process import run_load
from loadlab.app.options import DemoOptions
from loadlab.app.scenarios import resolve_scenario_path
from loadlab.errors import ConfigError
from loadlab.load.launch import LocustLaunch
from loadlab.measure.rundir import RunDirectory, new_run_dir
from loadlab.scenario.files import load_scenario


def execute(options: DemoOptions) -> int:
    """Run the demo; 0 when the verdict passes, else raise (exit 6, or Locust's own code)."""
    if not 0 <= options.kill_at < 1:
        raise ConfigError(
            f"--kill-at {options.kill_at} is outside [0, 1)",
            hint="give a fraction of the run, e.g. --kill-at 0.5, or 0 for no kill",
        )
    return asyncio.run(_demo(options))


async def _demo(options: DemoOptions) -> int:
    path = resolve_scenario_path(options.scenario)
    scenario = load_scenario(path)
    if options.users:
        scenario = scenario.with_overrides(users=options.users)
    run_dir = new_run_dir(options.runs_root, scenario.name)
    duration = scenario.shape.duration_s * scenario.time_scale
    async with embedded_stack(options.stack) as stack:
        state = stack.state
        launch = LocustLaunch(
            scenario_path=path,
            target_url=state.endpoints.agent_url,
            run_dir=run_dir,
            users=options.users,
            metrics_port=options.metrics_port,
            jwt_secret=state.jwt_secret,
            env=pressure_env(state),
        )
        print(
            f"loadlab: flash sale '{scenario.name}' for ~{duration:.0f}s, "
            f"peak {scenario.shape.peak} sessions -> {run_dir}",
            flush=True,
        )

        async def kill_one_pod() -> None:
            await asyncio.sleep(duration * options.kill_at)
            await delete_pod_mid_sale(stack, RunDirectory(run_dir))

        rc = await run_load(launch, during=kill_one_pod if options.kill_at > 0 else None)
        await audit_embedded(state, run_dir, scenario)
    out = render_and_print(run_dir, locust_rc=rc)
    check_locust(rc)
    check_verdict(out)
    return 0
