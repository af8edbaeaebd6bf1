from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from loadlab.analysis.journal import read_journal
from loadlab.analysis.rundata import load_run
from loadlab.analysis.summary import summarize
from loadlab.errors import RunDirectoryError

pytestmark = pytest.mark.integration  # the journals come from real `chaos run` processes


def test_a_deviated_experiment_names_the_probe(chaos_journals: dict[str, Path]) -> None:
    outcome = read_journal(chaos_journals["deviated"])
    assert outcome.title == "the marker survives"
    assert (outcome.status, outcome.deviated, outcome.outcome) == ("completed", True, "deviated")
    assert outcome.hypothesis_met is False
    assert outcome.before is not None and outcome.before.steady_state_met is True
    assert outcome.after is not None and outcome.after.steady_state_met is False
    after = {p.name: p for p in outcome.after.probes}
    assert after["cwd-exists"].tolerance_met is True
    marker = after["marker-exists"]
    assert (marker.tolerance, marker.value, marker.status) == (True, False, "succeeded")
    (deviated,) = outcome.deviated_probes
    assert (deviated.phase, deviated.name, deviated.value) == ("after", "marker-exists", False)
    assert [(a.name, a.type, a.status) for a in outcome.method] == [
        ("remove-marker", "action", "succeeded"),
        ("remove-missing", "action", "failed"),
        ("list-cwd", "probe", "succeeded"),
    ]
    failed = outcome.method[1]
    assert failed.error is not None and "no-such-dir" in failed.error
    assert [(a.name, a.status) for a in outcome.rollbacks] == [("restore-marker", "succeeded")]
    for activity in outcome.method:
        assert activity.start is not None and activity.end is not None
        assert outcome.start is not None and outcome.start <= activity.start <= activity.end


def test_a_met_hypothesis_names_no_probe(chaos_journals: dict[str, Path]) -> None:
    outcome = read_journal(chaos_journals["met"])
    assert (outcome.outcome, outcome.hypothesis_met) == ("completed", True)
    assert outcome.deviated_probes == ()
    as_json = outcome.to_json()
    assert as_json["deviated_probe"] is None
    # a failed action does not make the hypothesis deviate, but it is reported
    assert [a["status"] for a in as_json["method"]] == ["failed", "succeeded"]


def test_the_summary_puts_the_experiment_on_the_run_timeline(
    known_run: Callable[..., Path], chaos_journals: dict[str, Path]
) -> None:
    path = known_run()
    shutil.copy(chaos_journals["deviated"], path / "journal.json")
    run = load_run(path)
    experiment = summarize(run).to_json()["experiment"]
    assert experiment["outcome"] == "deviated"
    assert experiment["deviated_probe"] == "marker-exists"
    assert experiment["steady_states"]["after"]["steady_state_met"] is False
    assert [p["name"] for p in experiment["steady_states"]["before"]["probes"]] == [
        "cwd-exists",
        "marker-exists",
    ]
    first = experiment["method"][0]
    assert first["t"] == pytest.approx(first["start"] - run.t0)
    assert first["duration_s"] >= 0
    json.dumps(experiment, allow_nan=False)


def test_no_journal_means_no_experiment(known_run: Callable[..., Path]) -> None:
    assert summarize(load_run(known_run())).experiment is None


def test_a_broken_journal_is_a_problem_not_a_crash(known_run: Callable[..., Path]) -> None:
    path = known_run()
    (path / "journal.json").write_text('{"status": "compl')
    summary = summarize(load_run(path))
    assert summary.experiment is None
    assert any("journal.json" in p for p in summary.problems)
    with pytest.raises(RunDirectoryError, match="not a readable Chaos Toolkit journal"):
        read_journal(path / "journal.json")
    (path / "journal.json").write_text('{"title": "an experiment, not a journal"}')
    with pytest.raises(RunDirectoryError, match="not a Chaos Toolkit journal"):
        read_journal(path / "journal.json")


def test_continuous_hypothesis_runs_and_large_outputs(tmp_path: Path) -> None:
    probe = {"type": "probe", "name": "p99", "tolerance": {"type": "range", "range": [0, 500]}}
    journal = {
        "status": "completed",
        "deviated": True,
        "start": "2026-01-01T00:00:00",
        "steady_states": {
            "before": {"steady_state_met": True, "probes": []},
            "after": {"steady_state_met": True, "probes": []},
            "during": [
                {"steady_state_met": True, "probes": [{"activity": probe, "output": 120,
                 "status": "succeeded", "tolerance_met": True}]},
                {"steady_state_met": False, "probes": [{"activity": probe, "output": 900,
                 "status": "succeeded", "tolerance_met": False}]},
            ],
        },
        "run": [{"activity": {"type": "action", "name": "list", "provider": {}},
                 "output": ["pod"] * 500, "status": "succeeded"}],
        "rollbacks": [],
    }  # fmt: skip
    path = tmp_path / "journal.json"
    path.write_text(json.dumps(journal))
    outcome = read_journal(path)
    assert outcome.start == 1_767_225_600.0  # a naive time is UTC
    assert outcome.hypothesis_met is False
    assert [(d.phase, d.value) for d in outcome.deviated_probes] == [("during[1]", 900)]
    assert outcome.deviated_probes[0].tolerance == {"type": "range", "range": [0, 500]}
    output = outcome.method[0].output
    assert isinstance(output, str) and len(output) <= 300 and output.endswith("…")
