"""Compacting a table's parts when the recorder closes; reading around a compaction cut short."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from loadlab.analysis.rundata import load_run
from loadlab.measure.part_file import arrow_schema
from loadlab.measure.parts import compact_table, live_parts, part_span
from loadlab.measure.readback import read_dataset
from loadlab.rows import RequestSample

SCHEMA = arrow_schema(RequestSample)
_ZERO = {"int64": 0, "double": 0.0, "string": "", "bool": False}


def _part(directory: Path, seq: int, first_t: float, n: int, *, schema: pa.Schema = SCHEMA) -> None:
    rows = {f.name: [None if f.nullable else _ZERO[str(f.type)]] * n for f in schema}
    rows |= {
        "t_start": [first_t + i for i in range(n)],
        "name": ["turn:search"] * n,
        "session_id": [f"s{seq}-{i}" for i in range(n)],
        "turn_index": [1] * n,
        "attempt": [1] * n,
        "bytes": [0] * n,
    }
    if "latency_ms" in schema.names:
        rows["latency_ms"] = [float(seq)] * n
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table({k: rows[k] for k in schema.names}, schema=schema)
    pq.write_table(table, directory / f"part-{seq:06d}.parquet")


def _parts(directory: Path, count: int, rows_each: int = 3) -> None:
    for seq in range(count):
        _part(directory, seq, seq * 100.0, rows_each)


def _read(directory: Path) -> pa.Table:
    read = read_dataset(directory, SCHEMA, label="requests")
    assert read.problems == ()
    return read.table


def test_names_carry_the_flushes_they_hold() -> None:
    assert part_span(Path("part-000007.parquet")) == (7, 7)
    assert part_span(Path("part-000000-000999.parquet")) == (0, 999)
    assert part_span(Path("part-000009-000002.parquet")) is None
    assert part_span(Path("part-x.parquet")) is None
    assert part_span(Path(".part-000001.parquet.tmp")) is None


def test_compaction_keeps_every_row_in_order_in_one_file(tmp_path: Path) -> None:
    table_dir = tmp_path / "requests.parquet"
    _parts(table_dir, 7)
    # the truth: part after part, in flush order
    each = pa.concat_tables([pq.read_table(p) for p in sorted(table_dir.iterdir())])
    before = _read(table_dir)
    done = compact_table(table_dir, SCHEMA, row_group_rows=4)
    assert done is not None and (done.parts, done.rows) == (7, 21)
    assert [p.name for p in table_dir.iterdir()] == ["part-000000-000006.parquet"]
    after = _read(table_dir)
    assert after.equals(before) and after.equals(each)
    assert pq.ParquetFile(done.path).metadata.num_row_groups == 6  # 5 of 4 rows, the rest


def test_many_parts_keep_their_order(tmp_path: Path) -> None:
    table_dir = tmp_path / "requests.parquet"
    for seq in range(300):
        _part(table_dir, seq, seq * 10.0, 1 + seq % 5)
    t_start = pa.concat_tables(
        [pq.read_table(p, columns=["t_start"]) for p in sorted(table_dir.iterdir())]
    ).column("t_start")
    assert compact_table(table_dir, SCHEMA, row_group_rows=64) is not None
    assert _read(table_dir).column("t_start").equals(t_start)
    assert t_start.to_pylist() == sorted(t_start.to_pylist())


def test_one_part_or_none_is_left_alone(tmp_path: Path) -> None:
    table_dir = tmp_path / "requests.parquet"
    assert compact_table(table_dir, SCHEMA) is None
    _parts(table_dir, 1)
    assert compact_table(table_dir, SCHEMA) is None
    assert [p.name for p in table_dir.iterdir()] == ["part-000000.parquet"]


def test_a_compaction_cut_short_before_the_deletions_is_read_once(tmp_path: Path) -> None:
    table_dir = tmp_path / "requests.parquet"
    _parts(table_dir, 5)
    before = _read(table_dir)
    kept = tmp_path / "kept"
    shutil.copytree(table_dir, kept)
    compact_table(table_dir, SCHEMA)
    for part in kept.iterdir():  # as if killed after the rename, before any deletion
        shutil.copy(part, table_dir / part.name)
    # a reader of the whole directory counts every row twice; loadlab's, once
    assert ds.dataset(str(table_dir), format="parquet").count_rows() == 2 * before.num_rows
    assert [p.name for p in live_parts(table_dir)] == ["part-000000-000004.parquet"]
    assert _read(table_dir).equals(before)
    # parts flushed after the compaction are read after it; a later one spans it all
    _part(table_dir, 5, 500.0, 2)
    assert _read(table_dir).num_rows == before.num_rows + 2
    compact_table(table_dir, SCHEMA)
    assert [p.name for p in table_dir.iterdir()] == ["part-000000-000005.parquet"]
    assert _read(table_dir).num_rows == before.num_rows + 2


def test_a_torn_part_stops_the_compaction_and_is_still_named(tmp_path: Path) -> None:
    table_dir = tmp_path / "requests.parquet"
    _parts(table_dir, 3)
    (table_dir / "part-000003.parquet").write_bytes(b"PAR1 cut short by SIGKILL")
    assert compact_table(table_dir, SCHEMA) is None
    assert len(list(table_dir.iterdir())) == 4 and not list(table_dir.glob(".*"))
    read = read_dataset(table_dir, SCHEMA, label="requests")
    assert read.table.num_rows == 9
    assert read.problems[0].startswith("requests: skipped unreadable part part-000003.parquet")


def test_an_older_part_without_a_column_is_compacted_with_nulls(tmp_path: Path) -> None:
    table_dir = tmp_path / "requests.parquet"
    assert SCHEMA.field("cold_start").nullable
    older = pa.schema([f for f in SCHEMA if f.name != "cold_start"])
    _part(table_dir, 0, 0.0, 2, schema=older)
    _part(table_dir, 1, 100.0, 2)
    before = _read(table_dir)
    assert compact_table(table_dir, SCHEMA) is not None
    after = _read(table_dir)
    assert after.equals(before)
    assert after.column("cold_start").null_count == 4


def test_a_part_without_a_required_column_is_left_as_it_was(tmp_path: Path) -> None:
    # The reader returns the column as nulls; a file of this schema cannot hold them.
    table_dir = tmp_path / "requests.parquet"
    older = pa.schema([f for f in SCHEMA if f.name != "latency_ms"])
    _part(table_dir, 0, 0.0, 2, schema=older)
    _part(table_dir, 1, 100.0, 2)
    before = _read(table_dir)
    assert compact_table(table_dir, SCHEMA) is None
    assert sorted(p.name for p in table_dir.iterdir()) == [
        "part-000000.parquet",
        "part-000001.parquet",
    ]
    assert _read(table_dir).equals(before)


def test_a_part_without_a_flush_number_is_read_but_not_compacted(tmp_path: Path) -> None:
    table_dir = tmp_path / "requests.parquet"
    _parts(table_dir, 2)
    shutil.copy(table_dir / "part-000001.parquet", table_dir / "part-extra.parquet")
    assert [p.name for p in live_parts(table_dir)][-1] == "part-extra.parquet"
    assert compact_table(table_dir, SCHEMA) is None
    assert _read(table_dir).num_rows == 9


@pytest.mark.parametrize("columns", [None, ["t_start", "latency_ms"]])
def test_a_compacted_run_reads_as_the_parts_did(
    known_run: object, columns: list[str] | None, tmp_path: Path
) -> None:
    path = known_run()  # type: ignore[operator]
    for table in ("requests", "turns"):
        directory = path / f"{table}.parquet"
        rows = pq.read_table(next(directory.glob("part-*.parquet")))
        for part in list(directory.glob("part-*.parquet")):
            part.unlink()
        for i in range(0, rows.num_rows, 7):  # one part per 7 rows, as flushes leave them
            pq.write_table(rows.slice(i, 7), directory / f"part-{i // 7:06d}.parquet")
    wanted = {"requests": columns} if columns else None
    before = load_run(path, columns=wanted)
    for table in ("requests", "turns"):
        directory = path / f"{table}.parquet"
        schema = pq.read_schema(next(directory.glob("part-*.parquet")))
        assert compact_table(directory, schema) is not None
    after = load_run(path, columns=wanted)
    assert after.requests.equals(before.requests) and after.turns.equals(before.turns)
