"""ministack, the local AWS, run as a child process from its own virtual environment.

ministack pins botocore exactly, so it lives in ``.venv-ministack`` (made by
``scripts/bootstrap``) rather than beside loadlab's boto3. :func:`find_ministack`
finds its executable; :class:`Ministack` runs it on a free 127.0.0.1 port, waits
(bounded) for ``/_ministack/health``, logs to a file and stops it again. Like
every child of the embedded stack it dies with its parent (PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import aiohttp

from loadlab.embedded.fleet.process import ChildProcess, free_loopback_port, log_tail
from loadlab.errors import StackError

HOST = "127.0.0.1"
HEALTH_PATH = "/_ministack/health"
ENV_BIN = "LOADLAB_MINISTACK_BIN"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_BOOTSTRAP_HINT = (
    "run scripts/bootstrap (it installs ministack into .venv-ministack), "
    f"or pass --ministack PATH / set {ENV_BIN}"
)
_PORT_ATTEMPTS = 3
_POLL_S = 0.05


def find_ministack(
    explicit: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    repo_root: Path = _REPO_ROOT,
) -> Path:
    """Return the ministack executable to run.

    Looked for in this order: ``explicit`` (the ``--ministack`` option), the
    ``LOADLAB_MINISTACK_BIN`` environment variable (both from ``environ``,
    default ``os.environ``), ``<repo_root>/.venv-ministack/bin/ministack``, then
    ``ministack`` on ``PATH``. Raises
    :class:`~loadlab.errors.StackError` if a given path is not executable or
    nothing is found.
    """
    env = os.environ if environ is None else environ
    for origin, given in (("--ministack", explicit), (ENV_BIN, env.get(ENV_BIN))):
        if given:
            path = Path(given).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise StackError(
                    f"{origin}={str(given)!r} is not an executable file", hint=_BOOTSTRAP_HINT
                )
            return path
    bundled = repo_root / ".venv-ministack" / "bin" / "ministack"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return bundled
    on_path = shutil.which("ministack", path=env.get("PATH"))
    if on_path is not None:
        return Path(on_path)
    raise StackError(
        f"ministack not found (looked at --ministack, {ENV_BIN}, {bundled} and PATH)",
        hint=_BOOTSTRAP_HINT,
    )


class Ministack:
    """One ministack server on 127.0.0.1, its log in ``<state_dir>/ministack.log``.

    ``binary`` is resolved with :func:`find_ministack`; ``port`` 0 picks a free
    one. Its scratch files (pid file, S3 data) go under ``<state_dir>/ministack``.
    """

    def __init__(
        self,
        *,
        state_dir: Path,
        binary: str | Path | None = None,
        port: int = 0,
        start_timeout_s: float = 30.0,
    ) -> None:
        self._state_dir = Path(state_dir)
        self._binary = binary
        self._requested_port = port
        self._start_timeout_s = start_timeout_s
        self._child: ChildProcess | None = None
        self._port = 0

    @property
    def log_path(self) -> Path:
        """ministack's stdout and stderr."""
        return self._state_dir / "ministack.log"

    @property
    def url(self) -> str:
        """The AWS endpoint URL (``http://127.0.0.1:<port>``) once started."""
        if self._child is None:
            raise StackError("ministack is not running", hint="await Ministack.start() first")
        return f"http://{HOST}:{self._port}"

    @property
    def pid(self) -> int | None:
        """ministack's process id while it runs."""
        return None if self._child is None else self._child.pid

    @property
    def returncode(self) -> int | None:
        """ministack's exit status once it has exited, else ``None``."""
        return None if self._child is None else self._child.returncode

    async def start(self) -> str:
        """Start ministack and wait until it reports healthy; return its URL.

        Raises :class:`~loadlab.errors.StackError` (with the log path) if it
        exits early or is not healthy within ``start_timeout_s``.
        """
        if self._child is not None:
            return self.url
        binary = find_ministack(self._binary)
        scratch = self._state_dir / "ministack"
        scratch.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._requested_port else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_loopback_port()
            # The Lambda environments ministack starts inherit its environment: an agent
            # setting left in ours (an instance name) would make every one the same.
            env = {k: v for k, v in os.environ.items() if not k.startswith("LOADLAB_AGENT_")}
            env.update(
                BIND_HOST=HOST,
                GATEWAY_PORT=str(port),
                TMPDIR=str(scratch),
                S3_DATA_DIR=str(scratch / "s3"),
                STATE_DIR=str(scratch / "state"),
            )
            try:
                child = await ChildProcess.spawn(
                    argv=[str(binary)], name="ministack", env=env, log_path=self.log_path
                )
            except OSError as exc:
                raise StackError(
                    f"cannot run ministack at {binary}: {exc}", hint=_BOOTSTRAP_HINT
                ) from exc
            self._child, self._port = child, port
            try:
                await self._wait_healthy(child)
            except _PortTaken:
                self._child = None
                if attempt == attempts:
                    raise StackError(
                        f"ministack could not bind {HOST}:{port}: the port is in use",
                        hint="choose another port or stop whatever holds it",
                    ) from None
                continue
            except BaseException:
                await self.stop(grace_s=1.0)
                raise
            return self.url
        raise AssertionError("unreachable")

    async def _wait_healthy(self, child: ChildProcess) -> None:
        url = f"http://{HOST}:{self._port}{HEALTH_PATH}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._start_timeout_s
        timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while loop.time() < deadline:
                if child.returncode is not None:
                    await child.wait()
                    if "already in use" in log_tail(self.log_path, lines=5):
                        raise _PortTaken
                    raise StackError(
                        f"ministack exited with status {child.returncode} before it was "
                        f"healthy; last lines of {self.log_path}:\n" + log_tail(self.log_path),
                        hint=f"read {self.log_path}; if ministack is broken, {_BOOTSTRAP_HINT}",
                    )
                try:
                    async with http.get(url) as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                # Sleeps until the next poll, but wakes at once if ministack exits.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(child.wait()), _POLL_S)
        raise StackError(
            f"ministack did not answer {url} within {self._start_timeout_s:.0f} s",
            hint=f"read {self.log_path}",
        )

    async def wait_exit(self) -> int:
        """Wait until ministack exits (for whatever reason); return its status."""
        if self._child is None:
            raise StackError("ministack is not running", hint="await Ministack.start() first")
        return await self._child.wait()

    async def stop(self, *, grace_s: float = 5.0) -> None:
        """SIGTERM ministack, SIGKILL it after ``grace_s``; idempotent."""
        child, self._child = self._child, None
        if child is not None:
            await child.terminate(grace_s=grace_s)

    async def __aenter__(self) -> Ministack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class _PortTaken(Exception):
    """ministack found its port taken between our probe and its bind."""
