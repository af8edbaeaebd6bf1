"""``loadlab gameday`` checks everything before it starts anything.

A refused game day exits 2 (or 3 for an unreachable target) naming the
problem, and leaves nothing behind: no run directory, no chaostoolkit.log, no
embedded stack (whose state directory would appear under ``--state-dir``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loadlab.cli import main

REPO = Path(__file__).resolve().parents[2]
SHIPPED = json.loads((REPO / "chaos" / "pod-kill-mid-session.json").read_text())
Capture = pytest.CaptureFixture[str]


def edited(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    experiment = copy.deepcopy(SHIPPED)
    change(experiment)
    return experiment


def gameday(tmp_path: Path, capsys: Capture, experiment: Path, *extra: str) -> tuple[int, str]:
    argv = ["gameday", str(experiment), "--runs-root", str(tmp_path / "runs"),
            "--state-dir", str(tmp_path / "state"), *extra]  # fmt: skip
    code = main(argv)
    return code, capsys.readouterr().err


def assert_nothing_left(tmp_path: Path) -> None:
    assert not (tmp_path / "runs").exists(), "a run directory was made"
    assert not (tmp_path / "state").exists(), "the embedded stack was started"
    assert not list(tmp_path.rglob("chaostoolkit.log"))


def provider(experiment: dict[str, Any], **changes: object) -> None:
    experiment["method"][0]["provider"].update(changes)


@pytest.mark.parametrize(
    ("experiment", "named"),
    [
        (
            edited(lambda e: provider(e, module="loadlab.no_such_module")),
            "could not find Python module 'loadlab.no_such_module' in activity 'start-flash-sale'",
        ),
        (
            edited(lambda e: provider(e, func="no_such_function")),
            "does not expose a function called 'no_such_function'",
        ),
        (
            edited(lambda e: e["method"][0]["provider"]["arguments"].update(no_such_argument=1)),
            "no_such_argument",
        ),
        (edited(lambda e: e.update(method=[1, 2])), "method[0] is 1, not an activity"),
        (edited(lambda e: e.update(method="kill")), "'method' must be a non-empty list"),
        (edited(lambda e: e.update(rollbacks={"a": 1})), "'rollbacks' is {'a': 1}, not a list"),
        (
            edited(lambda e: e["method"][0].update(provider="python")),
            "method[0].provider is 'python', not an object",
        ),
        (
            edited(lambda e: e["method"][0].update(type="attack")),
            "'attack' is not a supported activity type",
        ),
        (
            edited(lambda e: e.update({"steady-state-hypothesis": [1]})),
            "'steady-state-hypothesis' is [1], not an object",
        ),
        (
            edited(lambda e: e["configuration"].update(token={"type": "env", "key": "NO_SUCH"})),
            "NO_SUCH",
        ),
        (
            # chaos run only warns, and the game day would run without its timeline
            edited(lambda e: e["controls"][0]["provider"].update(module="no.such.control")),
            "control 'loadlab-timeline' names module 'no.such.control'",
        ),
    ],
)
def test_a_malformed_experiment_is_refused_before_the_stack_starts(
    tmp_path: Path, capsys: Capture, experiment: dict[str, Any], named: str
) -> None:
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment))
    code, err = gameday(tmp_path, capsys, path)
    assert code == 2, err
    assert named in err and "Traceback" not in err
    assert_nothing_left(tmp_path)


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (json.dumps(SHIPPED).encode("utf-16"), "is not UTF-8 text"),
        (bytes(range(256)), "is not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "nests its JSON too deeply"),
        (None, "is a directory, not a file"),
    ],
)
def test_an_experiment_file_that_is_not_json_text_is_refused(
    tmp_path: Path, capsys: Capture, content: bytes | None, named: str
) -> None:
    path = tmp_path / "experiment.json"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    code, err = gameday(tmp_path, capsys, path)
    assert code == 2, err
    assert named in err and str(path) in err
    assert_nothing_left(tmp_path)


def test_an_unreachable_target_leaves_no_run_directory(tmp_path: Path, capsys: Capture) -> None:
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(SHIPPED))
    code, err = gameday(tmp_path, capsys, path, "--target", "http://127.0.0.1:9")
    assert code == 3, err
    assert "cannot reach the target http://127.0.0.1:9" in err
    assert_nothing_left(tmp_path)


def test_a_bad_scenario_is_refused_before_the_stack_starts(tmp_path: Path, capsys: Capture) -> None:
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(SHIPPED))
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("name: x\nname: y\n")
    code, err = gameday(tmp_path, capsys, path, "--scenario", str(scenario))
    assert code == 2 and "duplicate key 'name'" in err
    assert_nothing_left(tmp_path)


def test_every_shipped_experiment_validates_with_what_the_game_day_sets(
    tmp_path: Path, capsys: Capture
) -> None:
    # LOADLAB_RUN_DIR has no default in them: gameday sets it, and validation knows
    for experiment in sorted((REPO / "chaos").glob("*.json")):
        code, err = gameday(tmp_path, capsys, experiment, "--target", "http://127.0.0.1:9")
        assert code == 3, f"{experiment.name}: {err}"
    assert_nothing_left(tmp_path)
