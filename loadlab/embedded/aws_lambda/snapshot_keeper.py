"""The SnapStart snapshot keeper of the embedded function: the process, and starting it.

The keeper (:mod:`~loadlab.embedded.aws_lambda.snapstart`) runs the function's
Init phase once with the function's own environment, as AWS does when a
SnapStart version is published, then forks restored environments on a Unix
socket. The stack starts it before the function is deployed and gives the
function the socket's path (``LOADLAB_SNAPSTART_SOCKET``). It runs loadlab's
own interpreter and sources (the ones the zip was built from); ministack's
environments run the zip's copy under ministack's interpreter (both CPython
3.11 here).

``python -m loadlab.embedded.aws_lambda.snapshot_keeper --socket PATH`` is the
keeper itself (:func:`serve`); :func:`start_snapshot_keeper` starts it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loadlab.embedded.aws_lambda.snapstart import (
    READY_PREFIX,
    SOCKET_ENV,
    run_after_restore,
    run_before_snapshot,
)
from loadlab.embedded.fleet.process import ChildProcess, log_tail
from loadlab.errors import LoadLabError, StackError

log = logging.getLogger("loadlab.embedded.aws_lambda")
KILL_ORDERS_ENV = "LOADLAB_KILL_ORDERS"

__all__ = ["SnapshotKeeper", "main", "serve", "start_snapshot_keeper"]


@dataclass(slots=True, kw_only=True)
class SnapshotKeeper:
    """The running keeper: its process, socket and what the snapshot's Init took."""

    process: ChildProcess
    socket_path: str
    init_ms: float | None
    log_path: Path

    def function_variables(self) -> dict[str, str]:
        """What the function's environment needs to restore from this snapshot."""
        return {SOCKET_ENV: self.socket_path}

    async def stop(self, *, grace_s: float) -> None:
        """Stop the keeper and every restored environment it forked (its process group)."""
        await self.process.terminate(grace_s=grace_s)
        self.process.kill_group()
        shutil.rmtree(Path(self.socket_path).parent, ignore_errors=True)


async def start_snapshot_keeper(
    *,
    environment: Mapping[str, str],
    log_path: Path,
    timeout_s: float,
) -> SnapshotKeeper:
    """Initialise the agent once and keep the snapshot; ``StackError`` if it fails.

    ``environment`` is the keeper's whole environment: the function's
    variables plus what Lambda adds (region, credentials, function name).
    """
    # A short path: Unix socket paths are limited to 107 bytes.
    directory = tempfile.mkdtemp(prefix="loadlab-snap-")
    socket_path = f"{directory}/restore.sock"
    argv = [sys.executable, "-m", __name__, "--socket", socket_path]
    process = await ChildProcess.spawn(
        argv=argv,
        name="snapshot-keeper",
        env=dict(environment),
        log_path=log_path,
        ready_prefix=READY_PREFIX,
    )
    try:
        line = await process.ready_line(timeout_s=timeout_s)
    except TimeoutError:
        line = None
    if line is None:
        await process.terminate(grace_s=1.0)
        shutil.rmtree(directory, ignore_errors=True)
        raise StackError(
            f"the SnapStart snapshot keeper did not initialise the agent within {timeout_s:.0f} s; "
            f"last lines of {log_path}:\n{log_tail(log_path)}",
            hint=f"read {log_path}; the function's own cold start fails the same way",
        )
    init_ms = None
    for word in line.split():
        if word.startswith("init_ms="):
            with contextlib.suppress(ValueError):
                init_ms = float(word.removeprefix("init_ms="))
    return SnapshotKeeper(
        process=process, socket_path=socket_path, init_ms=init_ms, log_path=log_path
    )


# -- the keeper process ----------------------------------------------------------------


class _Context:
    """The part of Lambda's context object the handler reads."""

    def __init__(self, remaining_ms: float | None) -> None:
        self._deadline = None if remaining_ms is None else time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        if self._deadline is None:
            return 900_000
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def _serve_restored(connection: socket.socket) -> None:
    """The forked child: take the environment's identity, restore, serve its invocations."""
    from loadlab.embedded.aws_lambda import handler

    stream = connection.makefile("rwb")
    hello = json.loads(stream.readline() or b"{}")
    os.environ["AWS_LAMBDA_LOG_STREAM_NAME"] = str(hello.get("log_stream", ""))
    instance_id = handler.instance_name(os.environ, int(hello.get("pid", os.getpid())))
    os.environ["LOADLAB_AGENT_INSTANCE_ID"] = instance_id
    run_after_restore()
    agent = handler.environment()
    began = hello.get("began")
    restore_ms = (time.monotonic() - float(began)) * 1000 if began is not None else 0.0
    agent.agent.init_ms = restore_ms
    log.info("environment %s restored in %.1f ms", instance_id, restore_ms)
    ready = {"instance_id": instance_id, "restore_ms": restore_ms}
    stream.write(json.dumps(ready).encode() + b"\n")
    stream.flush()
    while line := stream.readline():
        message = json.loads(line)
        answer = handler.handler(message["event"], _Context(message.get("remaining_ms")))
        stream.write(json.dumps(answer).encode() + b"\n")
        stream.flush()


def serve(path: str) -> int:
    """Initialise once, snapshot, then fork a restored environment per connection on ``path``."""
    began = time.perf_counter()
    # Kill orders are read by each restored environment, not by the snapshot (no thread
    # may run across the fork).
    kill_orders = os.environ.get(KILL_ORDERS_ENV)
    os.environ[KILL_ORDERS_ENV] = "off"
    from loadlab.embedded.aws_lambda import handler

    agent = handler.environment()  # the Init phase, once
    if kill_orders is None:
        os.environ.pop(KILL_ORDERS_ENV)
    else:
        os.environ[KILL_ORDERS_ENV] = kill_orders
    init_ms = (time.perf_counter() - began) * 1000
    run_before_snapshot()
    if threading.active_count() > 1:
        names = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
        log.warning("threads alive at the snapshot (a fork copies none of them): %s", names)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # restored children are reaped by the kernel
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    print(f"{READY_PREFIX} init_ms={init_ms:.1f} instance={agent.instance_id}", flush=True)
    while True:
        connection, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            code = 0
            try:
                _serve_restored(connection)
            except BaseException:
                log.exception("restored environment failed")
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        connection.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m loadlab.embedded.aws_lambda.snapshot_keeper --socket PATH``."""
    parser = argparse.ArgumentParser(description="Keep the agent function's SnapStart snapshot.")
    parser.add_argument("--socket", required=True, help="Unix socket to serve restores on")
    args = parser.parse_args(argv)
    # The keeper takes the snapshot; it must not try to restore from itself.
    os.environ.pop(SOCKET_ENV, None)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return serve(args.socket)
    except LoadLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
