"""Fault leases for Lambda: recorded before a fault is applied, reverted whatever happens.

Every Lambda fault that changes the function (reserved concurrency, a kill
order, a configuration nonce) is first recorded as a lease: an SSM parameter
``/loadlab/leases/<lease id>`` (JSON: kind, function, what was set, what to
restore, ``expires_at``, the process that owns it), in the same account and
region as the function, so it survives the harness. When ``$LOADLAB_RUN_DIR`` is
set, the lease is also a ``fault`` event on the run timeline (``lease_expires``;
its end event, ``active: false``, when it is reverted). A lease is reverted by
whichever comes first:

* its rollback (``restore_concurrency``, ``clear_kill_orders``,
  ``restore_configuration``);
* its expiry: a watchdog process started with the fault reverts it then (and
  a kill order past its expiry is ignored by the function anyway); every
  loadlab Lambda action also reverts due leases before it acts;
* the next loadlab start: :func:`revert_orphaned_leases` reverts leases past
  their expiry and leases whose owner process (on this host) is gone.

Reverting restores only what the lease changed: if the setting was changed by
someone else since, it is left as it is. Overlapping leases of one kind on one
function hand over to each other: the newest live one holds the setting, and
the original value comes back when the last one goes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from chaoslib.exceptions import ActivityFailed

from loadlab.chaos.aws_lambda.aws_clients import (
    ClientFactory,
    Clients,
    aws_client_factory,
    error_code,
    explain,
    reserved_concurrency,
    set_reserved_concurrency,
    wait_until_updated,
)
from loadlab.chaos.aws_lambda.lease_store import (
    NONCE_VARIABLE,
    Lease,
    LeaseKind,
    drop_lease,
    list_leases,
    timeline,
)
from loadlab.errors import ConfigError, TargetUnreachable

__all__ = [
    "Reverted",
    "revert_due_leases",
    "revert_lease",
    "revert_orphaned_leases",
    "roll_back",
]

log = logging.getLogger("chaostoolkit")

Why = Literal["rollback", "expired", "orphaned"]
Outcome = Literal["restored", "left", "failed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reverted:
    """What reverting one lease did."""

    lease: Lease
    why: Why
    outcome: Outcome
    detail: str
    at: float = field(default_factory=time.time)

    def __str__(self) -> str:
        verb = {"restored": "reverted", "left": "dropped", "failed": "NOT reverted"}[self.outcome]
        lease = self.lease
        return f"{verb} lease {lease.lease_id} ({self.why}): {lease.describe()}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        """JSON for an activity's output."""
        return {
            "lease_id": self.lease.lease_id,
            "kind": self.lease.kind,
            "function_name": self.lease.function_name,
            "why": self.why,
            "outcome": self.outcome,
            "detail": self.detail,
        }


def revert_lease(clients: Clients, lease: Lease, *, why: Why, live: Sequence[Lease]) -> Reverted:
    """Undo what ``lease`` applied (if it still holds), drop it, and mark its end on the timeline.

    ``live`` are the other leases still in force (not expired, not being reverted):
    a newer one of the same kind on the same function keeps the setting, an older
    one gets its value back. AWS errors propagate and the lease is kept.
    """
    peers = [
        other
        for other in live
        if other.lease_id != lease.lease_id
        and other.kind == lease.kind
        and other.function_name == lease.function_name
    ]
    try:
        if lease.kind == "throttle":
            outcome, detail = _revert_throttle(clients, lease, peers)
        elif lease.kind == "kill_order":
            outcome, detail = _revert_kill_order(clients, lease)
        else:
            outcome, detail = _revert_nonce(clients, lease, peers)
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        outcome, detail = "left", f"function {lease.function_name} no longer exists"
    drop_lease(clients, lease)
    result = Reverted(lease=lease, why=why, outcome=outcome, detail=detail)
    timeline(
        lease,
        "end",
        {"status": "reverted", "why": why, "outcome": outcome, "detail": detail, "active": False},
    )
    log.info("%s", result)
    return result


def _revert_throttle(clients: Clients, lease: Lease, peers: Sequence[Lease]) -> tuple[Outcome, str]:
    current = reserved_concurrency(clients.lambda_, lease.function_name)
    if current != lease.applied:
        return "left", f"reserved concurrency is now {_concurrency(current)}, left as is"
    newer = [p for p in peers if p.created_at > lease.created_at]
    if newer:
        return "left", f"lease {newer[-1].lease_id} holds it now"
    older = [p for p in peers if p.created_at <= lease.created_at]
    target = older[-1].applied if older else lease.previous
    assert target is None or isinstance(target, int)
    set_reserved_concurrency(clients.lambda_, lease.function_name, target)
    return "restored", f"reserved concurrency back to {_concurrency(target)}"


def _concurrency(value: int | str | None) -> str:
    return "unreserved" if value is None else str(value)


