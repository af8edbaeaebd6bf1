"""The one reader of a run directory: tables, events and what it could not read."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loadlab.measure.part_file import arrow_schema
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


def _request_part(path: Path, t_start: float, **columns: object) -> None:
    """A requests part as an older or newer loadlab may have left it: ``columns`` as given."""
    data = {"t_start": [t_start], "name": [f"turn:{t_start:g}"], **columns}
    pq.write_table(pa.table(data), path)


def test_every_part_is_read_in_part_order_with_columns_it_lacks_as_nulls(tmp_path: Path) -> None:
    run_dir = _run(tmp_path / "run")  # part-000000: the recorder's, t_start 1.0
    parts = run_dir.table("requests")
    _request_part(parts / "part-000001.parquet", 2.0)  # older: no latency_ms, no cold_start
    _request_part(parts / "part-000002.parquet", 3.0, latency_ms=[7.5], newer_column=["x"])
    read = RunDirectoryReader(run_dir.path).table("requests")
    assert read.problems == () and read.parts == 3
    assert read.table.schema == arrow_schema(RequestSample)  # the newer column is left out
    assert read.table["t_start"].to_pylist() == [1.0, 2.0, 3.0]
    assert read.table["latency_ms"].to_pylist() == [5.0, None, 7.5]
    assert read.table["cold_start"].to_pylist() == [None, None, None]


def test_a_torn_part_among_many_is_skipped_and_the_others_kept_in_order(tmp_path: Path) -> None:
    run_dir = _run(tmp_path / "run")
    parts = run_dir.table("requests")
    (parts / "part-000001.parquet").write_bytes(b"PAR1 torn")
    _request_part(parts / "part-000002.parquet", 3.0, latency_ms=["not a number"])
    _request_part(parts / "part-000003.parquet", 4.0)
    read = RunDirectoryReader(run_dir.path).table("requests")
    assert read.table["t_start"].to_pylist() == [1.0, 4.0] and read.parts == 2
    assert [p.split(" (")[0] for p in read.problems] == [
        "requests: skipped unreadable part part-000001.parquet",
        "requests: skipped unreadable part part-000002.parquet",
    ]


def test_only_the_columns_asked_for_are_read_in_schema_order(tmp_path: Path) -> None:
    run_dir = _run(tmp_path / "run")
    reader = RunDirectoryReader(run_dir.path)
    read = reader.table("requests", columns=["latency_ms", "t_start"])
    assert read.table.column_names == ["t_start", "latency_ms"]
    assert read.table.to_pylist() == [{"t_start": 1.0, "latency_ms": 5.0}]
    (run_dir.table("requests") / "part-000001.parquet").write_bytes(b"torn")
    again = reader.table("requests", columns=["latency_ms", "t_start"])  # part by part
    assert again.table.equals(read.table) and len(again.problems) == 1
    empty = reader.table("sessions", columns=["verdict"])
    assert empty.table.column_names == ["verdict"] and empty.table.num_rows == 0
    with pytest.raises(KeyError):
        reader.table("requests", columns=["no_such_column"])
