"""The golden run: every figure of its summary is pinned in tests/golden/summary.json.

A change in any analysis that moves a figure fails here with the figure's path,
the expected and the new value. If the change is intended, regenerate the
expected file (``python tests/golden/make_golden.py --update``) and review its diff.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
from make_golden import EXPECTED, HERE, RUN, build, differences, summary_json


def _check(actual: dict[str, object]) -> list[str]:
    return differences(json.loads(EXPECTED.read_text()), actual)


def test_the_golden_summary_is_unchanged() -> None:
    diff = _check(summary_json(HERE))
    assert not diff, (
        f"{len(diff)} figure(s) of the golden run changed:\n  "
        + "\n  ".join(diff)
        + "\nIf intended: python tests/golden/make_golden.py --update, and review the diff"
    )


def test_the_script_rebuilds_the_committed_run(tmp_path: Path) -> None:
    build(tmp_path / RUN)
    assert _check(summary_json(tmp_path)) == []


def test_a_changed_row_is_named_in_the_difference(tmp_path: Path) -> None:
    shutil.copytree(HERE / RUN, tmp_path / RUN)
    assert _check(summary_json(tmp_path)) == []  # a copy is the same run
    (part,) = (tmp_path / RUN / "turns.parquet").glob("part-*.parquet")
    table = pq.read_table(part)
    slowest = pc.index(table["t_end"], pc.max(table["t_end"])).as_py()
    t_end = table["t_end"].to_pylist()
    t_end[slowest] += 10.0  # the last turn now ends 10 s later
    column = table.schema.get_field_index("t_end")
    pq.write_table(table.set_column(column, "t_end", [t_end]), part)
    diff = _check(summary_json(tmp_path))
    assert any(line.startswith("turn_latency_ms.all.max: expected ") for line in diff), diff
    assert any(line.startswith("run.duration_s: expected 60.0, got ") for line in diff), diff


def test_a_float_written_as_an_int_is_a_difference() -> None:
    assert differences({"a": [1.0, {"b": None}]}, {"a": [1, {"b": None}]}) == [
        "a[0]: expected 1.0, got 1"
    ]
    assert differences({"a": 1}, {"b": 1}) == ["a: missing (expected 1)", "b: unexpected 1"]
    assert differences([1, 2], [1]) == [": 1 items, expected 2"]


def test_the_golden_directory_stays_small() -> None:
    size = sum(f.stat().st_size for f in HERE.rglob("*") if f.is_file())
    assert size < 200_000, f"tests/golden holds {size} bytes"
