"""Stall evidence for a benchmark's Locust process: py-spy, gevent's monitor, GC and flushes.

``profile_env`` is the environment that makes the Locust process record its
garbage collections, recorder flushes and gevent's blocking reports
(``bench/_stalls/sitecustomize.py``); ``py_spy`` samples the process with
py-spy (``--idle --threads --nonblocking``: it never pauses the process; raw
collapsed stacks) over a window; ``stall_report`` sums all of it up as text.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadlab.analysis.stats import percentile

BENCH_DIR = Path(__file__).resolve().parent
STALLS_DIR = BENCH_DIR / "_stalls"
BLOCKING_S = 0.05
"""gevent reports the loop blocked when no greenlet switch happened for this long."""


def profile_env(work: Path) -> dict[str, str]:
    """The Locust process's extra environment for a profiled run."""
    path = os.environ.get("PYTHONPATH")
    return {
        "PYTHONPATH": str(STALLS_DIR) + (os.pathsep + path if path else ""),
        "LOADLAB_BENCH_STALLS": str(work / "stalls.json"),
        "GEVENT_MONITOR_THREAD_ENABLE": "true",
        "GEVENT_MAX_BLOCKING_TIME": str(BLOCKING_S),
    }


def py_spy_path() -> str:
    """py-spy next to this interpreter (the dev extras install it), else on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    found = str(local) if local.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed: pip install -e '.[dev]' (or pip install py-spy)")
    return found


async def py_spy(
    pid: int,
    *,
    start_after_s: float,
    duration_s: float,
    out: Path,
    rate: int = 100,
    idle: bool = True,
    nonblocking: bool = True,
) -> None:
    """Sample ``pid`` for ``duration_s`` after ``start_after_s``; raw stacks go to ``out``.

    ``idle``: keep the samples of waiting threads too, per thread (``--idle --threads``).
    ``nonblocking`` reads the process while it runs (no pause, but a stack read
    while it changes can come out wrong: frames of one call under another);
    False pauses it for each sample, for stacks to attribute work by.
    """
    await asyncio.sleep(start_after_s)
    proc = await asyncio.create_subprocess_exec(
        py_spy_path(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(duration_s))),
        "--rate",
        str(rate),
        *(["--idle", "--threads"] if idle else []),
        *(["--nonblocking"] if nonblocking else []),
        "--format",
        "raw",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await asyncio.wait_for(proc.wait(), timeout=duration_s + 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def _frames(stack: str) -> list[str]:
    return [f.split(" (")[0] + _where(f) for f in stack.split(";")]


def _where(frame: str) -> str:
    m = re.search(r"\(([^:)]+)", frame)
    return f" ({Path(m.group(1)).name})" if m else ""


def _idle(leaf: str) -> bool:
    # py-spy --idle keeps samples of waiting threads: the hub in its loop (libev
    # waiting in epoll, below hub.run), pool threads and the monitor waiting
    # (py-spy 0.4 names methods with their class: "Hub.run", "Queue.get")
    name = leaf.split(" (", maxsplit=1)[0].rsplit(".", maxsplit=1)[-1]
    return leaf in ("run (hub.py)", "Hub.run (hub.py)") or name in _IDLE_CALLS


def busy_stack(line_stack: str) -> bool:
    """Whether a raw py-spy stack (``thread;frame;...``) was running, not waiting."""
    _, _, rest = line_stack.partition(";")
    return bool(rest) and not _idle(_frames(rest)[-1])


_IDLE_CALLS = {
    "wait",
    "get",
    "sleep",
    "_wait",
    "acquire",
    "select",
    "poll",
    "_wait_for_tstate_lock",
    "acquire_with_timeout",  # gevent's pool threads waiting for work
}


def py_spy_summary(path: Path, top: int = 16) -> list[str]:
    """Per thread: samples and busy share; the functions the busy samples were in."""
    if not path.exists():
        return ["py-spy: no output (is ptrace allowed? run as root or with CAP_SYS_PTRACE)"]
    threads: dict[str, list[tuple[list[str], int]]] = collections.defaultdict(list)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            thread, _, rest = stack.partition(";")
            if rest:
                threads[thread].append((_frames(rest), int(count)))
    lines = ["py-spy (--idle --threads --nonblocking, 100 samples/s):"]
    ranked = sorted(threads.items(), key=lambda kv: -sum(n for f, n in kv[1] if not _idle(f[-1])))
    for thread, stacks in ranked[:3]:
        total = sum(n for _, n in stacks)
        busy = [(f, n) for f, n in stacks if not _idle(f[-1])]
        n_busy = sum(n for _, n in busy)
        lines.append(f"{thread}: {total} samples, busy {n_busy / max(total, 1):.0%}; busy in:")
        inclusive: collections.Counter[str] = collections.Counter()
        for frames, n in busy:
            for name in set(frames):
                inclusive[name] += n
        lines += [f"  {n / max(total, 1):6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return lines


def stall_report(
    work: Path,
    log_path: Path,
    t0: float,
    w_from: float,
    w_to: float,
    *,
    turns: Sequence[tuple[float, float]] = (),
    over_ms: float = 5.0,
) -> str:
    """GC, recorder flushes and gevent's blocking reports in the window, and the py-spy summary.

    ``turns`` are the window's turns as (end, epoch seconds; ms added to the latency):
    with them, the report says how many of those over ``over_ms`` ended while the
    recorder was flushing, against the share of the window its flushes took.
    """
    lines: list[str] = []
    stalls: dict[str, Any] = {}
    if (work / "stalls.json").exists():
        stalls = json.loads((work / "stalls.json").read_text())
    gcs = [g for g in stalls.get("gc", []) if w_from <= g[0] <= w_to]
    for gen in (0, 1, 2):
        mine = [g[2] for g in gcs if g[1] == gen]
        if mine:
            lines.append(
                f"GC gen {gen}: {len(mine)} collections, {sum(mine):.0f} ms in all, "
                f"max {max(mine):.1f} ms, {len([m for m in mine if m > 10])} over 10 ms"
            )
    slow_gc = sorted((g for g in gcs if g[2] > 10), key=lambda g: -g[2])[:8]
    lines += [f"  GC t+{g[0] - t0:.1f}s gen {g[1]}: {g[2]:.1f} ms" for g in slow_gc]
    flushes = [f for f in stalls.get("flushes", []) if w_from <= f[0] <= w_to]
    if flushes:
        ms = sorted(f[1] for f in flushes)
        rows = sum(sum(f[2].values()) for f in flushes) / len(flushes)
        lines.append(
            f"recorder flushes: {len(ms)}, median {ms[len(ms) // 2]:.1f} ms, max {ms[-1]:.1f} ms "
            f"(wall time of flush(), the loop runs meanwhile if it waits), {rows:.0f} rows each"
        )
        slow = sorted(flushes, key=lambda f: -f[1])[:5]
        lines += [f"  flush t+{f[0] - t0:.1f}s: {f[1]:.1f} ms, rows {f[2]}" for f in slow]
        lines += _turns_during_flushes(flushes, turns, w_to - w_from, over_ms)
    lines += _blocking_reports(stalls.get("blocks", []), t0, w_from, w_to)
    lines += py_spy_summary(work / "pyspy.raw")
    return "\n".join(lines)


def _turns_during_flushes(
    flushes: list[Any], turns: Sequence[tuple[float, float]], window_s: float, over_ms: float
) -> list[str]:
    """How the slow turns fall against the recorder's flushes (each logged at its end)."""
    if not turns or window_s <= 0:
        return []
    spans = sorted((end - ms / 1000.0, end) for end, ms, _ in flushes)
    starts = [a for a, _ in spans]

    def during(t: float) -> bool:
        i = bisect.bisect_right(starts, t) - 1
        return i >= 0 and t <= spans[i][1]

    slow = [t for t, added in turns if added > over_ms]
    share = sum(b - a for a, b in spans) / window_s
    in_flush = sum(1 for t in slow if during(t))
    p99_outside = percentile([added for t, added in turns if not during(t)], 99)
    outside_text = "-" if p99_outside is None else f"{p99_outside:.1f} ms"
    return [
        f"turns over {over_ms:g} ms: {len(slow)}, of which {in_flush} "
        f"({100.0 * in_flush / max(1, len(slow)):.0f} %) ended during a flush; the flushes took "
        f"{100.0 * share:.1f} % of the window; P99 added outside the flushes {outside_text}"
    ]


def _blocking_reports(
    blocks: list[Any], t0: float, w_from: float, w_to: float, top: int = 8
) -> list[str]:
    """gevent's blocking reports: how many, when, and where the loop's thread was."""
    blocks = [b for b in blocks if w_from <= b[0] <= w_to]
    if not blocks:
        return [f"gevent monitor: no blocking over {BLOCKING_S * 1000:.0f} ms in the window"]
    where: collections.Counter[str] = collections.Counter()
    for _, stack in blocks:
        # the innermost frames, from loadlab's own modules where the stack has some
        ours = [f for f in stack if f.split(":")[0] in _OURS] or stack
        where[" <- ".join(reversed(ours[-3:]))] += 1
    seconds = sorted({int(b[0] - t0) for b in blocks})
    lines = [
        f"gevent monitor: {len(blocks)} reports of the loop blocked over "
        f"{BLOCKING_S * 1000:.0f} ms, in seconds t+{seconds[:12]}; where the loop was:"
    ]
    lines += [f"  {n:4d}  {w}" for w, n in where.most_common(top)]
    return lines


_OURS = {
    "recorder.py",
    "player.py",
    "client.py",
    "users.py",
    "live_status.py",
    "prom_metrics.py",
    "web_tab.py",
    "redact.py",
}
