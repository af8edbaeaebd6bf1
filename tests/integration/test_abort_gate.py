"""An ``abort: true`` gate stops the load and reverts the fault within 2 s of the breach."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from loadlab.analysis.rundata import load_run

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW_S = 5.0
LIMIT_MS = 1500.0

EXPERIMENT = {
    "version": "1.0.0",
    "title": "The LLM slows down in the middle of a flash sale",
    "description": "An abort gate on P99 must stop the load and revert the slowdown.",
    "configuration": {
        "loadlab_run_dir": {"type": "env", "key": "LOADLAB_RUN_DIR"},
        "scenario": {"type": "env", "key": "LOADLAB_SCENARIO"},
    },
    "controls": [
        {
            "name": "loadlab-timeline",
            "provider": {
                "type": "python",
                "module": "loadlab.chaos.control",
                "arguments": {"run_dir": "${loadlab_run_dir}"},
            },
        }
    ],
    "method": [
        {
            "type": "action",
            "name": "start-flash-sale",
            "provider": {
                "type": "python",
                "module": "loadlab.chaos.loadrun.actions",
                "func": "start_load",
                "arguments": {"scenario": "${scenario}"},
            },
        },
        {
            "type": "action",
            "name": "wait-until-turns-are-in-flight",
            "provider": {
                "type": "python",
                "module": "loadlab.chaos.loadrun.actions",
                "func": "wait_for_turns_in_flight",
                "arguments": {"min_turns": 3, "min_at_stake": 2, "timeout_s": 120},
            },
        },
        {
            "type": "action",
            "name": "llm-slowdown",
            "provider": {
                "type": "python",
                "module": "loadlab.chaos.downstream.actions",
                "func": "llm_slowdown",
                # 60 simulated seconds before the first token (3 s at the stack's 0.05)
                "arguments": {"extra_latency_ms": 60000, "duration_s": 120},
            },
        },
        {
            "type": "action",
            "name": "wait-for-the-flash-sale-to-end",
            "provider": {
                "type": "python",
                "module": "loadlab.chaos.loadrun.actions",
                "func": "wait_for_load_end",
                "arguments": {"timeout_s": 300},
            },
        },
    ],
    "rollbacks": [
        {
            "type": "action",
            "name": "stop-the-flash-sale",
            "provider": {
                "type": "python",
                "module": "loadlab.chaos.loadrun.actions",
                "func": "stop_load",
                "arguments": {"grace_s": 30},
            },
        }
    ],
}


def test_a_broken_abort_gate_stops_the_load_and_reverts_the_fault_within_2_s(
    tmp_path: Path,
) -> None:
    experiment = tmp_path / "llm-slowdown.json"
    experiment.write_text(json.dumps(EXPERIMENT))
    scenario = tmp_path / "abort.yaml"
    text = (REPO / "scenarios" / "ci_smoke.yaml").read_text().split("\nslo:")[0]
    scenario.write_text(
        text + f"\nslo:\n  p99_ms: {{max: {LIMIT_MS:g}, window_s: {WINDOW_S:g}, abort: true}}\n"
    )
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "gameday", str(experiment),
            "--scenario", str(scenario), "--replicas", "2", "--stack-time-scale", "0.05",
            "--runs-root", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=400, check=False,
        env=os.environ,
    )  # fmt: skip
    output = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 6, output
    (run_dir,) = (tmp_path / "runs").iterdir()
    run = load_run(run_dir)
    stops = run.events[run.events["kind"] == "stop"]
    by_name = dict(list(stops.groupby("name")))
    assert set(by_name) >= {"breach", "revert", "stop_load"}, stops
    t_breach = float(by_name["breach"]["t"].iloc[0])
    reverts = by_name["revert"]
    llm = reverts[reverts["attrs"].map(lambda a: a["target"]) == "llm"]
    assert list(llm["attrs"].map(lambda a: a["outcome"])) == ["reverted"], reverts
    assert float(llm["t"].iloc[0]) - t_breach <= 2.0
    t_stop = float(by_name["stop_load"]["t"].iloc[0])
    assert t_stop - t_breach <= 2.0

    # When did the breach become observable? The first turn end after which the
    # P99 of the last WINDOW_S seconds of successful turns exceeds the limit.
    turns = run.turns[run.turns["ok"]].sort_values("t_end")
    ends = turns["t_end"].to_numpy()
    latency = ((turns["t_end"] - turns["t_start"]) * 1000.0).to_numpy()
    observable = next(
        end
        for i, end in enumerate(ends)
        if (window := latency[: i + 1][ends[: i + 1] >= end - WINDOW_S]).size >= 20
        and np.percentile(window, 99, method="inverted_cdf") > LIMIT_MS
    )
    assert t_breach - observable <= 2.0, (t_breach, observable)
    # the load stopped: no turn started more than 2 s after the breach
    assert float(run.turns["t_start"].max()) <= t_breach + 2.0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["end_reason"] == "aborted" and "P99" in manifest["aborted_by"]
    junit = (run_dir / "junit.xml").read_text()
    assert 'name="p99_ms[5s]"' in junit
