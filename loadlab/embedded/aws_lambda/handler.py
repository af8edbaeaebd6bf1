"""The agent function's entry point: ``loadlab.embedded.aws_lambda.handler.handler``.

Configuration comes from the same ``LOADLAB_*`` variables as the pod agent
(:mod:`loadlab.embedded.agent.config`). ``LOADLAB_AGENT_INSTANCE_ID`` should be
left unset: each execution environment then names itself
``lambda-<pid>-<log stream suffix>``, so ``meta`` events tell environments apart
(and, on ministack, the pid is the environment's process).

The expensive initialisation (imports, catalog, AWS and LLM clients, the
simulated init delay) runs once per environment, during Lambda's Init phase
when the module is imported inside a Lambda runtime, else at the first
invocation; the ``meta`` event of the environment's first turn reports
``cold: true`` and that time as ``init_ms``. A configuration error does not
fail the import: every invocation answers ``503 not_ready`` naming the bad
variable until the function is fixed.

Each environment obeys kill orders (:mod:`~loadlab.embedded.aws_lambda.killhook`):
it checks at the start of every invocation (moment ``any``) and after every
turn's ``meta`` event (moment ``llm_call``), and first reads the order on a
background thread during Init.
``LOADLAB_KILL_ORDERS=off`` turns that off.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loadlab.errors import LoadLabError

if TYPE_CHECKING:
    from loadlab.embedded.aws_lambda.killhook import KillOrders
    from loadlab.embedded.aws_lambda.runtime import LambdaAgent

log = logging.getLogger("loadlab.embedded.aws_lambda")

IN_LAMBDA = "AWS_LAMBDA_FUNCTION_NAME"
"""Set by every Lambda runtime (AWS and ministack) in the function's environment."""


def instance_name(environ: Mapping[str, str], pid: int) -> str:
    """``lambda-<pid>-<last 8 characters of the environment's log stream name>``."""
    stream = "".join(c for c in environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "") if c.isalnum())
    return f"lambda-{pid}-{stream[-8:] or 'local'}"


@functools.cache
def kill_switch() -> KillOrders:
    """This environment's kill-order hook (inert outside Lambda), keyed on its instance id."""
    from loadlab.embedded.aws_lambda.killhook import KillOrders

    environment_id = os.environ.get("LOADLAB_AGENT_INSTANCE_ID") or instance_name(
        os.environ, os.getpid()
    )
    return KillOrders.from_environment(environment_id=environment_id)


@functools.cache
def environment() -> LambdaAgent:
    """This execution environment's started agent (built once per process).

    Raises :class:`~loadlab.errors.ConfigError` for a bad ``LOADLAB_*`` variable;
    the next call tries again.
    """
    began = time.perf_counter()
    # Imported here, not at the top: their cost (boto3, aiohttp) is the cold start.
    from loadlab.embedded.agent.config import AgentConfig
    from loadlab.embedded.aws_lambda.runtime import LambdaAgent

    environ = dict(os.environ)
    environ.setdefault("LOADLAB_AGENT_INSTANCE_ID", instance_name(environ, os.getpid()))
    orders = kill_switch()
    orders.prime()  # its SSM client loads beside the agent's initialisation, not after it
    agent = LambdaAgent(config=AgentConfig.from_env(environ), on_event=orders.on_event)
    agent.start(began=began)
    log.info("environment %s ready in %.1f ms", agent.instance_id, agent.agent.init_ms or 0.0)
    return agent


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Answer one invocation (direct or HTTP proxy event) with a proxy response."""
    try:
        agent = environment()
        if isinstance(event, dict) and "loadlab_provision" in event:
            return _provisioned(agent, event["loadlab_provision"])
    except LoadLabError as exc:
        return {
            "statusCode": 503,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"error": {"kind": "not_ready", "message": str(exc)}}),
            "isBase64Encoded": False,
        }
    kill_switch().reached("invocation")
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return agent.invoke(event, remaining_ms=remaining() if callable(remaining) else None)


def _provisioned(agent: LambdaAgent, spec: Any) -> dict[str, Any]:
    """A provisioning invocation (:mod:`~.provisioned`): initialised, held, marked warm."""
    hold_ms = spec.get("hold_ms", 0.0) if isinstance(spec, dict) else 0.0
    agent.agent.mark_provisioned()
    # Held so that N concurrent provisioning invocations occupy N environments.
    time.sleep(min(max(float(hold_ms), 0.0), 10_000.0) / 1000.0)
    body = {"instance_id": agent.instance_id, "init_ms": agent.agent.init_ms}
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _log_to_stderr() -> None:
    """Send loadlab's INFO lines to stderr (Lambda's log) unless the runtime routes logs."""
    logger = logging.getLogger("loadlab")
    logger.setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(stream)


if os.environ.get(IN_LAMBDA):
    _log_to_stderr()
    try:
        environment()
    except LoadLabError as init_error:
        log.error("the agent cannot start: %s", init_error)
