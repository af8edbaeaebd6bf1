from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loadlab.analysis.impact import (
    IMPACT_COLUMNS,
    FaultImpact,
    _among,
    fault_impact,
    fault_spans,
    grouped_percentile,
    verdict_counts,
)
from loadlab.analysis.rundata import load_run
from loadlab.analysis.stats import percentile

T0 = 1_700_000_000.0


def _by_id(impacts: list[FaultImpact]) -> dict[str, FaultImpact]:
    return {i.fault_id: i for i in impacts}


def test_the_pod_kill_is_joined_with_what_was_in_flight(fault_run: Callable[..., Path]) -> None:
    f1 = _by_id(fault_impact(load_run(fault_run())))["f1"]
    assert (f1.name, f1.target, f1.status, f1.ended) == (
        "terminate pods",
        "pod-1",
        "succeeded",
        True,
    )
    assert f1.activity == "chaosk8s.pod.actions.terminate_pods"
    assert f1.t == pytest.approx(100.0) and f1.duration_s == pytest.approx(2.0)
    # s-A, s-B, s-C (started before, still running) and s-E (starts exactly at t);
    # s-D ended exactly at t and s-F started after it (while f1 still ran).
    assert f1.sessions_in_flight == 4
    assert f1.session_verdicts == {
        "clean": 1,
        "resumed": 1,
        "restarted": 1,
        "duplicated": 0,
        "failed": 1,
    }
    # s-C's interrupted turn ended before the fault: it does not count.
    assert f1.sessions_interrupted == 3
    assert f1.interrupted_session_verdicts["clean"] == 0
    assert f1.interrupted_session_verdicts["resumed"] == 1
    # turns A (ok after a retry), B (failed), C (ok); background turns are never in flight
    assert f1.turns_in_flight == 3
    assert f1.turns_in_flight_ok == 2
    assert f1.turns_in_flight_ok_after_retry == 1
    assert f1.turns_in_flight_failed == 1


def test_windows_and_recovery_match_the_known_truth(fault_run: Callable[..., Path]) -> None:
    f1 = _by_id(fault_impact(load_run(fault_run())))["f1"]
    # before [70, 100): 60 background turns (max 190 ms) and s-D's failed turn
    assert f1.before.turns == 61 and f1.before.turns_failed == 1
    assert f1.before.p99_ms == pytest.approx(190.0)
    assert f1.before.error_rate == pytest.approx(1 / 61)
    assert f1.before.request_error_rate == pytest.approx(1 / 61)
    # after [100, 130): 60 background, A (5 s), C (2.2 s), E (3 s); B, F and the 4 s
    # background turn failed (and do not count towards P99)
    assert f1.after.turns == 66 and f1.after.turns_failed == 3
    assert f1.after.p99_ms == pytest.approx(5000.0)
    assert f1.after.error_rate == pytest.approx(3 / 66)
    # 60 background requests + A's reset and its retry
    assert f1.after.requests == 62
    assert f1.after.request_error_rate == pytest.approx(1 / 62)
    # background turns take 400 ms until 115: the bucket [115, 120) is the first back
    # (the failed 4 s turn ending at 116 does not hold it back)
    assert f1.time_to_recover_s == pytest.approx(15.0)
    assert f1.recovery == "recovered"


def test_overlapping_faults_are_judged_each_on_their_own(fault_run: Callable[..., Path]) -> None:
    impacts = fault_impact(load_run(fault_run()))
    assert [i.fault_id for i in impacts] == ["f1", "f2"]
    f1, f2 = impacts
    assert f1.overlapping == ("f2",) and f2.overlapping == ("f1",)
    assert (f2.status, f2.ended, f2.duration_s) == (None, False, 0.0)
    assert f2.activity == "chaosaws.awslambda.actions.put_function_concurrency"
    # at 101 s-C has ended and turn C finished at 100.2
    assert f2.sessions_in_flight == 3
    assert f2.turns_in_flight == 2
    # its before window [71, 101) holds turn C (2.2 s); buckets from 101: [101, 106) has
    # A (5 s), [106, 111) has E (3 s), [111, 116) is under 1.1 x 2.2 s
    assert f2.before.p99_ms == pytest.approx(2200.0)
    assert f2.time_to_recover_s == pytest.approx(10.0)


def test_latency_that_never_comes_back_is_not_recovered(fault_run: Callable[..., Path]) -> None:
    f1 = _by_id(fault_impact(load_run(fault_run(recover_at=None))))["f1"]
    assert f1.time_to_recover_s is None
    assert f1.recovery == "not recovered"
    assert f1.after.p99_ms == pytest.approx(5000.0)


def test_a_fault_before_any_turn_has_no_baseline(fault_run: Callable[..., Path]) -> None:
    path = fault_run()
    event = {"t": T0 + 0.2, "kind": "fault", "name": "early", "target": None, "attrs": {}}
    with (path / "events.jsonl").open("a") as fh:
        fh.write(json.dumps(event) + "\n")
    early = fault_impact(load_run(path))[0]
    assert early.name == "early"
    assert early.before.turns == 0 and early.before.p99_ms is None
    assert early.before.error_rate is None
    assert (early.time_to_recover_s, early.recovery) == (None, "no baseline")


