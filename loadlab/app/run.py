"""``loadlab run``: one scenario against an agent (or the embedded stack), then the report."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from loadlab.app.closing import check_locust, check_verdict, print_verdict, render_and_print
from loadlab.app.embedded import audit_embedded, embedded_stack, pressure_env
from loadlab.app.locust_process import run_load
from loadlab.app.options import RunOptions
from loadlab.app.scenarios import resolve_scenario_path
from loadlab.app.targets import check_target, resolve_target
from loadlab.embedded.state import StackState
from loadlab.load.context import lambda_function_of
from loadlab.load.launch import LocustLaunch
from loadlab.measure.rundir import new_run_dir
from loadlab.report.render import RenderedReport
from loadlab.scenario.files import load_scenario


def execute(options: RunOptions) -> int:
    """Run the scenario, render the report; 0, or raise (a failed verdict is exit 6)."""
    return asyncio.run(_run(options))


async def _run(options: RunOptions) -> int:
    path = resolve_scenario_path(options.scenario)
    scenario = load_scenario(path)
    on_lambda = lambda_function_of(scenario) is not None or options.stack.lambda_function
    if options.embedded:
        async with embedded_stack(options.stack, lambda_function=on_lambda) as stack:
            state = stack.state
            function = state.endpoints.lambda_function if on_lambda else None
            # against the Lambda target the load speaks to the Lambda API (ministack)
            url = state.endpoints.aws_endpoint_url if function else state.endpoints.agent_url
            run_dir = options.run_dir or new_run_dir(options.runs_root, scenario.name)
            launch = _launch(
                options, path, run_dir, target=url, function=function,
                secret=state.jwt_secret, env=pressure_env(state),
            )  # fmt: skip
            closing = _Closing(run_dir, audit=lambda: audit_embedded(state, run_dir, scenario))
            rc = await _load(options, launch, closing)
            await closing.audit_once()
    else:
        running = StackState.read_running(options.stack.stack_file)
        target, secret = resolve_target(options.target, scenario, running)
        check_target(target, scenario.target.protocol)
        run_dir = options.run_dir or new_run_dir(options.runs_root, scenario.name)
        # Against the stack of `loadlab up`, its downstream is sampled as with --embedded.
        ours = running is not None and running.endpoints.agent_url == target
        env = pressure_env(running) if ours and running is not None else {}
        launch = _launch(
            options, path, run_dir, target=target, function=lambda_function_of(scenario),
            secret=secret, env=env,
        )  # fmt: skip
        closing = _Closing(run_dir)
        rc = await _load(options, launch, closing)
    if closing.out is not None:
        # Locust's own summary, printed as it exited, came after the report's lines
        print_verdict(closing.out)
        print(f"report:        {closing.out.html_path}")
    out = closing.out or render_and_print(run_dir, locust_rc=rc)
    check_locust(rc)
    check_verdict(out)
    return 0


class _Closing:
    """The audit (embedded stack) and the report of one run, each done once.

    With ``--web`` they run as soon as the run is sealed, while Locust's UI still
    serves and can link to the report; otherwise after Locust has exited.
    """

    def __init__(self, run_dir: Path, audit: Callable[[], Awaitable[None]] | None = None) -> None:
        self._run_dir = run_dir
        self._audit = audit
        self.out: RenderedReport | None = None

    async def audit_once(self) -> None:
        if self._audit is not None:
            audit, self._audit = self._audit, None
            await audit()

    async def while_ui_serves(self) -> None:
        await self.audit_once()
        self.out = render_and_print(self._run_dir, locust_rc=None)


async def _load(options: RunOptions, launch: LocustLaunch, closing: _Closing) -> int:
    return await run_load(launch, sealed=closing.while_ui_serves, linger_s=options.web_linger_s)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for the master's port to its workers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _launch(
    options: RunOptions,
    scenario_path: Path,
    run_dir: Path,
    *,
    target: str,
    function: str | None,
    secret: str | None,
    env: dict[str, str],
) -> LocustLaunch:
    return LocustLaunch(
        scenario_path=scenario_path,
        target_url=target,
        lambda_function=function,
        run_dir=run_dir,
        users=options.users,
        time_scale=options.time_scale,
        web=options.web,
        web_host=options.web_host,
        web_port=options.web_port,
        serve_until_interrupted=options.web,
        workers=options.workers,
        master_port=free_port() if options.workers else 5557,
        metrics_port=options.metrics_port,
        jwt_secret=secret,
        env=env,
    )
