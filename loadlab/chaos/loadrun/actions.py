"""Actions: start a load run in the background of an experiment, strike at the right moment.

A typical method: ``start_load`` (a flash sale from a scenario file), then
``wait_for_turns_in_flight`` with ``min_at_stake`` or ``min_with_cart`` (so the
fault lands while turns of sessions that have state to lose are in flight, not
between sessions or on first turns), then the fault (e.g. ``chaosk8s.pod.actions.terminate_pods``),
then ``wait_for_load_end``. Declare ``stop_load`` as a rollback so the load stops
on every ending, Ctrl-C and failed probes included.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from loadlab.chaos.loadrun.live_run import read_live, run_dir_of
from loadlab.load.context import lambda_function_of
from loadlab.load.launch import LocustLaunch, start_locust, start_workers
from loadlab.orphans import running
from loadlab.scenario.files import load_scenario

__all__ = ["start_load", "stop_load", "wait_for_load_end", "wait_for_turns_in_flight"]

PID_FILE = "locust.pid"
WORKER_PID_FILE = "locust-workers.pid"
WORKERS_ENV = "LOADLAB_WORKERS"  # set by `loadlab gameday --workers N`
WORKER_GRACE_S = 15.0
TARGET_ENV = "LOADLAB_TARGET_URL"
# set by `loadlab gameday --lambda`: the turns invoke this function
FUNCTION_ENV = "LOADLAB_TARGET_LAMBDA_FUNCTION"


def start_load(
    scenario: str,
    run_dir: str | None = None,
    target_url: str | None = None,
    users: int | None = None,
    time_scale: float | None = None,
) -> dict[str, Any]:
    """Start a Locust load run of ``scenario`` in the background.

    :param scenario: path of a loadlab scenario file (e.g. scenarios/demo.yaml).
    :param run_dir: the run directory to write (default ``$LOADLAB_RUN_DIR``).
    :param target_url: the agent's base URL (default ``$LOADLAB_TARGET_URL``, then
        the scenario's ``target.url``).
    :param users: override the scenario's peak concurrent sessions.
    :param time_scale: override the scenario's time_scale.

    The turns invoke a Lambda function instead of HTTP when
    ``$LOADLAB_TARGET_LAMBDA_FUNCTION`` is set or the scenario says
    ``target.protocol: lambda``.

    :returns: ``{"pid", "run_dir", "target_url", "scenario"}``.
    """
    path = run_dir_of(run_dir)
    loaded = load_scenario(scenario)  # a bad scenario fails here, with the key and the fix
    target = target_url or os.environ.get(TARGET_ENV) or loaded.target.url
    if not target:
        raise ActivityFailed(
            "no target URL: pass target_url, set LOADLAB_TARGET_URL, or put target.url "
            "in the scenario"
        )
    launch = LocustLaunch(
        scenario_path=Path(scenario),
        target_url=target,
        run_dir=path,
        lambda_function=lambda_function_of(loaded, os.environ.get(FUNCTION_ENV)),
        users=int(users) if users else None,
        time_scale=float(time_scale) if time_scale else None,
        progress_interval_s=10.0,
        workers=_workers(),
        master_port=_free_port() if _workers() else 5557,
    )
    path.mkdir(parents=True, exist_ok=True)
    with (path / "locust.log").open("ab") as log_file:
        proc = start_locust(launch, log_file)
        (path / PID_FILE).write_text(str(proc.pid))  # first: stop_load finds the master
        workers = start_workers(launch, log_file) if launch.workers else []
    if workers:
        (path / WORKER_PID_FILE).write_text("\n".join(str(w.pid) for w in workers) + "\n")
    return {
        "pid": proc.pid,
        "workers": [w.pid for w in workers],
        "run_dir": str(path),
        "target_url": target,
        "scenario": scenario,
    }


def _workers() -> int:
    raw = os.environ.get(WORKERS_ENV, "0") or "0"
    try:
        count = int(raw)
    except ValueError:
        raise ActivityFailed(f"{WORKERS_ENV}={raw!r} is not a whole number of workers") from None
    if count < 0:
        raise ActivityFailed(f"{WORKERS_ENV}={count} must be 0 or more")
    return count


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_turns_in_flight(
    min_turns: int = 1,
    min_users: int = 0,
    timeout_s: float = 120.0,
    *,
    min_at_stake: int = 0,
    min_with_cart: int = 0,
    run_dir: str | None = None,
) -> dict[str, Any]:
    """Wait until turns are in flight where state is at stake; strike right after it returns.

    A fault that lands while only first turns are in flight tests nothing: a
    first turn has no state to lose. ``min_at_stake`` waits for turns of sessions
    past their first completed turn (history and checkpoint on the agent's side),
    ``min_with_cart`` for turns of sessions whose cart is not empty (a lost
    checkpoint or a repeated "add to cart" shows in the cart).

    :param min_turns: turns sent and not yet answered, at least.
    :param min_users: Locust users running, at least.
    :param timeout_s: give up (ActivityFailed) after this many seconds.
    :param run_dir: the live run (default ``$LOADLAB_RUN_DIR``).
    :param min_at_stake: of them, turns of sessions that completed a turn before, at least.
    :param min_with_cart: of them, turns of sessions with a non-empty cart, at least.
    :returns: the live status at the moment the condition held.
    """
    path = run_dir_of(run_dir)
    wanted = {
        "turns_in_flight": int(min_turns),
        "users": int(min_users),
        "turns_in_flight_at_stake": int(min_at_stake),
        "turns_in_flight_with_cart": int(min_with_cart),
    }
    deadline = time.monotonic() + float(timeout_s)
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        last = read_live(path)
        if last is not None:
            if last.get("state") == "stopped":
                raise ActivityFailed("the load run ended before the moment to strike came")
            if all(int(last.get(key, 0)) >= need for key, need in wanted.items()):
                return last
        _check_alive(path)
        time.sleep(0.1)
    seen = {key: (last or {}).get(key, 0) for key in wanted}
    raise ActivityFailed(
        f"the moment to strike did not come within {timeout_s:g} s: wanted at least {wanted}, "
        f"last seen {seen}; lower the thresholds, or give the load more users or time"
    )


def wait_for_load_end(timeout_s: float = 900.0, run_dir: str | None = None) -> dict[str, Any]:
    """Wait for the background load run to finish (its shape ends).

    :param timeout_s: give up (ActivityFailed) after this many seconds.
    :param run_dir: the live run (default ``$LOADLAB_RUN_DIR``).
    :returns: ``{"exit_code", "live"}``.
    """
    path = run_dir_of(run_dir)
    pid = _pid(path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = _reap(pid)
        if code is not None:
            _end_workers(path)
            return {"exit_code": code, "live": read_live(path)}
        time.sleep(0.2)
    raise ActivityFailed(f"the load run (pid {pid}) did not end within {timeout_s:g} s")


def stop_load(grace_s: float = 30.0, run_dir: str | None = None) -> dict[str, Any]:
    """Stop the background load run (use as a rollback): SIGINT, then SIGKILL after ``grace_s``.

    SIGINT lets Locust stop its users and the recorder flush, so the run directory
    stays complete up to that moment.

    :param grace_s: seconds to wait after SIGINT before SIGKILL.
    :param run_dir: the live run (default ``$LOADLAB_RUN_DIR``).
    :returns: ``{"pid", "stopped", "exit_code"}``.
    """
    path = run_dir_of(run_dir)
    try:
        pid = _pid(path)
    except ActivityFailed:
        return {"pid": None, "stopped": False, "exit_code": None}
    code = _reap(pid)
    if code is not None:
        _end_workers(path)
        return {"pid": pid, "stopped": False, "exit_code": code}
    _signal(pid, signal.SIGINT)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        code = _reap(pid)
        if code is not None:
            _end_workers(path)
            return {"pid": pid, "stopped": True, "exit_code": code}
        time.sleep(0.1)
    _signal(pid, signal.SIGKILL)
    code = _reap(pid, wait=True)
    _end_workers(path, grace_s=0.0)
    return {"pid": pid, "stopped": True, "exit_code": code}


def _pid(path: Path) -> int:
    try:
        return int((path / PID_FILE).read_text().strip())
    except (OSError, ValueError) as exc:
        raise ActivityFailed(f"no load run was started in {path} (no {PID_FILE})") from exc


def _reap(pid: int, *, wait: bool = False) -> int | None:
    """The exit code of ``pid`` once it has ended, else None."""
    try:
        done, status = os.waitpid(pid, 0 if wait else os.WNOHANG)
    except ChildProcessError:  # not our child (another process started it): poll instead
        return None if running(pid) else 0
    if done == 0:
        return None
    return os.waitstatus_to_exitcode(status)


def _end_workers(path: Path, *, grace_s: float = WORKER_GRACE_S) -> None:
    """After the master: its workers quit when told; one still running after the grace is
    SIGKILLed."""
    try:
        pids = [int(line) for line in (path / WORKER_PID_FILE).read_text().split()]
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + grace_s
    for pid in pids:
        while _reap(pid) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if _reap(pid) is None:
            _signal(pid, signal.SIGKILL)
            _reap(pid, wait=True)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _check_alive(path: Path) -> None:
    try:
        pid = _pid(path)
    except ActivityFailed:
        return
    code = _reap(pid)
    if code is not None:
        raise ActivityFailed(
            f"the load run exited (code {code}) before the moment to strike; "
            f"see {path / 'locust.log'}"
        )
