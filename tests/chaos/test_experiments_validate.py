"""Every shipped experiment (chaos/*.json) passes ``chaos validate`` in a clean environment.

Clean: the environment holds PATH, HOME (an empty directory, so no
``~/.chaostoolkit/settings.yaml`` is read), LANG and only the variables the
experiment's own ``configuration`` and ``secrets`` blocks require (an ``env`` entry
without a ``default``); the working directory is an empty temporary directory, so a
module or a relative path that resolves only from the repository root fails here.
``chaos validate`` imports each activity's module and checks its arguments against
the function's signature, so a renamed action or argument fails too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((ROOT / "chaos").glob("*.json"))
CHAOS = Path(sys.executable).with_name("chaos")
VALIDATE_TIMEOUT_S = 120


def required_env(experiment: dict[str, Any]) -> set[str]:
    """The environment variables an experiment cannot be loaded without."""
    entries: list[Any] = list((experiment.get("configuration") or {}).values())
    for scope in (experiment.get("secrets") or {}).values():
        if isinstance(scope, dict):
            entries.extend(scope.values())
    return {
        entry["key"]
        for entry in entries
        if isinstance(entry, dict) and entry.get("type") == "env" and "default" not in entry
    }


def clean_env(experiment: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    for key in sorted(required_env(experiment)):
        # LOADLAB_RUN_DIR is the only one today; `loadlab gameday` sets it.
        env[key] = str(tmp_path / "run") if key == "LOADLAB_RUN_DIR" else f"placeholder-{key}"
    return env


def test_experiments_are_shipped() -> None:
    assert EXPERIMENTS, "no chaos/*.json found"
    assert CHAOS.exists(), f"{CHAOS} is missing: run scripts/bootstrap"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_chaos_validate(path: Path, tmp_path: Path) -> None:
    experiment = json.loads(path.read_text(encoding="utf-8"))
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    result = subprocess.run(
        [str(CHAOS), "--no-version-check", "validate", str(path)],
        cwd=workdir,
        env=clean_env(experiment, tmp_path),
        capture_output=True,
        text=True,
        timeout=VALIDATE_TIMEOUT_S,
        check=False,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, (
        f"chaos validate {path.name} exited {result.returncode}:\n{output}"
    )
    assert "experiment syntax and semantic look valid" in output, output


def test_required_env_is_read_from_the_configuration() -> None:
    experiment = {
        "configuration": {
            "run_dir": {"type": "env", "key": "A"},
            "scenario": {"type": "env", "key": "B", "default": "x"},
            "plain": "value",
        },
        "secrets": {"aws": {"token": {"type": "env", "key": "C"}}},
    }
    assert required_env(experiment) == {"A", "C"}


def test_validate_fails_without_a_required_variable(tmp_path: Path) -> None:
    """The clean environment really is clean: without the variables the
    configuration requires, an experiment does not validate."""
    path = next(p for p in EXPERIMENTS if required_env(json.loads(p.read_text())))
    result = subprocess.run(
        [str(CHAOS), "--no-version-check", "validate", str(path)],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=VALIDATE_TIMEOUT_S,
        check=False,
    )
    assert result.returncode != 0
    assert "environment key that does not exist" in result.stdout + result.stderr
