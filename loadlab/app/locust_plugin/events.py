"""loadlab's listeners on Locust's events: start recording, follow the phases, seal the run.

Where rows go depends on the Locust role:

* standalone (``LocalRunner``) and ``--master``: a
  :class:`~loadlab.measure.recorder.RunRecorder` writes the run directory;
* ``--worker``: a :class:`~loadlab.app.locust_plugin.forwarding.WorkerForwarder`
  sends them to the master, whose recorder writes them.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadlab.app.locust_plugin.abort import AbortWatch, Breach
from loadlab.app.locust_plugin.context import build_context, choose_scenario, scenario_of
from loadlab.app.locust_plugin.forwarding import ROWS_MESSAGE, WorkerForwarder, receive_rows
from loadlab.app.locust_plugin.manifest import run_manifest
from loadlab.app.locust_plugin.metrics import ServedMetrics, start_metrics
from loadlab.app.locust_plugin.options import add_arguments
from loadlab.app.locust_plugin.stopping import RunStopper
from loadlab.app.locust_plugin.web_tab import install_tab
from loadlab.errors import LoadLabError
from loadlab.load.gc_pause import CollectorPause
from loadlab.load.gil_slices import ShortGilSlices
from loadlab.load.in_flight import InFlightCounters, total_in_flight
from loadlab.measure.live_status import LiveWindow, ObservedSink
from loadlab.measure.pressure import PressureSampler, pressure_sampler_from_options
from loadlab.measure.progress import ProgressReporter
from loadlab.measure.prom_metrics import MeteredSink
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, new_run_dir, write_json_atomic
from loadlab.rows import TimelineEvent


@dataclass
class PluginState:
    """What the listeners of one Locust process share."""

    recorder: RunRecorder | None = None
    forwarder: WorkerForwarder | None = None
    run_dir: RunDirectory | None = None
    sampler: ProgressReporter | None = None
    pressure: PressureSampler | None = None
    window: LiveWindow = field(default_factory=LiveWindow)
    # latest in-flight counters reported by each worker
    worker_in_flight: dict[str, dict[str, int]] = field(default_factory=dict)
    abort: AbortWatch | None = None
    aborted: Breach | None = None
    stopper: RunStopper | None = None
    metrics: ServedMetrics | None = None
    gc_pause: CollectorPause = field(default_factory=CollectorPause)
    gil_slices: ShortGilSlices = field(default_factory=ShortGilSlices)
    sealed: bool = False


def register(events: Any) -> None:
    """Register loadlab's options, recorder and progress reporting on Locust's event hooks."""
    state = PluginState()
    events.init_command_line_parser.add_listener(add_arguments)

    def on_init(environment: Any, web_ui: Any = None, **_: Any) -> None:
        _or_exit(lambda: _init(environment, state))
        if environment.parsed_options is not None and _role(environment) != "worker":
            serve_on = bool(getattr(environment.parsed_options, "serve_until_interrupted", False))
            state.stopper = RunStopper(
                environment,
                web_ui=web_ui,
                seal=(lambda: _quit(environment, state)) if serve_on else None,
            ).install()
        if web_ui is not None and state.run_dir is not None:
            install_tab(environment, web_ui, state.window, state.run_dir)

    def on_test_start(environment: Any, **_: Any) -> None:
        # Each cyclic collection stopped every user for milliseconds, several times
        # a second (bench/concurrency.py --profile); see loadlab.load.gc_pause.
        state.gc_pause.start()
        # A helper thread's Python work held the users up 5 ms a slice; see
        # loadlab.load.gil_slices.
        state.gil_slices.start()
        if state.forwarder is not None:
            _or_exit(lambda: _worker_context(environment, state))
        _emit_phase(environment, "test_start")

    def on_test_stop(environment: Any, **_: Any) -> None:
        state.gc_pause.stop()
        state.gil_slices.stop()
        _emit_phase(environment, "test_stop")
        if state.stopper is not None:
            state.stopper.load_stopped()

    def on_quitting(environment: Any, **_: Any) -> None:
        _quit(environment, state)

    events.init.add_listener(on_init)
    events.test_start.add_listener(on_test_start)
    events.test_stop.add_listener(on_test_stop)
    events.quitting.add_listener(on_quitting)


def _or_exit(step: Any) -> None:
    try:
        step()
    except LoadLabError as exc:
        sys.stderr.write(f"loadlab: error: {exc}\n")
        sys.stderr.flush()
        os._exit(exc.exit_code)  # Locust would print a traceback and carry on


def _role(environment: Any) -> str:
    name = type(environment.runner).__name__ if environment.runner is not None else ""
    return {"MasterRunner": "master", "WorkerRunner": "worker"}.get(name, "local")


def _init(environment: Any, state: PluginState) -> None:
    options = environment.parsed_options
    if options is None:  # Environment built by hand (tests): the caller sets .loadlab
        return
    role = _role(environment)
    if role == "worker":
        # A worker learns the target and loadlab's options from the master's first
        # spawn message; its context is built at test_start (see _worker_context).
        forwarder = WorkerForwarder(
            environment.runner, in_flight=lambda: _counters(environment)
        ).start()
        state.forwarder = forwarder

        def rows_before_stats(**_: Any) -> None:
            # Locust sends this worker's statistics right after this event (every
            # few seconds, and a last time when the master says quit): the rows
            # they count go first on the same channel, so the master never holds
            # statistics for requests whose rows are still on their way.
            forwarder.flush()

        environment.events.report_to_master.add_listener(rows_before_stats)
        return
    choose_scenario(options)
    scenario = scenario_of(options, environment.host)
    state.run_dir = RunDirectory(
        Path(options.run_dir)
        if options.run_dir
        else new_run_dir(Path(options.runs_root), scenario.name)
    )
    # a --metrics-port in use ends the process here, before anything is recorded
    state.metrics = start_metrics(
        environment, options, state.run_dir, lambda: _in_flight(environment, state)
    )
    state.run_dir.path.mkdir(parents=True, exist_ok=True)
    recorder = RunRecorder(state.run_dir)
    sink: Any = ObservedSink(recorder, state.window)
    pressure_sink: Any = ObservedSink(recorder, state.window)  # for the web UI's tab
    if state.metrics is not None:
        sink = MeteredSink(sink, state.metrics.metrics)
        pressure_sink = MeteredSink(pressure_sink, state.metrics.metrics)
    context = build_context(options, environment.host, sink, worker_id="local")
    state.run_dir.write_manifest(run_manifest(context, options, role))
    state.recorder = recorder.start()
    if role == "master":
        environment.runner.register_message(
            ROWS_MESSAGE,
            lambda environment, msg, **_: _receive(recorder, state, msg.data),
        )
    state.sampler = ProgressReporter(
        environment=environment,
        sink=recorder,
        peak_users=scenario.shape.peak,
        interval_s=options.progress_interval,
        run_dir=state.run_dir.path,
        window=state.window,
        in_flight=lambda: _in_flight(environment, state),
    ).start()
    state.pressure = pressure_sampler_from_options(options, sink=pressure_sink)
    if state.pressure is not None:
        state.pressure.start()
    gates = scenario.slo.abort_gates()
    if gates:
        state.abort = AbortWatch(
            window=state.window,
            gates=gates,
            sink=recorder,
            stop_load=lambda breach: _stop_on_breach(environment, state, breach),
        ).start()
    sys.stderr.write(f"loadlab: recording to {state.run_dir.path}\n")
    environment.loadlab = context


def _receive(recorder: RunRecorder, state: PluginState, data: Any) -> None:
    receive_rows(recorder, state.window, state.worker_in_flight, data)
    if state.metrics is not None:
        state.metrics.take_forwarded(data)


def _worker_context(environment: Any, state: PluginState) -> None:
    assert state.forwarder is not None
    worker_id = f"w{str(environment.runner.client_id)[-8:]}"
    environment.loadlab = build_context(
        environment.parsed_options, environment.host, state.forwarder, worker_id=worker_id
    )


def _emit_phase(environment: Any, name: str) -> None:
    ctx = getattr(environment, "loadlab", None)
    if ctx is not None and _role(environment) != "worker":
        ctx.sink.emit(TimelineEvent(t=time.time(), kind="phase", name=name))


def _in_flight(environment: Any, state: PluginState) -> dict[str, int]:
    """The in-flight counters over this process and its workers."""
    return total_in_flight(_counters(environment), *state.worker_in_flight.values())


def _counters(environment: Any) -> dict[str, int]:
    live = getattr(getattr(environment, "loadlab", None), "live", None)
    return live.snapshot() if isinstance(live, InFlightCounters) else {}


def _stop_on_breach(environment: Any, state: PluginState, breach: Breach) -> None:
    state.aborted = breach
    runner = environment.runner
    if runner is not None:
        runner.quit()


def _quit(environment: Any, state: PluginState) -> None:
    """Seal the run: once, when the load is over (with the web UI) or the process quits."""
    if state.sealed:
        return
    state.sealed = True
    if state.abort is not None:
        state.abort.stop()
    if state.sampler is not None:
        state.sampler.stop()
    if state.pressure is not None:
        state.pressure.stop()  # its last samples go in before the recorder seals
    if state.forwarder is not None:
        state.forwarder.close()
    if state.recorder is not None and state.run_dir is not None:
        state.recorder.emit(TimelineEvent(t=time.time(), kind="phase", name="quit"))
        state.recorder.seal()
        write_json_atomic(state.run_dir.path / "locust_final.json", _locust_stats(environment))
        state.recorder.close()
        reason = "failed" if getattr(environment, "process_exit_code", 0) else "completed"
        stopped_by = state.stopper.quitting() if state.stopper is not None else None
        changes: dict[str, Any] = {
            "ended_at": time.time(),
            "end_reason": reason,
            "stopped_by": stopped_by,
        }
        if state.aborted is not None:
            changes |= {
                "end_reason": "aborted",
                "aborted_by": state.aborted.message,
                "stopped_by": "abort_gate",
            }
        state.run_dir.update_manifest(**changes)
        counts = state.recorder.counts
        sys.stderr.write(
            f"loadlab: run directory {state.run_dir.path} "
            f"({counts['turns']} turns, {counts['sessions']} sessions); "
            f"report: loadlab report {state.run_dir.path}\n"
        )
    if state.metrics is not None:
        state.metrics.close()  # scrapes were answered until the run was sealed


def _locust_stats(environment: Any) -> dict[str, Any]:
    """Locust's own per-request statistics, as its web UI and CSV would show them."""
    entries = []
    for entry in environment.stats.entries.values():
        entries.append(
            {
                "method": entry.method,
                "name": entry.name,
                "num_requests": entry.num_requests,
                "num_failures": entry.num_failures,
                "median_response_time": entry.median_response_time,
                "p99_response_time": entry.get_response_time_percentile(0.99),
                "max_response_time": entry.max_response_time,
            }
        )
    total = environment.stats.total
    return {
        "taken_at": time.time(),
        "entries": sorted(entries, key=lambda e: (str(e["method"]), str(e["name"]))),
        "total": {"num_requests": total.num_requests, "num_failures": total.num_failures},
    }
