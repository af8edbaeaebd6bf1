"""Run directories for the gate and verdict tests: the golden run copied, manifests edited.

The known run (``known_run`` in tests/conftest.py) has 100 ok turns of 1..100 s
(TTFT 1..100 ms) and 1 failed turn, 10 sessions (1 restarted, 1 failed, 2
resumed after 6 and 7 s), 3 cold turns, one LLM call per turn, no audit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "run"


def golden(tmp_path: Path, slo: dict[str, Any] | None = None) -> Path:
    """A copy of the golden run (1 restarted, 1 duplicated, 1 failed session, one
    audit disagreement, 3 DynamoDB throttles, 6 LLM retries of 28 calls, 1 LLM 429)."""
    path = tmp_path / "golden"
    shutil.copytree(GOLDEN, path)
    if slo is not None:
        set_slo(path, slo)
    return path


def set_slo(run: Path, slo: object) -> None:
    """Replace the manifest's ``scenario.slo``."""
    edit_manifest(run, lambda m: m.setdefault("scenario", {}).__setitem__("slo", slo))


def edit_manifest(run: Path, change: Any) -> None:
    """Apply ``change(manifest)`` to the run's manifest.json."""
    path = run / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))
