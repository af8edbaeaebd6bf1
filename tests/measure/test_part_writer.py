"""The part writer process: the recorder's parts written by a child, nothing lost when it fails."""

from __future__ import annotations

import decimal
import enum
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Literal

import pyarrow.parquet as pq
import pytest

from loadlab.measure.part_writer import COMMAND, NICE, PartWriterError, PartWriterProcess
from loadlab.measure.recorder import WRITER_TRIES, RunRecorder
from loadlab.measure.rundir import RunDirectory
from loadlab.redact import Redactor
from loadlab.rows import RequestSample

SECRET = "s3cr3t-value-of-the-run"


def _sample(i: int, error: str | None = None) -> RequestSample:
    return RequestSample(
        t_start=1000.0 + i,
        name="turn:search",
        session_id=f"s{i}",
        turn_index=1,
        attempt=1,
        latency_ms=100.0 + i,
        ttft_ms=None if i % 3 else 10.0,
        bytes=42,
        status=200,
        error=error,
        cold_start=bool(i % 2),
    )


def _record(path: Path, parts: Literal["thread", "process"]) -> RunRecorder:
    path.mkdir()
    recorder = RunRecorder(RunDirectory(path), parts=parts, redactor=Redactor([SECRET]))
    with recorder:
        for i in range(50):
            recorder.emit(_sample(i, error=f"refused {SECRET}" if i == 7 else None))
        recorder.flush()
        for i in range(50, 60):
            recorder.emit(_sample(i, error="Authorization: Bearer abcdefghijklmnop0123"))
    return recorder


def test_the_child_writes_the_same_parts_as_a_thread(tmp_path: Path) -> None:
    _record(tmp_path / "thread", "thread")
    recorder = _record(tmp_path / "process", "process")
    assert recorder.counts["requests"] == 60 and recorder.flush_errors == 0
    by_thread = pq.read_table(tmp_path / "thread" / "requests.parquet")
    by_child = pq.read_table(tmp_path / "process" / "requests.parquet")
    assert by_child.equals(by_thread)
    errors = [e for e in by_child.column("error").to_pylist() if e]
    assert errors and not any(SECRET in e or "abcdefghijklmnop" in e for e in errors), errors


def test_values_marshal_cannot_write_cross_as_a_pickle(tmp_path: Path) -> None:
    # A worker's row with a Decimal (and an enum for text): the same repairs either way.
    rows = [
        {"t": 1.0, "source": "ddb", "metric": "rcu", "value": decimal.Decimal("1.5")},
        {"t": 2.0, "source": _Source.LLM, "metric": "tokens", "value": 2.0},
    ]
    tables = []
    for parts in ("thread", "process"):
        path = tmp_path / parts
        path.mkdir()
        with RunRecorder(RunDirectory(path), parts=parts) as recorder:  # type: ignore[arg-type]
            recorder.emit_dicts("pressure", rows)
        assert recorder.counts["pressure"] == 2
        tables.append(pq.read_table(path / "pressure.parquet"))
    assert tables[1].equals(tables[0])
    assert tables[1].column("source").to_pylist() == ["ddb", "llm"]


class _Source(enum.StrEnum):
    LLM = "llm"


