"""The continuity oracle, on real parts, against each deliberate checkpoint breakage.

For each reference-agent mode a short, compressed flash sale of cart-heavy
sessions runs against a three-pod fleet while the busiest pod is SIGKILLed
several times with turns in flight (see ``pod_kills.py``). The in-band verdicts
in ``sessions.parquet``, the per-turn state in ``turns.parquet`` and each
session's checkpoint item (read from DynamoDB after the run) must show what the
mode breaks, and nothing else:

* ``correct``: interrupted sessions resume, retries of checkpointed turns are
  replays; nothing lost, nothing applied twice;
* ``no_checkpoint``: a session moved to another pod starts from nothing (turn
  count and cart gone): ``restarted``, and no item is ever written;
* ``checkpoint_before_side_effect``: the turn count survives a move but the cart
  change of the last turn does not (the retry replays a checkpoint without it):
  ``restarted`` for a cart item, never for the turn count; out of band, the
  item's cart lags the acknowledged one even for sessions no fault touched;
* ``no_idempotency``: the retry of a turn the dead pod had already checkpointed
  is applied again: ``duplicated``, and no retry is ever a replay.

Each run is then held against every *other* mode's expectations, which must all
fail: the oracle tells the breakages apart, not just "broken" from "fine".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest
from pod_kills import Kill, checkpoint_items, kill_busy_pods, run_locust
from stack_thread import StackThread  # tests/stack_thread.py

from loadlab.analysis.rundata import load_run
from loadlab.embedded.agent.config import AGENT_MODES, AgentMode
from loadlab.embedded.stack import EmbeddedStack

pytestmark = pytest.mark.integration

# Compressed 20x like the stack: 0.1-0.25 s of thinking between turns whose LLM
# call takes ~0.2 s, so about half the shoppers have a turn in flight at any time.
# Cart turns dominate, so most interrupted turns carry a side effect.
SCENARIO = """\
name: oracle_breakage
description: cart-heavy flash sale for the continuity oracle under pod kills
seed: 11
time_scale: 0.05
target:
  protocol: reference
  timeout_s: 10
shape:
  kind: flash_sale
  baseline_users: 4
  peak_users: 16
  ramp_s: 30
  hold_s: 200
  decay_s: 20
  max_spawn_rate: 16
session:
  turns: {min: 5, max: 8}
  think_time: {distribution: uniform, min_s: 2, max_s: 5}
  personas:
    - name: cart_fiddler
      intents: {add_to_cart: 5, remove_from_cart: 2, search: 1}
retry:
  max_attempts: 5
  backoff_s: 2
  backoff_max_s: 8
