"""Waiting for a child process (Locust, ``chaos run``) and passing Ctrl-C on to it."""

from __future__ import annotations

import asyncio
import signal


async def wait_interruptibly(proc: asyncio.subprocess.Process, *, grace_s: float) -> int:
    """Wait for ``proc``; if this wait is cancelled (Ctrl-C), pass SIGINT on to it.

    The child then gets ``grace_s`` to end cleanly (Locust flushes its recorder,
    Chaos Toolkit runs its rollbacks) before it is killed.
    """
    try:
        return await proc.wait()
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), timeout=grace_s)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        raise
