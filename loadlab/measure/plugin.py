"""Locust plugin: loadlab's options, the run directory and the recorder.

``register(locust.events)`` (called by the locustfile) adds loadlab's command
line options to Locust (they show in ``locust --help`` and in the web UI) and,
when Locust initialises, builds the :class:`~loadlab.load.context.LoadContext`
that :class:`~loadlab.load.users.ShoppingSessionUser` reads from
``environment.loadlab``.

Where rows go depends on the Locust role:

* standalone (``LocalRunner``) and ``--master``: a :class:`RunRecorder` writes the
  run directory;
* ``--worker``: a :class:`WorkerForwarder` batches rows and sends them to the
  master over Locust's own worker channel (``runner.send_message``) every half
  second; the master's recorder writes them. Workers need no shared disk, and the
  run directory has a single writer. Rows still buffered in a worker that is
  SIGKILLed (at most half a second) are lost.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import logging
import os
import platform
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadlab import __version__
from loadlab.errors import LoadLabError
from loadlab.load.context import LoadContext
from loadlab.measure.live_status import LiveWindow, ObservedSink
from loadlab.measure.pressure import (
    PressureSampler,
    add_pressure_arguments,
    pressure_sampler_from_options,
)
from loadlab.measure.progress import ProgressReporter
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, RunManifest, new_run_dir, write_json_atomic
from loadlab.rows import ROW_TYPES, Row, TimelineEvent, row_to_dict
from loadlab.scenario.files import load_scenario
from loadlab.scenario.model import Scenario

log = logging.getLogger("loadlab")

ROWS_MESSAGE = "loadlab_rows"
LIVE_KEY = "_live"
_TABLE_OF = {cls: name for name, cls in ROW_TYPES.items()}


def add_arguments(parser: Any) -> None:
    """Add loadlab's options to Locust's argument parser."""
    group = parser.add_argument_group("loadlab")
    group.add_argument(
        "--scenario",
        default=os.environ.get("LOADLAB_SCENARIO", "scenarios/flash_sale.yaml"),
        help="loadlab scenario file (personas, turns, think time, load shape). "
        "Env: LOADLAB_SCENARIO",
    )
    group.add_argument(
        "--run-dir",
        default="",
        help="write the run to exactly this directory (default: a new runs/<UTC time>-<name>/)",
    )
    group.add_argument(
        "--runs-root", default="runs", help="parent of new run directories (default: runs)"
    )
    group.add_argument(
        "--peak-users",
        type=int,
        default=0,
        help="override the scenario's peak concurrent sessions (0 = as in the scenario)",
    )
    group.add_argument(
        "--time-scale",
        type=float,
        default=0.0,
        help="override the scenario's time_scale (0 = as in the scenario)",
    )
    group.add_argument(
        "--lambda-function",
        default=os.environ.get("LOADLAB_TARGET_LAMBDA_FUNCTION", ""),
        help="play the scenario against this Lambda function through the Invoke API "
        "(--host is then the Lambda API endpoint); Env: LOADLAB_TARGET_LAMBDA_FUNCTION",
    )
    group.add_argument(
        "--progress-interval",
        type=float,
        default=5.0,
        help="seconds between loadlab progress lines on stderr (0 = none)",
    )
    add_pressure_arguments(parser)


@dataclass
class _PluginState:
    recorder: RunRecorder | None = None
    forwarder: WorkerForwarder | None = None
    run_dir: RunDirectory | None = None
    sampler: ProgressReporter | None = None
    pressure: PressureSampler | None = None
    window: LiveWindow = field(default_factory=LiveWindow)
    # latest (turns in flight, awaiting first token) reported by each worker
    worker_in_flight: dict[str, tuple[int, int]] = field(default_factory=dict)
    started: float = field(default_factory=time.time)


def register(events: Any) -> None:
    """Register loadlab's options, recorder and progress reporting on Locust's event hooks."""
    state = _PluginState()
    events.init_command_line_parser.add_listener(add_arguments)

    def on_init(environment: Any, **_: Any) -> None:
        try:
            _init(environment, state)
        except LoadLabError as exc:
            sys.stderr.write(f"loadlab: error: {exc}\n")
            sys.stderr.flush()
            os._exit(exc.exit_code)  # Locust would print a traceback and carry on

    def on_test_start(environment: Any, **_: Any) -> None:
        if state.forwarder is not None:
            try:
                _worker_context(environment, state)
            except LoadLabError as exc:
                sys.stderr.write(f"loadlab: error: {exc}\n")
                sys.stderr.flush()
                os._exit(exc.exit_code)
        _emit_phase(environment, "test_start")

    def on_test_stop(environment: Any, **_: Any) -> None:
        _emit_phase(environment, "test_stop")

    def on_quitting(environment: Any, **_: Any) -> None:
        _quit(environment, state)

    def on_spawning_complete(user_count: int, **_: Any) -> None:
        # Thousands of long-lived users and sessions make every full garbage
        # collection walk millions of objects, stopping all users for hundreds of
        # milliseconds (seen as P99 spikes in bench/concurrency.py). Once the users
        # exist, move them to the permanent generation so later collections only
        # look at what turns allocate.
        gc.freeze()

    events.spawning_complete.add_listener(on_spawning_complete)
    events.init.add_listener(on_init)
    events.test_start.add_listener(on_test_start)
    events.test_stop.add_listener(on_test_stop)
    events.quitting.add_listener(on_quitting)


def _role(environment: Any) -> str:
    name = type(environment.runner).__name__ if environment.runner is not None else ""
    return {"MasterRunner": "master", "WorkerRunner": "worker"}.get(name, "local")


def _scenario(options: Any, host: str | None) -> Scenario:
    scenario = load_scenario(options.scenario)
    function = getattr(options, "lambda_function", "")
    if function:
        # The same sessions and shape against the Lambda target, so runs compare.
        scenario = dataclasses.replace(
            scenario,
            target=dataclasses.replace(scenario.target, protocol="lambda", function=function),
        )
    return scenario.with_overrides(
        users=options.peak_users or None,
        target_url=host or None,
        time_scale=options.time_scale or None,
    )


def _init(environment: Any, state: _PluginState) -> None:
    options = environment.parsed_options
    if options is None:  # Environment built by hand (tests): the caller sets .loadlab
        return
    role = _role(environment)
    if role == "worker":
        # A worker learns the target and loadlab's options from the master's first
        # spawn message; its context is built at test_start (see _worker_context).
        state.forwarder = WorkerForwarder(environment.runner).start()
        return
    scenario = _scenario(options, environment.host)
    run_id = uuid.uuid4().hex[:12]
    state.run_dir = RunDirectory(
        Path(options.run_dir)
        if options.run_dir
        else new_run_dir(Path(options.runs_root), scenario.name)
    )
    state.run_dir.path.mkdir(parents=True, exist_ok=True)
    state.run_dir.write_manifest(_manifest(scenario, options, role, run_id))
    recorder = state.recorder = RunRecorder(state.run_dir).start()
    if role == "master":
        environment.runner.register_message(
            ROWS_MESSAGE, lambda environment, msg, **_: _receive(recorder, state, msg.data)
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
    state.pressure = pressure_sampler_from_options(options, sink=recorder)
    if state.pressure is not None:
        state.pressure.start()
    sys.stderr.write(f"loadlab: recording to {state.run_dir.path}\n")
    sink = ObservedSink(recorder, state.window)
    environment.loadlab = _context(scenario, environment.host, sink, "local", run_id)


def _worker_context(environment: Any, state: _PluginState) -> None:
    scenario = _scenario(environment.parsed_options, environment.host)
    worker_id = f"w{str(environment.runner.client_id)[-8:]}"
    environment.loadlab = _context(
        scenario, environment.host, state.forwarder, worker_id, uuid.uuid4().hex[:12]
    )


def _context(
    scenario: Scenario, host: str | None, sink: Any, worker_id: str, run_id: str
) -> LoadContext:
    return LoadContext(
        scenario=scenario,
        target_url=scenario.target.url or host or "",
        jwt_secret=os.environ.get("LOADLAB_JWT_SECRET"),
        api_key=os.environ.get("LOADLAB_OPENAI_API_KEY"),
        sink=sink,
        worker_id=worker_id,
        run_id=run_id,
    )


def _manifest(scenario: Scenario, options: Any, role: str, run_id: str) -> RunManifest:
    path = Path(options.scenario)
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    scenario_dict = asdict(scenario)
    scenario_dict.pop("source", None)
    import locust  # only for its version; this module already runs inside Locust

    return RunManifest(
        run_id=run_id,
        name=scenario.name,
        started_at=time.time(),
        scenario_path=str(path),
        scenario_sha256=digest,
        scenario=scenario_dict,
        target={"url": _redact_url(scenario.target.url or options.host or "")},
        versions={
            "loadlab": __version__,
            "locust": str(getattr(locust, "__version__", "?")),
            "python": platform.python_version(),
        },
        seed=scenario.seed,
        role=role,
        extra={"argv": _redacted_argv(sys.argv)},
    )


def _redact_url(url: str) -> str:
    """Drop credentials embedded in a URL (``https://user:pass@host``)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


_SECRET_WORDS = ("secret", "token", "password", "key", "authorization")


def _redacted_argv(argv: list[str]) -> list[str]:
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        lowered = arg.lower()
        if lowered.startswith("--") and any(w in lowered for w in _SECRET_WORDS):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=***")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(_redact_url(arg))
    return out


def _emit_phase(environment: Any, name: str) -> None:
    ctx = getattr(environment, "loadlab", None)
    if ctx is not None and _role(environment) != "worker":
        ctx.sink.emit(TimelineEvent(t=time.time(), kind="phase", name=name))


def _receive(recorder: RunRecorder, state: _PluginState, data: Any) -> None:
    if not isinstance(data, dict):
        log.warning("ignored a malformed %s message from a worker", ROWS_MESSAGE)
        return
    live = data.pop(LIVE_KEY, None)
    if isinstance(live, dict) and isinstance(live.get("worker"), str):
        state.worker_in_flight[live["worker"]] = (
            int(live.get("turns_in_flight", 0)),
            int(live.get("awaiting_first_token", 0)),
        )
    for table, rows in data.items():
        if isinstance(rows, list):
            try:
                recorder.emit_dicts(str(table), rows)
            except ValueError:
                log.warning("ignored rows for unknown table %r from a worker", table)
                continue
            state.window.observe_dicts(str(table), rows)


def _in_flight(environment: Any, state: _PluginState) -> tuple[int, int]:
    """Turns in flight and turns awaiting their first token, over this process and workers."""
    own = _counters(environment)
    flying = own[0] + sum(v[0] for v in state.worker_in_flight.values())
    awaiting = own[1] + sum(v[1] for v in state.worker_in_flight.values())
    return flying, awaiting


def _counters(environment: Any) -> tuple[int, int]:
    live = getattr(getattr(environment, "loadlab", None), "live", None)
    if live is None:
        return 0, 0
    return int(live.turns_in_flight), int(live.awaiting_first_token)


def _quit(environment: Any, state: _PluginState) -> None:
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
        state.run_dir.update_manifest(ended_at=time.time(), end_reason=reason)
        counts = state.recorder.counts
        sys.stderr.write(
            f"loadlab: run directory {state.run_dir.path} "
            f"({counts['turns']} turns, {counts['sessions']} sessions); "
            f"report: loadlab report {state.run_dir.path}\n"
        )


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


class WorkerForwarder:
    """A worker's sink: batches rows and sends them to the master every half second."""

    def __init__(self, runner: Any, *, interval_s: float = 0.5) -> None:
        self._runner = runner
        self._environment = runner.environment
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._batch: dict[str, list[dict[str, Any]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WorkerForwarder:
        """Start sending batches in the background."""
        self._thread = threading.Thread(target=self._run, name="loadlab-forwarder", daemon=True)
        self._thread.start()
        return self

    def emit(self, row: Row) -> None:
        """Queue a row for the master."""
        table = "events" if isinstance(row, TimelineEvent) else _TABLE_OF[type(row)]
        with self._lock:
            self._batch.setdefault(table, []).append(row_to_dict(row))

    def flush(self) -> None:
        """Send what is queued now."""
        with self._lock:
            batch, self._batch = self._batch, {}
        flying, awaiting = _counters(self._environment)
        message: dict[str, Any] = dict(batch)
        message[LIVE_KEY] = {
            "worker": str(self._runner.client_id),
            "turns_in_flight": flying,
            "awaiting_first_token": awaiting,
        }
        if message:
            try:
                self._runner.send_message(ROWS_MESSAGE, message)
            except Exception:  # a dying channel must not kill the worker's users
                log.exception("could not forward %d row batches to the master", len(batch))

    def close(self) -> None:
        """Stop the background sender and send the last batch."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()
