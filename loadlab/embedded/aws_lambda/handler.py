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

``LOADLAB_AGENT_INIT=handler`` moves that initialisation into every invocation
(the module-scope vs in-handler anti-pattern; default ``module``). With
``LOADLAB_SNAPSTART_SOCKET`` set, an environment does not initialise at all: it
is restored from the snapshot the stack keeps
(:mod:`~loadlab.embedded.aws_lambda.snapstart`), and its first turn reports the
restore duration as ``init_ms``. The agent's connections are closed before the
snapshot and reopened after each restore by runtime hooks registered here.

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
import secrets
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loadlab.errors import ConfigError, LoadLabError

if TYPE_CHECKING:
    from loadlab.embedded.aws_lambda.killhook import KillOrders
    from loadlab.embedded.aws_lambda.runtime import InitScope, LambdaAgent
    from loadlab.embedded.aws_lambda.snapstart import RestoredEnvironment

log = logging.getLogger("loadlab.embedded.aws_lambda")

IN_LAMBDA = "AWS_LAMBDA_FUNCTION_NAME"
"""Set by every Lambda runtime (AWS and ministack) in the function's environment."""
INIT_ENV = "LOADLAB_AGENT_INIT"
"""``module`` (default) or ``handler``: where the agent initialises."""
SNAPSTART_ENV = "LOADLAB_SNAPSTART_SOCKET"
"""Set (by the embedded stack) when environments are restored from a snapshot."""


def init_scope(environ: Mapping[str, str]) -> InitScope:
    """``LOADLAB_AGENT_INIT``: ``module`` or ``handler``; ``ConfigError`` for anything else."""
    value = environ.get(INIT_ENV, "module").strip().lower() or "module"
    if value == "module":
        return "module"
    if value == "handler":
        return "handler"
    raise ConfigError(
        f"{INIT_ENV}={value!r} is not an initialisation scope",
        hint=f"set {INIT_ENV} to module (once per environment) or handler (every invocation)",
    )


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
    from loadlab.embedded.aws_lambda.snapstart import (
        register_after_restore,
        register_before_snapshot,
    )

    environ = dict(os.environ)
    scope = init_scope(environ)
    environ.setdefault("LOADLAB_AGENT_INSTANCE_ID", instance_name(environ, os.getpid()))
    orders = kill_switch()
    orders.prime()  # its SSM client loads beside the agent's initialisation, not after it
    agent = LambdaAgent(
        config=AgentConfig.from_env(environ), on_event=orders.on_event, init_scope=scope
    )
    if scope == "module":
        agent.start(began=began)
        log.info("environment %s ready in %.1f ms", agent.instance_id, agent.agent.init_ms or 0.0)
        # SnapStart runtime hooks: no connection may outlive the snapshot.
        register_before_snapshot(agent.before_snapshot)
        register_after_restore(_after_restore, agent)
    return agent


@functools.cache
def restored_environment() -> RestoredEnvironment | None:
    """This environment restored from the stack's snapshot, or None without SnapStart.

    Raises :class:`~loadlab.errors.StackError` when there is no snapshot to
    restore; the next call tries again.
    """
    socket_path = os.environ.get(SNAPSTART_ENV)
    if not socket_path:
        return None
    from loadlab.embedded.aws_lambda.snapstart import restore

    restored = restore(socket_path)
    log.info("environment %s restored in %.1f ms", restored.instance_id, restored.restore_ms)
    return restored


def _after_restore(agent: LambdaAgent) -> None:
    """SnapStart: a restored environment is a copy of the snapshot, so it takes a name of
    its own (the embedded keeper gives one; on AWS a random suffix tells copies apart),
    a kill-order hook keyed on that name, and new connections."""
    name = os.environ.get("LOADLAB_AGENT_INSTANCE_ID") or (
        f"{instance_name(os.environ, os.getpid())}-{secrets.token_hex(2)}"
    )
    os.environ["LOADLAB_AGENT_INSTANCE_ID"] = name
    kill_switch.cache_clear()
    orders = kill_switch()
    orders.prime()
    agent.on_event = orders.on_event
    agent.after_restore(name)


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Answer one invocation (direct or HTTP proxy event) with a proxy response."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    remaining_ms = remaining() if callable(remaining) else None
    try:
        restored = restored_environment()
        if restored is not None:
            return restored.invoke(event, remaining_ms)
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
    return agent.invoke(event, remaining_ms=remaining_ms)


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


def _restore_or_initialise() -> None:
    """The Init phase: restore from the snapshot when there is one, else initialise."""
    try:
        if restored_environment() is None:
            environment()
    except LoadLabError as init_error:
        log.error("the agent cannot start: %s", init_error)


if os.environ.get(IN_LAMBDA):
    _log_to_stderr()
    _restore_or_initialise()
