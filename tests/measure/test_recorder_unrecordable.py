"""The recorder never drops a row: a value its column cannot hold is replaced, and said.

Issue 14, finding 1: one ``ddb_calls`` of 1e20 raised OverflowError inside the
flush, and that second's turn and session rows were lost without a word. The
load side now refuses such numbers (tests/load/test_load_bounds.py); this is the
recorder's own guard, for whatever still reaches it (rows from workers, a bug).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Literal

import pyarrow.parquet as pq
import pytest

from loadlab.analysis.rundata import load_run
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, RunManifest
from loadlab.rows import SessionRecord, TurnRecord

Parts = Literal["thread", "process"]
# The same repairs whether the parts are written on a thread or by the child process.
PARTS = pytest.mark.parametrize("parts", ["thread", "process"])


def _run_dir(path: Path) -> RunDirectory:
    path.mkdir()
    run_dir = RunDirectory(path)
    run_dir.write_manifest(
        RunManifest(
            run_id="r1",
            name="t",
            started_at=time.time(),
            scenario_path=None,
            scenario_sha256=None,
            scenario={},
            target={"url": "http://127.0.0.1:1"},
            versions={},
            seed=1,
        )
    )
    return run_dir


def _turn(i: int, ddb_calls: object, cart_items: object = 1) -> TurnRecord:
    return TurnRecord(
        t_start=1000.0 + i,
        t_end=1001.0 + i,
        session_id=f"s{i}",
        turn_index=1,
        intent="search",
        ok=True,
        attempts=1,
        latency_ms=1000.0,
        ttft_ms=100.0,
        interrupted=False,
        ddb_calls=ddb_calls,  # type: ignore[arg-type]
        cart_items=cart_items,  # type: ignore[arg-type]
    )


def _session(i: int) -> SessionRecord:
    return SessionRecord(
        session_id=f"s{i}",
        persona="p",
        seed=i,
        t_start=1000.0,
        t_end=1010.0,
        turns_planned=1,
        turns_done=1,
        interrupted_turns=0,
        verdict="clean",
        verdict_reason="1 turns, no interruption",
    )


@PARTS
def test_unrecordable_values_cost_no_row_and_are_listed_as_problems(
    tmp_path: Path, parts: Parts
) -> None:
    run_dir = _run_dir(tmp_path / "run")
    bad = [10**20, math.inf, math.nan, "12", -(2**64)]
    with RunRecorder(run_dir, parts=parts) as recorder:
        for i, value in enumerate([3, *bad]):
            recorder.emit(_turn(i, value, cart_items=10**19 if i == 1 else 1))
            recorder.emit(_session(i))
        recorder.flush()
        assert recorder.counts["turns"] == 6 and recorder.counts["sessions"] == 6

    turns = pq.read_table(tmp_path / "run" / "turns.parquet").to_pandas().sort_values("t_start")
    assert len(turns) == 6 and len(pq.read_table(tmp_path / "run" / "sessions.parquet")) == 6
    assert turns["ddb_calls"].tolist() == [3, 0, 0, 0, 0, 0]
    assert turns["cart_items"].isna().tolist() == [False, True, False, False, False, False]

    events = [
        json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()
    ]
    errors = sorted(e["attrs"]["message"] for e in events if e["kind"] == "error")
    assert len(errors) == 2
    assert "turns.cart_items: 1 value(s)" in errors[0] and "written with null" in errors[0]
    assert "turns.ddb_calls: 5 value(s)" in errors[1] and "100000000000000000000" in errors[1]
    assert "written with 0" in errors[1]

    problems = load_run(tmp_path / "run").problems
    assert any("turns.ddb_calls" in p for p in problems), problems


@PARTS
def test_rows_from_workers_with_unrecordable_values_are_kept_too(
    tmp_path: Path, parts: Parts
) -> None:
    run_dir = _run_dir(tmp_path / "run")
    with RunRecorder(run_dir, parts=parts) as recorder:
        rows = [{"t": 1.0, "source": "ddb", "metric": "rcu", "value": v} for v in (1.0, "x")]
        recorder.emit_dicts("pressure", rows)
    pressure = pq.read_table(tmp_path / "run" / "pressure.parquet").to_pandas()
    assert pressure["value"].tolist() == [1.0, 0.0]
    assert recorder.repaired_columns == 1


@PARTS
def test_a_non_string_in_a_text_column_costs_no_row(tmp_path: Path, parts: Parts) -> None:
    # A worker sent a number where text belongs: the rows around it are written, the
    # value is repaired and said, and later flushes are not stuck on it.
    run_dir = _run_dir(tmp_path / "run")
    with RunRecorder(run_dir, parts=parts) as recorder:
        rows = [
            {"t": float(i), "source": source, "metric": "rcu", "value": 1.0}
            for i, source in enumerate(["ddb", 7, "ddb", b"raw", "llm"])
        ]
        recorder.emit_dicts("pressure", rows[:3])
        recorder.flush()
        recorder.emit_dicts("pressure", rows[3:])
    assert recorder.flush_errors == 0
    pressure = pq.read_table(tmp_path / "run" / "pressure.parquet").to_pandas().sort_values("t")
    assert len(pressure) == 5
    assert pressure["source"].tolist()[0::2] == ["ddb", "ddb", "llm"]
    assert recorder.repaired_columns >= 1