"""
KILLS = 5


@dataclass(frozen=True)
class KilledRun:
    """What one flash sale under pod kills left behind."""

    mode: str
    sessions: pd.DataFrame
    turns: pd.DataFrame
    requests: pd.DataFrame
    kills: list[Kill]
    items: dict[str, dict[str, Any]]

    @property
    def verdicts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.sessions["verdict"].value_counts().items()}

    def reasons(self, verdict: str) -> list[str]:
        return list(self.sessions.loc[self.sessions["verdict"] == verdict, "verdict_reason"])

    @property
    def answered(self) -> pd.DataFrame:
        """Turns that got their answer, with the state the agent acknowledged."""
        return self.turns[self.turns["ok"] & self.turns["state_turn"].notna()]

    @property
    def retried(self) -> pd.DataFrame:
        """Answered turns that took more than one attempt."""
        answered = self.answered
        return answered[answered["attempts"] > 1]

    def completed(self) -> pd.DataFrame:
        """Sessions that played every planned turn."""
        return self.sessions[self.sessions["turns_done"] == self.sessions["turns_planned"]]

    def stored_cart(self, session_id: str) -> dict[str, int] | None:
        item = self.items.get(session_id)
        if item is None:
            return None
        return {sku: int(units["N"]) for sku, units in item.get("cart", {}).get("M", {}).items()}

    def stored_turn(self, session_id: str) -> int | None:
        item = self.items.get(session_id)
        return None if item is None else int(item["turn"]["N"])

    def item_mismatches(self) -> list[str]:
        """Completed sessions whose checkpoint item differs from the state acknowledged last."""
        answered = self.answered
        last_turn = answered.groupby("session_id")["state_turn"].max()
        wrong = []
        for row in self.completed().to_dict("records"):
            sid = str(row["session_id"])
            stored = (self.stored_turn(sid), self.stored_cart(sid))
            acknowledged = (int(last_turn[sid]), json.loads(str(row["cart_json"])))
            if stored != acknowledged:
                wrong.append(
                    f"{sid} ({row['verdict']}): item (turn, cart) {stored}, "
                    f"acknowledged {acknowledged}"
                )
        return wrong


def play_flash_sale_with_kills(mode: AgentMode, tmp_path: Path) -> KilledRun:
    """Run the scenario against a 3-pod fleet in ``mode``, killing busy pods along the way."""
    scenario = tmp_path / "oracle_breakage.yaml"
    scenario.write_text(SCENARIO)
    run_dir, log = tmp_path / "run", tmp_path / "locust.log"
    stack = EmbeddedStack(
        replicas=3, time_scale=0.05, state_dir=tmp_path / "stack", agent_mode=mode
    )
    with StackThread(stack) as running:
        locust = run_locust(
            scenario=scenario,
            host=running.state.endpoints.agent_url,
            run_dir=run_dir,
            jwt_secret=running.state.jwt_secret,
            log=log,
        )
        try:
            # Kills stop well before the ~14 s shape ends, so sessions play on after them.
            kills = kill_busy_pods(
                running, locust=locust, kills=KILLS, min_in_flight=2, interval_s=1.0, deadline_s=12
            )
            code = locust.wait(timeout=60)
        finally:
            if locust.poll() is None:
                locust.kill()
                locust.wait()
        assert code in (0, 1), log.read_text()[-3000:]
        run = load_run(run_dir)
        items = checkpoint_items(running, list(run.sessions["session_id"]))
    assert run.problems == (), run.problems
    output = log.read_text()
    assert "Traceback" not in output, output[max(0, output.find("Traceback") - 500) :][:3000]
    return KilledRun(
        mode=mode,
        sessions=run.sessions,
        turns=run.turns,
        requests=run.requests,
        kills=kills,
        items=items,
    )


def assert_kills_cut_turns_in_flight(run: KilledRun) -> None:
    """Every kill cut attempts in flight on its pod, and the killed pods served no more."""
    assert len(run.kills) >= 3, run.kills
    assert all(kill.in_flight >= 2 for kill in run.kills), run.kills
    requests = run.requests
    t_end = requests["t_start"] + requests["latency_ms"] / 1000.0
    failed = requests["error_kind"].notna()
    for kill in run.kills:
        # The SIGKILL follows the order by milliseconds; an attempt cut before its
        # ``meta`` event names no pod, so the cut is found by time.
        cut = failed & (requests["t_start"] < kill.t + 0.1) & (t_end >= kill.t)
        assert cut.any(), f"{kill} cut no attempt in flight"
        served_later = (requests["instance_id"] == kill.pod) & (requests["t_start"] > kill.t + 0.5)
        assert not served_later.any(), f"{kill.pod} kept serving after it was killed"
    assert len(run.answered) > 100 and len(run.retried) >= len(run.kills), run.turns.to_string()


# -- what each mode must produce (each also run against the other modes' runs) ----------


def expect_correct(run: KilledRun) -> None:
    """Interrupted sessions resume from their checkpoint; nothing lost or applied twice."""
    verdicts = run.verdicts
    assert verdicts.get("resumed", 0) >= 1, verdicts
    assert verdicts.get("restarted", 0) == 0, run.reasons("restarted")
    assert verdicts.get("duplicated", 0) == 0, run.reasons("duplicated")
    # A session may only fail by being stopped at the end of the run mid-retry.
    failed = run.reasons("failed")
    assert all(reason.startswith("stopped:") for reason in failed), failed
    answered = run.answered
    assert (answered["state_turn"] == answered["turn_index"]).all(), answered.to_string()
    # Most kills land during the LLM call, after the checkpoint: the retry is a replay.
    assert run.retried["replayed"].any(), run.retried.to_string()
    assert run.item_mismatches() == []


def expect_no_checkpoint(run: KilledRun) -> None:
    """Sessions moved off a killed pod start from nothing: turn count and cart lost."""
    verdicts = run.verdicts
    assert verdicts.get("restarted", 0) >= 1, verdicts
    assert verdicts.get("duplicated", 0) == 0, run.reasons("duplicated")
    assert any("agent reports" in reason for reason in run.reasons("restarted")), run.reasons(
        "restarted"
    )
    answered = run.answered
    moved = answered[(answered["state_source"] == "new") & (answered["turn_index"] > 1)]
    assert (moved["state_turn"] < moved["turn_index"]).any(), answered.to_string()
    assert not (answered["state_source"] == "checkpoint").any(), answered.to_string()
    assert run.items == {}, sorted(run.items)


def expect_checkpoint_before_side_effect(run: KilledRun) -> None:
    """The turn count survives a move, the last turn's cart change does not."""
    verdicts = run.verdicts
    assert verdicts.get("restarted", 0) >= 1, verdicts
    assert verdicts.get("duplicated", 0) == 0, run.reasons("duplicated")
    restarted = run.reasons("restarted")
    assert not any("agent reports" in reason for reason in restarted), restarted
    assert all("in cart" in reason for reason in restarted), restarted
    answered = run.answered
    assert (answered["state_turn"] == answered["turn_index"]).all(), answered.to_string()
    assert run.retried["replayed"].any(), run.retried.to_string()
    # Out of band: the item records every turn but lags the cart, even where no
    # fault touched the session and the in-band verdict is clean.
    mismatches = run.item_mismatches()
    assert any("(clean)" in line for line in mismatches), mismatches
    completed = run.completed()
    assert all(
        run.stored_turn(sid) == done
        for sid, done in zip(completed["session_id"], completed["turns_done"], strict=True)
    ), mismatches


