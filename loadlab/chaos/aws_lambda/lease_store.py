"""Where fault leases live: SSM parameters under ``/loadlab/leases``, and the run timeline.

See :mod:`loadlab.chaos.aws_lambda.leases` for what a lease is and how it ends.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from botocore.exceptions import BotoCoreError, ClientError

from loadlab.chaos.aws_lambda.aws_clients import Clients, error_code
from loadlab.orphans import running
from loadlab.rows import TimelineEvent, append_lines, event_line

log = logging.getLogger("chaostoolkit")

LEASE_PATH = "/loadlab/leases"
LEASE_FORMAT = 1
NONCE_VARIABLE = "LOADLAB_CONFIG_NONCE"
RUN_DIR_ENV = "LOADLAB_RUN_DIR"
LeaseKind = Literal["throttle", "kill_order", "config_nonce"]
LEASE_KINDS: tuple[str, ...] = get_args(LeaseKind)


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    """The process that applied a fault: while it runs, its lease is not orphaned."""

    host: str
    pid: int
    started: int | None = None  # /proc start time in clock ticks: tells a reused pid apart

    @classmethod
    def this_process(cls) -> Owner:
        """The current process."""
        return cls(host=socket.gethostname(), pid=os.getpid(), started=_process_start(os.getpid()))

    def gone(self) -> bool:
        """True only when the owner certainly ended (same host, pid gone or reused)."""
        if self.host != socket.gethostname():
            return False  # another machine's process: only the expiry can tell
        if not running(self.pid):  # gone, or ended and not reaped (a zombie)
            return True
        started = _process_start(self.pid)
        return self.started is not None and started is not None and started != self.started


def _process_start(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime), counted after the command name, which may contain spaces.
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[19]) if len(fields) > 19 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """One fault on one function, as recorded before it was applied."""

    lease_id: str
    kind: LeaseKind
    function_name: str
    created_at: float
    expires_at: float
    applied: int | str
    """What the fault set: the reserved concurrency, the kill order's id, the nonce."""
    previous: int | str | None
    """What to restore: the reserved concurrency (None: unreserved) or nonce (None: absent)."""
    owner: Owner
    parameter: str | None = None
    """The kill order's SSM parameter."""
    run_dir: str | None = None

    @property
    def name(self) -> str:
        """The lease's SSM parameter."""
        return f"{LEASE_PATH}/{self.lease_id}"

    @property
    def target(self) -> str:
        """The fault's target as the timeline names it."""
        return f"function_name={self.function_name}"

    def expired(self, now: float) -> bool:
        """True once the lease's time is up."""
        return self.expires_at <= now

    def describe(self) -> str:
        """What the lease holds, in words."""
        if self.kind == "throttle":
            before = "unreserved" if self.previous is None else str(self.previous)
            return (
                f"throttle of {self.function_name} (reserved concurrency {self.applied}, "
                f"was {before})"
            )
        if self.kind == "kill_order":
            return f"kill order {self.applied} for {self.function_name} ({self.parameter})"
        return f"{NONCE_VARIABLE}={self.applied} on {self.function_name}"

    def to_json(self) -> dict[str, Any]:
        """The lease as stored in its parameter."""
        return {
            "format": LEASE_FORMAT,
            "lease_id": self.lease_id,
            "kind": self.kind,
            "function_name": self.function_name,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "applied": self.applied,
            "previous": self.previous,
            "parameter": self.parameter,
            "owner": {
                "host": self.owner.host,
                "pid": self.owner.pid,
                "started": self.owner.started,
            },
            "run_dir": self.run_dir,
        }

    @classmethod
    def from_json(cls, data: Any) -> Lease:
        """A lease from its stored JSON; raises ValueError naming what is wrong."""
        if not isinstance(data, dict) or data.get("format") != LEASE_FORMAT:
            raise ValueError("not a loadlab lease (format 1)")
        kind = data.get("kind")
        if kind not in LEASE_KINDS:
            raise ValueError(f"kind {kind!r} is unknown")
        owner = data.get("owner") or {}
        try:
            lease = cls(
                lease_id=str(data["lease_id"]),
                kind=kind,
                function_name=str(data["function_name"]),
                created_at=float(data["created_at"]),
                expires_at=float(data["expires_at"]),
                applied=_int_or_str(data["applied"]),
                previous=None if data.get("previous") is None else _int_or_str(data["previous"]),
                owner=Owner(
                    host=str(owner["host"]),
                    pid=int(owner["pid"]),
                    started=None if owner.get("started") is None else int(owner["started"]),
                ),
                parameter=None if data.get("parameter") is None else str(data["parameter"]),
                run_dir=None if data.get("run_dir") is None else str(data["run_dir"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"missing or bad field: {exc}") from None
        if not (math.isfinite(lease.created_at) and math.isfinite(lease.expires_at)):
            raise ValueError("created_at/expires_at are not finite")
        return lease


def _int_or_str(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is neither an integer nor a string")
    return value


def new_lease(
    *,
    kind: LeaseKind,
    function_name: str,
    duration_s: float,
    applied: int | str,
    previous: int | str | None,
    parameter: str | None = None,
    now: float | None = None,
) -> Lease:
    """A lease owned by this process, expiring ``duration_s`` from now."""
    created = time.time() if now is None else now
    run_dir = os.environ.get(RUN_DIR_ENV) or None
    return Lease(
        lease_id=uuid.uuid4().hex[:16],
        kind=kind,
        function_name=function_name,
        created_at=created,
        expires_at=created + duration_s,
        applied=applied,
        previous=previous,
        owner=Owner.this_process(),
        parameter=parameter,
        run_dir=None if run_dir is None else str(Path(run_dir).resolve()),
    )


def record_lease(clients: Clients, lease: Lease) -> None:
    """Store ``lease`` (before its fault is applied) and put it on the run timeline."""
    clients.ssm.put_parameter(
        Name=lease.name,
        Value=json.dumps(lease.to_json(), separators=(",", ":")),
        Type="String",
        Overwrite=False,
        Description=f"loadlab fault lease: {lease.describe()}"[:1024],
    )
    timeline(
        lease,
        "start",
        {
            "status": None,
            "applied": lease.applied,
            "previous": lease.previous,
            "expires_at": lease.expires_at,
        },
    )


def list_leases(
    clients: Clients, *, function_name: str | None = None, kind: LeaseKind | None = None
) -> list[Lease]:
    """The stored leases (oldest first), optionally of one function and kind.

    A parameter under ``/loadlab/leases`` that is not a lease is logged and skipped.
    """
    leases: list[Lease] = []
    paginator = clients.ssm.get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=LEASE_PATH, Recursive=True):
        for parameter in page.get("Parameters", []):
            try:
                lease = Lease.from_json(json.loads(parameter.get("Value", "")))
            except ValueError as exc:
                log.info("skipping %s: %s", parameter.get("Name"), exc)
                continue
            if function_name is not None and lease.function_name != function_name:
                continue
            if kind is not None and lease.kind != kind:
                continue
            leases.append(lease)
    return sorted(leases, key=lambda lease: (lease.created_at, lease.lease_id))


def drop_lease(clients: Clients, lease: Lease) -> None:
    """Delete the lease's record (already gone is fine)."""
    try:
        clients.ssm.delete_parameter(Name=lease.name)
    except ClientError as exc:
        if error_code(exc) != "ParameterNotFound":
            raise


def abandon(clients: Clients, lease: Lease, reason: str) -> None:
    """Drop a lease whose fault was not applied (never raises: the fault's error matters more)."""
    try:
        drop_lease(clients, lease)
    except (ClientError, BotoCoreError) as exc:
        log.warning("cannot drop lease %s (%s); it is dropped once due", lease.lease_id, exc)
    timeline(
        lease,
        "end",
        {"status": "failed", "why": "not applied", "detail": reason, "active": False},
    )


def timeline(lease: Lease, phase: str, attrs: dict[str, Any]) -> None:
    """A ``fault`` event for the lease in its run's ``events.jsonl`` (when the run is here)."""
    if lease.run_dir is None or not Path(lease.run_dir).is_dir():
        return
    event = TimelineEvent(
        t=time.time(),
        kind="fault",
        name=f"lease {lease.kind}",
        target=lease.target,
        lease_expires=lease.expires_at,
        attrs={
            "fault_id": f"lease-{lease.lease_id}",
            "phase": phase,
            "lease_id": lease.lease_id,
            "lease_kind": lease.kind,
            "activity": "loadlab.chaos.aws_lambda.leases",
            **attrs,
        },
    )
    try:
        append_lines(Path(lease.run_dir) / "events.jsonl", [event_line(event)])
    except OSError as exc:
        log.warning("cannot write lease %s to %s: %s", lease.lease_id, lease.run_dir, exc)
