"""``loadlab history``: runs grouped by experiment, ordered in time, regressions named."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from loadlab.analysis.history import GAMEDAY_INDEX, build_history, read_history_run
from loadlab.cli import main
from loadlab.report.history import history_html, history_table

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "summary.json").read_text())


def make_run(
    root: Path,
    name: str,
    *,
    started: float,
    title: str | None = "pod kill mid-session",
    passed: bool = True,
    p99: float = 1000.0,
    resume_p99: float = 500.0,
    restarted: int = 0,
    duplicated: int = 0,
    recover: float = 5.0,
) -> Path:
    """A run directory with a manifest and a summary.json shaped like loadlab's own."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"name": name, "started_at": started}))
    summary: dict[str, Any] = copy.deepcopy(GOLDEN)
    summary["run"]["name"] = name
    summary["run"]["started_at"] = started
    summary["experiment"] = {"title": title} if title else None
    summary["turn_latency_ms"]["all"]["p99"] = p99
    summary["sessions"]["resume_latency_ms"]["p99"] = resume_p99
    summary["sessions"]["verdicts"].update(restarted=restarted, duplicated=duplicated)
    summary["fault_impact"][0]["time_to_recover_s"] = recover
    summary["verdict"] = {"passed": passed, "reasons": [] if passed else ["slo: missed"]}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def test_reads_the_figures_a_game_day_is_judged_by(tmp_path: Path) -> None:
    run = read_history_run(
        make_run(tmp_path, "a", started=100.0, p99=1234.0, restarted=2, recover=7.5)
    )
    assert run.key == "pod kill mid-session"
    assert run.passed is True
    assert run.turn_p99_ms == 1234.0
    assert run.resume_p99_ms == 500.0
    assert run.restarted == 2
    assert run.duplicated == 0
    assert run.time_to_recover_s == 7.5
    assert run.gameday is None


def test_groups_by_experiment_and_orders_by_start(tmp_path: Path) -> None:
    make_run(tmp_path, "late", started=300.0)
    make_run(tmp_path, "early", started=100.0)
    make_run(tmp_path, "storm", started=200.0, title="LLM 429 storm")
    history = build_history([tmp_path])
    assert list(history.groups) == ["LLM 429 storm", "pod kill mid-session"]
    assert [r.name for r in history.groups["pod kill mid-session"]] == ["early", "late"]
    assert history.regressions == ()


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        ({"passed": False}, "verdict PASS -> FAIL"),
        ({"p99": 1300.0}, "turn P99 1,300 ms > worst of last 3 (1,050 ms) + 20%"),
        ({"resume_p99": 900.0}, "resume P99"),
        ({"recover": 20.0}, "time to recover 20.0 s"),
        ({"restarted": 1}, "restarted sessions 1 > most in last 3 (0)"),
        ({"duplicated": 3}, "duplicated sessions 3"),
    ],
)
def test_a_run_worse_than_the_last_n_is_named(
    tmp_path: Path, change: dict[str, Any], finding: str
) -> None:
    for i, p99 in enumerate((1000.0, 1050.0, 980.0)):
        make_run(tmp_path, f"r{i}", started=100.0 + i, p99=p99)
    make_run(tmp_path, "new", started=200.0, **change)
    history = build_history([tmp_path], last=3)
    assert [r.run.name for r in history.regressions] == ["new"]
    assert any(finding in f for f in history.regressions[0].findings), history.regressions
    assert history.newest_regressed() == history.regressions


def test_within_tolerance_and_only_against_the_last_n(tmp_path: Path) -> None:
    # An old slow run is out of the window: the newest is judged against the last 2 only.
    make_run(tmp_path, "old", started=1.0, p99=5000.0)
    make_run(tmp_path, "r1", started=2.0, p99=1000.0)
    make_run(tmp_path, "r2", started=3.0, p99=1000.0)
    make_run(tmp_path, "new", started=4.0, p99=1190.0)  # +19 %: within 20 %
    assert build_history([tmp_path], last=2).regressions == ()
    assert [r.run.name for r in build_history([tmp_path], last=2, tolerance=0.1).regressions] == [
        "new"
    ]


