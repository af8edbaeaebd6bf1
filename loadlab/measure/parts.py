"""The part files of a row table, and their compaction when a run is sealed.

A row table (``turns.parquet/`` ...) is a directory of part files, one per
recorder flush (:mod:`loadlab.measure.rundir`): ``part-000000.parquet``,
``part-000001.parquet`` ... A long run leaves a thousand of them per table, and
every reader pays for each file it opens (``loadlab report`` on a million rows
spent a quarter of its time scanning 2,000 parts). So when the recorder closes,
:func:`compact_table` rewrites a table's parts as one file named for the span it
replaces, ``part-000000-000999.parquet`` (rows in the same order, row groups of
:data:`ROW_GROUP_ROWS`), then deletes the parts it spans.

Every step is safe to kill: the compacted file is written under a dot name and
renamed into place, so it exists whole or not at all; until the parts it spans
are deleted, :func:`live_parts` (which every reader of loadlab lists parts with)
reads the compacted file **instead of** them, never both; a later compaction
spans the earlier one. Only a reader that globs the directory itself (DuckDB,
``pyarrow.dataset`` on the directory) would count rows twice, and only between
the rename and the deletions, or after a crash between them.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

__all__ = [
    "ROW_GROUP_ROWS",
    "Compacted",
    "compact_table",
    "live_parts",
    "part_span",
]

log = logging.getLogger("loadlab")

ROW_GROUP_ROWS = 131_072
"""Rows per row group of a compacted part (a reader's unit of work and memory)."""

_PART = re.compile(r"part-(\d+)(?:-(\d+))?\.parquet")


@dataclass(frozen=True, slots=True)
class Compacted:
    """What :func:`compact_table` did to one table."""

    path: Path
    parts: int
    rows: int


def part_span(path: Path) -> tuple[int, int] | None:
    """The flush numbers a part file holds: ``(7, 7)`` for ``part-000007.parquet``,
    ``(0, 999)`` for the compacted ``part-000000-000999.parquet``; None for other names."""
    m = _PART.fullmatch(path.name)
    if m is None:
        return None
    first = int(m[1])
    last = int(m[2]) if m[2] is not None else first
    return (first, last) if last >= first else None


def live_parts(directory: Path) -> list[Path]:
    """The part files that hold a table's rows, in row order.

    A part inside a compacted part's span is left out (it is only there if a
    compaction was cut short before deleting it). A ``part-*.parquet`` whose name
    carries no flush number is kept, after the numbered ones, for the reader to
    read or name as unreadable.
    """
    if not directory.is_dir():
        return []
    numbered: list[tuple[int, int, Path]] = []
    other: list[Path] = []
    for path in directory.glob("part-*.parquet"):
        span = part_span(path)
        if span is None:
            other.append(path)
        else:
            numbered.append((span[0], -span[1], path))
    numbered.sort()
    out: list[Path] = []
    covered = -1
    for _first, neg_last, path in numbered:
        last = -neg_last
        if last <= covered:
            continue  # spanned by a compacted part read instead
        out.append(path)
        covered = max(covered, last)
    return out + sorted(other)


def compact_table(
    directory: Path, schema: pa.Schema, *, row_group_rows: int = ROW_GROUP_ROWS
) -> Compacted | None:
    """Rewrite the live parts of ``directory`` as one part file; None if there was nothing to do.

    Nothing is changed when there are fewer than two parts, when a part's name
    carries no flush number, or when a part cannot be read as ``schema`` (a torn
    part stays where the reader names it). Rows keep their order; a column an
    older part lacks is written as nulls, as the reader would return it.
    """
    parts = live_parts(directory)
    spans = [part_span(p) for p in parts]
    if len(parts) < 2 or any(s is None for s in spans):
        return None
    first, last = spans[0][0], spans[-1][1]  # type: ignore[index]
    final = directory / f"part-{first:06d}-{last:06d}.parquet"
    tmp = directory / f".{final.name}.tmp"
    rows = 0
    try:
        # one scan, part after part (no threads: in order), a row group at a time
        scan = ds.dataset([str(p) for p in parts], schema=schema, format="parquet")
        with pq.ParquetWriter(tmp, schema) as writer:
            pending: list[pa.Table] = []
            pending_rows = 0
            for batch in scan.to_batches(use_threads=False):
                pending.append(pa.Table.from_batches([batch], schema=schema))
                pending_rows += batch.num_rows
                if pending_rows >= row_group_rows:
                    rows += _write(writer, pending, row_group_rows)
                    pending_rows = sum(t.num_rows for t in pending)
            rows += _write(writer, pending, 0)
        os.replace(tmp, final)
    except (OSError, pa.ArrowException) as exc:
        log.warning("left %s in %d parts (%s)", directory.name, len(parts), exc)
        tmp.unlink(missing_ok=True)
        return None
    for part in directory.glob("part-*.parquet"):  # and what an earlier one left behind
        span = part_span(part)
        if part != final and span is not None and first <= span[0] and span[1] <= last:
            part.unlink(missing_ok=True)
    return Compacted(path=final, parts=len(parts), rows=rows)


def _write(writer: pq.ParquetWriter, pending: list[pa.Table], keep_below: int) -> int:
    """Write ``pending`` in row groups of ``keep_below`` rows, keeping back a short rest.

    With ``keep_below`` 0 everything is written as one row group.
    """
    if not pending:
        return 0
    table = pa.concat_tables(pending)
    pending.clear()
    rows = int(table.num_rows)
    if keep_below <= 0:
        writer.write_table(table)
        return rows
    whole = (rows // keep_below) * keep_below
    if whole:
        writer.write_table(table.slice(0, whole), row_group_size=keep_below)
    if whole < rows:
        pending.append(table.slice(whole))
    return whole
