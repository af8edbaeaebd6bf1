"""Read a run directory back, tolerating a run that was cut short.

A row table of a run directory is a directory of part files (see
:mod:`loadlab.measure.rundir`). A harness killed mid-write can leave a part that
does not parse, or a half-written last line in ``events.jsonl``, and parts
written by an older loadlab may lack a column that was added since. Nothing here
raises for that: unreadable parts and lines are skipped and named in the
returned problems, missing nullable columns come back as nulls, and columns the
caller did not ask for are dropped.

:class:`RunDirectoryReader` is the one reader of a run directory's files;
:mod:`loadlab.analysis.rundata` turns what it reads into DataFrames, and the
checkpoint audit reads the sessions through :func:`read_dataset`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from loadlab.measure.part_file import arrow_schema
from loadlab.measure.parts import live_parts
from loadlab.measure.rundir import RunDirectory
from loadlab.rows import ROW_TYPES

__all__ = ["DatasetRead", "EventsRead", "RunDirectoryReader", "read_dataset", "read_events"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetRead:
    """The rows of one dataset directory and what could not be read."""

    table: pa.Table
    parts: int
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class EventsRead:
    """The events of ``events.jsonl`` (one dict per line, file order) and the lines skipped."""

    rows: tuple[dict[str, Any], ...]
    problems: tuple[str, ...]


def read_dataset(
    directory: Path, schema: pa.Schema, *, label: str, columns: Sequence[str] | None = None
) -> DatasetRead:
    """Read the live parts of ``directory`` as ``schema``, in part order.

    The live parts (:func:`loadlab.measure.parts.live_parts`) are every
    ``part-*.parquet`` but those a compacted part stands for.

    ``label`` names the dataset in problem messages (e.g. ``sessions``). A
    missing directory is an empty table, not an error: a run may end before
    its first row of a kind was written. ``columns`` (names in ``schema``) reads
    only those, in the schema's order; None reads them all.
    """
    if columns is not None:
        wanted = {schema.field(name).name for name in columns}  # KeyError: no such column
        schema = pa.schema([f for f in schema if f.name in wanted])
    for attempt in range(2):
        parts = live_parts(directory)
        if not parts:
            return DatasetRead(table=schema.empty_table(), parts=0, problems=())
        try:
            # One scan over every part: an open run has a part per flush, and reading
            # each as a dataset of its own cost more than decoding its rows. Threads
            # only added contention for parts this small.
            scan = ds.dataset([str(p) for p in parts], schema=schema, format="parquet")
            table = scan.to_table(use_threads=False)
        except (OSError, pa.ArrowException):
            if attempt == 0 and not all(p.exists() for p in parts):
                continue  # compacted since listed (the recorder closing): list again
            return _read_parts(parts, schema, label)  # a torn or foreign part: find which
        return DatasetRead(table=table, parts=len(parts), problems=())
    raise AssertionError("unreachable")  # pragma: no cover


def _read_parts(parts: list[Path], schema: pa.Schema, label: str) -> DatasetRead:
    """Part by part, skipping (and naming) the parts that cannot be read as ``schema``."""
    tables: list[pa.Table] = []
    problems: list[str] = []
    for part in parts:
        try:
            tables.append(pq.read_table(part, schema=schema))
        except (OSError, pa.ArrowException) as exc:
            problems.append(f"{label}: skipped unreadable part {part.name} ({exc})")
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return DatasetRead(table=table, parts=len(tables), problems=tuple(problems))


def read_events(path: Path) -> EventsRead:
    """Read an events log: one JSON object with at least ``t`` and ``kind`` per line.

    A missing file has no events. Blank lines are ignored; a line that is not
    JSON (a torn last write) or not an event is skipped and named in the problems.
    """
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    if path.exists():
        with path.open(encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except (json.JSONDecodeError, RecursionError):
                    problems.append(f"{path.name}: skipped malformed line {lineno}")
                    continue
                problem = _event_problem(row)
                if problem is None:
                    rows.append(row)
                else:
                    problems.append(f"{path.name}: line {lineno} is not an event{problem}")
    return EventsRead(rows=tuple(rows), problems=tuple(problems))


def _event_problem(row: object) -> str | None:
    """None for an event every reader can use (a finite number ``t``, a string ``kind``),
    else what is wrong with it, as a suffix of "line N is not an event"."""
    if not isinstance(row, dict) or "t" not in row or "kind" not in row:
        return ""
    t = row["t"]
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        return f" ('t' is {_short(t)}, not a time in seconds)"
    if not isinstance(row["kind"], str):
        return f" ('kind' is {_short(row['kind'])}, not a string)"
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


class RunDirectoryReader:
    """Reads the manifest, the row tables and the events of one run directory."""

    def __init__(self, directory: RunDirectory | Path) -> None:
        self.directory = (
            directory if isinstance(directory, RunDirectory) else RunDirectory(directory)
        )

    @property
    def path(self) -> Path:
        """The run directory."""
        return self.directory.path

    def manifest(self) -> dict[str, Any]:
        """manifest.json; RunDirectoryError when the directory is not a run at all."""
        return self.directory.read_manifest()

    def table(self, name: str, *, columns: Sequence[str] | None = None) -> DatasetRead:
        """One row table (``requests``, ``turns``, ``sessions``, ``pressure``) in its row schema.

        ``columns`` reads only those of its columns (in the schema's order); None all.
        """
        directory = self.directory.table(name)
        schema = arrow_schema(ROW_TYPES[name])
        return read_dataset(directory, schema, label=name, columns=columns)

    def events(self) -> EventsRead:
        """The events log (phases, faults, user-count samples)."""
        return read_events(self.directory.events)
