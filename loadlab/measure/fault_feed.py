"""The faults of a run as they happen: ``events.jsonl`` read incrementally.

One reader for both live views of a run, the web UI's loadlab tab and the
Prometheus metrics (``loadlab_run_faults_active``), so they agree on what is
active. Fault events are grouped as :func:`loadlab.analysis.impact.fault_spans`
groups them: by ``attrs.fault_id``; a start without one is a fault of its own,
an end without one closes the latest open fault of the same name and target.

A fault is active until its lease expires (an action that returns at once may
leave a fault in place for its lease: a 429 storm, a throttled function), or,
without a lease, until its action returns; a failed action is not active.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FaultFeed", "LiveFault"]


@dataclass(frozen=True, slots=True)
class LiveFault:
    """One fault of ``events.jsonl`` so far."""

    fault_id: str
    name: str
    target: str | None
    t_start: float
    t_end: float | None  # when its action returned (None: still running)
    lease_expires: float | None
    status: str | None

    def active(self, now: float) -> bool:
        """Still acting: within its lease, or (without one) its action not yet returned."""
        if self.status == "failed":
            return False
        if self.lease_expires is not None:
            return now < self.lease_expires
        return self.t_end is None

    def over_at(self) -> float:
        """When it stopped acting (its lease's end, else its action's)."""
        ends = [t for t in (self.t_end, self.lease_expires) if t is not None]
        return max(ends) if ends else math.inf


class FaultFeed:
    """Faults of a run's ``events.jsonl``, read incrementally (new lines only).

    ``path`` None: a run without an events file (no faults, ever). A line still
    being written is kept until its end arrives; a malformed line is skipped.
    """

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._offset = 0
        self._rest = b""
        self._faults: dict[str, LiveFault] = {}

    def faults(self) -> list[LiveFault]:
        """Every fault so far, in order of start."""
        self._read_new()
        return sorted(self._faults.values(), key=lambda f: f.t_start)

    def _read_new(self) -> None:
        if self._path is None:
            return
        try:
            with self._path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return  # not created yet, or gone with a removed run directory
        self._offset += len(chunk)
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()  # a line still being written
        for line in lines:
            if b'"fault"' not in line:
                continue  # most lines are phases and samples: no JSON parse for them
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("kind") == "fault":
                self._take(event)

    def _take(self, event: dict[str, Any]) -> None:
        raw = event.get("attrs")
        attrs: dict[str, Any] = raw if isinstance(raw, dict) else {}
        t = event.get("t")
        if not isinstance(t, int | float):
            return
        target = event.get("target")
        name = str(event.get("name", "fault"))
        ended = attrs.get("phase") == "end"
        fault_id = str(attrs.get("fault_id") or "")
        if not fault_id:
            fault_id = (ended and self._open_unkeyed(name, target)) or f"{name}@{t}"
        lease = event.get("lease_expires")
        seen = self._faults.get(fault_id)
        self._faults[fault_id] = LiveFault(
            fault_id=fault_id,
            name=name,
            target=str(target) if target is not None else (seen.target if seen else None),
            t_start=seen.t_start if seen else float(t),
            t_end=float(t) if ended else (seen.t_end if seen else None),
            lease_expires=(
                float(lease)
                if isinstance(lease, int | float)
                else (seen.lease_expires if seen else None)
            ),
            status=str(attrs["status"]) if attrs.get("status") else None,
        )

    def _open_unkeyed(self, name: str, target: object) -> str | None:
        wanted = (name, None if target is None else str(target))
        for key, fault in reversed(self._faults.items()):
            if "@" in key and fault.t_end is None and (fault.name, fault.target) == wanted:
                return key
        return None
