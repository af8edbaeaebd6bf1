"""The pressure sampler: polls downstream sources in the background, rows to the recorder.

A :class:`PressureSampler` asks each of its sources (CloudWatch, Prometheus ...)
for samples every ``interval_s`` and hands the rows to a sink (the
:class:`~loadlab.measure.recorder.RunRecorder`). It runs on a thread; under
Locust gevent has patched ``threading`` and ``socket``, so it is a greenlet
whose network waits (urllib, boto3) let the users run.

It never raises into the load: a failing source is counted, logged once with
its fix, and asked again next interval; the other sources go on. Every poll is
bounded (each source's own timeouts, and ``max_rows_per_poll`` rows per source).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from loadlab.rows import PressureSample, TimelineEvent

log = logging.getLogger("loadlab.pressure")


class PressureSink(Protocol):
    """Where samples go: the run's recorder (anything with ``emit``)."""

    def emit(self, row: PressureSample | TimelineEvent) -> None:
        """Accept one row for the run timeline."""
        ...


class PressureSource(Protocol):
    """Something that can be asked for downstream samples (one CloudWatch account, one URL)."""

    @property
    def label(self) -> str:
        """A short name for logs (no credentials in it)."""
        ...

    def sample(self, *, final: bool = False) -> list[PressureSample]:
        """Fetch the samples that are new since the last call.

        ``final`` is set on the last call of a run: a source that holds back
        samples which may still change (an open CloudWatch period) returns them.
        May raise; the sampler counts and logs the error.
        """
        ...

    def hint(self, error: Exception) -> str:
        """How to fix ``error`` (one line, for the log)."""
        ...


class PressureSampler:
    """Polls ``sources`` every ``interval_s`` seconds and emits their rows to ``sink``."""

    def __init__(
        self,
        *,
        sources: Sequence[PressureSource],
        interval_s: float,
        sink: PressureSink,
        max_rows_per_poll: int = 20_000,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, not {interval_s!r}")
        if max_rows_per_poll < 1:
            raise ValueError(f"max_rows_per_poll must be >= 1, not {max_rows_per_poll!r}")
        self.sources = tuple(sources)
        self.interval_s = interval_s
        self._sink = sink
        self._max_rows = max_rows_per_poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.errors: dict[str, int] = {s.label: 0 for s in self.sources}
        self.rows = 0
        self.dropped = 0
        self.sink_errors = 0
        self._warned_rows: set[str] = set()

    def start(self) -> PressureSampler:
        """Start polling in the background (the first poll happens at once)."""
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._run, name="loadlab-pressure", daemon=True)
            self._thread.start()
        return self

    def stop(self, *, timeout_s: float = 15.0) -> None:
        """Stop polling after one last (``final``) poll; wait at most ``timeout_s`` for it.

        Errors of the run are summed up on the timeline as one ``note`` event
        (``pressure_errors``), so analysis knows where the samples have gaps.
        """
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            if self._thread.is_alive():
                log.warning(
                    "the pressure sampler did not finish its last poll in %.0f s", timeout_s
                )
            self._thread = None
        else:
            self.poll_once(final=True)
        failing = {label: n for label, n in self.errors.items() if n}
        if failing:
            self._emit(
                TimelineEvent(
                    t=time.time(), kind="note", name="pressure_errors", attrs={"errors": failing}
                )
            )

    def poll_once(self, *, final: bool = False) -> int:
        """Ask every source once and emit what they return; returns the rows emitted."""
        emitted = 0
        for source in self.sources:
            try:
                rows = source.sample(final=final)
            except Exception as exc:  # one source's trouble must not stop the others or the load
                self._failed(source, exc)
                continue
            if len(rows) > self._max_rows:
                self.dropped += len(rows) - self._max_rows
                if source.label not in self._warned_rows:
                    self._warned_rows.add(source.label)
                    log.warning(
                        "pressure source %s returned %d rows in one poll; kept %d "
                        "(narrow its allow-list or dimensions)",
                        source.label,
                        len(rows),
                        self._max_rows,
                    )
                rows = rows[: self._max_rows]
            for row in rows:
                if self._emit(row):
                    emitted += 1
        self.rows += emitted
        return emitted

    def _emit(self, row: PressureSample | TimelineEvent) -> bool:
        try:
            self._sink.emit(row)
        except Exception:  # a broken sink is the recorder's problem, not the load's
            self.sink_errors += 1
            if self.sink_errors == 1:
                log.exception("could not record a pressure sample (further failures counted)")
            return False
        return True

    def _failed(self, source: PressureSource, exc: Exception) -> None:
        count = self.errors.get(source.label, 0) + 1
        self.errors[source.label] = count
        if count > 1:
            return
        try:
            hint = source.hint(exc)
        except Exception:
            hint = "see the error above"
        log.warning(
            "pressure source %s failed: %s: %s\n  fix: %s\n  (it is retried every %g s; "
            "further errors are counted, not logged)",
            source.label,
            type(exc).__name__,
            exc,
            hint,
            self.interval_s,
        )

    def _run(self) -> None:
        while True:
            self.poll_once()
            if self._stop.wait(self.interval_s):
                break
        self.poll_once(final=True)
