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

* the **snapshot keeper** (:mod:`~loadlab.embedded.aws_lambda.snapshot_keeper`,
  started by the stack with the function's environment)
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

What the restore does not remove: ministack still spawns a process and unzips
the code for each new environment (in its own process, under its GIL), so a
caller's cold wait keeps that part; the restore replaces the imports and the
agent's initialisation, which is what ``init_ms`` reports. A wave of cold
starts on a busy machine can still outlast a short ``target.timeout_s``.

Both ends die together: an environment killed by pid closes the socket and
its child exits; a child that ends itself (a kill order) closes the socket
and the environment exits, which ministack reports as ``Worker process died``.

The hooks are those of AWS's ``snapshot_restore_py`` (bundled in the Python
3.12+ managed runtimes) when it is importable, else a registry with the same
two functions, so a handler that registers hooks runs unchanged on both.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from loadlab.errors import StackError

log = logging.getLogger("loadlab.embedded.aws_lambda")

SOCKET_ENV = "LOADLAB_SNAPSTART_SOCKET"
"""Set in the function's environment: where the snapshot keeper listens."""
READY_PREFIX = "SNAPSHOT READY"
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
    "run_after_restore",
    "run_before_snapshot",
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
