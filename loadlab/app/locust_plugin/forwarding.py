"""Rows from ``--worker`` processes to the master, over Locust's own worker channel.

A worker's :class:`WorkerForwarder` batches rows and sends them every half
second (``runner.send_message``); the master's :func:`receive_rows` hands them
to its recorder. Workers need no shared disk and the run directory has a single
writer. Rows still buffered in a worker that is SIGKILLed (at most half a
second) are lost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from loadlab.load.in_flight import total_in_flight
from loadlab.measure.live_status import LiveWindow
from loadlab.measure.recorder import RunRecorder
from loadlab.rows import ROW_TYPES, Row, TimelineEvent, row_to_dict

log = logging.getLogger("loadlab")

ROWS_MESSAGE = "loadlab_rows"
LIVE_KEY = "_live"
_TABLE_OF = {cls: name for name, cls in ROW_TYPES.items()}


class WorkerForwarder:
    """A worker's sink: batches rows and sends them to the master every half second.

    ``in_flight()`` gives this worker's in-flight counters, sent along with each
    batch for the master's live status.
    """

    def __init__(
        self, runner: Any, *, in_flight: Callable[[], dict[str, int]], interval_s: float = 0.5
    ) -> None:
        self._runner = runner
        self._in_flight = in_flight
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
        message: dict[str, Any] = dict(batch)
        message[LIVE_KEY] = {"worker": str(self._runner.client_id), **self._in_flight()}
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


def receive_rows(
    recorder: RunRecorder,
    window: LiveWindow,
    worker_in_flight: dict[str, dict[str, int]],
    data: Any,
) -> None:
    """On the master: record a worker's batch and remember its turns in flight."""
    if not isinstance(data, dict):
        log.warning("ignored a malformed %s message from a worker", ROWS_MESSAGE)
        return
    live = data.pop(LIVE_KEY, None)
    if isinstance(live, dict) and isinstance(live.get("worker"), str):
        worker_in_flight[live["worker"]] = total_in_flight(
            {k: v for k, v in live.items() if isinstance(v, int)}
        )
    for table, rows in data.items():
        if isinstance(rows, list):
            try:
                recorder.emit_dicts(str(table), rows)
            except ValueError:
                log.warning("ignored rows for unknown table %r from a worker", table)
                continue
            window.observe_dicts(str(table), rows)
