"""`loadlab gameday chaos/llm-429-storm.json`: an LLM 429 storm as a lease, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadlab.analysis.rundata import load_run

REPO = Path(__file__).resolve().parents[2]
STORM = REPO / "chaos" / "llm-429-storm.json"
STORM_S = 8.0

pytestmark = pytest.mark.integration


def test_a_429_storm_lands_on_the_timeline_shows_in_the_turns_and_ends_by_itself(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "gameday", str(STORM),
            "--scenario", "ci_smoke.yaml", "--replicas", "2", "--stack-time-scale", "0.05",
            "--runs-root", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        env=os.environ
        | {"LOADLAB_STRIKE_IN_FLIGHT": "3", "LOADLAB_FAULT_DURATION_S": str(STORM_S)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["status"] == "completed" and not journal["deviated"]
    run = load_run(run_dir)
    events = run.events

    # The storm is a fault with its lease; the rollback that clears it is a note.
    faults = events[events["kind"] == "fault"]
    assert set(faults["name"]) == {"llm-429-storm"}
    start, end = (row for _, row in faults.iterrows())
    assert (start["attrs"]["phase"], end["attrs"]["phase"]) == ("start", "end")
    assert end["target"] == "llm" and end["attrs"]["reject_fraction"] == 0.5
    lease = float(end["lease_expires"])
    assert lease == end["attrs"]["expires_at"]
    assert float(start["t"]) + STORM_S <= lease <= float(end["t"]) + STORM_S
    notes = events[events["kind"] == "note"]
    assert "clear-llm-faults" in set(notes["name"])

    # The agent saw the 429s and retried them while the storm lasted, and not after:
    # the lease ended the storm long before the rollback ran at the end of the load.
    turns = run.turns
    t_fault = float(start["t"])
    during = turns[(turns["t_start"] >= t_fault) & (turns["t_end"] <= lease)]
    after = turns[turns["t_start"] > lease + 0.5]
    assert len(during) and len(after), (len(during), len(after))
    assert during["llm_throttles"].sum() > 0 and during["llm_retries"].sum() > 0
    assert after["llm_throttles"].sum() == 0
    assert float(notes[notes["name"] == "clear-llm-faults"]["t"].iloc[0]) > after["t_end"].max()

    verdicts = run.sessions["verdict"].value_counts().to_dict()
    assert verdicts.get("restarted", 0) == 0 and verdicts.get("duplicated", 0) == 0, verdicts
    assert "experiment:    completed, hypothesis met" in proc.stdout
