"""Actions: recycle, kill or throttle a Lambda function's environments, each fault a lease.

Every action first reverts the leases that are due (past their expiry, or whose
owner process is gone), then records its own lease, then applies its fault, and
starts a watchdog that reverts it at its expiry
(:mod:`~loadlab.chaos.aws_lambda.leases`). Declare the matching rollback
(``restore_concurrency``, ``clear_kill_orders``, ``restore_configuration``) so
that it ends on every ending of the experiment.

The function name defaults to ``$LOADLAB_LAMBDA_FUNCTION`` when given empty.
AWS is reached through boto3 as chaostoolkit-aws reaches it (the experiment's
``configuration``/``secrets``, ``AWS_ENDPOINT_URL``): the same calls work on
ministack and on AWS.

Where chaostoolkit-aws is used and where not
    The throttle is applied with ``chaosaws.awslambda.actions.put_function_concurrency``.
    Its ``get_function_concurrency`` probe raises ``KeyError`` on a function without
    reserved concurrency (AWS then answers ``{}``), and ``delete_function_concurrency``
    cannot restore a previous value, so reading and restoring are loadlab's own.
    ``chaosaws.ssm.actions.put_parameter`` sends ``None`` for every optional field it
    is not given, which boto3 refuses, so kill orders and leases use boto3 directly.
    chaostoolkit-aws has nothing that kills an environment or recycles them all.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from chaoslib.exceptions import ActivityFailed

from loadlab.chaos.aws_lambda.aws_clients import (
    Clients,
    aws_errors,
    chaos_clients,
    explain,
    function_name_of,
    reserved_concurrency,
    wait_until_updated,
)
from loadlab.chaos.aws_lambda.kill_orders import (
    DEFAULT_PREFIX,
    MOMENTS,
    order_json,
    order_parameter,
)
from loadlab.chaos.aws_lambda.lease_store import (
    NONCE_VARIABLE,
    Lease,
    LeaseKind,
    abandon,
    list_leases,
    new_lease,
    record_lease,
)
from loadlab.chaos.aws_lambda.leases import revert_due_leases, roll_back
from loadlab.chaos.aws_lambda.watchdog import start_watchdog

__all__ = [
    "clear_kill_orders",
    "kill_environments",
    "recycle_environments",
    "restore_concurrency",
    "restore_configuration",
    "revert_expired_leases",
    "throttle",
]

MAX_LEASE_S = 24 * 3600.0
"""The longest a fault may be leased for: a forgotten fault never outlives a day."""


def recycle_environments(
    function_name: str,
    wait_s: float = 60.0,
    lease_s: float = 1800.0,
    *,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Recycle every environment of the function, as a deployment does.

    Updates the function's configuration with a new ``LOADLAB_CONFIG_NONCE``
    variable (all other variables kept: Lambda replaces ``Environment`` whole,
    and the update is conditional on the configuration read, so a concurrent
    change is never lost), then waits until the update is done. Environments
    started afterwards are new and cold. On AWS, invocations in flight finish on
    the old environments; on ministack the update kills them at once.

    :param function_name: the Lambda function (name or ARN; empty: ``$LOADLAB_LAMBDA_FUNCTION``).
    :param wait_s: seconds to wait for the update to complete (ActivityFailed after).
    :param lease_s: seconds the nonce may stay before it is removed again (its lease).
        Removing it recycles the environments once more, so make it outlast the load;
        the rollback ``restore_configuration`` removes it earlier.
    :returns: ``{"target", "function_name", "nonce", "previous_nonce", "lease_id",
        "lease_expires_at", "requested_at", "ready_after_s", "variables_kept"}``.
    """
    name = function_name_of(function_name)
    wait = _seconds("wait_s", wait_s)
    duration = _seconds("lease_s", lease_s)
    clients = _clients(configuration, secrets)
    with aws_errors(clients, f"reading the configuration of {name}", function_name=name):
        wait_until_updated(clients.lambda_, name, wait_s=wait)  # an update in progress refuses ours
        config = clients.lambda_.get_function_configuration(FunctionName=name)
        holders = _live(clients, name, "config_nonce")
    variables = dict((config.get("Environment") or {}).get("Variables") or {})
    current = variables.get(NONCE_VARIABLE)
    nonce = uuid.uuid4().hex[:16]
    lease = new_lease(
        kind="config_nonce",
        function_name=name,
        duration_s=duration,
        applied=nonce,
        previous=_original(holders, current),
    )
    _record(clients, lease)
    requested_at = time.time()
    try:
        clients.lambda_.update_function_configuration(
            FunctionName=name,
            Environment={"Variables": variables | {NONCE_VARIABLE: nonce}},
            RevisionId=str(config["RevisionId"]),
        )
    except (ClientError, BotoCoreError) as exc:
        reason = explain(exc, f"recycling {name}", function_name=name, where=clients.where())
        abandon(clients, lease, reason)
        raise ActivityFailed(f"{reason} (nothing was changed)") from None
    start_watchdog(lease, configuration=configuration, secrets=secrets)
    with aws_errors(clients, f"waiting for {name} to finish its update", function_name=name):
        ready_after = wait_until_updated(clients.lambda_, name, wait_s=wait)
    return {
        "target": lease.target,
        "function_name": name,
        "nonce": nonce,
        "previous_nonce": current,
        "lease_id": lease.lease_id,
        # Not "expires_at": the recycle itself is instantaneous; this is the nonce's lease.
        "lease_expires_at": lease.expires_at,
        "requested_at": requested_at,
        "ready_after_s": round(ready_after, 3),
        "variables_kept": len(variables),
    }


