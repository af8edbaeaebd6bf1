"""A batch of rows as a parquet part file: the conversion the recorder runs for every flush.

:func:`write_part` turns rows (tuples of values in column order) into columns,
redacts every string, converts them to Arrow (repairing a value that does not
fit its column rather than losing the rows around it) and writes the part
atomically. The recorder runs it in a child process under Locust
(:mod:`loadlab.measure.part_writer`) and on a thread elsewhere.
"""

from __future__ import annotations

import dataclasses
import io
import os
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from loadlab.redact import Redactor

__all__ = ["Values", "arrow_schema", "warm_up", "write_part"]

Values = tuple[Any, ...]
"""One buffered row: its field values in column order."""

_ARROW_TYPES: dict[Any, pa.DataType] = {
    float: pa.float64(),
    int: pa.int64(),
    str: pa.string(),
    bool: pa.bool_(),
}


def arrow_schema(row_type: type[Any]) -> pa.Schema:
    """Derive the parquet schema of a row dataclass from its annotations."""
    hints = typing.get_type_hints(row_type)
    fields = []
    for f in dataclasses.fields(row_type):
        hint = hints[f.name]
        nullable = False
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            nullable = len(args) != len(typing.get_args(hint))
            hint = args[0]
        fields.append(pa.field(f.name, _ARROW_TYPES[hint], nullable=nullable))
    return pa.schema(fields)


def _arrow_table(
    table: str, columns: dict[str, Any], schema: pa.Schema, problems: list[str]
) -> pa.Table:
    """The batch as an Arrow table; values that do not fit their column are replaced.

    The whole batch converts in one call when every value fits (the usual case);
    otherwise each column is converted on its own and, in a column that fails,
    each value: what does not fit becomes null (0, "" or False in a column that
    allows no null) and ``problems`` gets one line per column saying so.
    """
    try:
        return pa.Table.from_pydict(columns, schema=schema)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        pass
    arrays = []
    for field in schema:
        values = columns[field.name]
        if field.nullable or None not in values:
            try:
                arrays.append(pa.array(values, type=field.type))
                continue
            except (pa.ArrowException, OverflowError, TypeError, ValueError):
                pass
        fallback = None if field.nullable else _FALLBACK[field.type]
        kept: list[Any] = []
        bad: list[Any] = []
        for value in values:
            try:
                if value is None and not field.nullable:
                    raise ValueError("null in a column that allows none")
                pa.array([value], type=field.type)
                kept.append(value)
            except (pa.ArrowException, OverflowError, TypeError, ValueError):
                bad.append(value)
                kept.append(fallback)
        arrays.append(pa.array(kept, type=field.type))
        stored = "null" if fallback is None else repr(fallback)
        problems.append(
            f"{table}.{field.name}: {len(bad)} value(s) could not be recorded as "
            f"{field.type} (first: {bad[0]!r:.80}); the row was written with {stored}"
        )
    return pa.Table.from_arrays(arrays, schema=schema)


_FALLBACK: dict[pa.DataType, Any] = {
    pa.float64(): 0.0,
    pa.int64(): 0,
    pa.string(): "",
    pa.bool_(): False,
}


def write_part(
    table: str,
    batch: Sequence[Values],
    schema: pa.Schema,
    *,
    redact: Redactor,
    tmp: Path,
    final: Path,
) -> list[str]:
    """Write ``batch`` (rows of ``table``, values in column order) as the part file ``final``.

    Every string is redacted; the file is written as ``tmp`` and renamed, so it
    exists whole or not at all. Returns one line per column whose values had to
    be repaired (see :func:`_arrow_table`).
    """
    problems: list[str] = []
    columns = dict(zip(schema.names, zip(*batch, strict=True), strict=True))
    for field in schema:
        if field.type == pa.string():
            columns[field.name] = redact.column(columns[field.name])
    pq.write_table(_arrow_table(table, columns, schema, problems), tmp)
    os.replace(tmp, final)
    return problems


def warm_up(schemas: Iterable[pa.Schema]) -> None:
    """Pay the first pyarrow conversion and parquet write of a process (a second or more)."""
    for schema in schemas:
        pq.write_table(pa.Table.from_pylist([], schema=schema), io.BytesIO())
