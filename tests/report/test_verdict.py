"""One verdict from every piece of evidence; each source catches what it exists for."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gate_runs import edit_manifest, golden, set_slo
from junitparser import Failure, JUnitXml, Skipped

from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory, RunManifest
from loadlab.report.render import render_run
from loadlab.report.verdict import SOURCES
from loadlab.rows import RequestSample, SessionRecord, TurnRecord

T0 = 1_700_000_000.0
RELAXED = {"max_restarted": 1}  # the known run restarted one session


def _journal(status: str, *, deviated: bool = False, failed: bool = False) -> dict[str, Any]:
    """A Chaos Toolkit journal as chaoslib writes it (only the keys loadlab reads)."""

    def probe(name: str, output: object, met: bool) -> dict[str, Any]:
        return {
            "activity": {"type": "probe", "name": name, "tolerance": True},
            "output": output,
            "status": "succeeded",
            "tolerance_met": met,
        }

    method = [
        {
            "activity": {"type": "action", "name": "terminate-pods"},
            "status": "failed" if failed else "succeeded",
            "exception": ["Traceback ...", "ApiException: pods is forbidden"] if failed else [],
        }
    ]
    return {
        "experiment": {"title": "sessions survive a pod kill"},
        "status": status,
        "deviated": deviated,
        "steady_states": {
            "before": {
                "steady_state_met": True,
                "probes": [probe("sessions-continue", True, True)],
            },
            "after": {
                "steady_state_met": not deviated,
                "probes": [probe("sessions-continue", not deviated, not deviated)],
            },
            "during": [],
        },
        "run": method,
        "rollbacks": [],
    }


def _write_journal(run: Path, journal: dict[str, Any]) -> None:
    (run / "journal.json").write_text(json.dumps(journal))


def test_a_relaxed_known_run_passes_on_all_its_evidence(known_run: Callable[..., Path]) -> None:
    out = render_run(known_run(slo=RELAXED))
    verdict = out.verdict
    assert verdict.passed and verdict.reasons == ()
    assert [e.source for e in verdict.evidence] == list(SOURCES)
    status = {e.source: e.status for e in verdict.evidence}
    assert status == {
        "run": "met",
        "experiment": "not checked",
        "slo": "met",
        "sessions": "met",
        "checkpoint_audit": "not checked",  # no audit: not a failure
        "recording": "met",
    }
    sessions = verdict.get("sessions")
    assert sessions is not None
    assert sessions.detail == (
        "10 sessions, 8 clean or resumed: 1 restarted (limit 1), "
        "0 duplicated (limit 0, default), 1 failed (no limit)"
    )
    saved = json.loads(out.summary_path.read_text())["verdict"]
    assert saved["passed"] is True and len(saved["evidence"]) == 6
    html = out.html_path.read_text()
    assert html.index("Verdict:") < html.index("Headline")


def test_the_golden_run_fails_on_its_sessions_and_its_audit(tmp_path: Path) -> None:
    out = render_run(golden(tmp_path))
    assert not out.verdict.passed
    assert [r.split(":")[0] for r in out.verdict.reasons] == [
        "slo",
        "sessions",
        "checkpoint_audit",
    ]
    audit = out.verdict.get("checkpoint_audit")
    assert audit is not None and audit.detail == (
        "6 of 7 sessions agree, 1 disagree (1 resumed -> restarted) (limit 0, default)"
    )
    assert "max_restarted (1, limit 0, default)" in out.verdict.reasons[0]
    md = out.markdown_path.read_text()
    assert md.startswith("# loadlab: golden: FAILED\n")
    assert "| `max_duplicated` sessions duplicated | 1 | 0 (default) | **MISSED** |" in md


def test_relaxing_the_golden_gates_passes_it(tmp_path: Path) -> None:
    relaxed = {
        "error_rate": 0.2,
        "max_restarted": 1,
        "max_duplicated": 1,
        "max_audit_disagreements": 1,
    }
    out = render_run(golden(tmp_path, relaxed))
    assert out.verdict.passed, out.verdict.reasons


def test_a_run_without_an_end_is_incomplete_and_never_green(
    known_run: Callable[..., Path],
) -> None:
    run = known_run(slo=RELAXED)
    edit_manifest(run, lambda m: m.pop("ended_at"))
    out = render_run(run)
    assert not out.verdict.passed
    (reason,) = out.verdict.reasons
    # s-err played a turn and never reached a verdict
    assert reason.startswith(
        "run: missed: incomplete: the run has no end (manifest ended_at), "
        "1 session(s) still in flight when the record stops; a run that did not end "
        "cannot pass"
    )
    run_info = json.loads(out.summary_path.read_text())["run"]
    assert run_info["state"] == "incomplete" and run_info["sessions_in_flight"] == 1
    assert "INCOMPLETE: the run has no end; 1 session(s) in flight" in out.html_path.read_text()


def test_a_run_stopped_by_an_abort_gate_is_never_green(known_run: Callable[..., Path]) -> None:
    run = known_run(slo=RELAXED)
    edit_manifest(
        run,
        lambda m: m.update(
            end_reason="aborted", aborted_by="turn latency P99 (worst 5 s): 3331 (limit 1500)"
        ),
    )
    out = render_run(run)
    assert not out.verdict.passed
    (reason,) = out.verdict.reasons
    assert reason.startswith("run: missed: aborted after")
    assert "turn latency P99 (worst 5 s): 3331 (limit 1500) (stop condition)" in reason


def _all_500_run(path: Path, slo: dict[str, Any] | None) -> Path:
    """An agent that answers HTTP 500 to every turn: 20 sessions of one failed turn each."""
    run_dir = RunDirectory(path)
    path.mkdir(parents=True)
    run_dir.write_manifest(
        RunManifest(
            run_id="500",
            name="all-500",
            started_at=T0,
            scenario_path=None,
            scenario_sha256=None,
            scenario={} if slo is None else {"slo": slo},
            target={"url": "http://127.0.0.1:9"},
            versions={},
            seed=1,
            ended_at=T0 + 30,
        )
    )
    with RunRecorder(run_dir) as rec:
        for k in range(20):
            sid, start = f"s{k}", T0 + k
            rec.emit(
                RequestSample(
                    t_start=start,
                    name="turn:search",
                    session_id=sid,
                    turn_index=0,
                    attempt=1,
                    latency_ms=3.0,
                    ttft_ms=None,
                    bytes=20,
                    status=500,
                    error_kind="http_status",
                    error="HTTP 500",
                )
            )
            rec.emit(
                TurnRecord(
                    t_start=start,
                    t_end=start + 0.003,
                    session_id=sid,
                    turn_index=0,
                    intent="search",
                    ok=False,
                    attempts=1,
                    latency_ms=3.0,
                    ttft_ms=None,
                    interrupted=False,
                    error_kind="http_status",
                )
            )
            rec.emit(
                SessionRecord(
                    session_id=sid,
                    persona="p",
                    seed=k,
                    t_start=start,
                    t_end=start + 0.01,
                    turns_planned=1,
                    turns_done=0,
                    interrupted_turns=0,
                    verdict="failed",
                    verdict_reason="turn 0 failed: HTTP 500",
                    resume_latency_ms=None,
                )
            )
    return path


def test_an_agent_answering_500_fails_without_any_gate_written(tmp_path: Path) -> None:
    out = render_run(_all_500_run(tmp_path / "run", slo=None))
    assert not out.verdict.passed
    (errors,) = [g for g in out.gates if g.key == "error_rate"]
    assert errors.message == "failed turns / all turns: 1 (limit 0.01, default) MISSED"
    xml = JUnitXml.fromfile(str(out.junit_path))
    assert xml.tests > 0 and xml.failures >= 2  # the gate and the slo evidence


def test_relaxing_error_rate_lets_the_same_run_pass_its_gates(tmp_path: Path) -> None:
    out = render_run(_all_500_run(tmp_path / "run", slo={"error_rate": 1.0}))
    assert out.slo_passed and out.verdict.passed  # written on purpose: 20 failed sessions allowed


@pytest.mark.parametrize(
    ("journal", "status", "detail"),
    [
        (_journal("completed"), "met", "'sessions survive a pod kill' completed, steady state met"),
        (
            _journal("completed", deviated=True),
            "missed",
            "'sessions survive a pod kill' deviated: probe 'sessions-continue' (after) "
            "returned false, tolerance true",
        ),
        (
            _journal("aborted", failed=True),
            "missed",
            "'sessions survive a pod kill' aborted: action 'terminate-pods' failed: "
            "ApiException: pods is forbidden",
        ),
    ],
    ids=["completed", "deviated", "aborted"],
)
def test_the_experiment_evidence_reads_the_journal(
    known_run: Callable[..., Path], journal: dict[str, Any], status: str, detail: str
) -> None:
    run = known_run(slo=RELAXED)
    _write_journal(run, journal)
    out = render_run(run)
    evidence = out.verdict.get("experiment")
    assert evidence is not None and (evidence.status, evidence.detail) == (status, detail)
    assert out.verdict.passed is (status == "met")


def test_an_unreadable_journal_is_missed_evidence(known_run: Callable[..., Path]) -> None:
    run = known_run(slo=RELAXED)
    (run / "journal.json").write_text("{not json")
    out = render_run(run)
    evidence = out.verdict.get("experiment")
    assert evidence is not None and evidence.status == "missed"


def test_junit_has_a_case_per_gate_probe_failed_activity_and_evidence(
    known_run: Callable[..., Path],
) -> None:
    run = known_run(slo={"p99_ms": 1000, "max_restarted": 1, "intents": {"search": {"p50_ms": 1}}})
    _write_journal(run, _journal("aborted", failed=True))
    out = render_run(run)
    xml = JUnitXml.fromfile(str(out.junit_path))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"loadlab.verdict", "loadlab.slo", "loadlab.experiment"}

    def cases(name: str) -> dict[str, Any]:
        return {case.name: case for case in suites[name]}

    assert list(cases("loadlab.verdict")) == list(SOURCES)
    slo = cases("loadlab.slo")
    assert list(slo) == [
        "p99_ms",
        "error_rate",
        "max_restarted",
        "max_duplicated",
        "max_audit_disagreements",
        "search.p50_ms",
    ]
    (failure,) = slo["p99_ms"].result
    assert isinstance(failure, Failure)
    assert failure.message == "turn latency P99: 99000 ms (limit 1000 ms) MISSED"
    (failure,) = slo["search.p50_ms"].result
    assert failure.message == "turn latency P50 (search): 49000 ms (limit 1 ms) MISSED"
    assert slo["error_rate"].is_passed
    assert isinstance(slo["max_audit_disagreements"].result[0], Skipped)
    experiment = cases("loadlab.experiment")
    assert list(experiment) == [
        "steady state before: sessions-continue",
        "steady state after: sessions-continue",
        "method: terminate-pods",
    ]
    (failure,) = experiment["method: terminate-pods"].result
    assert failure.message == "action 'terminate-pods' failed: ApiException: pods is forbidden"
    assert (suites["loadlab.slo"].tests, suites["loadlab.slo"].failures) == (6, 2)
    # failures: experiment and slo evidence, two gates, the activity; skipped: the audit
    assert (xml.tests, xml.failures, xml.skipped) == (15, 5, 2)


def test_a_failed_activity_the_experiment_tolerated_is_skipped(
    known_run: Callable[..., Path],
) -> None:
    run = known_run(slo=RELAXED)
    _write_journal(run, _journal("completed", failed=True))
    out = render_run(run)
    assert out.verdict.passed
    xml = JUnitXml.fromfile(str(out.junit_path))
    assert xml.failures == 0
    (experiment,) = [s for s in xml if s.name == "loadlab.experiment"]
    (activity,) = [c for c in experiment if c.name == "method: terminate-pods"]
    assert isinstance(activity.result[0], Skipped)


def test_an_invalid_gate_in_the_manifest_is_a_scenario_error(
    known_run: Callable[..., Path],
) -> None:
    from loadlab.errors import ScenarioError

    run = known_run()
    set_slo(run, {"p99_ms": -1})
    with pytest.raises(ScenarioError, match=r"manifest.json \(scenario\): slo.p99_ms: got -1"):
        render_run(run)


@pytest.mark.integration
def test_real_chaos_journals_are_judged(
    known_run: Callable[..., Path], chaos_journals: dict[str, Path]
) -> None:
    run = known_run(slo=RELAXED)
    (run / "journal.json").write_bytes(chaos_journals["deviated"].read_bytes())
    out = render_run(run)
    evidence = out.verdict.get("experiment")
    assert evidence is not None and evidence.status == "missed"
    assert "probe 'marker-exists' (after) returned false" in evidence.detail
    xml = JUnitXml.fromfile(str(out.junit_path))
    (experiment,) = [s for s in xml if s.name == "loadlab.experiment"]
    names = [c.name for c in experiment]
    assert "steady state after: marker-exists" in names and "method: remove-missing" in names


def _locust_final(run_dir: Path, *, extra: int) -> None:
    """locust_final.json as Locust would count the run's requests, ``extra`` more for one."""
    import pandas as pd

    from loadlab.analysis.locust_agreement import locust_median

    requests = pd.read_parquet(run_dir / "requests.parquet")
    entries = [
        {
            "name": str(name),
            "num_requests": len(group) + (extra if i == 0 else 0),
            "median_response_time": locust_median(group["latency_ms"]),
        }
        for i, (name, group) in enumerate(requests.groupby("name"))
    ]
    (run_dir / "locust_final.json").write_text(json.dumps({"entries": entries}))


