"""A load run in the foreground: Locust started for ``loadlab run``/``demo``, waited for."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from loadlab.app.children import wait_interruptibly
from loadlab.load.launch import LocustLaunch, run_locust

LOCUST_GRACE_S = 30.0


async def run_load(
    launch: LocustLaunch, *, during: Callable[[], Coroutine[Any, Any, None]] | None = None
) -> int:
    """Run Locust for ``launch`` and return its exit code; ``during`` runs alongside (a fault).

    Ctrl-C is passed on to Locust as SIGINT so it stops its users and the
    recorder flushes; the run directory stays complete up to that moment.
    """
    proc = await run_locust(launch)
    if launch.web:
        print(
            f"loadlab: Locust web UI on http://127.0.0.1:{launch.web_port} - press Start there; "
            "Ctrl-C here ends the run and writes the report",
            flush=True,
        )
    side = asyncio.create_task(during()) if during is not None else None
    try:
        return await wait_interruptibly(proc, grace_s=LOCUST_GRACE_S)
    finally:
        if side is not None:
            side.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await side