def test_a_child_killed_between_flushes_is_started_again_and_no_row_is_lost(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run"
    path.mkdir()
    with RunRecorder(RunDirectory(path), parts="process") as recorder:
        writer = recorder._writer
        assert writer is not None and writer.pid is not None
        first = writer.pid
        recorder.emit(_sample(1))
        recorder.flush()
        os.kill(first, signal.SIGKILL)
        for _ in range(100):
            if writer.pid is None:
                break
            time.sleep(0.05)
        recorder.emit(_sample(2))
        recorder.flush()
        assert writer.pid not in (None, first)
    assert pq.read_table(path / "requests.parquet").column("t_start").to_pylist() == [
        1001.0,
        1002.0,
    ]


# A child that starts as the real one does, then dies on its first part.
_DIES_ON_FIRST_PART = textwrap.dedent(
    """
    import marshal, os, struct, sys
    n = struct.unpack("!Q", os.read(0, 8))[0]
    while n:
        n -= len(os.read(0, n))
    ready = b"M" + marshal.dumps("ready")
    os.write(1, struct.pack("!Q", len(ready)) + ready)
    os.read(0, 8)
    sys.exit(3)
    """
)


def _recorder_whose_child_runs(path: Path, *command: str) -> RunRecorder:
    """A started recorder (parts in a child) whose child is ``command`` instead of the writer."""
    path.mkdir()
    recorder = RunRecorder(RunDirectory(path), parts="process")
    assert recorder._writer is not None
    recorder._writer.command = (sys.executable, *command)
    return recorder.start()


def test_a_child_that_dies_mid_write_costs_no_row(tmp_path: Path) -> None:
    path = tmp_path / "run"
    recorder = _recorder_whose_child_runs(path, "-c", _DIES_ON_FIRST_PART)
    assert recorder._writer is not None
    recorder.emit(_sample(1))
    recorder.flush()  # the child dies: the row waits for the next flush
    assert recorder.flush_errors == 1 and recorder.counts["requests"] == 0
    recorder._writer.command = COMMAND
    recorder.emit(_sample(2))
    recorder.close()
    assert recorder.counts["requests"] == 2
    table = pq.read_table(path / "requests.parquet")
    assert sorted(table.column("t_start").to_pylist()) == [1001.0, 1002.0]


def test_when_the_child_fails_the_last_flush_the_rows_are_written_in_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run"
    path.mkdir()
    recorder = RunRecorder(RunDirectory(path), parts="process").start()
    assert recorder._writer is not None
    recorder._writer.close()
    recorder._writer.command = (sys.executable, "-c", _DIES_ON_FIRST_PART)
    recorder.emit(_sample(1))
    recorder.close()
    assert recorder.counts["requests"] == 1
    assert pq.read_table(path / "requests.parquet").column("t_start").to_pylist() == [1001.0]


def test_a_child_that_fails_every_flush_is_given_up_and_the_recorder_writes_the_parts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run"
    recorder = _recorder_whose_child_runs(path, "-c", _DIES_ON_FIRST_PART)
    for i in range(WRITER_TRIES):
        recorder.emit(_sample(i))
        recorder.flush()
    assert recorder.flush_errors == WRITER_TRIES and recorder.counts["requests"] == 0
    assert recorder._writer is None  # given up: the next flush writes in this process
    recorder.emit(_sample(WRITER_TRIES))
    recorder.flush()
    assert recorder.counts["requests"] == WRITER_TRIES + 1
    recorder.close()
    table = pq.read_table(path / "requests.parquet")
    assert sorted(table.column("t_start").to_pylist()) == [
        1000.0 + i for i in range(WRITER_TRIES + 1)
    ]


def test_a_child_that_cannot_start_leaves_the_run_recorded_in_process(tmp_path: Path) -> None:
    path = tmp_path / "run"
    path.mkdir()
    recorder = RunRecorder(RunDirectory(path), parts="process")
    assert recorder._writer is not None
    recorder._writer.command = (sys.executable, "-c", "pass")
    with recorder:
        assert recorder._writer is None
        recorder.emit(_sample(1))
    assert pq.read_table(path / "requests.parquet").num_rows == 1


def test_a_child_that_is_not_a_part_writer_is_refused(tmp_path: Path) -> None:
    writer = PartWriterProcess(
        Redactor(), lambda fn: fn(), command=(sys.executable, "-c", "print('hello')")
    )
    with pytest.raises(PartWriterError, match="part writer process"):
        writer.start()
    assert writer.pid is None


def test_under_gevent_the_recorder_writes_through_a_child_process(tmp_path: Path) -> None:
    # In a process of its own: monkey-patching must not touch the test process.
    script = f"""
import gevent.monkey
gevent.monkey.patch_all()
import os
from pathlib import Path
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory
from loadlab.rows import TimelineEvent, RequestSample
path = Path({str(tmp_path / "run")!r})
path.mkdir()
recorder = RunRecorder(RunDirectory(path)).start()
child = recorder._writer.pid
recorder.emit(RequestSample(t_start=1.0, name="turn:x", session_id="s", turn_index=1,
                            attempt=1, latency_ms=1.0, ttft_ms=None, bytes=1, status=200))
recorder.close()
print(child is not None and child != os.getpid(), recorder.counts["requests"])
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split() == ["True", "1"], done.stderr
    assert pq.read_table(tmp_path / "run" / "requests.parquet").num_rows == 1


def test_without_gevent_the_recorder_writes_on_a_thread(tmp_path: Path) -> None:
    assert RunRecorder(RunDirectory(tmp_path))._writer is None


def test_an_unknown_parts_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="parts must be"):
        RunRecorder(RunDirectory(tmp_path), parts="fork")  # type: ignore[arg-type]


def test_the_child_runs_below_the_load_s_priority(tmp_path: Path) -> None:
    writer = PartWriterProcess(Redactor(), lambda fn: fn()).start()
    try:
        assert writer.pid is not None
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, writer.pid) == min(19, ours + NICE)
    finally:
        writer.close()
    assert writer.pid is None
