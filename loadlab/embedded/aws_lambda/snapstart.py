"""SnapStart for the embedded function: initialise once, start every environment from that state.

On AWS, publishing a version of a SnapStart function runs its Init phase once,
runs the ``before_snapshot`` runtime hooks (close connections, forget
per-environment identity), snapshots the microVM, and then starts each new
execution environment by restoring that snapshot and running the
``after_restore`` hooks (reopen connections). The first invocation's ``REPORT``
line then says ``Restore Duration`` instead of ``Init Duration``.

ministack (1.5.33) records ``SnapStart`` and runs the hooks, but every
environment still imports and initialises from scratch, so the embedded stack
does the restore itself, with ``fork``:

* the **snapshot keeper** (``python -m loadlab.embedded.aws_lambda.snapstart
  --socket PATH``, started by the stack with the function's environment)
  imports the handler (the Init phase: imports, catalog, clients, the simulated
  init delay), runs the ``before_snapshot`` hooks (the agent closes its
  DynamoDB client, LLM pool, threads and event loop: a forked process must not
  share them), then prints ``SNAPSHOT READY`` and forks one child per restore
  request on a Unix socket;
* each **environment** ministack spawns (its ``_worker.py`` imports the
  handler with ``LOADLAB_SNAPSTART_SOCKET`` set) asks the keeper for a restore
  instead of initialising: the forked child takes the environment's identity
  (its pid and log stream name), runs the ``after_restore`` hooks (a new event
  loop, new clients) and serves the environment's invocations over the socket
  until the environment goes. The restore duration (request to ready, as the
  environment waits for it) is the first turn's ``init_ms``.

Both ends die together: an environment killed by pid closes the socket and
its child exits; a child that ends itself (a kill order) closes the socket
and the environment exits, which ministack reports as ``Worker process died``.

The hooks are those of AWS's ``snapshot_restore_py`` (bundled in the Python
3.12+ managed runtimes) when it is importable, else a registry with the same
two functions, so a handler that registers hooks runs unchanged on both.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from loadlab.errors import LoadLabError, StackError

log = logging.getLogger("loadlab.embedded.aws_lambda")

SOCKET_ENV = "LOADLAB_SNAPSTART_SOCKET"
"""Set in the function's environment: where the snapshot keeper listens."""
READY_PREFIX = "SNAPSHOT READY"
KILL_ORDERS_ENV = "LOADLAB_KILL_ORDERS"
RESTORE_TIMEOUT_S = 30.0

Hook = Callable[..., object]

try:  # AWS's own registry, in the Python 3.12+ managed runtimes
    from snapshot_restore_py import (  # type: ignore[import-not-found, unused-ignore]
        get_after_restore,
        get_before_snapshot,
        register_after_restore,
        register_before_snapshot,
    )
except ImportError:
    _before: list[tuple[Hook, tuple[Any, ...], dict[str, Any]]] = []
    _after: list[tuple[Hook, tuple[Any, ...], dict[str, Any]]] = []

    def register_before_snapshot(func: Hook, *args: Any, **kwargs: Any) -> Hook:
        """Run ``func`` before the snapshot is taken (the hooks run in reverse order)."""
        _before.append((func, args, kwargs))
        return func

    def register_after_restore(func: Hook, *args: Any, **kwargs: Any) -> Hook:
        """Run ``func`` in each restored environment before its first invocation."""
        _after.append((func, args, kwargs))
        return func

    def get_before_snapshot() -> list[tuple[Hook, tuple[Any, ...], dict[str, Any]]]:
        """The registered before-snapshot hooks, in registration order."""
        return list(_before)

    def get_after_restore() -> list[tuple[Hook, tuple[Any, ...], dict[str, Any]]]:
        """The registered after-restore hooks, in registration order."""
        return list(_after)


__all__ = [
    "READY_PREFIX",
    "SOCKET_ENV",
    "RestoredEnvironment",
    "register_after_restore",
    "register_before_snapshot",
    "restore",
    "serve",
]


def run_before_snapshot() -> None:
    """The before-snapshot hooks, last registered first (as SnapStart runs them)."""
    for func, args, kwargs in reversed(get_before_snapshot()):
        func(*args, **kwargs)


def run_after_restore() -> None:
    """The after-restore hooks, in registration order."""
    for func, args, kwargs in get_after_restore():
        func(*args, **kwargs)


# -- the environment's side -----------------------------------------------------------


class RestoredEnvironment:
    """An environment started from the snapshot: its invocations go to the restored child."""

    def __init__(self, *, connection: socket.socket, instance_id: str, restore_ms: float) -> None:
        self.connection = connection
        self.instance_id = instance_id
        self.restore_ms = restore_ms
        self._stream = connection.makefile("rwb")

    def invoke(self, event: Any, remaining_ms: float | None) -> dict[str, Any]:
        """Play one invocation in the restored child; end this process if the child died."""
        message = {"event": event, "remaining_ms": remaining_ms}
        try:
            self._stream.write(json.dumps(message).encode() + b"\n")
            self._stream.flush()
            line = self._stream.readline()
        except OSError:
            line = b""
        if not line:
            # The child ended itself (a kill order) or was killed: so is this environment.
            os._exit(1)
        answer: dict[str, Any] = json.loads(line)
        return answer


def restore(path: str, *, timeout_s: float = RESTORE_TIMEOUT_S) -> RestoredEnvironment:
    """Start this environment from the snapshot kept at ``path``; raise ``StackError`` if none."""
    began = time.monotonic()
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout_s)
    try:
        connection.connect(path)
        hello = {
            "pid": os.getpid(),
            "log_stream": os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
            "began": began,
        }
        connection.sendall(json.dumps(hello).encode() + b"\n")
        reply = connection.makefile("rb").readline()
    except OSError as exc:
        connection.close()
        raise StackError(
            f"SnapStart: no snapshot to restore at {path} ({exc})",
            hint="the stack's snapshot keeper is not running: restart the stack",
        ) from None
    if not reply:
        connection.close()
        raise StackError(
            "SnapStart: the restored environment exited before it was ready",
            hint="read the snapshot keeper's log (snapstart.log in the state directory)",
        )
    ready = json.loads(reply)
    connection.settimeout(None)
    return RestoredEnvironment(
        connection=connection,
        instance_id=str(ready["instance_id"]),
        restore_ms=float(ready["restore_ms"]),
    )


# -- the keeper's side ----------------------------------------------------------------


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
    handler.kill_switch.cache_clear()  # this environment's own, keyed on its identity
    orders = handler.kill_switch()
    orders.prime()
    agent = handler.environment()
    agent.on_event = orders.on_event
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
    """``python -m loadlab.embedded.aws_lambda.snapstart --socket PATH``."""
    parser = argparse.ArgumentParser(description="Keep the agent function's SnapStart snapshot.")
    parser.add_argument("--socket", required=True, help="Unix socket to serve restores on")
    args = parser.parse_args(argv)
    # The keeper takes the snapshot; it must not try to restore from itself.
    os.environ.pop(SOCKET_ENV, None)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Run as __main__, this file is a second copy of the module: the hooks the
    # handler registers live in the imported one.
    from loadlab.embedded.aws_lambda import snapstart

    try:
        return snapstart.serve(args.socket)
    except LoadLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
