"""`loadlab gameday PLAN.yaml` end to end: two experiments, the index, the history; the radius."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pod_kills import ready_pods  # tests/integration/pod_kills.py
from stack_thread import StackThread  # tests/stack_thread.py

from loadlab.cli import main
from loadlab.embedded.stack import EmbeddedStack

REPO = Path(__file__).resolve().parents[2]
POD_KILL = REPO / "chaos" / "pod-kill-mid-session.json"
STORM = REPO / "chaos" / "llm-429-storm.json"

pytestmark = pytest.mark.integration


def test_a_two_experiment_plan_passes_twice_and_history_shows_two_game_days(
    tmp_path: Path,
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "name: nightly\n"
        "scenario: ci_smoke.yaml\n"
        "experiments:\n"
        f"  - path: {POD_KILL}\n"
        "    vars: {strike_when_in_flight: 3, strike_at_stake: 2, strike_with_cart: 1}\n"
        f"  - path: {STORM}\n"
        "    vars: {strike_when_in_flight: 3, fault_duration_s: 6}\n"
        "blast_radius: {namespaces: [default], label_selectors: ['app=shopping-agent']}\n"
    )
    runs = tmp_path / "runs"
    command = [
        sys.executable, "-m", "loadlab", "gameday", str(plan), "--replicas", "2",
        "--stack-time-scale", "0.05", "--runs-root", str(runs),
        "--state-dir", str(tmp_path / "state"),
    ]  # fmt: skip
    for _ in range(2):
        proc = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
        assert "game day 'nightly': PASS" in proc.stdout
    days = sorted(runs.iterdir())
    assert len(days) == 2
    for day in days:
        index = json.loads((day / "gameday.json").read_text())
        assert index["passed"] is True and index["stopped"] is None
        assert [r["run_dir"] for r in index["experiments"]] == [
            "01-pod-kill-mid-session",
            "02-llm-429-storm",
        ]
        assert all((day / r["run_dir"] / "report.html").is_file() for r in index["experiments"])

    history = subprocess.run(
        [sys.executable, "-m", "loadlab", "history", str(runs), "--no-fail"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert history.returncode == 0, history.stderr
    for day in days:
        assert day.name in history.stdout
    assert history.stdout.count("(2 runs)") == 2, history.stdout
    assert (runs / "history.html").is_file()


def test_a_plan_outside_the_radius_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = EmbeddedStack(replicas=2, time_scale=0.05, state_dir=tmp_path / "state")
    with StackThread(stack) as running:
        endpoints = running.state.endpoints
        monkeypatch.setenv("KUBERNETES_HOST", endpoints.fleet_url)
        before = sorted(ready_pods(running))
        plan = tmp_path / "plan.yaml"
        plan.write_text(
            f"experiments: [{POD_KILL}]\nblast_radius: {{label_selectors: ['app=canary']}}\n"
        )
        code = main(
            ["gameday", str(plan), "--target", endpoints.agent_url, "--runs-root", str(tmp_path)]
        )
        assert code == 2
        assert "outside the blast radius" in capsys.readouterr().err
        assert sorted(ready_pods(running)) == before
        assert len(before) == 2
    assert not list(tmp_path.glob("gameday-*"))
