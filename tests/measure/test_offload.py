"""Blocking writes leave the load's loop: gevent's real threads under Locust, inline elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

from loadlab.measure.live_status import LiveWindow
from loadlab.measure.offload import loop_lock, offloader
from loadlab.measure.progress import ProgressReporter
from loadlab.rows import LIVE_STATUS_FILE


def test_without_gevents_patching_the_write_runs_inline() -> None:
    ran_in: list[int] = []
    offloader()(lambda: ran_in.append(threading.get_native_id()))
    assert ran_in == [threading.get_native_id()]


def test_under_gevents_patching_the_write_runs_in_a_real_thread_while_greenlets_run() -> None:
    # in a process of its own: monkey-patching must not touch the test process
    script = """
import gevent.monkey
gevent.monkey.patch_all()
import threading, time, gevent
from loadlab.measure.offload import offloader
loop_id = threading.get_native_id()
ticks = []
def ticker():
    for _ in range(20):
        ticks.append(time.monotonic())
        gevent.sleep(0.005)
g = gevent.spawn(ticker)
gevent.sleep(0)
ran_in = []
def blocking():
    ran_in.append(threading.get_native_id())
    time.sleep(0.1)  # the real, unpatched sleep of a blocking write
offloader()(blocking)
g.join()
print(ran_in[0] != loop_id, len([t for t in ticks if t < ticks[0] + 0.1]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    other_thread, ticks_during = done.stdout.split()
    assert other_thread == "True"
    # the loop kept ticking while the write blocked its thread for 100 ms
    assert int(ticks_during) >= 5, done.stdout


def test_the_loop_lock_is_the_operating_systems_lock_and_keeps_real_threads_out() -> None:
    without = loop_lock()
    assert type(without) is type(threading.Lock())
    script = """
import gevent.monkey
gevent.monkey.patch_all()
import threading, gevent
from loadlab.measure.offload import loop_lock
from loadlab.measure.live_status import LiveWindow
lock = loop_lock()
patched = threading.Lock()
print(type(lock).__module__, type(patched).__module__, type(LiveWindow()._lock).__module__)
tries = []
with lock:
    # a real thread of gevent's pool is kept out while a greenlet holds it
    gevent.get_hub().threadpool.apply(lambda: tries.append(lock.acquire(blocking=False)))
gevent.get_hub().threadpool.apply(lambda: tries.append(lock.acquire(blocking=False)))
print(tries)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    kinds, tries = done.stdout.splitlines()
    # the OS lock (module _thread), where threading.Lock() is gevent's cooperative one
    assert kinds == "_thread gevent.thread _thread", done.stdout
    assert tries == "[False, True]", done.stdout


def test_the_live_status_is_written_through_the_offloader(tmp_path: Path) -> None:
    writes: list[str] = []

    def recording(write):  # type: ignore[no-untyped-def]
        writes.append("live.json")
        write()

    env = SimpleNamespace(runner=SimpleNamespace(user_count=3), stats=None)
    reporter = ProgressReporter(
        environment=env,
        sink=SimpleNamespace(emit=lambda row: None),
        peak_users=3,
        run_dir=tmp_path,
        window=LiveWindow(),
        offload=recording,
    )
    reporter.stop()  # never started: writes the final "stopped" status once
    assert writes == ["live.json"]
    status = json.loads((tmp_path / LIVE_STATUS_FILE).read_text())
    assert status["state"] == "stopped" and status["users"] == 3