def test_a_demo_fault_without_an_id_or_end(known_run: Callable[..., Path]) -> None:
    impacts = fault_impact(load_run(known_run()))
    assert len(impacts) == 1
    kill = impacts[0]
    assert (kill.name, kill.target, kill.status, kill.ended) == ("delete pod", "pod-1", None, False)
    assert kill.sessions_in_flight == 10
    assert kill.session_verdicts["clean"] == 6
    # turn i runs [i, 2i): in flight at 60 for i = 31..60
    assert kill.turns_in_flight == 30
    assert kill.turns_in_flight_ok == 30 and kill.turns_in_flight_ok_after_retry == 0
    # before [30, 60): turns i = 15..29 (i seconds each); latency only grows after
    assert kill.before.p99_ms == pytest.approx(29_000.0)
    assert kill.recovery == "not recovered"
    assert json.loads(json.dumps(kill.to_json()))["before"]["turns"] == 15


def _events(rows: list[tuple[float, str, str | None, dict[str, object]]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"t": t, "kind": "fault", "name": name, "target": target, "attrs": attrs}
            for t, name, target, attrs in rows
        ]
        + [{"t": 0.5, "kind": "phase", "name": "start", "target": None, "attrs": {}}]
    )


def test_fault_spans_pair_starts_and_ends() -> None:
    spans = fault_spans(
        _events(
            [
                (1.0, "kill", "a", {"fault_id": "x", "phase": "start", "activity": "m.kill"}),
                (2.0, "kill", "a", {"phase": "start"}),  # no id: its own fault
                (3.0, "kill", "a", {"phase": "end", "status": "failed"}),  # closes the one at 2
                (4.0, "kill", "pod-9", {"fault_id": "x", "phase": "end", "status": "succeeded"}),
                (5.0, "lost", None, {"phase": "end", "status": "succeeded"}),  # start lost
            ]
        )
    )
    assert [(s.name, s.t_start, s.t_end, s.ended, s.status) for s in spans] == [
        ("kill", 1.0, 4.0, True, "succeeded"),
        ("kill", 2.0, 3.0, True, "failed"),
        ("lost", 5.0, 5.0, True, "succeeded"),
    ]
    assert spans[0].fault_id == "x" and spans[0].target == "pod-9"
    assert spans[0].activity == "m.kill"
    assert fault_spans(_events([])) == []


def test_a_run_without_rows_still_has_its_faults(tmp_path: Path) -> None:
    run = tmp_path / "bare"
    run.mkdir()
    (run / "manifest.json").write_text(json.dumps({"run_id": "b", "name": "bare"}))
    assert fault_impact(load_run(run)) == []
    event = {"t": 10.0, "kind": "fault", "name": "kill", "target": "p", "attrs": {"fault_id": "k"}}
    (run / "events.jsonl").write_text(json.dumps(event) + "\n")
    (only,) = fault_impact(load_run(run))
    assert only.sessions_in_flight == 0 and only.turns_in_flight == 0
    assert only.before.p99_ms is None and only.after.error_rate is None
    assert only.recovery == "no baseline"


def test_grouped_percentile_agrees_with_nearest_rank_group_by_group() -> None:
    rng = np.random.default_rng(3)
    sizes = [1, 2, 3, 7, 99, 100, 101, 250]
    keys = np.concatenate([np.full(n, k) for k, n in enumerate(sizes)])
    values = rng.exponential(200.0, size=keys.size)
    shuffle = rng.permutation(keys.size)
    for q in (50.0, 99.0, 99.9):
        distinct, got = grouped_percentile(keys[shuffle], values[shuffle], q)
        assert list(distinct) == list(range(len(sizes)))
        expected = [percentile(values[keys == k], q) for k in range(len(sizes))]
        assert list(got) == expected
    empty_keys, empty_values = grouped_percentile(np.array([], dtype="int64"), np.array([]), 99)
    assert empty_keys.size == 0 and empty_values.size == 0


def test_verdict_counts_list_every_verdict() -> None:
    assert verdict_counts([]) == dict.fromkeys(
        ["clean", "resumed", "restarted", "duplicated", "failed"], 0
    )
    counts = verdict_counts(["resumed", "resumed", "weird"])
    assert counts["resumed"] == 2 and counts["weird"] == 1


def test_session_membership_is_np_isin_missing_ids_included() -> None:
    rng = np.random.default_rng(1)
    ids = [f"s-{i}" for i in range(30)] + [np.nan]
    for _ in range(200):
        values = np.array([ids[i] for i in rng.integers(0, 31, rng.integers(0, 40))], dtype=object)
        of = np.array([ids[i] for i in rng.integers(0, 31, rng.integers(0, 15))], dtype=object)
        assert (_among(values, of) == np.isin(values, of)).all(), (values, of)


@pytest.mark.parametrize("make", ["fault_run", "known_run"])
def test_the_impact_columns_alone_give_the_same_impacts(
    make: str, request: pytest.FixtureRequest
) -> None:
    # The web UI's impact line reads only IMPACT_COLUMNS while the load runs: a
    # column fault_impact needs and the list lacks raises, a column read
    # differently changes a number.
    path = request.getfixturevalue(make)()
    narrow = load_run(path, columns=IMPACT_COLUMNS, copy=False)
    assert list(narrow.pressure.columns) == []
    assert len(narrow.turns.columns) == len(IMPACT_COLUMNS["turns"])
    whole = fault_impact(load_run(path))
    assert whole and fault_impact(narrow) == whole
