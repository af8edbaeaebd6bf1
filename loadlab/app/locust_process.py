"""A load run in the foreground: Locust started for ``loadlab run``/``demo``, waited for.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group. Locust
leads a group of its own (:func:`loadlab.load.launch.run_locust`), so only
loadlab gets it, and passes exactly one SIGINT on: Locust stops its users at
once, seals the run directory and stamps its end (``stopped_by: interrupt``),
and the command goes on as after a full run: the checkpoint audit while the
stack is still up, then the report and the verdict's exit code. A second Ctrl-C
kills Locust and exits at once (130); the run then has no end, and
``loadlab report`` judges it incomplete.

With the web UI and ``serve_until_interrupted``, Locust seals the run directory
as soon as the load stops and keeps serving the UI
(:mod:`loadlab.app.locust_plugin.stopping`): ``run_load`` sees the run's end
stamped in its manifest, runs ``sealed`` (the audit and the report) while the
UI is still up, so its loadlab tab links to the report, keeps
it up ``linger_s`` more seconds (not after a Ctrl-C: who pressed it wants out;
a Ctrl-C ends the linger early), then closes it with one SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadlab.errors import RunDirectoryError
from loadlab.load.launch import LocustLaunch, run_locust, run_workers
from loadlab.measure.rundir import RunDirectory

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
WORKER_GRACE_S = 15.0
SEAL_POLL_S = 0.25


async def run_load(
    launch: LocustLaunch,
    *,
    during: Callable[[], Coroutine[Any, Any, None]] | None = None,
    sealed: Callable[[], Coroutine[Any, Any, None]] | None = None,
    linger_s: float = 0.0,
) -> int:
    """Run Locust for ``launch`` and return its exit code; ``during`` runs alongside (a fault).

    The first Ctrl-C (or SIGTERM) stops the load and this returns Locust's code as
    usual; a second one kills Locust and raises :class:`KeyboardInterrupt` (exit 130).
    With the web UI, ``sealed`` runs once the run is sealed, while the UI still
    serves (see the module's text); without it, or when Locust exits first, the
    caller does that work after this returns.
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
        with _interrupts_stop(proc) as signals:
            waiting = asyncio.ensure_future(proc.wait())
            if launch.web and launch.serve_until_interrupted and sealed is not None:
                await _close_out_while_serving(launch, waiting, signals, sealed, linger_s)
            await _first(waiting, signals.aborted)
            if signals.aborted.done():
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
        if proc.returncode is None:  # an error on the way: Locust must not outlive us
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), timeout=WORKER_GRACE_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await _end_workers(workers)
        if side is not None:
            side.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await side


async def _close_out_while_serving(
    launch: LocustLaunch,
    waiting: asyncio.Future[int],
    signals: _Signals,
    sealed: Callable[[], Coroutine[Any, Any, None]],
    linger_s: float,
) -> None:
    """Once the run is sealed: ``sealed()`` and the linger while the UI serves, then close it.

    Returns early when Locust exits first or a second Ctrl-C aborts (the caller
    handles both); an error of ``sealed()`` is raised after the UI is closed.
    """
    seal = asyncio.ensure_future(_wait_for_seal(launch.run_dir))
    try:
        await _first(waiting, seal, signals.aborted)
    finally:
        seal.cancel()
    if not seal.done() or seal.cancelled() or waiting.done() or signals.aborted.done():
        return
    before = signals.count
    closing = asyncio.ensure_future(sealed())
    try:
        await _first(closing, signals.aborted)
        if not closing.done():
            closing.cancel()
            return
        closing.result()  # its error, if any, is the command's
        await _linger(launch, waiting, signals, before, linger_s)
    finally:
        # a Ctrl-C during the linger has passed its SIGINT on already; none is needed
        # after an abort (the caller kills Locust)
        if signals.count == before and not waiting.done():
            signals.proc.send_signal(signal.SIGINT)


async def _first(*futures: asyncio.Future[Any]) -> None:
    await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)


async def _wait_for_seal(run_dir: Path) -> None:
    """Until the run's end is stamped in its manifest (Locust sealed the run directory)."""
    directory = RunDirectory(run_dir)
    while True:
        with contextlib.suppress(RunDirectoryError):  # not written yet (replaced whole)
            if directory.read_manifest().get("ended_at") is not None:
                return
        await asyncio.sleep(SEAL_POLL_S)


async def _linger(
    launch: LocustLaunch,
    waiting: asyncio.Future[int],
    signals: _Signals,
    before: int,
    linger_s: float,
) -> None:
    """Keep the web UI up ``linger_s`` s to show the report (a Ctrl-C ends it sooner).

    ``before``: the signals counted when the run was sealed. After a Ctrl-C there is
    no linger; a Ctrl-C during it has already passed its SIGINT on to Locust.
    """
    if linger_s > 0 and before == 0 and not waiting.done():
        print(
            f"loadlab: the web UI stays up {linger_s:g} s more with the report: "
            f"http://{launch.web_host}:{launch.web_port}/loadlab/report "
            "(--web-linger; Ctrl-C to close it now)",
            flush=True,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(waiting), timeout=linger_s)


async def _end_workers(workers: list[asyncio.subprocess.Process]) -> None:
    """Workers quit when their master does; one still running after the grace is killed."""
    for worker in workers:
        try:
            await asyncio.wait_for(worker.wait(), timeout=WORKER_GRACE_S)
        except TimeoutError:
            worker.kill()
            await worker.wait()


@dataclass
class _Signals:
    """The Ctrl-Cs (and SIGTERMs) loadlab got while Locust ran."""

    proc: asyncio.subprocess.Process
    aborted: asyncio.Future[None]
    count: int = field(default=0)


@contextlib.contextmanager
def _interrupts_stop(proc: asyncio.subprocess.Process) -> Iterator[_Signals]:
    """While the load runs: the first Ctrl-C stops it, the second resolves ``aborted``."""
    loop = asyncio.get_running_loop()
    signals = _Signals(proc=proc, aborted=loop.create_future())
    aborted = signals.aborted

    def on_signal(signum: int) -> None:
        signals.count += 1
        count = signals.count
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
        yield signals
    finally:
        for signum in _SIGNALS:
            loop.remove_signal_handler(signum)
            signal.signal(signum, previous[signum])