def test_a_record_that_agrees_with_locust_passes_and_says_so(
    known_run: Callable[..., Path],
) -> None:
    run_dir = known_run(slo=RELAXED)
    _locust_final(run_dir, extra=0)
    recording = render_run(run_dir).verdict.get("recording")
    assert recording is not None and recording.status == "met"
    assert "as Locust counted them" in recording.detail


def test_a_record_that_disagrees_with_locust_cannot_pass(known_run: Callable[..., Path]) -> None:
    run_dir = known_run(slo=RELAXED)
    _locust_final(run_dir, extra=3)  # Locust counted requests whose rows never came
    out = render_run(run_dir)
    recording = out.verdict.get("recording")
    assert recording is not None and recording.status == "missed"
    assert "rows vs" in recording.detail and "in Locust" in recording.detail
    assert not out.verdict.passed


def test_a_repaired_record_cannot_pass(known_run: Callable[..., Path]) -> None:
    run_dir = known_run(slo=RELAXED)
    event = {"t": 1.0, "kind": "error", "name": "recorder", "attrs": {"message": "x: repaired"}}
    with (run_dir / "events.jsonl").open("a") as fh:
        fh.write(json.dumps(event) + "\n")
    out = render_run(run_dir)
    recording = out.verdict.get("recording")
    assert recording is not None and recording.status == "missed"
    assert "x: repaired" in recording.detail
    assert not out.verdict.passed
