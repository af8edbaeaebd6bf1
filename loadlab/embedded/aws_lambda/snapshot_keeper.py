"""Start and stop the SnapStart snapshot keeper of the embedded function (stack side).

The keeper (:mod:`~loadlab.embedded.aws_lambda.snapstart`) runs the function's
Init phase once with the function's own environment, as AWS does when a
SnapStart version is published, then forks restored environments on a Unix
socket. The stack starts it before the function is deployed and gives the
function the socket's path (``LOADLAB_SNAPSTART_SOCKET``). It runs loadlab's
own interpreter and sources (the ones the zip was built from); ministack's
environments run the zip's copy under ministack's interpreter (both CPython
3.11 here).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from loadlab.embedded.aws_lambda.snapstart import READY_PREFIX, SOCKET_ENV
from loadlab.embedded.fleet.process import ChildProcess, log_tail
from loadlab.errors import StackError

__all__ = ["SnapshotKeeper", "start_snapshot_keeper"]


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
    argv = [sys.executable, "-m", "loadlab.embedded.aws_lambda.snapstart", "--socket", socket_path]
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
