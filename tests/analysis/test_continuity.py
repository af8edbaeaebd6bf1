from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from loadlab.analysis.rundata import load_run
from loadlab.analysis.summary import summarize
from loadlab.measure.part_file import arrow_schema
from loadlab.rows import SessionRecord

T0 = 1_700_000_000.0


def _audit_rows() -> list[dict[str, object]]:
    """s-A resumed in band but its checkpoint lost the cart; s-X was never a session."""
    return [
        {"session_id": "s-A", "found": True, "checkpoint_version": 3, "turn": 2,
         "cart_json": "{}", "oob_verdict": "restarted", "reason": "cart lost"},
        {"session_id": "s-B", "found": True, "checkpoint_version": 5, "turn": 1,
         "cart_json": "{}", "oob_verdict": "failed", "reason": ""},
        {"session_id": "s-C", "found": True, "checkpoint_version": 2, "turn": 2,
         "cart_json": "{}", "oob_verdict": "clean", "reason": ""},
        {"session_id": "s-H", "found": True, "checkpoint_version": 9, "turn": 3,
         "cart_json": '{"P-0001": 2}', "oob_verdict": "duplicated", "reason": "P-0001 x2"},
        {"session_id": "s-X", "found": False, "checkpoint_version": None, "turn": None,
         "cart_json": None, "oob_verdict": "missing", "reason": "no item"},
    ]  # fmt: skip


def _table(rows: list[dict[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("session_id", pa.string()),
                ("found", pa.bool_()),
                ("checkpoint_version", pa.int64()),
                ("turn", pa.int64()),
                ("cart_json", pa.string()),
                ("oob_verdict", pa.string()),
                ("reason", pa.string()),
            ]
        ),
    )


def test_verdicts_split_by_whether_a_fault_touched_the_session(
    fault_run: Callable[..., Path],
) -> None:
    c = summarize(load_run(fault_run())).to_json()["continuity"]
    assert c["sessions"] == 8 and c["faults"] == 2
    assert c["verdicts"] == {
        "clean": 3,
        "resumed": 1,
        "restarted": 1,
        "duplicated": 1,
        "failed": 2,
    }
    # touched: s-A, s-B, s-C, s-E in flight, s-F began while f1 ran; s-D ended as f1 landed
    assert c["touched"] == {
        "sessions": 5,
        "verdicts": {"clean": 1, "resumed": 1, "restarted": 1, "duplicated": 0, "failed": 2},
    }
    assert c["untouched"] == {
        "sessions": 3,
        "verdicts": {"clean": 2, "resumed": 0, "restarted": 0, "duplicated": 1, "failed": 0},
    }
    assert c["resume_latency_ms"] == {"count": 1, "p50": 4000.0, "p99": 4000.0}
    assert c["out_of_band"] is None


def test_out_of_band_disagreement_is_reported(fault_run: Callable[..., Path]) -> None:
    path = fault_run()
    pq.write_table(_table(_audit_rows()), path / "checkpoints.parquet")
    summary = summarize(load_run(path)).to_json()
    oob = summary["continuity"]["out_of_band"]
    assert oob["audited"] == 5 and oob["found"] == 4
    assert oob["compared"] == 4  # s-X has no session row
    assert (oob["agree"], oob["disagree"]) == (3, 1)
    assert oob["disagreements"] == [
        {
            "session_id": "s-A",
            "in_band": "resumed",
            "out_of_band": "restarted",
            "reason": "cart lost",
        }
    ]
    assert oob["disagreement_kinds"] == {"resumed -> restarted": 1}
    assert oob["not_audited"] == 4  # s-D, s-E, s-F, s-G
    assert oob["only_out_of_band"] == 1
    assert oob["verdicts"]["missing"] == 1 and oob["verdicts"]["clean"] == 1
    json.dumps(summary, allow_nan=False)


def test_out_of_band_as_a_dataset_of_parts_lists_twenty_disagreements(
    fault_run: Callable[..., Path],
) -> None:
    path = fault_run()
    # 25 more sessions, resumed in band, whose checkpoints say the state was lost
    extra = [
        asdict(
            SessionRecord(
                session_id=f"z{i:02d}", persona="p", seed=i, t_start=T0 + 150, t_end=T0 + 160,
                turns_planned=2, turns_done=2, interrupted_turns=1, verdict="resumed",
                verdict_reason="",
            )
        )
        for i in range(25)
    ]  # fmt: skip
    table = pa.Table.from_pylist(extra, schema=arrow_schema(SessionRecord))
    pq.write_table(table, path / "sessions.parquet" / "part-999999.parquet")
    parts = path / "checkpoints.parquet"
    parts.mkdir()
    rows = _audit_rows() + [
        {"session_id": f"z{i:02d}", "found": True, "checkpoint_version": 1, "turn": 0,
         "cart_json": "{}", "oob_verdict": "restarted", "reason": "turn history gone"}
        for i in range(25)
    ]  # fmt: skip
    pq.write_table(_table(rows[:10]), parts / "part-000.parquet")
    pq.write_table(_table(rows[10:]), parts / "part-001.parquet")
    (parts / ".part-002.parquet.tmp").write_bytes(b"half written")  # ignored, as pyarrow does
    oob = summarize(load_run(path)).to_json()["continuity"]["out_of_band"]
    assert oob["audited"] == 30 and oob["compared"] == 29
    assert oob["disagree"] == 26  # s-A and the 25 z sessions
    assert oob["disagreement_kinds"] == {"resumed -> restarted": 26}
    listed = [d["session_id"] for d in oob["disagreements"]]
    assert listed == ["s-A"] + [f"z{i:02d}" for i in range(19)]


def test_an_unreadable_audit_is_a_problem_not_a_crash(fault_run: Callable[..., Path]) -> None:
    path = fault_run()
    (path / "checkpoints.parquet").write_bytes(b"not parquet")
    summary = summarize(load_run(path))
    assert summary.continuity.out_of_band is None
    assert any("checkpoints.parquet" in p for p in summary.problems)


def test_an_audit_without_verdicts_is_a_problem(fault_run: Callable[..., Path]) -> None:
    path = fault_run()
    pq.write_table(pa.table({"session_id": ["s-A"]}), path / "checkpoints.parquet")
    summary = summarize(load_run(path))
    assert summary.continuity.out_of_band is None
    assert any("oob_verdict" in p for p in summary.problems)
