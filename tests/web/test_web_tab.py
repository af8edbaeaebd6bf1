"""The loadlab tab: its figures, fault feed and pressure totals; on Locust's real web UI.

The parts that need Locust's web UI run in a process of their own
(``ui_runs/tab_cases.py``: importing locust patches gevent into the process) and
print what the UI served as JSON; the rest runs here. The run whose numbers are
known exactly is tests/conftest.py's ``fault_run`` (a pod kill at 100 s, a Lambda
throttle from 101 s with no end).
"""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from row_samples import request_sample  # tests/row_samples.py

from loadlab.app.locust_plugin.forwarding import receive_rows
from loadlab.app.locust_plugin.web_tab import REPORT_PATH, SESSIONS_CSV, TAB_KEY
from loadlab.measure.fault_feed import FaultFeed
from loadlab.measure.live_status import LiveWindow
from loadlab.measure.recorder import RunRecorder
from loadlab.measure.rundir import RunDirectory
from loadlab.rows import PressureSample, RequestSample, TimelineEvent, event_line, row_to_dict

CASES = Path(__file__).resolve().parent / "ui_runs" / "tab_cases.py"
T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What Locust's web UI with the tab served in every case of ui_runs/tab_cases.py."""
    work = tmp_path_factory.mktemp("tab_cases")
    done = subprocess.run(
        [sys.executable, str(CASES), str(work)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def _tab_rows(answer: dict[str, Any]) -> list[dict[str, str]]:
    """The tab's rows out of one ``/stats/requests`` answer."""
    assert answer["status"] == 200
    extended = answer["extended_stats"]
    assert [e["key"] for e in extended] == [TAB_KEY]
    rows: list[dict[str, str]] = extended[0]["data"]
    assert all(set(r) == {"section", "figure", "value"} for r in rows)
    return rows


def _value(rows: list[dict[str, str]], section: str, figure: str) -> str:
    found = [r["value"] for r in rows if r["section"] == section and r["figure"] == figure]
    assert len(found) == 1, (section, figure, rows)
    return found[0]


def test_the_tab_shows_verdicts_latency_faults_and_impact(served: dict[str, Any]) -> None:
    case = served["fault_run"]
    # the tab and its downloads are in the page's template arguments
    assert '"extended_tabs": [{"key": "loadlab", "title": "loadlab"}]' in case["page"]
    assert SESSIONS_CSV in case["page"] and REPORT_PATH in case["page"]

    rows = _tab_rows(case["at_110"])
    for verdict, count in case["verdicts"].items():
        assert _value(rows, "sessions", verdict) == str(count)
    assert _value(rows, "sessions", "users now") == "7"
    # at 110 s: the pod kill ended at 102 (no lease), the throttle still runs
    assert _value(rows, "faults", "throttle function → function_name=fn-agent") == (
        "active for 9 s (its action still running)"
    )
    assert _value(rows, "impact", "terminate pods → pod-1") == "measuring: ready in 22 s"
    assert _value(rows, "run", "as of (epoch s)") == f"{T0 + 110:.3f}"

    line = _value(_tab_rows(case["at_200"]), "impact", "terminate pods → pod-1")
    # the numbers tests/analysis/test_impact.py knows for this fault
    assert line.startswith("@100s: 4 sessions in flight")
    assert "P99 190 ms →" in line and line.endswith("recovered after 15 s")


def test_rolling_percentiles_are_loadlabs_exact_numbers(served: dict[str, Any]) -> None:
    got = _tab_rows(served["percentiles"])
    assert _value(got, "turns", "P50 (last 30 s, successful turns)") == "50 ms"
    assert _value(got, "turns", "P99 (last 30 s, successful turns)") == "99 ms"
    assert _value(got, "turns", "TTFT P99 (last 30 s, successful turns)") == "1,099 ms"
    assert _value(got, "faults", "active") == "none"


def _request(t: float, instance: str, *, cold: bool = False) -> RequestSample:
    return request_sample(
        t_start=t, name="turn:search", latency_ms=500.0, instance_id=instance, cold_start=cold
    )


def test_the_master_tab_counts_what_workers_forward(tmp_path: Path) -> None:
    """On --master the window gets worker rows through receive_rows, as dicts."""
    run_dir = RunDirectory(tmp_path / "run")
    run_dir.path.mkdir()
    window = LiveWindow(window_s=30.0)
    with RunRecorder(run_dir) as recorder:
        for worker, instances in (("w1", ("pod-a", "pod-b")), ("w2", ("pod-b", "pod-c"))):
            batch = {
                "requests": [
                    row_to_dict(_request(T0 + 1, name, cold=name == "pod-a")) for name in instances
                ],
                "_live": {"worker": worker, "turns_in_flight": 1},
            }
            receive_rows(recorder, window, {}, batch)
    assert window.cold_starts == 1
    assert window.environments_alive(now=T0 + 10) == 3
    assert window.environments_alive(now=T0 + 40) == 0  # none answered in the last 30 s


def test_pressure_totals_count_counter_increases_and_revised_periods_once() -> None:
    window = LiveWindow()

    def prom(t: float, value: float, instance: str = "llm", **more: str) -> PressureSample:
        labels = json.dumps({"instance": instance, **more})
        return PressureSample(t, "prometheus", "loadlab_llm_rate_limited_total", value, labels)

    # 10 -> 25 on one target, then a restart from zero and 5 more; 7 on a second target;
    # a label set that first appears at the second scrape: its 3 all happened in the run
    for row in (
        prom(1, 10),
        prom(2, 25),
        prom(3, 5),
        prom(1, 100, "b"),
        prom(2, 107, "b"),
        prom(2, 3, reason="rpm"),
    ):
        window.observe(row)
    cw = json.dumps({"TableName": "t", "stat": "Sum", "period_s": 60})
    for value in (3.0, 4.0):  # the same period read twice: CloudWatch revised it
        window.observe(
            PressureSample(T0, "cloudwatch", "AWS/DynamoDB/ThrottledRequests", value, cw)
        )
    window.observe(PressureSample(T0 + 60, "cloudwatch", "AWS/DynamoDB/ThrottledRequests", 2.0, cw))
    totals = window.pressure.totals()
    assert totals["prometheus:loadlab_llm_rate_limited_total"] == 15 + 5 + 7 + 3
    assert totals["cloudwatch:AWS/DynamoDB/ThrottledRequests:Sum"] == 6.0


def test_faults_are_read_incrementally_with_their_lease(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"

    def line(event: TimelineEvent) -> bytes:
        return (event_line(event) + "\n").encode()

    start = TimelineEvent(
        t=T0, kind="fault", name="llm_429_storm", target="llm", attrs={"fault_id": "x"}
    )
    end = TimelineEvent(
        t=T0 + 0.2,
        kind="fault",
        name="llm_429_storm",
        target="llm",
        lease_expires=T0 + 20,
        attrs={"fault_id": "x", "phase": "end", "status": "succeeded"},
    )
    feed = FaultFeed(events)
    assert feed.faults() == []  # no file yet
    whole = line(start) + line(end)
    events.write_bytes(whole[: len(line(start)) + 10])  # the end event half written
    [fault] = feed.faults()
    assert fault.t_end is None and fault.active(T0 + 30)
    events.write_bytes(whole)
    [fault] = feed.faults()
    assert (fault.t_start, fault.t_end, fault.lease_expires) == (T0, T0 + 0.2, T0 + 20)
    assert fault.active(T0 + 19.9) and not fault.active(T0 + 20)


def test_an_unkeyed_end_closes_the_open_fault_of_its_name_and_target(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = [
        TimelineEvent(t=T0, kind="fault", name="delete pod", target="pod-1"),
        TimelineEvent(
            t=T0 + 1, kind="fault", name="delete pod", target="pod-1", attrs={"phase": "end"}
        ),
    ]
    events.write_text("".join(event_line(e) + "\n" for e in lines))
    [fault] = FaultFeed(events).faults()
    assert fault.t_end == T0 + 1 and not fault.active(T0 + 2)


def test_session_csv_and_report_link(served: dict[str, Any]) -> None:
    case = served["downloads"]
    answer = case["csv"]
    assert answer["status"] == 200 and answer["mimetype"] == "text/csv"
    assert "attachment" in answer["disposition"]
    table = list(csv.DictReader(io.StringIO(answer["text"])))
    assert sorted(r["session_id"] for r in table) == case["session_ids"]
    assert case["missing"]["status"] == 404
    assert "report.html does not exist yet" in case["missing"]["text"]
    assert _value(_tab_rows(case["before"]), "run", "report").endswith(
        "(written when the run ends)"
    )
    assert case["found"] == {"status": 200, "text": "<html>the report</html>"}


@pytest.mark.parametrize("status", [404, 500])
def test_other_answers_are_left_alone(served: dict[str, Any], status: int) -> None:
    assert served["left_alone"][str(status)] == {"status": status, "text": "plain"}


def test_downstream_rows_give_the_turns_count_then_the_sampled_one(
    served: dict[str, Any],
) -> None:
    rows = _tab_rows(served["downstream"])
    assert _value(rows, "downstream", "LLM calls") == (
        "5 reported by the turns; 4 by prometheus (as last sampled)"
    )
    assert _value(rows, "downstream", "LLM 429s") == "1 reported by the turns"
    assert _value(rows, "downstream", "DynamoDB throttles") == (
        "none recorded yet (no sample of it)"
    )


def test_no_secret_reaches_the_browser(served: dict[str, Any]) -> None:
    case = served["redaction"]
    rows = _tab_rows(case["answer"])
    assert next(r["figure"] for r in rows if r["section"] == "faults").startswith("proxy cut")
    assert case["canary"] not in json.dumps(rows)


def test_window_percentiles_agree_with_the_gate_figures_and_skip_old_turns() -> None:
    """The tab reads the newest turns only, yet gives what LiveWindow.figure gives."""
    window = LiveWindow(window_s=30.0)
    rng = random.Random(7)
    rows = []
    for i in range(5000):  # an hour of turns, then rows a worker forwards 0.5 s late
        t_end = T0 + i * 0.75 - (0.5 if i % 7 == 0 else 0.0)
        rows.append(
            {
                "t_start": t_end - rng.uniform(0.1, 3.0),
                "t_end": t_end,
                "ok": i % 11 != 0,
                "ttft_ms": None if i % 13 == 0 else rng.uniform(50, 900),
            }
        )
    window.observe_dicts("turns", rows)
    now = T0 + 4999 * 0.75
    got = window.window_percentiles(now=now)
    for key in ("p50_ms", "p99_ms", "ttft_p99_ms"):
        assert got[key] == window.figure(key, window_s=30.0, now=now, min_turns=1), key
    assert window.window_percentiles(now=now + 3600) == dict.fromkeys(got)
