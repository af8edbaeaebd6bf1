"""An ``abort: true`` gate stops the load and reverts the fault within 2 s of the breach.

The shipped ``chaos/llm-slowdown.json`` slows every LLM answer down mid-sale; the
scenario carries ``p99_ms: {max: 1500, window_s: 5, abort: true}``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadlab.analysis.rundata import load_run
from loadlab.analysis.stop_timings import stop_timings

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = REPO / "chaos" / "llm-slowdown.json"

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW_S = 5.0
LIMIT_MS = 1500.0
# ci_smoke against 2 pods at 20x: strike early; 60 simulated seconds before each
# first token is 3 s of real time, twice the limit
STRIKE = {
    "LOADLAB_STRIKE_IN_FLIGHT": "3",
    "LOADLAB_STRIKE_AT_STAKE": "2",
    "LOADLAB_LLM_EXTRA_LATENCY_MS": "60000",
}


def test_a_broken_abort_gate_stops_the_load_and_reverts_the_fault_within_2_s(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "abort.yaml"
    text = (REPO / "scenarios" / "ci_smoke.yaml").read_text().split("\nslo:")[0]
    scenario.write_text(
        text + f"\nslo:\n  p99_ms: {{max: {LIMIT_MS:g}, window_s: {WINDOW_S:g}, abort: true}}\n"
    )
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "gameday", str(EXPERIMENT),
            "--scenario", str(scenario), "--replicas", "2", "--stack-time-scale", "0.05",
            "--runs-root", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=400, check=False,
        env=os.environ | STRIKE,
    )  # fmt: skip
    output = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 6, output
    assert "run               missed       aborted after" in proc.stdout, output
    (run_dir,) = (tmp_path / "runs").iterdir()
    run = load_run(run_dir)
    timings = stop_timings(run, limit=LIMIT_MS, window_s=WINDOW_S)
    assert timings is not None, "no breach on the timeline"
    assert timings.gate == "p99_ms[5s]"
    assert "llm" in timings.revert_t, "the LLM slowdown was not reverted"
    assert timings.detect_s is not None and timings.detect_s <= 2.0, timings
    assert timings.revert_s is not None and timings.revert_s <= 2.0, timings
    assert timings.stop_s is not None and timings.stop_s <= 2.0, timings
    # the load stopped: no turn started more than 2 s after the breach
    assert timings.last_turn_start_t is not None
    assert timings.last_turn_start_t <= timings.breach_t + 2.0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["end_reason"] == "aborted" and "P99" in manifest["aborted_by"]
    assert 'name="p99_ms[5s]"' in (run_dir / "junit.xml").read_text()
