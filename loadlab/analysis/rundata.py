"""Read a run directory back into pandas, tolerating a run that was cut short.

A run directory may come from a harness that was killed: a part file may be
missing, a line of ``events.jsonl`` may be half written. Nothing here raises for
that; what could not be read is listed in :attr:`RunData.problems` and shown in
the report, and everything else is analysed. The files are read by
:class:`loadlab.measure.readback.RunDirectoryReader`; this module only turns
them into DataFrames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from loadlab.measure.readback import RunDirectoryReader
from loadlab.rows import ROW_TYPES, TimelineEvent, column_names


@dataclass(frozen=True, slots=True)
class RunData:
    """Everything a run recorded, as DataFrames."""

    path: Path
    manifest: dict[str, Any]
    requests: pd.DataFrame
    turns: pd.DataFrame
    sessions: pd.DataFrame
    pressure: pd.DataFrame
    events: pd.DataFrame
    problems: tuple[str, ...]

    @property
    def t0(self) -> float:
        """Start of the run timeline (epoch seconds)."""
        started = self.manifest.get("started_at")
        candidates = [float(started)] if isinstance(started, int | float) else []
        for frame, col in ((self.requests, "t_start"), (self.events, "t")):
            if len(frame):
                candidates.append(float(frame[col].min()))
        return min(candidates) if candidates else 0.0

    @property
    def t_end(self) -> float:
        """End of the run timeline (epoch seconds)."""
        ended = self.manifest.get("ended_at")
        candidates = [float(ended)] if isinstance(ended, int | float) else []
        if len(self.turns):
            candidates.append(float(self.turns["t_end"].max()))
        if len(self.requests):
            ends = self.requests["t_start"] + self.requests["latency_ms"] / 1000.0
            candidates.append(float(ends.max()))
        if len(self.events):
            candidates.append(float(self.events["t"].max()))
        return max(candidates) if candidates else self.t0


UNREAD_COLUMNS: dict[str, tuple[str, ...]] = {
    "requests": ("attempt", "bytes", "max_gap_ms", "worker"),
    "turns": (
        "state_source",
        "replayed",
        "state_turn",
        "checkpoint_version",
        "cart_items",
        "worker",
        "answer_bytes",
        "answer_truncated",
    ),
    "sessions": (
        "persona",
        "seed",
        "turns_planned",
        "turns_done",
        "interrupted_turns",
        "checkpoint_version",
        "cart_json",
        "worker",
        "expected_cart_json",
    ),
}
"""Recorded columns no figure of the report is derived from: left unread.

On a long run every column read costs time and memory (a million turns: about
0.03 s and 8 MB a column); a column added to the row types is read until it is
listed here.
"""


def report_columns() -> dict[str, list[str]]:
    """The columns the report's figures come from, by table (all but :data:`UNREAD_COLUMNS`).

    ``load_run(path, columns=report_columns())`` reads what the report reads (the
    web UI's impact lines, the same numbers, read the same way).
    """
    return {
        name: [c for c in column_names(ROW_TYPES[name]) if c not in unread]
        for name, unread in UNREAD_COLUMNS.items()
    }


def load_run(
    path: Path | str,
    *,
    columns: Mapping[str, Sequence[str]] | None = None,
    copy: bool = True,
) -> RunData:
    """Load a run directory. Raises RunDirectoryError only if it is not a run at all.

    ``columns`` maps a table (``requests``, ``turns``, ``sessions``, ``pressure``)
    to the only columns of it to read (in its schema's order); tables it does not
    name are read whole, and so is every table when it is None.

    ``copy=False`` gives frames that share the memory Arrow read the numbers
    into instead of a copy of it: they cannot be changed in place
    (``frame.loc[...] = ...`` raises), and a long run needs a third less memory.
    """
    columns = columns or {}
    if unknown := sorted(set(columns) - set(ROW_TYPES)):
        raise ValueError(f"load_run: no table named {unknown} (tables: {sorted(ROW_TYPES)})")
    reader = RunDirectoryReader(Path(path))
    manifest = reader.manifest()
    problems: list[str] = []
    tables: dict[str, pd.DataFrame] = {}
    for name in ROW_TYPES:
        tables[name], skipped = _read_frame(reader, name, columns.get(name), copy=copy)
        problems += skipped
    events = reader.events()
    problems += events.problems
    problems += _recorded_problems(events.rows)
    return RunData(
        path=reader.path,
        manifest=manifest,
        requests=tables["requests"],
        turns=tables["turns"],
        sessions=tables["sessions"],
        pressure=tables["pressure"],
        events=_events_frame(events.rows),
        problems=tuple(problems),
    )


def _read_frame(
    reader: RunDirectoryReader, name: str, columns: Sequence[str] | None, *, copy: bool
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """One table as a DataFrame, each column in one piece; and the problems reading it.

    pandas keeps strings as Arrow arrays, chunk for chunk: with a chunk per part
    file (a thousand on a long run), every filter of the turns took over a second,
    a tenth of that in one piece. Numbers are copied into NumPy blocks, unless
    ``copy`` is False: then each column is joined into one buffer (its parts'
    chunks returned to the system at once) that pandas uses as it is.
    """
    read = reader.table(name, columns=columns)
    table, problems = read.table, read.problems
    del read  # this function holds the only reference: replaced columns are freed
    pool = pa.default_memory_pool()
    for i, field in enumerate(table.schema):
        if copy and not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        whole = pa.chunked_array([table.column(i).combine_chunks()], type=field.type)
        table = table.set_column(i, field, whole)
        if not copy:
            pool.release_unused()
    if copy:
        frame: pd.DataFrame = table.to_pandas()
    else:
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
    return frame, problems


def _recorded_problems(rows: tuple[dict[str, Any], ...]) -> list[str]:
    """The problems the harness wrote down while recording (``error`` events)."""
    out = []
    for row in rows:
        if row.get("kind") == "error":
            attrs = row.get("attrs")
            message = attrs.get("message") if isinstance(attrs, dict) else None
            out.append(f"{row.get('name', 'error')}: {message or 'an error was recorded'}")
    return out


def _events_frame(rows: tuple[dict[str, Any], ...]) -> pd.DataFrame:
    columns = column_names(TimelineEvent)
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns}).astype({"t": float})
    frame = pd.DataFrame(list(rows))
    for col in columns:
        if col not in frame:
            frame[col] = None
    frame["t"] = frame["t"].astype(float)
    return frame[columns].sort_values("t", kind="stable").reset_index(drop=True)
