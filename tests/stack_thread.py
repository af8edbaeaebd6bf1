"""An embedded stack for tests, run on a thread and event loop of its own.

:class:`~loadlab.embedded.stack.EmbeddedStack` binds its children to the life of
the thread that started them (PDEATHSIG) and must be stopped from that thread
and loop. :class:`StackThread` therefore starts the stack on a dedicated thread,
keeps that thread alive while the test uses the stack, and stops it there::

    with StackThread(EmbeddedStack(replicas=2, state_dir=tmp)) as running:
        url = running.state.endpoints.agent_url

Every wait is bounded. A start that fails re-raises the stack's exception in the
calling thread; a start that does not finish in time is cancelled (which stops
whatever had started) and fails the test. The stack is stopped in every case.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, NoReturn, TypeVar

from loadlab.embedded.stack import EmbeddedStack
from loadlab.embedded.state import StackState

_T = TypeVar("_T")


class StackThread:
    """An :class:`EmbeddedStack` started, served and stopped on its own thread and loop."""

    def __init__(
        self,
        stack: EmbeddedStack,
        *,
        name: str = "embedded-stack",
        start_timeout_s: float = 120.0,
        stop_timeout_s: float = 60.0,
    ) -> None:
        self.stack = stack
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._state: StackState | None = None
        self._failure: BaseException | None = None
        self._stop_failure: BaseException | None = None
        self._cancelled = False

    # -- the stack's thread -----------------------------------------------------------

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except asyncio.CancelledError:
            pass  # stop() ended the wait for it
        except BaseException as exc:  # stopping the stack failed: stop() raises it
            self._stop_failure = exc
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        try:
            try:
                await self.stack.start()
                self._state = self.stack.state
            except BaseException as exc:  # includes the cancel of a start that took too long
                self._failure = exc
                return
            finally:
                self._started.set()
            await asyncio.Event().wait()  # until stop() cancels this task
        finally:
            await self.stack.stop()  # idempotent: a failed start has stopped already

    def _cancel(self) -> None:
        if self._task is not None and not self._cancelled:
            self._cancelled = True
            self._task.cancel()

    # -- the test's thread ------------------------------------------------------------

    def start(self) -> StackThread:
        """Start the stack; raise what its start raised, or fail after ``start_timeout_s``."""
        self._thread.start()
        if not self._started.wait(self._start_timeout_s):
            self._fail(
                AssertionError(
                    f"the embedded stack did not start within {self._start_timeout_s:g} s"
                )
            )
        if self._state is None:
            self._fail(
                self._failure or RuntimeError("the stack's thread ended before the stack started")
            )
        return self

    def _fail(self, failure: BaseException) -> NoReturn:
        """Stop whatever started, then raise ``failure`` (noting a failed stop on it)."""
        try:
            self.stop()
        except BaseException as exc:
            failure.add_note(f"stopping the embedded stack failed too: {exc!r}")
        raise failure

    def stop(self) -> None:
        """Stop the stack on its own thread and wait (bounded) for it; idempotent.

        Raises what stopping the stack raised, or AssertionError after ``stop_timeout_s``.
        """
        if self._thread.is_alive():
            loop = self._loop
            if loop is not None:
                # RuntimeError: the loop has closed, the thread is ending by itself.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._cancel)
            self._thread.join(self._stop_timeout_s)
            if self._thread.is_alive():
                raise AssertionError(
                    f"the embedded stack did not stop within {self._stop_timeout_s:g} s"
                )
        failure, self._stop_failure = self._stop_failure, None
        if failure is not None:
            raise failure

    def __enter__(self) -> StackThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def state(self) -> StackState:
        """The running stack's state (endpoints, JWT secret, local AWS account, Lambda)."""
        if self._state is None:
            raise RuntimeError("the embedded stack has not started")
        return self._state

    def call(self, coro: Coroutine[Any, Any, _T], *, timeout_s: float = 30.0) -> _T:
        """Run ``coro`` on the stack's loop and return its result; cancel it after ``timeout_s``."""
        if self._loop is None or self._state is None or not self._thread.is_alive():
            coro.close()
            raise RuntimeError("the embedded stack is not running")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def child_pids(self) -> list[int]:
        """Process ids of every server the stack runs now (see ``EmbeddedStack.child_pids``)."""

        async def pids() -> list[int]:
            return self.stack.child_pids()

        return self.call(pids())
