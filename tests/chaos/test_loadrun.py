"""Load-run probes read live.json; the actions fail with a reason, never hang."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from loadlab.chaos.loadrun import actions, probes


def _live(run_dir: Path, **fields: object) -> None:
    status = {
        "t": 0.0,
        "state": "running",
        "users": 10,
        "turns_in_flight": 3,
        "awaiting_first_token": 1,
        "turns_done": 100,
        "turns_failed": 2,
        "sessions": {"clean": 5, "resumed": 1},
        "window_s": 30.0,
        "window": {"turns": 40, "p99_ms": 4200.0, "error_rate": 0.05},
    }
    status.update(fields)
    (run_dir / "live.json").write_text(json.dumps(status))


def test_continuity_probe_counts_lost_and_duplicated_sessions(tmp_path: Path) -> None:
    _live(tmp_path)
    assert probes.session_continuity(run_dir=str(tmp_path))
    _live(tmp_path, sessions={"clean": 5, "restarted": 1})
    assert not probes.session_continuity(run_dir=str(tmp_path))
    assert probes.session_continuity(max_restarted=1, run_dir=str(tmp_path))
    _live(tmp_path, sessions={"duplicated": 1})
    assert not probes.session_continuity(max_restarted=5, run_dir=str(tmp_path))
    _live(tmp_path, sessions={"failed": 2})
    assert probes.session_continuity(run_dir=str(tmp_path))
    assert not probes.session_continuity(max_failed=1, run_dir=str(tmp_path))


def test_threshold_probes_use_the_live_window(tmp_path: Path) -> None:
    _live(tmp_path)
    assert probes.p99_below(5000, run_dir=str(tmp_path))
    assert not probes.p99_below(4000, run_dir=str(tmp_path))
    assert probes.error_rate_below(0.1, run_dir=str(tmp_path))
    assert not probes.error_rate_below(0.01, run_dir=str(tmp_path))
    _live(tmp_path, window={"turns": 0, "p99_ms": None, "error_rate": 0.0})
    assert probes.p99_below(1, run_dir=str(tmp_path)), "nothing measured yet: nothing violated"


def test_run_directory_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _live(tmp_path, users=7)
    monkeypatch.setenv("LOADLAB_RUN_DIR", str(tmp_path))
    assert probes.live_status()["users"] == 7
    monkeypatch.delenv("LOADLAB_RUN_DIR")
    with pytest.raises(ActivityFailed, match="LOADLAB_RUN_DIR"):
        probes.live_status()


def test_waiting_for_turns_in_flight_returns_or_times_out_with_the_last_status(
    tmp_path: Path,
) -> None:
    _live(tmp_path, turns_in_flight=3)
    assert actions.wait_for_turns_in_flight(min_turns=3, run_dir=str(tmp_path))["users"] == 10
    with pytest.raises(ActivityFailed, match=r"did not come within 0\.3 s") as missed:
        actions.wait_for_turns_in_flight(min_turns=50, timeout_s=0.3, run_dir=str(tmp_path))
    assert "'turns_in_flight': 50" in str(missed.value) and "'turns_in_flight': 3" in str(
        missed.value
    )
    _live(tmp_path, state="stopped")
    with pytest.raises(ActivityFailed, match="ended before"):
        actions.wait_for_turns_in_flight(min_turns=1, timeout_s=5, run_dir=str(tmp_path))


def test_stop_load_without_a_run_is_a_no_op_and_start_needs_a_target(tmp_path: Path) -> None:
    assert actions.stop_load(run_dir=str(tmp_path)) == {
        "pid": None,
        "stopped": False,
        "exit_code": None,
    }
    scenario = Path(__file__).resolve().parents[2] / "scenarios" / "ci_smoke.yaml"
    with pytest.raises(ActivityFailed, match="no target URL"):
        actions.start_load(str(scenario), run_dir=str(tmp_path))


def test_a_strike_waits_for_turns_whose_sessions_have_state_at_stake(tmp_path: Path) -> None:
    # Many turns in flight, but all of them first turns: nothing to lose yet.
    _live(tmp_path, turns_in_flight=30, turns_in_flight_at_stake=0, turns_in_flight_with_cart=0)
    with pytest.raises(ActivityFailed, match="turns_in_flight_at_stake"):
        actions.wait_for_turns_in_flight(
            min_turns=1, min_at_stake=5, timeout_s=0.3, run_dir=str(tmp_path)
        )
    _live(tmp_path, turns_in_flight=30, turns_in_flight_at_stake=6, turns_in_flight_with_cart=0)
    assert actions.wait_for_turns_in_flight(min_at_stake=5, run_dir=str(tmp_path))
    with pytest.raises(ActivityFailed, match="turns_in_flight_with_cart"):
        actions.wait_for_turns_in_flight(min_with_cart=2, timeout_s=0.3, run_dir=str(tmp_path))
    _live(tmp_path, turns_in_flight=30, turns_in_flight_at_stake=6, turns_in_flight_with_cart=2)
    status = actions.wait_for_turns_in_flight(min_with_cart=2, run_dir=str(tmp_path))
    assert status["turns_in_flight_with_cart"] == 2
