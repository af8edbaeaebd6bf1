"""CPU time of processes and of the machine, sampled from /proc (Linux).

A :class:`CpuSampler` polls ``/proc/<pid>/stat`` of named process groups (and,
optionally, their descendants) and ``/proc/stat`` for the whole machine. Each
:class:`CpuSample` holds the CPU seconds every group has used since sampling
began, accumulated per process, so a process that exits or is replaced between
two samples does not make a group's total go backwards. Benchmarks take two
samples that bracket their measurement window and subtract.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")

GroupRoots = Callable[[], Mapping[str, Sequence[int]]]


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of one process (all its threads); None if it is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces and parentheses: fields start after the last ")".
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _parents() -> dict[int, int]:
    out: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        out[int(entry.name)] = int(raw[raw.rindex(")") + 2 :].split()[1])
    return out


def with_descendants(roots: Sequence[int]) -> set[int]:
    """``roots`` and every process below them."""
    parents = _parents()
    found = {r for r in roots if r in parents}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def machine_ticks() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    first = (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]
    values = [int(v) for v in first[:8]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values)
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU seconds used since sampling began, per group and by the whole machine."""

    t: float
    groups: Mapping[str, float]
    machine_busy_s: float
    machine_total_s: float


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU used between two samples."""

    wall_s: float
    groups_s: Mapping[str, float]
    machine_busy_s: float
    machine_total_s: float

    def percent_of_core(self, group: str) -> float:
        """A group's CPU as a percentage of one core over the interval."""
        return 100.0 * self.groups_s.get(group, 0.0) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def machine_percent(self) -> float:
        """Busy share of all cores over the interval (100 = every core busy)."""
        if self.machine_total_s <= 0:
            return 0.0
        return 100.0 * self.machine_busy_s / self.machine_total_s


def between(a: CpuSample, b: CpuSample) -> CpuUse:
    """What was used from sample ``a`` to sample ``b``."""
    return CpuUse(
        wall_s=b.t - a.t,
        groups_s={g: b.groups[g] - a.groups.get(g, 0.0) for g in b.groups},
        machine_busy_s=b.machine_busy_s - a.machine_busy_s,
        machine_total_s=b.machine_total_s - a.machine_total_s,
    )


def bracket(
    samples: Sequence[CpuSample], t_from: float, t_to: float
) -> tuple[CpuSample, CpuSample] | None:
    """The first sample at or after ``t_from`` and the last at or before ``t_to``."""
    inside = [s for s in samples if t_from <= s.t <= t_to]
    if len(inside) < 2:
        return None
    return inside[0], inside[-1]


@dataclass
class CpuSampler:
    """Samples the CPU of process groups every ``interval_s`` until stopped.

    ``roots`` is called at every sample, so groups may change (pods replaced,
    a process started after the sampler). With ``descendants`` the children of
    each root are counted in its group.
    """

    roots: GroupRoots
    interval_s: float = 0.5
    descendants: bool = False
    samples: list[CpuSample] = field(default_factory=list)
    _last: dict[int, float] = field(default_factory=dict)
    _totals: dict[str, float] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def sample(self) -> CpuSample:
        """Take one sample now (also called by :meth:`run`)."""
        groups = self.roots()
        for name, pids in groups.items():
            members = with_descendants(pids) if self.descendants else set(pids)
            total = self._totals.get(name, 0.0)
            for pid in members:
                cpu = process_cpu_s(pid)
                if cpu is None:
                    continue
                # The first sample is the baseline; a process first seen later started
                # since the previous sample, so all its CPU belongs to this interval.
                total += cpu - self._last.get(pid, 0.0 if self.samples else cpu)
                self._last[pid] = cpu
            self._totals[name] = total
        busy, all_ticks = machine_ticks()
        sample = CpuSample(
            t=time.time(),
            groups=dict(self._totals),
            machine_busy_s=busy,
            machine_total_s=all_ticks,
        )
        self.samples.append(sample)
        return sample

    async def run(self, *, max_s: float) -> None:
        """Sample until :meth:`stop` (or ``max_s``, a safety bound)."""
        deadline = time.monotonic() + max_s
        self.sample()
        while time.monotonic() < deadline:
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)
                break
            except TimeoutError:
                self.sample()
        self.sample()

    def stop(self) -> None:
        """End :meth:`run` after one last sample."""
        self._stop.set()
