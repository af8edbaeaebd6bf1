"""A load run in the foreground: Locust started for ``loadlab run``/``demo``, waited for.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group. Locust
leads a group of its own (:func:`loadlab.load.launch.run_locust`), so only
loadlab gets it, and passes exactly one SIGINT on: Locust stops its users at
once, seals the run directory and stamps its end (``stopped_by: interrupt``),
and the command goes on as after a full run: the checkpoint audit while the
stack is still up, then the report and the verdict's exit code. A second Ctrl-C
kills Locust and exits at once (130); the run then has no end, and
``loadlab report`` judges it incomplete.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from loadlab.load.launch import LocustLaunch, run_locust, run_workers

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
WORKER_GRACE_S = 15.0


async def run_load(
    launch: LocustLaunch, *, during: Callable[[], Coroutine[Any, Any, None]] | None = None
) -> int:
    """Run Locust for ``launch`` and return its exit code; ``during`` runs alongside (a fault).

    The first Ctrl-C (or SIGTERM) stops the load and this returns Locust's code as
    usual; a second one kills Locust and raises :class:`KeyboardInterrupt` (exit 130).
    """
    proc = await run_locust(launch)
    workers = await run_workers(launch) if launch.workers else []
    if workers:
        print(
            f"loadlab: Locust master and {len(workers)} workers on 127.0.0.1:"
            f"{launch.master_port}; one run directory: {launch.run_dir}",
            flush=True,
        )
    if launch.web:
        print(
            f"loadlab: Locust web UI on http://{launch.web_host}:{launch.web_port} - press Start "
            "there; Stop there (or Ctrl-C here) ends the run and writes the report",
            flush=True,
        )
    side = asyncio.create_task(during()) if during is not None else None
    try:
        with _interrupts_stop(proc) as aborted:
            waiting = asyncio.ensure_future(proc.wait())
            either: list[asyncio.Future[Any]] = [waiting, aborted]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if aborted.done():
                waiting.cancel()
                for child in (proc, *workers):
                    if child.returncode is None:
                        child.kill()
                        await child.wait()
                print(
                    f"loadlab: aborted; the run in {launch.run_dir} has no end "
                    f"(`loadlab report {launch.run_dir}` judges it incomplete)",
                    file=sys.stderr,
                    flush=True,
                )
                raise KeyboardInterrupt
            return waiting.result()
    finally:
        await _end_workers(workers)
        if side is not None:
            side.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await side


async def _end_workers(workers: list[asyncio.subprocess.Process]) -> None:
    """Workers quit when their master does; one still running after the grace is killed."""
    for worker in workers:
        try:
            await asyncio.wait_for(worker.wait(), timeout=WORKER_GRACE_S)
        except TimeoutError:
            worker.kill()
            await worker.wait()


@contextlib.contextmanager
def _interrupts_stop(proc: asyncio.subprocess.Process) -> Iterator[asyncio.Future[None]]:
    """While the load runs: the first Ctrl-C stops it, the second resolves the future."""
    loop = asyncio.get_running_loop()
    aborted: asyncio.Future[None] = loop.create_future()
    count = 0

    def on_signal(signum: int) -> None:
        nonlocal count
        count += 1
        if count == 1 and proc.returncode is None:
            print(
                f"loadlab: {signal.Signals(signum).name}: stopping the load, then the audit "
                "and the report (Ctrl-C again to abort at once)",
                file=sys.stderr,
                flush=True,
            )
            proc.send_signal(signal.SIGINT)
        elif not aborted.done():
            aborted.set_result(None)

    # asyncio.run's own SIGINT handler (cancel the main task) comes back afterwards
    previous = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    for signum in _SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield aborted
    finally:
        for signum in _SIGNALS:
            loop.remove_signal_handler(signum)
            signal.signal(signum, previous[signum])
