"""The Chaos Toolkit control writes an experiment's activities onto the run timeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadlab.chaos import control

KILL = {
    "type": "action",
    "name": "terminate-an-agent-pod",
    "provider": {
        "type": "python",
        "module": "chaosk8s.pod.actions",
        "func": "terminate_pods",
        "arguments": {"label_selector": "${selector}", "ns": "default", "qty": 1},
    },
}
START_LOAD = {
    "type": "action",
    "name": "start-flash-sale",
    "provider": {"type": "python", "module": "loadlab.chaos.loadrun.actions", "func": "start_load"},
}
PROBE = {
    "type": "probe",
    "name": "continuity",
    "provider": {
        "type": "python",
        "module": "loadlab.chaos.loadrun.probes",
        "func": "session_continuity",
    },
}


def _events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_a_fault_gets_start_and_end_events_sharing_an_id(tmp_path: Path) -> None:
    config = {"selector": "app=shopping-agent"}
    control.before_activity_control(KILL, run_dir=str(tmp_path), configuration=config)
    state = {"status": "succeeded", "output": ["shopping-agent-abcde"]}
    control.after_activity_control(KILL, state=state, run_dir=str(tmp_path), configuration=config)
    start, end = _events(tmp_path)
    assert start["kind"] == end["kind"] == "fault"
    assert start["attrs"]["fault_id"] == end["attrs"]["fault_id"]
    assert (start["attrs"]["phase"], end["attrs"]["phase"]) == ("start", "end")
    assert start["target"] == "label_selector=app=shopping-agent ns=default"  # substituted
    assert end["target"] == "shopping-agent-abcde"  # what was really killed
    assert end["attrs"]["status"] == "succeeded"
    assert start["t"] <= end["t"]


def test_orchestration_is_a_note_and_probes_are_probes(tmp_path: Path) -> None:
    control.before_activity_control(START_LOAD, run_dir=str(tmp_path))
    control.after_activity_control(START_LOAD, state={"status": "succeeded"}, run_dir=str(tmp_path))
    control.after_activity_control(
        PROBE, state={"status": "succeeded", "output": False}, run_dir=str(tmp_path)
    )
    kinds = [(e["kind"], e["name"]) for e in _events(tmp_path)]
    assert kinds == [("note", "start-flash-sale"), ("probe", "continuity")]
    assert _events(tmp_path)[1]["attrs"]["output"] is False


def test_experiment_phases_carry_status(tmp_path: Path) -> None:
    experiment = {"title": "pods die"}
    control.before_experiment_control(experiment, run_dir=str(tmp_path))
    control.after_experiment_control(
        experiment, state={"status": "completed", "deviated": True}, run_dir=str(tmp_path)
    )
    first, last = _events(tmp_path)
    assert (first["name"], last["name"]) == ("experiment_start", "experiment_end")
    assert last["attrs"] == {"title": "pods die", "status": "completed", "deviated": True}


def test_without_a_run_directory_the_experiment_still_runs(tmp_path: Path) -> None:
    control.before_activity_control(KILL, run_dir="")
    control.before_activity_control(KILL, run_dir="${loadlab_run_dir}")
    control.after_activity_control(KILL, state={}, run_dir=str(tmp_path / "missing"))
    assert not (tmp_path / "missing").exists()


def test_an_action_that_ends_a_fault_is_a_note_not_a_fault(tmp_path: Path) -> None:
    clear = {
        "type": "action",
        "name": "end-the-fault-with-the-sale",
        "provider": {
            "type": "python",
            "module": "loadlab.chaos.downstream.actions",
            "func": "llm_faults_clear",
        },
    }
    storm = {
        "type": "action",
        "name": "llm-429-storm",
        "provider": {
            "type": "python",
            "module": "loadlab.chaos.downstream.actions",
            "func": "llm_429_storm",
        },
    }
    for action in (storm, clear):
        control.before_activity_control(action, run_dir=str(tmp_path))
        control.after_activity_control(action, state={"status": "succeeded"}, run_dir=str(tmp_path))
    kinds = [(e["kind"], e["name"]) for e in _events(tmp_path)]
    assert kinds == [
        ("fault", "llm-429-storm"),
        ("fault", "llm-429-storm"),
        ("note", "end-the-fault-with-the-sale"),
    ]
