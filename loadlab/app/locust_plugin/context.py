"""The run's :class:`~loadlab.load.context.LoadContext`, built from Locust's parsed options."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loadlab.app.scenarios import resolve_scenario_path
from loadlab.embedded.state import STACK_FILE, StackState
from loadlab.errors import StackError
from loadlab.load.context import LoadContext, RowSink
from loadlab.scenario.files import load_scenario
from loadlab.scenario.model import Scenario

DEFAULT_SCENARIO = "ci_smoke"
STATE_DIR_ENV = "LOADLAB_STATE_DIR"


def choose_scenario(options: Any) -> Path:
    """Resolve ``--scenario`` (a path or a name) in place; say so when none was given."""
    given = str(options.scenario or "")
    path = resolve_scenario_path(given or DEFAULT_SCENARIO)
    if not given:
        sys.stderr.write(
            f"loadlab: no --scenario given: running {path} (a small smoke test); "
            "pass --scenario FILE for another\n"
        )
    ignored = [
        flag
        for flag, name in (("-u", "num_users"), ("-r", "spawn_rate"), ("-t", "run_time"))
        if getattr(options, name, None)
    ]
    if ignored:
        sys.stderr.write(
            f"loadlab: {'/'.join(ignored)} ignored: the scenario's load shape decides users, "
            "spawn rate and duration; use --peak-users N and --time-scale F instead\n"
        )
    options.scenario = str(path)
    return path


def jwt_secret_for(host: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """``LOADLAB_JWT_SECRET``, else the secret of a running ``loadlab up`` stack ``host`` is on."""
    secret = environ.get("LOADLAB_JWT_SECRET")
    if secret is not None or not host:
        return secret
    try:
        running = StackState.read_running(Path(environ.get(STATE_DIR_ENV, ".loadlab")) / STACK_FILE)
    except StackError:
        return None
    if running is not None and running.serves(host):
        sys.stderr.write("loadlab: signing turns with the secret of the running embedded stack\n")
        return running.jwt_secret
    return None


def scenario_of(options: Any, host: str | None) -> Scenario:
    """The scenario file named by ``--scenario``, with the command line's overrides."""
    return load_scenario(options.scenario).with_overrides(
        users=options.peak_users or None,
        target_url=host or None,
        time_scale=options.time_scale or None,
    )


def build_context(
    options: Any, host: str | None, sink: RowSink, *, worker_id: str, run_id: str | None = None
) -> LoadContext:
    """The context every user of this Locust process shares.

    The transport is chosen here, once: ``--lambda-function`` (or a scenario whose
    ``target.protocol`` is ``lambda``) makes the turns Lambda invocations.
    """
    scenario = scenario_of(options, host)
    return LoadContext(
        scenario=scenario,
        target_url=scenario.target.url or host or "",
        jwt_secret=jwt_secret_for(host),
        api_key=os.environ.get("LOADLAB_OPENAI_API_KEY"),
        sink=sink,
        worker_id=worker_id,
        run_id=run_id or uuid.uuid4().hex[:12],
        lambda_function=getattr(options, "lambda_function", "") or None,
    )
