"""Child processes of the embedded stack, spawned so that none outlives loadlab.

Every server the embedded stack runs (ministack, the LLM simulator, each agent
replica) is a :class:`ChildProcess`:

* it gets ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` before ``exec``, so a supervisor
  that is SIGKILLed (or crashes) takes its children with it on Linux. The kernel
  sends the signal when the *thread* that forked the child exits, so run the
  event loop that spawns children in a thread that outlives them (the main
  thread, with ``asyncio.run``);
* it is the leader of its own process group, so a Ctrl-C in the terminal
  reaches only loadlab, which then stops its children in order, and a final
  SIGKILL to the group also removes any grandchildren;
* its stdout is read line by line: the first line starting with an expected
  prefix (``READY``, ``LISTENING``) is handed to the caller, and every line is
  copied to the child's log file, where its stderr goes too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from loadlab.orphans import die_with_parent

_LINE_LIMIT = 1 << 20
_KILL_WAIT_S = 5.0

logger = logging.getLogger("loadlab.embedded.fleet")


def free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(path: Path | None, *, lines: int = 20) -> str:
    """Return the last ``lines`` lines of a log file ('' if there is none)."""
    if path is None:
        return ""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ChildProcess:
    """A running child: its ready line, its exit, and signals to its process group."""

    def __init__(
        self,
        *,
        process: asyncio.subprocess.Process,
        name: str,
        log_file: BinaryIO | None,
        log_path: Path | None,
        ready_prefix: str | None,
    ) -> None:
        self._process = process
        self.name = name
        self.log_path = log_path
        self._log_file = log_file
        self._ready_prefix = ready_prefix
        self._ready: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pump = asyncio.create_task(self._copy_stdout(), name=f"{name}-stdout")

    @classmethod
    async def spawn(
        cls,
        *,
        argv: Sequence[str],
        name: str,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        ready_prefix: str | None = None,
        cwd: Path | None = None,
    ) -> ChildProcess:
        """Start ``argv``; stdout and stderr go to ``log_path`` (or are inherited/dropped).

        ``env`` is the child's whole environment (``os.environ`` when ``None``).
        ``PYTHONUNBUFFERED=1`` is added so that a Python child's ready line is not
        held back in a pipe buffer.
        """
        child_env = dict(os.environ if env is None else env)
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        log_file: BinaryIO | None = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_file = log_path.open("ab")
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                env=child_env,
                cwd=cwd,
                preexec_fn=die_with_parent(),
                start_new_session=True,
                limit=_LINE_LIMIT,
            )
        except BaseException:
            if log_file is not None:
                log_file.close()
            raise
        return cls(
            process=process,
            name=name,
            log_file=log_file,
            log_path=log_path,
            ready_prefix=ready_prefix,
        )

    @property
    def pid(self) -> int:
        """The child's process id (also its process group id)."""
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped (negative: killed by that signal), else ``None``."""
        return self._process.returncode

    async def ready_line(self, *, timeout_s: float) -> str | None:
        """Wait for the first stdout line starting with the ready prefix.

        Returns ``None`` if stdout closed (the child exited) before such a line;
        raises :class:`TimeoutError` after ``timeout_s``.
        """
        return await asyncio.wait_for(asyncio.shield(self._ready), timeout_s)

    async def wait(self) -> int:
        """Wait until the child has exited and its output is flushed; return its status."""
        code = await self._process.wait()
        # Shielded: a caller giving up on the wait must not stop the log copy.
        await asyncio.shield(self._pump)
        return code

    def kill_group(self) -> None:
        """SIGKILL whatever is left in the child's process group (its own children)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the child's process group (no-op once it has exited)."""
        if self._process.returncode is not None:
            return
        try:
            os.killpg(self._process.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            # The group id may already belong to nobody we own; signal the process itself.
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(sig)

    async def terminate(self, *, grace_s: float) -> int:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL; return the exit status.

        ``grace_s <= 0`` sends SIGKILL at once. Grandchildren left in the child's
        process group are SIGKILLed too.
        """
        if grace_s <= 0:
            self.signal(signal.SIGKILL)
        else:
            self.signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self._process.wait()), grace_s)
            except TimeoutError:
                logger.warning(
                    "%s (pid %d) did not stop within %.1f s of SIGTERM; sending SIGKILL",
                    self.name,
                    self.pid,
                    grace_s,
                )
                self.signal(signal.SIGKILL)
        code = await asyncio.wait_for(self.wait(), _KILL_WAIT_S)
        self.kill_group()
        return code

    async def _copy_stdout(self) -> None:
        stream = self._process.stdout
        assert stream is not None
        try:
            while True:
                try:
                    line = await stream.readline()
                except ValueError:
                    # A line longer than the limit: keep the log flowing, drop its tail.
                    line = await stream.read(_LINE_LIMIT)
                if not line:
                    break
                self._write_log(line)
                if self._ready_prefix is not None and not self._ready.done():
                    text = line.decode("utf-8", errors="replace").strip()
                    if text.startswith(self._ready_prefix):
                        self._ready.set_result(text)
        finally:
            if not self._ready.done():
                self._ready.set_result(None)
            if self._log_file is not None:
                self._log_file.close()

    def _write_log(self, line: bytes) -> None:
        if self._log_file is None:
            return
        self._log_file.write(line if line.endswith(b"\n") else line + b"\n")
        self._log_file.flush()
