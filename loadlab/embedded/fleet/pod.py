"""What the fleet says about its replicas: pod snapshots, lifecycle events, ready lines.

A :class:`Pod` is an immutable snapshot; the fleet replaces it on every change,
so a caller may keep one without it moving under its feet. Phases follow
Kubernetes: ``Pending`` (scheduled, container not started: the startup delay),
``Running`` (process started; ``ready`` once it printed its READY line),
``Succeeded`` / ``Failed`` (process exited with status 0 / anything else).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from loadlab.errors import ConfigError

PodPhase = Literal["Pending", "Running", "Succeeded", "Failed"]

# Kubernetes' own suffix alphabet: lowercase alphanumerics without vowels and
# look-alikes, so generated names never spell words or confuse 0/o, 1/l.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_NAME_SUFFIX_LEN = 5


class PodNotFound(ConfigError, LookupError):
    """No pod of that name is live in the fleet."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaLaunch:
    """What a replica's command line and environment may depend on."""

    pod_name: str
    pod_uid: str
    host: str
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Pod:
    """A snapshot of one replica, named and phased like a Kubernetes pod.

    Times are UNIX epoch seconds. ``exit_code`` is negative when the process was
    killed by a signal (``-9``: SIGKILL). ``reason`` says why a terminated pod
    ended; ``restart_reason`` says why this pod was created (``None`` for the
    initial replicas, else which pod it replaces and why).
    """

    name: str
    uid: str
    labels: dict[str, str]
    phase: PodPhase
    created_at: float
    port: int
    ready: bool = False
    pid: int | None = None
    instance_id: str | None = None
    init_ms: float | None = None
    started_at: float | None = None
    ready_at: float | None = None
    finished_at: float | None = None
    deletion_timestamp: float | None = None
    deletion_grace_period_seconds: float | None = None
    exit_code: int | None = None
    reason: str | None = None
    restart_reason: str | None = None
    replaces: str | None = None
    metrics_url: str | None = None  # the replica's own /metrics (the shared port's is any one's)

    @property
    def terminating(self) -> bool:
        """True once a delete was requested and the process has not exited yet."""
        return self.deletion_timestamp is not None and self.phase in ("Pending", "Running")

    @property
    def live(self) -> bool:
        """True while the pod is Pending or Running."""
        return self.phase in ("Pending", "Running")

    def to_json(self) -> dict[str, Any]:
        """Return the snapshot as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class PodEvent:
    """One line of the fleet's events file: a pod changed phase or readiness."""

    t: float
    pod: str
    phase: str
    event: str
    ready: bool = False
    reason: str | None = None
    pid: int | None = None
    instance_id: str | None = None
    exit_code: int | None = None


class EventLog:
    """Append-only JSON-lines file of :class:`PodEvent`, flushed line by line.

    loadlab joins these lines onto its run timeline ("pod X died at t").
    """

    def __init__(self, *, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: TextIO | None = path.open("a", encoding="utf-8")

    def write(self, event: PodEvent) -> None:
        """Append one event (ignored once closed)."""
        if self._file is None:
            return
        self._file.write(json.dumps(dataclasses.asdict(event), sort_keys=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file; later writes are dropped."""
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadyLine:
    """The parsed ``READY pid=<pid> instance=<id> init_ms=<float> url=<url> [metrics=<url>]``."""

    pid: int | None
    instance_id: str | None
    init_ms: float | None
    url: str | None
    metrics_url: str | None = None


def parse_ready_line(line: str) -> ReadyLine:
    """Parse a READY line; fields that are missing or malformed come back as ``None``."""
    fields: dict[str, str] = {}
    for token in line.split()[1:]:
        key, sep, value = token.partition("=")
        if sep:
            fields[key] = value
    pid: int | None = None
    init_ms: float | None = None
    with contextlib.suppress(KeyError, ValueError):
        pid = int(fields["pid"])
    with contextlib.suppress(KeyError, ValueError):
        init_ms = float(fields["init_ms"])
    return ReadyLine(
        pid=pid,
        instance_id=fields.get("instance"),
        init_ms=init_ms,
        url=fields.get("url"),
        metrics_url=fields.get("metrics"),
    )


def new_pod_name(prefix: str, *, rng: random.Random, taken: set[str]) -> str:
    """Return ``<prefix>-<5 chars>`` not in ``taken`` (Kubernetes generateName style)."""
    for _ in range(1000):
        suffix = "".join(rng.choice(_NAME_ALPHABET) for _ in range(_NAME_SUFFIX_LEN))
        name = f"{prefix}-{suffix}"
        if name not in taken:
            return name
    raise ConfigError(
        f"no free pod name left for prefix {prefix!r} after 1000 draws",
        hint="use a different name prefix or fewer pods",
    )


def now() -> float:
    """Wall-clock time for pod timestamps (UNIX epoch seconds)."""
    return time.time()
