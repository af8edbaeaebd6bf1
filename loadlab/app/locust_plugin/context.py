"""The run's :class:`~loadlab.load.context.LoadContext`, built from Locust's parsed options."""

from __future__ import annotations

import os
import uuid
from typing import Any

from loadlab.load.context import LoadContext, RowSink
from loadlab.scenario.files import load_scenario
from loadlab.scenario.model import Scenario


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
        jwt_secret=os.environ.get("LOADLAB_JWT_SECRET"),
        api_key=os.environ.get("LOADLAB_OPENAI_API_KEY"),
        sink=sink,
        worker_id=worker_id,
        run_id=run_id or uuid.uuid4().hex[:12],
        lambda_function=getattr(options, "lambda_function", "") or None,
    )