def restore_configuration(
    function_name: str,
    wait_s: float = 60.0,
    *,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Remove the nonce(s) ``recycle_environments`` set (use as a rollback).

    Only a nonce that is still loadlab's is removed; that recycles the
    environments once more.

    :param function_name: the Lambda function (empty: ``$LOADLAB_LAMBDA_FUNCTION``).
    :param wait_s: seconds to wait for the update to complete.
    :returns: ``{"target", "function_name", "reverted": [...], "active": false}``.
    """
    name = function_name_of(function_name)
    wait = _seconds("wait_s", wait_s)
    clients = _clients(configuration, secrets)
    with aws_errors(clients, f"restoring the configuration of {name}", function_name=name):
        reverted = roll_back(clients, name, "config_nonce")
        if any(r.outcome == "restored" for r in reverted):
            wait_until_updated(clients.lambda_, name, wait_s=wait)
    return {
        "target": f"function_name={name}",
        "function_name": name,
        "reverted": [r.to_json() for r in reverted],
        "active": False,
    }


def kill_environments(
    function_name: str,
    fraction: float = 0.5,
    moment: str = "llm_call",
    duration_s: float = 60.0,
    parameter_prefix: str = DEFAULT_PREFIX,
    *,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Order a share of the function's environments to end their own process mid-invocation.

    Writes a kill order to SSM Parameter Store (``<parameter_prefix>/<function>``),
    which the function's kill-order hook (``loadlab.embedded.aws_lambda.killhook``; the
    reference agent has it) reads within its refresh interval (5 s by default).
    About ``fraction`` of the environments running now then exit at ``moment``;
    their invocation in flight fails, and the environments that replace them are
    spared. The function ignores the order after ``duration_s``.

    :param function_name: the Lambda function (empty: ``$LOADLAB_LAMBDA_FUNCTION``).
    :param fraction: share of the running environments to kill, in (0, 1].
    :param moment: ``llm_call`` (after the turn is checkpointed, while the LLM is
        called) or ``any`` (at the start of an invocation).
    :param duration_s: seconds the order holds (its lease); > 0.
    :param parameter_prefix: where kill orders live in Parameter Store (the function's
        ``LOADLAB_KILL_ORDERS_PREFIX`` must match).
    :returns: ``{"target", "function_name", "parameter", "order_id", "fraction",
        "moment", "issued_at", "expires_at", "duration_s", "lease_id"}``.
    """
    name = function_name_of(function_name)
    share = _number("fraction", fraction)
    if not 0 < share <= 1:
        raise ActivityFailed(f"fraction={fraction!r} is invalid: give a share in (0, 1]")
    if moment not in MOMENTS:
        raise ActivityFailed(f"moment={moment!r} is invalid: give one of {', '.join(MOMENTS)}")
    if not parameter_prefix.startswith("/"):
        raise ActivityFailed(f"parameter_prefix={parameter_prefix!r} must start with '/'")
    duration = _seconds("duration_s", duration_s)
    clients = _clients(configuration, secrets)
    with aws_errors(clients, f"looking up {name}", function_name=name):
        # The hook knows its function by its plain name, whatever form was given.
        name = str(clients.lambda_.get_function_configuration(FunctionName=name)["FunctionName"])
    parameter = order_parameter(name, parameter_prefix)
    order_id = uuid.uuid4().hex[:16]
    lease = new_lease(
        kind="kill_order",
        function_name=name,
        duration_s=duration,
        applied=order_id,
        previous=None,
        parameter=parameter,
    )
    _record(clients, lease)
    order = order_json(
        order_id=order_id,
        function_name=name,
        fraction=share,
        moment=moment,  # type: ignore[arg-type]  # checked against MOMENTS above
        issued_at=lease.created_at,
        expires_at=lease.expires_at,
    )
    try:
        clients.ssm.put_parameter(
            Name=parameter,
            Value=order,
            Type="String",
            Overwrite=True,
            Description=f"loadlab kill order for {name}",
        )
    except (ClientError, BotoCoreError) as exc:
        reason = explain(exc, f"writing the kill order {parameter}", function_name=None,
                         where=clients.where())  # fmt: skip
        abandon(clients, lease, reason)
        raise ActivityFailed(f"{reason} (no order was written)") from None
    start_watchdog(lease, configuration=configuration, secrets=secrets)
    return {
        "target": lease.target,
        "function_name": name,
        "parameter": parameter,
        "order_id": order_id,
        "fraction": share,
        "moment": moment,
        "issued_at": lease.created_at,
        "expires_at": lease.expires_at,
        "duration_s": duration,
        "lease_id": lease.lease_id,
    }


def clear_kill_orders(
    function_name: str,
    parameter_prefix: str = DEFAULT_PREFIX,
    *,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Delete the function's kill order and its leases now (use as a rollback).

    :param function_name: the Lambda function (empty: ``$LOADLAB_LAMBDA_FUNCTION``).
    :param parameter_prefix: where kill orders live in Parameter Store.
    :returns: ``{"target", "function_name", "parameter", "deleted", "reverted": [...],
        "active": false}``.
    """
    name = function_name_of(function_name)
    parameter = order_parameter(name, parameter_prefix)
    clients = _clients(configuration, secrets)
    with aws_errors(clients, f"clearing the kill order {parameter}"):
        reverted = roll_back(clients, name, "kill_order")
        try:
            clients.ssm.delete_parameter(Name=parameter)
            deleted = True
        except clients.ssm.exceptions.ParameterNotFound:
            deleted = any(r.outcome == "restored" for r in reverted)
    return {
        "target": f"function_name={name}",
        "function_name": name,
        "parameter": parameter,
        "deleted": deleted,
        "reverted": [r.to_json() for r in reverted],
        "active": False,
    }


def throttle(
    function_name: str,
    reserved_concurrency: int = 0,
    duration_s: float = 60.0,
    *,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Cut the function's reserved concurrency for ``duration_s`` seconds (0 refuses everything).

    Invocations beyond it are refused with 429 ``TooManyRequestsException``. The
    value it had (or none) is kept in the lease and comes back at the rollback,
    at the expiry (the lease's watchdog), or at loadlab's next start.

    :param function_name: the Lambda function (empty: ``$LOADLAB_LAMBDA_FUNCTION``).
    :param reserved_concurrency: the concurrency while the throttle lasts, >= 0.
    :param duration_s: seconds the throttle lasts (its lease); > 0.
    :returns: ``{"target", "function_name", "reserved_concurrency", "previous",
        "expires_at", "duration_s", "lease_id"}``.
    """
    name = function_name_of(function_name)
    value = _count("reserved_concurrency", reserved_concurrency)
    duration = _seconds("duration_s", duration_s)
    clients = _clients(configuration, secrets)
    with aws_errors(clients, f"reading the reserved concurrency of {name}", function_name=name):
        current = _reserved(clients, name)
        holders = _live(clients, name, "throttle")
    previous = _original(holders, current)
    lease = new_lease(
        kind="throttle", function_name=name, duration_s=duration, applied=value, previous=previous
    )
    _record(clients, lease)
    from chaosaws.awslambda.actions import put_function_concurrency

    try:
        put_function_concurrency(name, value, configuration, secrets)
    except ActivityFailed as exc:
        reason = str(exc)
        if "AccessDenied" in reason:
            reason += "; fix: allow lambda:PutFunctionConcurrency for the identity running it"
        abandon(clients, lease, reason)
        raise ActivityFailed(f"{reason} (the throttle was not applied)") from None
    start_watchdog(lease, configuration=configuration, secrets=secrets)
    return {
        "target": lease.target,
        "function_name": name,
        "reserved_concurrency": value,
        "previous": previous,
        "expires_at": lease.expires_at,
        "duration_s": duration,
        "lease_id": lease.lease_id,
    }


def restore_concurrency(
    function_name: str,
    *,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Give the function back the reserved concurrency it had before ``throttle`` (a rollback).

    Removes it (``DeleteFunctionConcurrency``) if it had none. A value changed by
    someone else since the throttle is left alone.

    :param function_name: the Lambda function (empty: ``$LOADLAB_LAMBDA_FUNCTION``).
    :returns: ``{"target", "function_name", "reserved_concurrency", "reverted": [...],
        "active": false}``.
    """
    name = function_name_of(function_name)
    clients = _clients(configuration, secrets)
    with aws_errors(clients, f"restoring the concurrency of {name}", function_name=name):
        reverted = roll_back(clients, name, "throttle")
        after = _reserved(clients, name)
    return {
        "target": f"function_name={name}",
        "function_name": name,
        "reserved_concurrency": after,
        "reverted": [r.to_json() for r in reverted],
        "active": False,
    }


def revert_expired_leases(
    *, configuration: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Revert every Lambda fault lease past its expiry, or whose owner process is gone.

    :returns: one ``{"lease_id", "kind", "function_name", "why", "outcome", "detail"}``
        per lease handled (``outcome``: ``restored``, ``left`` when the setting had
        changed since, ``failed`` when AWS refused: the lease is kept).
    """
    clients = chaos_clients(configuration, secrets)
    with aws_errors(clients, "reverting loadlab's expired fault leases"):
        return [r.to_json() for r in revert_due_leases(clients)]


def _reserved(clients: Clients, function_name: str) -> int | None:
    return reserved_concurrency(clients.lambda_, function_name)


def _clients(configuration: dict[str, Any] | None, secrets: dict[str, Any] | None) -> Clients:
    """The activity's clients, once the due leases are reverted (a fault never stacks on a
    forgotten one)."""
    clients = chaos_clients(configuration, secrets)
    with aws_errors(clients, "reverting loadlab's expired fault leases before acting"):
        revert_due_leases(clients)
    return clients


def _live(clients: Clients, function_name: str, kind: LeaseKind) -> list[Lease]:
    now = time.time()
    return [
        lease
        for lease in list_leases(clients, function_name=function_name, kind=kind)
        if not lease.expired(now)
    ]


def _original(holders: list[Lease], current: int | str | None) -> int | str | None:
    """What to restore: if a live lease set the current value, the value from before it."""
    owning = [lease for lease in holders if lease.applied == current]
    return owning[-1].previous if owning else current


def _record(clients: Clients, lease: Lease) -> None:
    with aws_errors(clients, f"recording the lease of a fault on {lease.function_name} "
                    "(nothing was changed)"):  # fmt: skip
        record_lease(clients, lease)


def _number(name: str, value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]  # experiments may pass strings
    except (TypeError, ValueError):
        raise ActivityFailed(f"{name}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise ActivityFailed(f"{name}={value!r} is not a finite number")
    return number


def _seconds(name: str, value: object) -> float:
    seconds = _number(name, value)
    if not 0 < seconds <= MAX_LEASE_S:
        raise ActivityFailed(f"{name}={value!r} is invalid: give seconds in (0, {MAX_LEASE_S:g}]")
    return seconds


def _count(name: str, value: object) -> int:
    number = _number(name, value)
    if number < 0 or number != int(number):
        raise ActivityFailed(f"{name}={value!r} is invalid: give a whole number >= 0")
    return int(number)
