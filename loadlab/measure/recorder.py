"""The recorder: rows in, run directory out, flushed at least once a second.

A :class:`RunRecorder` is a :class:`~loadlab.load.context.RowSink`: the load and
chaos layers hand it rows, it buffers them in memory and a background thread
writes them out every ``flush_interval_s``. Row tables become parquet part files
(see :mod:`loadlab.measure.rundir`), events are appended to ``events.jsonl``.

Thread-safety: ``emit`` may be called from any thread or greenlet; it only
appends a tuple of the row's values (in column order) to a deque, without a lock.
Under Locust, gevent patches ``threading`` so the flusher is a greenlet on the
users' loop: it only serialises a second's rows and hands them to the part
writer process (:mod:`loadlab.measure.part_writer`), which converts and writes
them beside the load without ever holding its GIL.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import operator
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from loadlab.measure.offload import offloader, under_gevent
from loadlab.measure.part_file import Values, arrow_schema, warm_up, write_part
from loadlab.measure.part_writer import PartWriterError, PartWriterProcess
from loadlab.measure.parts import compact_table, part_span
from loadlab.measure.rundir import RunDirectory, append_lines
from loadlab.redact import Redactor
from loadlab.rows import ROW_TYPES, Row, TimelineEvent

log = logging.getLogger("loadlab.recorder")

_TABLE_OF: dict[type[Any], str] = {cls: name for name, cls in ROW_TYPES.items()}
# Field names per row type, in column order. emit() runs three times per turn:
# one C-level attrgetter call that returns the row's values as a tuple is far
# cheaper than building a dict (dataclasses.asdict, which deep-copies, even more so).
_FIELDS: dict[type[Any], tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls))
    for cls in (*ROW_TYPES.values(), TimelineEvent)
}
_VALUES: dict[type[Any], Callable[[Any], tuple[Any, ...]]] = {
    cls: operator.attrgetter(*names) for cls, names in _FIELDS.items()
}

_DEFAULTS: dict[str, dict[str, Any]] = {
    name: {
        f.name: f.default
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING and f.default is not None
    }
    for name, cls in ROW_TYPES.items()
}


def _take(queue: collections.deque[Values]) -> list[Values]:
    """The rows in ``queue`` now, oldest first; rows appended meanwhile stay for next time."""
    take = queue.popleft
    return [take() for _ in range(len(queue))]


def _as_dict(row: Row) -> dict[str, Any]:
    return dict(zip(_FIELDS[type(row)], _VALUES[type(row)](row), strict=True))


WRITER_TRIES = 3
"""Parts in a row the part writer process may fail before the recorder writes them itself."""


class RunRecorder:
    """Buffers timeline rows and writes them to a run directory in the background.

    ``compact=False`` leaves the tables one part per flush when it closes.
    ``parts`` says where the parquet parts are converted and written: in a child
    process (``"process"``, :mod:`loadlab.measure.part_writer`: nothing of it
    holds the load's GIL), on a thread of this process (``"thread"``), or
    ``"auto"``: the child process where the load runs on gevent's loop (the
    Locust process), a thread elsewhere. A child that does not start, or fails
    :data:`WRITER_TRIES` parts in a row, is given up (logged) and the parts are
    written on a thread; no batch is lost either way.
    """

    def __init__(
        self,
        run_dir: RunDirectory,
        *,
        flush_interval_s: float = 1.0,
        redactor: Redactor | None = None,
        compact: bool = True,
        parts: Literal["auto", "process", "thread"] = "auto",
    ) -> None:
        if flush_interval_s <= 0 or flush_interval_s > 1.0:
            raise ValueError("flush_interval_s must be in (0, 1]: DESIGN.md promises <= 1 s loss")
        if parts not in ("auto", "process", "thread"):
            raise ValueError(f"parts must be 'auto', 'process' or 'thread', got {parts!r}")
        self.run_dir = run_dir
        self.flush_interval_s = flush_interval_s
        # credentials never reach the run directory (loadlab.redact): every string, last line
        self._redact = Redactor.from_env() if redactor is None else redactor
        self._lock = threading.Lock()
        # Rows wait in deques: appending needs no lock (a lock taken per row cost
        # more than the rest of emit under gevent), and the flusher takes from the
        # left only what was there when it looked, so nothing appended meanwhile is lost.
        self._rows: dict[str, collections.deque[Values]] = {
            name: collections.deque() for name in ROW_TYPES
        }
        self._events: list[str] = []
        self._schemas = {name: arrow_schema(cls) for name, cls in ROW_TYPES.items()}
        self._part_seq = {name: self._next_seq(name) for name in ROW_TYPES}
        self._counts = dict.fromkeys(ROW_TYPES, 0) | {"events": 0}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self._sealed = False
        self._offload = offloader()  # parquet writes off the load's loop
        self._compact = compact
        in_child = parts == "process" or (parts == "auto" and under_gevent())
        self._writer = PartWriterProcess(self._redact, self._offload) if in_child else None
        self._writer_failures = 0
        self.flush_errors = 0
        self.dropped_after_seal = 0
        self.repaired_columns = 0

    # -- lifecycle -------------------------------------------------------
    def start(self) -> RunRecorder:
        """Start the background flusher. Returns self for chaining.

        The first pyarrow conversion of a process costs a second or more (lazy
        imports, kernels); it is paid here, before the first user starts, not in
        the middle of the ramp (by the part writer process when there is one).
        """
        if self._writer is not None:
            try:
                self._writer.start()
            except PartWriterError as exc:
                self._give_up_on_the_writer(f"it did not start ({exc})")
        if self._writer is None:
            warm_up(self._schemas.values())
        for name in ROW_TYPES:
            self.run_dir.table(name).mkdir(parents=True, exist_ok=True)
        self.run_dir.events.touch()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="loadlab-recorder", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the flusher, write everything still buffered, then compact each table.

        Compaction (:func:`loadlab.measure.parts.compact_table`) turns a table's
        one-part-per-flush files into one file, safe to kill at any step; every
        later reader of the run opens one file per table instead of a thousand.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.flush()
            if self._writer is not None and any(self._rows.values()):
                # What the child did not write is written here: the run ends with every row.
                self._give_up_on_the_writer("it failed the last flush")
                self.flush()
        finally:
            if self._writer is not None:
                self._writer.close()
        if self._compact:
            self._offload(self._compact_tables)

    def _compact_tables(self) -> None:
        for table, schema in self._schemas.items():
            compact_table(self.run_dir.table(table), schema)

    def __enter__(self) -> RunRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the sink --------------------------------------------------------
    def seal(self) -> None:
        """Accept no more rows (they are counted in ``dropped_after_seal``).

        Sealing and reading Locust's statistics in the same breath (no greenlet
        switch in between) gives two views of exactly the same requests.
        """
        self._sealed = True

    def emit(self, row: Row) -> None:
        """Buffer one row; it reaches disk within ``flush_interval_s``."""
        if self._sealed:
            self.dropped_after_seal += 1
            return
        kind = type(row)
        table = _TABLE_OF.get(kind)
        if table is not None:  # a row of a table (every turn's)
            self._rows[table].append(_VALUES[kind](row))
            return
        if isinstance(row, TimelineEvent):
            line = json.dumps(_as_dict(row), default=str, separators=(",", ":"))
            with self._lock:
                self._events.append(line)
            return
        raise TypeError(f"not a timeline row: {kind.__name__}")

    def emit_dicts(self, table: str, rows: list[dict[str, Any]]) -> None:
        """Buffer rows that arrive as plain dicts (from distributed workers)."""
        if table == "events":
            lines = [json.dumps(r, default=str, separators=(",", ":")) for r in rows]
            with self._lock:
                self._events.extend(lines)
            return
        if table not in self._rows:
            raise ValueError(f"unknown table {table!r}")
        names = self._schemas[table].names
        defaults = _DEFAULTS[table]
        # A key a worker's row lacks takes the row type's default (None when it has none).
        self._rows[table].extend([tuple(r.get(k, defaults.get(k)) for k in names) for r in rows])

    @property
    def counts(self) -> dict[str, int]:
        """Rows written so far, per table (plus ``events``)."""
        return dict(self._counts)

    # -- writing ---------------------------------------------------------
    def flush(self) -> None:
        """Write buffered rows now. Failures are logged and the rows kept for the next try.

        A value that does not fit its column (an integer beyond int64, a float
        where an integer belongs) never costs the rows around it: the row is
        written with that value as null (or 0 where the column allows no null),
        and the problem goes to ``events.jsonl`` as an ``error`` event, which the
        report lists under the run's problems.
        """
        with self._flush_lock:
            with self._lock:
                events, self._events = self._events, []
            rows = {name: _take(queue) for name, queue in self._rows.items()}
            if events:
                try:
                    append_lines(self.run_dir.events, [self._redacted_event(e) for e in events])
                    self._counts["events"] += len(events)
                except OSError as exc:
                    self._requeue_events(events, exc)
            for table, batch in rows.items():
                if batch:
                    try:
                        problems = self._write_part(table, batch)
                        self._counts[table] += len(batch)
                    except Exception as exc:  # a batch is never dropped: it waits for the next try
                        self._requeue_rows(table, batch, exc)
                        continue
                    if problems:
                        self._report_problems(problems)

    def _write_part(self, table: str, batch: list[Values]) -> list[str]:
        directory = self.run_dir.table(table)
        seq = self._part_seq[table]
        self._part_seq[table] = seq + 1
        final = directory / f"part-{seq:06d}.parquet"
        tmp = directory / f".part-{seq:06d}.parquet.tmp"
        if self._writer is not None:
            try:
                repaired = self._writer.write(table, batch, tmp, final)
            except PartWriterError:
                self._writer_failures += 1
                if self._writer_failures >= WRITER_TRIES:
                    self._give_up_on_the_writer(f"it failed {WRITER_TRIES} parts in a row")
                raise  # the batch waits for the next flush
            self._writer_failures = 0
            return repaired
        schema = self._schemas[table]
        problems: list[str] = []

        def write() -> None:
            problems.extend(
                write_part(table, batch, schema, redact=self._redact, tmp=tmp, final=final)
            )

        self._offload(write)
        return problems

    def _give_up_on_the_writer(self, why: str) -> None:
        log.error("recorder: the part writer process is not used: %s; parts are written here", why)
        if self._writer is not None:
            self._writer.close(kill=True)
        self._writer = None

    def _report_problems(self, problems: list[str]) -> None:
        self.repaired_columns += len(problems)
        now = time.time()
        lines = []
        for message in problems:
            log.error("recorder: %s", message)
            event = TimelineEvent(t=now, kind="error", name="recorder", attrs={"message": message})
            lines.append(json.dumps(_as_dict(event), default=str, separators=(",", ":")))
        try:
            append_lines(self.run_dir.events, [self._redacted_event(line) for line in lines])
            self._counts["events"] += len(lines)
        except OSError as exc:
            self._requeue_events(lines, exc)

    def _redacted_event(self, line: str) -> str:
        try:
            event = json.loads(line)
        except ValueError:
            return self._redact(line)
        return json.dumps(self._redact.tree(event), default=str, separators=(",", ":"))

    def _requeue_rows(self, table: str, batch: list[Values], exc: Exception) -> None:
        self.flush_errors += 1
        log.error("could not write %d %s rows (%s); will retry", len(batch), table, exc)
        self._rows[table].extendleft(reversed(batch))

    def _requeue_events(self, events: list[str], exc: Exception) -> None:
        self.flush_errors += 1
        log.error("could not append %d events (%s); will retry", len(events), exc)
        with self._lock:
            self._events[:0] = events

    def _next_seq(self, table: str) -> int:
        directory: Path = self.run_dir.table(table)
        if not directory.is_dir():
            return 0
        spans = [part_span(p) for p in directory.glob("part-*.parquet")]
        return max((span[1] for span in spans if span is not None), default=-1) + 1

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
            except Exception:  # the flusher must never die silently mid-run
                self.flush_errors += 1
                log.exception("recorder flush failed")
