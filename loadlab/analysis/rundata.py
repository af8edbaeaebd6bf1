"""Read a run directory back into pandas, tolerating a run that was cut short.

A run directory may come from a harness that was killed: a part file may be
missing, a line of ``events.jsonl`` may be half written. Nothing here raises for
that; what could not be read is listed in :attr:`RunData.problems` and shown in
the report, and everything else is analysed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loadlab.measure.recorder import arrow_schema
from loadlab.measure.rundir import RunDirectory
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


def load_run(path: Path | str) -> RunData:
    """Load a run directory. Raises RunDirectoryError only if it is not a run at all."""
    run_dir = RunDirectory(Path(path))
    manifest = run_dir.read_manifest()
    problems: list[str] = []
    tables = {name: _read_table(run_dir, name, problems) for name in ROW_TYPES}
    events = _read_events(run_dir, problems)
    return RunData(
        path=run_dir.path,
        manifest=manifest,
        requests=tables["requests"],
        turns=tables["turns"],
        sessions=tables["sessions"],
        pressure=tables["pressure"],
        events=events,
        problems=tuple(problems),
    )


def _read_table(run_dir: RunDirectory, name: str, problems: list[str]) -> pd.DataFrame:
    schema = arrow_schema(ROW_TYPES[name])
    directory = run_dir.table(name)
    parts: list[pa.Table] = []
    if directory.is_dir():
        for part in sorted(directory.glob("part-*.parquet")):
            try:
                parts.append(pq.read_table(part, schema=schema))
            except (OSError, pa.ArrowException) as exc:
                problems.append(f"{name}: skipped unreadable part {part.name} ({exc})")
    if not parts:
        empty: pd.DataFrame = schema.empty_table().to_pandas()
        return empty
    frame: pd.DataFrame = pa.concat_tables(parts).to_pandas()
    return frame


def _read_events(run_dir: RunDirectory, problems: list[str]) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    if run_dir.events.exists():
        with run_dir.events.open(encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    problems.append(f"events.jsonl: skipped malformed line {lineno}")
                    continue
                if isinstance(row, dict) and "t" in row and "kind" in row:
                    rows.append(row)
                else:
                    problems.append(f"events.jsonl: line {lineno} is not an event")
    columns = column_names(TimelineEvent)
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns}).astype({"t": float})
    frame = pd.DataFrame(rows)
    for col in columns:
        if col not in frame:
            frame[col] = None
    frame["t"] = frame["t"].astype(float)
    return frame[columns].sort_values("t", kind="stable").reset_index(drop=True)