def _revert_kill_order(clients: Clients, lease: Lease) -> tuple[Outcome, str]:
    assert lease.parameter is not None
    try:
        raw = clients.ssm.get_parameter(Name=lease.parameter)["Parameter"].get("Value", "")
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return "left", "the kill order is already gone"
        raise
    try:
        order_id = json.loads(raw).get("order_id")
    except (ValueError, AttributeError):
        order_id = None
    if order_id != lease.applied:
        return "left", f"{lease.parameter} holds another order now, left as is"
    with contextlib.suppress(clients.ssm.exceptions.ParameterNotFound):
        clients.ssm.delete_parameter(Name=lease.parameter)
    return "restored", f"kill order {lease.applied} deleted"


def _revert_nonce(clients: Clients, lease: Lease, peers: Sequence[Lease]) -> tuple[Outcome, str]:
    lambda_ = clients.lambda_
    wait_until_updated(lambda_, lease.function_name, wait_s=60)
    config = lambda_.get_function_configuration(FunctionName=lease.function_name)
    variables = dict((config.get("Environment") or {}).get("Variables") or {})
    if variables.get(NONCE_VARIABLE) != lease.applied:
        return "left", f"{NONCE_VARIABLE} changed since, left as is"
    if any(p.created_at > lease.created_at for p in peers):
        return "left", "a newer recycle holds it now"
    if lease.previous is None:
        variables.pop(NONCE_VARIABLE, None)
    else:
        variables[NONCE_VARIABLE] = str(lease.previous)
    lambda_.update_function_configuration(
        FunctionName=lease.function_name,
        Environment={"Variables": variables},
        RevisionId=config["RevisionId"],
    )
    before = "removed" if lease.previous is None else f"back to {lease.previous}"
    return "restored", f"{NONCE_VARIABLE} {before} (the environments recycle once more)"


def roll_back(clients: Clients, function_name: str, kind: LeaseKind) -> list[Reverted]:
    """Revert every lease of ``kind`` on ``function_name``, newest first (a rollback)."""
    mine = list_leases(clients, function_name=function_name, kind=kind)
    results = []
    while mine:
        lease = mine.pop()
        results.append(revert_lease(clients, lease, why="rollback", live=mine))
    return results


def revert_due_leases(
    clients: Clients,
    *,
    now: float | None = None,
    orphans: bool = True,
    lease_ids: Sequence[str] | None = None,
) -> list[Reverted]:
    """Revert the leases past their expiry (and, with ``orphans``, those whose owner is gone).

    ``lease_ids`` limits it to those leases. A lease that fails to revert is
    kept (for the next try) and reported with outcome ``failed``.
    """
    moment = time.time() if now is None else now
    leases = list_leases(clients)
    due: list[tuple[Lease, Why]] = []
    live: list[Lease] = []
    for lease in leases:
        if lease_ids is not None and lease.lease_id not in lease_ids:
            if not lease.expired(moment):
                live.append(lease)
            continue
        if lease.expired(moment):
            due.append((lease, "expired"))
        elif orphans and lease.owner.gone():
            due.append((lease, "orphaned"))
        else:
            live.append(lease)
    results = []
    for lease, why in reversed(due):
        try:
            results.append(revert_lease(clients, lease, why=why, live=live))
        except (ClientError, BotoCoreError, ActivityFailed) as exc:
            detail = (
                str(exc)
                if isinstance(exc, ActivityFailed)
                else explain(exc, "reverting it", function_name=None, where=clients.where())
            )
            log.warning("cannot revert lease %s: %s", lease.lease_id, detail)
            results.append(Reverted(lease=lease, why=why, outcome="failed", detail=detail))
    return results


def revert_orphaned_leases(
    client_factory: ClientFactory | None = None, *, now: float | None = None
) -> list[str]:
    """At a loadlab start: revert every Lambda fault lease left behind, one line per lease.

    Reverts the leases past their expiry and those whose owner process (on this
    host) is gone: a harness that crashed must not leave a function throttled.
    ``client_factory(service)`` returns a boto3 client for ``"lambda"`` and
    ``"ssm"`` in the account and region of the function (default
    :func:`aws_client_factory` from the environment: ``AWS_ENDPOINT_URL``,
    ``AWS_REGION``, the credential chain). Returns one line per lease handled
    (those that failed say ``NOT reverted``; they stay for the next try).

    Raises :class:`~loadlab.errors.TargetUnreachable` if AWS cannot be reached,
    :class:`~loadlab.errors.ConfigError` if it refuses to list the leases.
    """
    clients = Clients(client_factory or aws_client_factory())
    try:
        results = revert_due_leases(clients, now=now)
    except (ClientError, BotoCoreError) as exc:
        message = explain(exc, "listing loadlab's fault leases", function_name=None,
                          where=clients.where())  # fmt: skip
        if isinstance(exc, ClientError):
            raise ConfigError(message) from None
        raise TargetUnreachable(message) from None
    finally:
        clients.close()
    return [str(result) for result in results]