def expect_no_idempotency(run: KilledRun) -> None:
    """A retried turn is applied a second time: duplicated, and no retry is a replay."""
    verdicts = run.verdicts
    assert verdicts.get("duplicated", 0) >= 1, verdicts
    answered = run.answered
    assert not answered["replayed"].any(), answered.to_string()
    assert (answered["state_turn"] > answered["turn_index"]).any(), answered.to_string()
    assert (answered["state_turn"] >= answered["turn_index"]).all(), answered.to_string()
    # Nothing is really lost: a "restarted" here is a removed item that was added
    # twice, so one unit survives its removal (the ledger ranks that as a loss).
    restarted = run.reasons("restarted")
    assert all("back in cart after it was removed" in r for r in restarted), restarted
    assert run.item_mismatches() == []


EXPECTATIONS: dict[str, Callable[[KilledRun], None]] = {
    "correct": expect_correct,
    "no_checkpoint": expect_no_checkpoint,
    "checkpoint_before_side_effect": expect_checkpoint_before_side_effect,
    "no_idempotency": expect_no_idempotency,
}


def holds(expect: Callable[[KilledRun], None], run: KilledRun) -> bool:
    try:
        expect(run)
    except AssertionError:
        return False
    return True


def test_every_agent_mode_has_expectations() -> None:
    assert sorted(EXPECTATIONS) == sorted(AGENT_MODES)


@pytest.mark.parametrize("mode", AGENT_MODES)
def test_the_oracle_names_each_checkpoint_breakage(mode: str, tmp_path: Path) -> None:
    run = play_flash_sale_with_kills(cast(AgentMode, mode), tmp_path)
    summary = f"{mode}: {run.verdicts}, kills {[(k.pod, k.in_flight) for k in run.kills]}"
    print(summary)
    assert_kills_cut_turns_in_flight(run)
    EXPECTATIONS[mode](run)
    also_holding = [other for other, expect in EXPECTATIONS.items() if other != mode]
    also_holding = [other for other in also_holding if holds(EXPECTATIONS[other], run)]
    assert also_holding == [], f"a {mode} run also meets the expectations of {also_holding}"
