"""The one reader of a run directory: tables, events and what it could not read."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loadlab.measure.readback import RunDirectoryReader
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, RunManifest
from loadlab.rows import RequestSample, TimelineEvent


def _run(path: Path) -> RunDirectory:
    run_dir = RunDirectory(path)
    path.mkdir()
    run_dir.write_manifest(
        RunManifest(
            run_id="r1",
            name="read",
            started_at=time.time(),
            scenario_path=None,
            scenario_sha256=None,
            scenario={},
            target={},
            versions={},
            seed=1,
        )
    )
    with RunRecorder(run_dir) as rec:
        rec.emit(
            RequestSample(
                t_start=1.0,
                name="turn:search",
                session_id="s",
                turn_index=1,
                attempt=1,
                latency_ms=5.0,
                ttft_ms=None,
                bytes=0,
                status=200,
            )
        )
        rec.emit(TimelineEvent(t=1.0, kind="phase", name="start"))
    return run_dir


def test_reads_tables_in_their_row_schema_and_names_what_it_skipped(tmp_path: Path) -> None:
    run_dir = _run(tmp_path / "run")
    (run_dir.table("requests") / "part-999999.parquet").write_bytes(b"torn")
    with run_dir.events.open("a") as fh:
        fh.write('[1, 2]\n{"t": 3.0, "ki')
    reader = RunDirectoryReader(run_dir.path)
    requests = reader.table("requests")
    assert requests.table.num_rows == 1 and requests.parts == 1
    assert requests.problems[0].startswith("requests: skipped unreadable part part-999999.parquet")
    sessions = reader.table("sessions")  # never written: empty, in its schema, no problem
    assert sessions.table.num_rows == 0 and "verdict" in sessions.table.column_names
    assert sessions.problems == ()
    events = reader.events()
    assert [e["name"] for e in events.rows] == ["start"]
    assert events.problems == (
        "events.jsonl: line 2 is not an event",
        "events.jsonl: skipped malformed line 3",
    )
    assert reader.manifest()["name"] == "read"


def test_an_unknown_table_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown table"):
        RunDirectoryReader(tmp_path).table("carts")
