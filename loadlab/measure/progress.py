"""User-count samples, the live status file and progress lines, once a second during a run."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadlab.measure.live_status import LiveWindow
from loadlab.measure.offload import Offloader, offloader
from loadlab.measure.rundir import write_json_atomic
from loadlab.rows import LIVE_STATUS_FILE, TimelineEvent

# the in-flight counters over this process and its workers (keys: load.in_flight.IN_FLIGHT_KEYS)
InFlight = Callable[[], dict[str, int]]


class ProgressReporter:
    """Samples Locust's user count every second; prints a progress line every few seconds."""

    def __init__(
        self,
        *,
        environment: Any,
        sink: Any,
        peak_users: int,
        interval_s: float = 5.0,
        run_dir: Path | None = None,
        window: LiveWindow | None = None,
        in_flight: InFlight | None = None,
        offload: Offloader | None = None,
    ) -> None:
        self._env = environment
        # live.json is replaced twice a second: 1-3 ms of blocking I/O each time, which
        # on the load's loop would stall every user (loadlab.measure.offload)
        self._offload = offload or offloader()
        self._sink = sink
        self._run_dir = run_dir
        self._window = window
        self._in_flight = in_flight
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
        """Stop sampling; the live status says ``stopped`` from then on."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._write_live(self._users(), state="stopped")

    def _abort_refused(self) -> None:
        sys.stderr.write(
            "loadlab: error: the agent refused every turn so far (HTTP 401/403): "
            "the session JWTs are not accepted\n"
            "  fix: set LOADLAB_JWT_SECRET to the agent's signing secret (or run against "
            "the stack of `loadlab up`, whose secret is used automatically); stopping the run\n"
        )
        sys.stderr.flush()
        self._env.process_exit_code = 2
        runner = self._env.runner
        if runner is not None:
            runner.quit()

    def _users(self) -> int:
        return int(getattr(self._env.runner, "user_count", 0) or 0)

    def _write_live(self, users: int, *, state: str) -> None:
        if self._run_dir is None or self._window is None:
            return
        in_flight = self._in_flight() if self._in_flight is not None else {}
        status = {
            "t": time.time(),
            "state": state,
            "users": users,
            "turns_in_flight": 0,
            "awaiting_first_token": 0,
            **in_flight,
            **self._window.snapshot(),
        }
        path = self._run_dir / LIVE_STATUS_FILE
        try:
            self._offload(lambda: write_json_atomic(path, status))
        except OSError as exc:  # the live file is a convenience; the run goes on
            sys.stderr.write(f"loadlab: could not write {LIVE_STATUS_FILE}: {exc}\n")

    def _run(self) -> None:
        last_print = time.time()
        ticks = 0
        while not self._stop.wait(0.5):
            ticks += 1
            users = self._users()
            self._write_live(users, state="running")
            if self._window is not None and self._window.refused_from_the_start():
                self._abort_refused()
                return
            if ticks % 2:
                continue  # users sampled once a second, the live file twice
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
