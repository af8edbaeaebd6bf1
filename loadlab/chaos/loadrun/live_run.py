"""Where the live run is, for the load-run activities."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from loadlab.rows import LIVE_STATUS_FILE

RUN_DIR_ENV = "LOADLAB_RUN_DIR"


def run_dir_of(run_dir: str | None) -> Path:
    """The run directory given, else ``$LOADLAB_RUN_DIR`` (set by ``loadlab gameday``)."""
    value = run_dir or os.environ.get(RUN_DIR_ENV, "")
    if not value:
        raise ActivityFailed(
            "no run directory: pass run_dir to the activity or set LOADLAB_RUN_DIR "
            "(loadlab gameday sets it)"
        )
    return Path(value)


def read_live(path: Path) -> dict[str, Any] | None:
    """The live status of the run in ``path``, or None while there is none yet."""
    try:
        data = json.loads((path / LIVE_STATUS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
