"""Read a run's parquet datasets back, tolerating a run that was cut short.

A row table of a run directory is a directory of part files (see
:mod:`loadlab.measure.rundir`). A harness killed mid-write can leave a part that
does not parse, and parts written by an older loadlab may lack a column that was
added since. :func:`read_dataset` reads what it can: unreadable parts are
skipped and named in the returned problems, missing nullable columns come back
as nulls, and columns the caller did not ask for are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetRead:
    """The rows of one dataset directory and what could not be read."""

    table: pa.Table
    parts: int
    problems: tuple[str, ...]


def read_dataset(directory: Path, schema: pa.Schema, *, label: str) -> DatasetRead:
    """Read every ``part-*.parquet`` of ``directory`` as ``schema``.

    ``label`` names the dataset in problem messages (e.g. ``sessions``). A
    missing directory is an empty table, not an error: a run may end before
    its first row of a kind was written.
    """
    tables: list[pa.Table] = []
    problems: list[str] = []
    if directory.is_dir():
        for part in sorted(directory.glob("part-*.parquet")):
            try:
                tables.append(pq.read_table(part, schema=schema))
            except (OSError, pa.ArrowException) as exc:
                problems.append(f"{label}: skipped unreadable part {part.name} ({exc})")
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return DatasetRead(table=table, parts=len(tables), problems=tuple(problems))
