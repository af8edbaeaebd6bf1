"""User-count samples on the timeline and progress lines on stderr during a run."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from loadlab.timeline import TimelineEvent


class ProgressReporter:
    """Samples Locust's user count every second; prints a progress line every few seconds."""

    def __init__(
        self, *, environment: Any, sink: Any, peak_users: int, interval_s: float = 5.0
    ) -> None:
        self._env = environment
        self._sink = sink
        self._peak = peak_users
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.time()

    def start(self) -> ProgressReporter:
        """Start sampling in the background."""
        self._thread = threading.Thread(target=self._run, name="loadlab-progress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        last_print = time.time()
        while not self._stop.wait(1.0):
            runner = self._env.runner
            users = int(getattr(runner, "user_count", 0) or 0)
            self._sink.emit(
                TimelineEvent(t=time.time(), kind="users", name="users", attrs={"users": users})
            )
            if self._interval_s > 0 and time.time() - last_print >= self._interval_s:
                last_print = time.time()
                sys.stderr.write(self._line(users) + "\n")
                sys.stderr.flush()

    def _line(self, users: int) -> str:
        stats = self._env.stats.total
        elapsed = time.time() - self._t0
        p99 = stats.get_response_time_percentile(0.99) if stats.num_requests else 0
        return (
            f"loadlab: {elapsed:5.0f}s users={users}/{self._peak} "
            f"requests={stats.num_requests} ({stats.current_rps:.1f}/s) "
            f"failures={stats.num_failures} p99~{p99 / 1000:.1f}s"
        )
