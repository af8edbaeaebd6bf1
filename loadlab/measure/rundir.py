"""The run directory: where a run's timeline lives on disk.

Layout (DESIGN.md, "The run directory")::

    runs/<UTC time>-<name>/
        manifest.json          scenario, shape, target, versions, seeds, start/end
        requests.parquet/      one row per HTTP request / stream   (parquet dataset:
        turns.parquet/         one row per logical turn             one part file per
        sessions.parquet/      one row per session, with verdicts   flush, written
        pressure.parquet/      downstream samples                   atomically)
        events.jsonl           phases, faults, user-count samples
        summary.json, report.html, junit.xml   derived (``loadlab report RUN_DIR``)

The row tables are parquet *datasets* (a directory of part files) rather than
single files: a parquet file is only readable once its footer is written, so a
file rewritten in place would be lost to a SIGKILL. Each flush writes a new part
to a dot-named temporary file and renames it into place, which is atomic, so a
killed harness loses at most the rows of its last flush interval. pandas, pyarrow
and DuckDB all read such a directory as one table. When the recorder closes, each
table's parts are compacted into one file named for the flushes it spans
(``part-000000-000999.parquet``, :mod:`loadlab.measure.parts`), so a finished
run is read one file per table.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadlab.errors import RunDirectoryError
from loadlab.redact import Redactor
from loadlab.rows import append_lines

__all__ = [
    "EVENTS",
    "MANIFEST",
    "TABLES",
    "RunDirectory",
    "RunManifest",
    "append_lines",
    "check_new_run_dir",
    "new_run_dir",
    "safe_name",
    "write_json_atomic",
]

TABLES: tuple[str, ...] = ("requests", "turns", "sessions", "pressure")
MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class RunManifest:
    """What was run, against what, with which versions and seeds."""

    run_id: str
    name: str
    started_at: float
    scenario_path: str | None
    scenario_sha256: str | None
    scenario: dict[str, Any]
    target: dict[str, Any]
    versions: dict[str, str]
    seed: int
    role: str = "local"
    ended_at: float | None = None
    end_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def safe_name(name: str) -> str:
    """Return ``name`` reduced to characters that are safe in a directory name."""
    cleaned = _NAME_OK.sub("-", name).strip("-.")
    return cleaned or "run"


def new_run_dir(root: Path, name: str, *, now: datetime | None = None) -> Path:
    """Create and return a fresh ``<root>/<UTC time>-<name>`` directory."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = root / f"{stamp}-{safe_name(name)}"
    path = base
    n = 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def check_new_run_dir(path: Path, *, flag: str = "--run-dir") -> None:
    """Refuse a run directory the run could not write alone, before anything starts.

    A file, a path under a file, or a directory that already holds something
    (a second run would merge its row parts into the first one's): each is
    a :class:`RunDirectoryError` naming the path and a free one. An empty
    directory is fine.
    """
    shown = str(path)
    if path.exists() and not path.is_dir():
        raise RunDirectoryError(
            f"{flag} {shown!r} is a file, not a directory",
            hint=f"pass a directory path that does not exist yet, e.g. {_free_path(path)}",
        )
    if path.is_dir():
        try:
            entries = sorted(entry.name for entry in path.iterdir())
        except OSError as exc:
            raise RunDirectoryError(
                f"{flag} {shown!r} cannot be read ({exc.strerror})",
                hint="pass a directory you can write to",
            ) from None
        if not entries:
            return
        listed = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        what = (
            "already holds a run (manifest.json)"
            if MANIFEST in entries
            else f"is not empty (it holds {listed})"
        )
        raise RunDirectoryError(
            f"{flag} {shown!r} {what}: a second run would be merged into it",
            hint=f"pass a new directory, e.g. {_free_path(path)}, or remove the old one first",
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise RunDirectoryError(
                    f"{flag} {shown!r} is under {str(parent)!r}, which is a file",
                    hint="pass a path under a directory",
                )
            if not os.access(parent, os.W_OK | os.X_OK):
                raise RunDirectoryError(
                    f"{flag} {shown!r} cannot be created: {str(parent)!r} is not writable",
                    hint="pass a path under a directory you can write to",
                )
            return


def _free_path(path: Path) -> Path:
    n = 2
    while path.with_name(f"{path.name}-{n}").exists():
        n += 1
    return path.with_name(f"{path.name}-{n}")


class RunDirectory:
    """Paths and manifest handling for one run directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def table(self, name: str) -> Path:
        """Return the dataset directory of a row table (``requests``, ``turns`` ...)."""
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r}; expected one of {TABLES}")
        return self.path / f"{name}.parquet"

    @property
    def events(self) -> Path:
        """Path of the events log (one JSON object per line)."""
        return self.path / EVENTS

    @property
    def manifest_path(self) -> Path:
        """Path of manifest.json."""
        return self.path / MANIFEST

    def write_manifest(self, manifest: RunManifest) -> None:
        """Write manifest.json atomically."""
        write_json_atomic(self.manifest_path, asdict(manifest))

    def read_manifest(self) -> dict[str, Any]:
        """Read manifest.json, with a clear error when the directory is not a run."""
        if not self.path.is_dir():
            raise RunDirectoryError(
                f"run directory {str(self.path)!r} does not exist",
                hint="pass a directory created by `loadlab run` (see `ls runs/`)",
            )
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise RunDirectoryError(
                f"{str(self.path)!r} has no {MANIFEST}: it is not a loadlab run directory",
                hint="pass a directory created by `loadlab run` (see `ls runs/`)",
            ) from exc
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise RunDirectoryError(
                f"{self.manifest_path} is not valid JSON ({_first_line(exc)})",
                hint="restore it from a backup or re-run; the row files are still readable",
            ) from None
        except OSError as exc:  # a directory named manifest.json, no permission
            raise RunDirectoryError(
                f"{self.manifest_path} cannot be read ({exc.strerror or exc})",
                hint="manifest.json must be the JSON file loadlab wrote; restore it or re-run",
            ) from None
        if not isinstance(data, dict):
            raise RunDirectoryError(f"{self.manifest_path} does not hold a JSON object")
        return data

    def update_manifest(self, **changes: Any) -> None:
        """Merge ``changes`` into manifest.json (used to stamp the end of a run)."""
        data = self.read_manifest()
        data.update(changes)
        write_json_atomic(self.manifest_path, data)


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temporary file and rename, so readers never see half."""
    tmp = path.with_name(f".{path.name}.tmp")
    # manifest.json (the target URL), live.json, locust_final.json: never a credential
    text = json.dumps(Redactor.from_env().tree(data), indent=2, sort_keys=True, default=str)
    tmp.write_text(text + "\n")
    os.replace(tmp, path)
