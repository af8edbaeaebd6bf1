"""Downstream faults on the run timeline: the lease and what was set, rollbacks as notes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadlab.chaos import control


def _activity(name: str, func: str) -> dict[str, Any]:
    provider = {"type": "python", "module": "loadlab.chaos.downstream.actions", "func": func}
    return {"type": "action", "name": name, "provider": provider}


def _events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_a_downstream_fault_carries_its_lease_and_values_and_its_rollback_is_a_note(
    tmp_path: Path,
) -> None:
    storm = _activity("llm-429-storm", "llm_429_storm")
    clear = _activity("clear-llm-faults", "llm_faults_clear")
    experiment = {"title": "storm", "method": [storm], "rollbacks": [clear]}
    output = {
        "target": "llm",
        "url": "http://127.0.0.1:1234",
        "reject_fraction": 0.5,
        "expires_at": 1_700_000_060.0,
        "duration_s": 60.0,
        "active": True,
        "fault": {"reject_fraction": 0.5, "expires_at": 1_700_000_060.0},
    }
    run_dir = str(tmp_path)
    control.before_activity_control(storm, run_dir=run_dir, experiment=experiment)
    control.after_activity_control(
        storm, state={"status": "succeeded", "output": output}, run_dir=run_dir,
        experiment=experiment,
    )  # fmt: skip
    control.before_activity_control(clear, run_dir=run_dir, experiment=experiment)
    control.after_activity_control(
        clear, state={"status": "succeeded", "output": {"active": False}}, run_dir=run_dir,
        configuration={"anything": "set"}, experiment=experiment,
    )  # fmt: skip

    start, end, note = _events(tmp_path)
    assert (start["kind"], end["kind"], note["kind"]) == ("fault", "fault", "note")
    assert start["lease_expires"] is None  # unknown until the action answered
    assert end["lease_expires"] == 1_700_000_060.0
    assert end["target"] == "llm"
    assert end["attrs"]["reject_fraction"] == 0.5 and end["attrs"]["expires_at"] == 1_700_000_060.0
    assert end["attrs"]["phase"] == "end" and end["attrs"]["fault_id"] == start["attrs"]["fault_id"]
    assert "fault" not in end["attrs"]  # only scalars are copied; the rest stays in "output"
    assert note["name"] == "clear-llm-faults"