def test_table_page_and_game_days(tmp_path: Path) -> None:
    for day, started in (("gameday-1", 100.0), ("gameday-2", 200.0)):
        (tmp_path / day).mkdir()
        (tmp_path / day / GAMEDAY_INDEX).write_text("{}")
        make_run(tmp_path / day, "pod-kill", started=started)
        make_run(tmp_path / day, "llm-429", started=started + 1, title="LLM 429 storm")
    (tmp_path / "unrendered").mkdir()
    (tmp_path / "unrendered" / "manifest.json").write_text("{}")
    history = build_history([tmp_path])
    assert history.gamedays == ("gameday-1", "gameday-2")
    table = history_table(history)
    assert "LLM 429 storm (2 runs)" in table
    assert "gameday-2" in table
    assert "skipped:" in table and "loadlab report" in table
    page = history_html(history)
    assert page.count("<img") == 5
    assert "gameday-1" in page


def test_cli_exit_6_when_the_newest_run_regressed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run(tmp_path, "r1", started=1.0)
    make_run(tmp_path, "r2", started=2.0, restarted=4)
    assert main(["history", str(tmp_path)]) == 6
    out, err = capsys.readouterr()
    assert "REGRESSED" in out
    assert "restarted sessions 4" in err
    assert (tmp_path / "history.html").is_file()
    assert main(["history", str(tmp_path), "--no-fail", "--out", str(tmp_path / "h.html")]) == 0
    assert (tmp_path / "h.html").is_file()


def test_an_older_regression_is_named_but_does_not_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_run(tmp_path, "r1", started=1.0)
    make_run(tmp_path, "r2", started=2.0, passed=False)
    make_run(tmp_path, "r3", started=3.0)
    assert main(["history", str(tmp_path)]) == 0
    assert "r2: verdict PASS -> FAIL" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["history", "/nonexistent/runs"], "does not exist"),
        (["history", "--last", "0", "."], "--last 0"),
        (["history", "--tolerance", "nan", "."], "--tolerance nan"),
    ],
)
def test_bad_input_is_exit_2_naming_it(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = [a if a != "." else str(tmp_path) for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_file_is_not_a_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "f").write_text("x")
    assert main(["history", str(tmp_path / "f")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_a_game_day_that_failed_before_any_load_is_a_fail_in_the_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    experiment = tmp_path / "pod-kill.json"
    experiment.write_text(json.dumps({"title": "pod kill mid-session"}))
    (tmp_path / "day-1").mkdir()
    (tmp_path / "day-1" / GAMEDAY_INDEX).write_text("{}")
    make_run(tmp_path / "day-1", "01-pod-kill", started=100.0)
    day = tmp_path / "day-2"
    (day / "01-pod-kill").mkdir(parents=True)  # the experiment ended before any load
    (day / GAMEDAY_INDEX).write_text(
        json.dumps(
            {
                "started_at": 200.0,
                "experiments": [
                    {
                        "experiment": str(experiment),
                        "run_dir": "01-pod-kill",
                        "exit_code": 1,
                        "passed": False,
                        "message": "the experiment did not complete (failed)",
                        "started_at": 200.0,
                    }
                ],
            }
        )
    )
    history = build_history([tmp_path])
    runs = history.groups["pod kill mid-session"]
    assert [r.gameday for r in runs] == ["day-1", "day-2"]
    assert runs[1].passed is False and "exit 1" in runs[1].reasons[0]
    assert [r.findings for r in history.regressions] == [("verdict PASS -> FAIL",)]
    assert main(["history", str(tmp_path)]) == 6
    assert "FAIL" in capsys.readouterr().out
