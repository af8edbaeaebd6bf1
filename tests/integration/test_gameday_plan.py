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


def test_a_lease_orphaned_by_a_killed_harness_is_reverted_before_the_next_game_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    import time

    from loadlab.chaos.downstream.probes import llm_fault_active

    stack = EmbeddedStack(replicas=2, time_scale=0.05, state_dir=tmp_path / "state")
    with StackThread(stack) as running:
        state = running.state
        env = os.environ | {
            "LOADLAB_LLM_URL": state.endpoints.llm_url,
            "LOADLAB_ADMIN_TOKEN": state.admin_token,
            "LOADLAB_JWT_SECRET": state.jwt_secret,
        }
        monkeypatch.setenv("LOADLAB_ADMIN_TOKEN", state.admin_token)  # for the probes here
        plan = tmp_path / "storm.yaml"
        plan.write_text(
            "name: storm\nscenario: ci_smoke.yaml\nexperiments:\n"
            f"  - path: {STORM}\n    vars: {{strike_when_in_flight: 2, fault_duration_s: 600}}\n"
        )
        command = [
            sys.executable, "-m", "loadlab", "gameday", str(plan),
            "--target", state.endpoints.agent_url, "--runs-root", str(tmp_path / "runs"),
        ]  # fmt: skip
        killed = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 120
            while not llm_fault_active(state.endpoints.llm_url):
                assert killed.poll() is None, "the game day ended before its fault"
                assert time.monotonic() < deadline, "the fault never came"
                time.sleep(0.2)
            killed.send_signal(signal.SIGKILL)  # the harness alone, mid-fault
            killed.wait(timeout=10)
        finally:
            if killed.poll() is None:
                killed.kill()
        time.sleep(2)  # its children die with it; the fault's 10-minute lease stays
        assert llm_fault_active(state.endpoints.llm_url)

        short = tmp_path / "short.yaml"
        short.write_text(
            "name: short\nscenario: ci_smoke.yaml\nexperiments:\n"
            f"  - path: {STORM}\n    vars: {{strike_when_in_flight: 2, fault_duration_s: 5}}\n"
        )
        proc = subprocess.run(
            [*command[:4], str(short), *command[5:]],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        out = proc.stdout
        assert "before the game day: lease reverted: llm" in out, out[-3000:] + proc.stderr
        assert out.index("lease reverted") < out.index("experiments ->")
        assert proc.returncode == 0, out[-3000:] + proc.stderr[-2000:]
        assert not llm_fault_active(state.endpoints.llm_url)
        (day,) = (tmp_path / "runs").glob("*gameday-short")
        index = json.loads((day / "gameday.json").read_text())
        assert index["reverted_before_start"] and index["passed"]
