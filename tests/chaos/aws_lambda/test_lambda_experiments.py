"""The Lambda experiments validate, and their Lambda activities run under plain `chaos run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chaoslib.experiment import ensure_experiment_is_valid
from lambda_chaos_support import events_of

from loadlab.chaos import discover
from loadlab.chaos.aws_lambda.aws_clients import Clients, reserved_concurrency
from loadlab.chaos.aws_lambda.lease_store import list_leases

REPO = Path(__file__).resolve().parents[3]
EXPERIMENTS = ("lambda-env-kill-mid-session", "lambda-deploy-during-sale", "lambda-throttle")
LAMBDA_MODULES = ("loadlab.chaos.aws_lambda.actions", "loadlab.chaos.aws_lambda.probes")


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((REPO / "chaos" / f"{name}.json").read_text()))


def activities(experiment: dict[str, Any]) -> list[dict[str, Any]]:
    hypothesis = experiment.get("steady-state-hypothesis", {}).get("probes", [])
    return [*hypothesis, *experiment["method"], *experiment.get("rollbacks", [])]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_each_experiment_validates_and_reads_the_function_from_the_environment(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOADLAB_RUN_DIR", str(tmp_path))
    experiment = load(name)
    ensure_experiment_is_valid(experiment)  # imports every module, binds every argument
    assert experiment["configuration"]["function_name"] == {
        "type": "env",
        "key": "LOADLAB_LAMBDA_FUNCTION",
        "default": "loadlab-agent",
    }
    lambda_calls = [
        a for a in activities(experiment) if a["provider"].get("module") in LAMBDA_MODULES
    ]
    assert lambda_calls and all(
        a["provider"]["arguments"]["function_name"] == "${function_name}" for a in lambda_calls
    )
    # Every fault has its rollback.
    faults = {a["provider"]["func"] for a in experiment["method"]} & {
        "throttle",
        "kill_environments",
        "recycle_environments",
    }
    undo = {"throttle": "restore_concurrency", "kill_environments": "clear_kill_orders",
            "recycle_environments": "restore_configuration"}  # fmt: skip
    rollbacks = {a["provider"]["func"] for a in experiment["rollbacks"]}
    assert len(faults) == 1 and undo[faults.pop()] in rollbacks
    assert experiment["controls"][0]["provider"]["module"] == "loadlab.chaos.control"


def test_discovery_lists_the_lambda_activities() -> None:
    found = {(a["type"], a["name"]) for a in discover()["activities"]}
    assert {
        ("action", "throttle"),
        ("action", "restore_concurrency"),
        ("action", "kill_environments"),
        ("action", "clear_kill_orders"),
        ("action", "recycle_environments"),
        ("action", "restore_configuration"),
        ("action", "revert_expired_leases"),
        ("probe", "function_concurrency"),
        ("probe", "throttle_active"),
        ("probe", "active_leases"),
        ("probe", "kill_order"),
        ("probe", "kill_order_active"),
    } <= found


@pytest.mark.integration
def test_the_throttle_experiment_runs_under_plain_chaos_run(
    make_function: Callable[..., str], clients: Clients, tmp_path: Path
) -> None:
    """lambda-throttle.json without its load activities, run by `chaos run` against ministack."""
    name = make_function(reserved=8)
    experiment = load("lambda-throttle")
    keep = ("loadlab.chaos.aws_lambda",)

    def lambda_only(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [a for a in items if str(a["provider"].get("module", "")).startswith(keep)]

    hypothesis = experiment["steady-state-hypothesis"]
    hypothesis["probes"] = lambda_only(hypothesis["probes"])
    experiment["method"] = lambda_only(experiment["method"])
    # Instead of the load: wait out the throttle's lease, then revert what is due.
    revert = {
        "type": "action",
        "name": "revert-expired-leases",
        "provider": {
            "type": "python",
            "module": "loadlab.chaos.aws_lambda.actions",
            "func": "revert_expired_leases",
        },
        "pauses": {"before": 1.5},
    }
    experiment["method"].insert(2, revert)
    experiment["rollbacks"] = lambda_only(experiment["rollbacks"])
    for unused in ("scenario", "strike_when_in_flight", "p99_limit_ms", "max_error_rate"):
        experiment["configuration"].pop(unused)
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = dict(os.environ) | {
        "LOADLAB_RUN_DIR": str(run_dir),
        "LOADLAB_LAMBDA_FUNCTION": name,
        "LOADLAB_LAMBDA_CONCURRENCY": "0",
        "LOADLAB_FAULT_DURATION_S": "1",
    }
    chaos = Path(sys.executable).with_name("chaos")
    done = subprocess.run(
        [
            str(chaos), "--no-version-check", "--no-log-file",
            "--settings", str(tmp_path / "settings.yaml"),
            "run", "--journal-path", str(tmp_path / "journal.json"),
            "--rollback-strategy", "always", str(path),
        ],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "completed" and not journal["deviated"], done.stderr[-3000:]

    by_name = {run["activity"]["name"]: run for run in journal["run"]}
    thrown = by_name["throttle-the-agent-function"]["output"]
    assert thrown["reserved_concurrency"] == 0 and thrown["previous"] == 8
    assert by_name["reserved-concurrency-in-force"]["output"]["throttled"] is True
    (reverted,) = by_name["revert-expired-leases"]["output"]
    assert (reverted["lease_id"], reverted["why"]) == (thrown["lease_id"], "expired")
    assert by_name["reserved-concurrency-after-the-sale"]["output"]["reserved_concurrency"] == 8
    (rollback,) = journal["rollbacks"]
    assert rollback["output"]["reserved_concurrency"] == 8 and rollback["output"]["reverted"] == []
    assert reserved_concurrency(clients.lambda_, name) == 8
    assert list_leases(clients, function_name=name) == []

    # The control's fault (with its lease) and the lease's own start and end.
    faults = [e for e in events_of(str(run_dir / "events.jsonl")) if e["kind"] == "fault"]
    control = [e for e in faults if e["name"] == "throttle-the-agent-function"]
    lease = [e for e in faults if e["name"] == "lease throttle"]
    assert [e["attrs"]["phase"] for e in control] == ["start", "end"]  # type: ignore[index]
    assert control[1]["lease_expires"] == thrown["expires_at"]
    assert control[1]["target"] == f"function_name={name}"
    assert [e["attrs"]["phase"] for e in lease] == ["start", "end"]  # type: ignore[index]
