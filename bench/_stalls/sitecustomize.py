"""Stall evidence from inside the Locust process, for ``bench/concurrency.py --profile``.

The benchmark puts this directory on the Locust process's ``PYTHONPATH`` and
names an output file in ``LOADLAB_BENCH_STALLS``; Python imports this module
at start-up. It then records, on the run's timeline (epoch seconds):

* every garbage collection: generation, duration (``gc.callbacks``), objects
  collected;
* every recorder flush: duration, and the rows it wrote per table;
* every time gevent's blocking monitor (switched on by the benchmark through
  ``GEVENT_MONITOR_THREAD_ENABLE`` and ``GEVENT_MAX_BLOCKING_TIME``) finds the
  loop blocked: the innermost frames of the loop's thread at that moment.

and writes them as JSON when the process exits. Without ``LOADLAB_BENCH_STALLS``
it does nothing. gevent's own blocking report is replaced by that one stack: it
lists every greenlet, found with ``gc.get_objects()``, which with 5,000 users
blocks the loop for longer than the stall it reports (the first profiled run
collapsed to 80 turns/s).
"""

from __future__ import annotations

import os

_OUT = os.environ.get("LOADLAB_BENCH_STALLS")

if _OUT:
    import atexit
    import gc
    import importlib.abc
    import importlib.machinery
    import json
    import sys
    import time
    from typing import Any

    _gcs: list[tuple[float, int, float, int]] = []
    _flushes: list[tuple[float, float, dict[str, int]]] = []
    _gc_start = [0.0]
    _blocks: list[tuple[float, list[str]]] = []

    def _on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _gc_start[0] = time.perf_counter()
            return
        ms = (time.perf_counter() - _gc_start[0]) * 1000.0
        _gcs.append((time.time(), info["generation"], ms, info["collected"]))

    gc.callbacks.append(_on_gc)

    def _time_flushes(module: Any) -> None:
        recorder = module.RunRecorder
        flush = recorder.flush

        def timed_flush(self: Any) -> None:
            before = dict(self._counts)
            t0 = time.perf_counter()
            flush(self)
            ms = (time.perf_counter() - t0) * 1000.0
            rows = {k: v - before.get(k, 0) for k, v in self._counts.items()}
            _flushes.append((time.time(), ms, rows))

        recorder.flush = timed_flush

    def _lean_blocking_report(module: Any) -> None:
        import traceback

        def monitor_blocking(self: Any, hub: Any) -> None:
            if not self._greenlet_tracer.did_block_hub(hub):
                return
            frame = sys._current_frames().get(hub.thread_ident)
            stack = traceback.extract_stack(frame)[-10:] if frame is not None else []
            where = [f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in stack]
            _blocks.append((time.time(), where))

        module.PeriodicMonitoringThread.monitor_blocking = monitor_blocking

    _PATCHES = {
        "loadlab.measure.recorder": _time_flushes,
        "gevent._monitor": _lean_blocking_report,
    }

    class _AfterImport(importlib.abc.MetaPathFinder):
        """Patches a module right after it is imported (not before: no early imports)."""

        def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
            patch = _PATCHES.get(name)
            if patch is None:
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None:
                return None
            exec_module = spec.loader.exec_module

            def exec_and_patch(module: Any) -> None:
                exec_module(module)
                patch(module)

            spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
            return spec

    sys.meta_path.insert(0, _AfterImport())

    def _write() -> None:
        with open(_OUT, "w", encoding="utf-8") as out:
            json.dump({"gc": _gcs, "flushes": _flushes, "blocks": _blocks}, out)

    atexit.register(_write)
