"""Probes: a Lambda function's reserved concurrency, its kill order, and loadlab's leases.

Probes read only: they never revert a lease (the actions and
``revert_expired_leases`` do).
"""

from __future__ import annotations

import time
from typing import Any

from loadlab.chaos.aws_lambda.aws_clients import (
    aws_errors,
    chaos_clients,
    function_name_of,
    reserved_concurrency,
)
from loadlab.chaos.aws_lambda.kill_orders import DEFAULT_PREFIX, order_parameter, read_order
from loadlab.chaos.aws_lambda.lease_store import list_leases

__all__ = [
    "active_leases",
    "function_concurrency",
    "kill_order",
    "kill_order_active",
    "throttle_active",
]


def function_concurrency(
    function_name: str,
    *,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The function's reserved concurrency and the loadlab throttles in force on it.

    :param function_name: the Lambda function (empty: ``$LOADLAB_LAMBDA_FUNCTION``).
    :returns: ``{"function_name", "reserved_concurrency"`` (None: unreserved),
        ``"throttled"`` (reserved concurrency 0), ``"leases"`` (ids of live throttle leases)``}``.
    """
    name = function_name_of(function_name)
    clients = chaos_clients(configuration, secrets)
    with aws_errors(clients, f"reading the reserved concurrency of {name}", function_name=name):
        value = reserved_concurrency(clients.lambda_, name)
        leases = list_leases(clients, function_name=name, kind="throttle")
    now = time.time()
    return {
        "function_name": name,
        "reserved_concurrency": value,
        "throttled": value == 0,
        "leases": [lease.lease_id for lease in leases if not lease.expired(now)],
    }


def throttle_active(
    function_name: str,
    *,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> bool:
    """True while the function is throttled by loadlab: a throttle lease of it is stored and
    its reserved concurrency is still the value that lease set (tolerance ``false`` checks
    that the throttle is over, expired leases not yet reverted included).

    :param function_name: the Lambda function (empty: ``$LOADLAB_LAMBDA_FUNCTION``).
    """
    name = function_name_of(function_name)
    clients = chaos_clients(configuration, secrets)
    with aws_errors(clients, f"reading the throttle of {name}", function_name=name):
        leases = list_leases(clients, function_name=name, kind="throttle")
        if not leases:
            return False
        value = reserved_concurrency(clients.lambda_, name)
    return any(lease.applied == value for lease in leases)


def active_leases(
    function_name: str | None = None,
    *,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """loadlab's fault leases on Lambda functions, as stored, with whether each is due.

    :param function_name: only this function's leases (default: all).
    :returns: one lease record per lease (``lease_id``, ``kind``, ``function_name``,
        ``applied``, ``previous``, ``expires_at``, ``owner`` ...) plus ``"expired"`` and
        ``"orphaned"`` (its owner process on this host is gone).
    """
    clients = chaos_clients(configuration, secrets)
    with aws_errors(clients, "listing loadlab's fault leases"):
        leases = list_leases(clients, function_name=function_name or None)
    now = time.time()
    return [
        lease.to_json() | {"expired": lease.expired(now), "orphaned": lease.owner.gone()}
        for lease in leases
    ]


def kill_order(
    function_name: str,
    parameter_prefix: str = DEFAULT_PREFIX,
    *,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The function's kill order as stored, and whether the function obeys it now.

    :param function_name: the Lambda function (empty: ``$LOADLAB_LAMBDA_FUNCTION``).
    :param parameter_prefix: where kill orders live in Parameter Store.
    :returns: ``{"parameter", "order"`` (the stored JSON, or None), ``"active"`` (well
        formed and not expired), ``"problem"`` (why an order that is there does not
        apply)``}``.
    """
    name = function_name_of(function_name)
    clients = chaos_clients(configuration, secrets)
    parameter = order_parameter(name, parameter_prefix)
    with aws_errors(clients, f"reading the kill order {parameter}"):
        return read_order(clients, parameter)


def kill_order_active(
    function_name: str,
    parameter_prefix: str = DEFAULT_PREFIX,
    *,
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
) -> bool:
    """True while the function has a kill order it obeys (tolerance ``false`` checks that the
    order expired or was cleared).

    :param function_name: the Lambda function (empty: ``$LOADLAB_LAMBDA_FUNCTION``).
    :param parameter_prefix: where kill orders live in Parameter Store.
    """
    answer = kill_order(
        function_name, parameter_prefix, configuration=configuration, secrets=secrets
    )
    return bool(answer["active"])
