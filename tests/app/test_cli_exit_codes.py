"""Every exit-code path of the ``loadlab`` command that needs no server, run in-process.

``main([...])`` with the output captured, as click's CliRunner does; the
subprocess tests in tests/integration cover the end-to-end paths.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from loadlab.cli import main

REPO = Path(__file__).resolve().parents[2]
Capture = pytest.CaptureFixture[str]


def run(argv: list[str], capsys: Capture) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version_and_help_exit_0(capsys: Capture) -> None:
    for argv in (["--version"], ["--help"], ["run", "--help"], ["gameday", "--help"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 0
    assert "loadlab" in capsys.readouterr().out


def test_unknown_command_and_bad_flag_exit_2(capsys: Capture) -> None:
    for argv in (["fly"], ["run", "x.yaml", "--users", "0"], ["demo", "--replicas", "-1"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
    assert "must be > 0" in capsys.readouterr().err


def test_report_of_a_missing_directory_exits_5(tmp_path: Path, capsys: Capture) -> None:
    code, _, err = run(["report", str(tmp_path / "nope")], capsys)
    assert code == 5
    assert "does not exist" in err and "fix:" in err


def test_report_exits_0_when_every_gate_is_met(
    known_run: Callable[..., Path], capsys: Capture
) -> None:
    # the known run restarted one session and failed 1 % of its turns: relaxed on purpose
    relaxed = {"p99_ms": 120_000, "error_rate": 0.05, "max_restarted": 1}
    code, out, _ = run(["report", str(known_run(slo=relaxed))], capsys)
    assert code == 0, out
    assert out.startswith("verdict: PASS") and "MISSED" not in out and "report:" in out


def test_report_exits_6_naming_the_missed_gate(
    known_run: Callable[..., Path], capsys: Capture
) -> None:
    code, out, err = run(
        ["report", str(known_run(slo={"p99_ms": 1000, "error_rate": 0.05}))], capsys
    )
    assert code == 6
    assert out.startswith("verdict: FAIL") and "MISSED" in out
    assert "the verdict is FAIL: slo: missed" in err and "limit 1000" in err


def test_with_no_slo_block_the_default_gates_still_fail_a_run(
    known_run: Callable[..., Path], capsys: Capture
) -> None:
    # one session restarted: no gate written, the default gate still fails the run
    code, out, err = run(["report", str(known_run())], capsys)
    assert code == 6
    assert "default" in out
    assert "the verdict is FAIL" in err


def test_compare_of_missing_runs_exits_5(tmp_path: Path, capsys: Capture) -> None:
    code, _, err = run(["compare", str(tmp_path / "a"), str(tmp_path / "b")], capsys)
    assert code == 5
    assert "does not exist" in err


def test_run_with_an_unknown_scenario_exits_2_listing_the_known(capsys: Capture) -> None:
    code, _, err = run(["run", "no-such-scenario"], capsys)
    assert code == 2
    assert "'no-such-scenario' not found" in err and "demo" in err


def test_run_with_an_invalid_scenario_exits_2_naming_the_key(
    tmp_path: Path, capsys: Capture
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nshape: {kind: flash_sale, peak: -3}\n")
    code, _, err = run(["run", str(bad), "--target", "http://127.0.0.1:9"], capsys)
    assert code == 2
    assert "peak" in err


def test_run_without_any_target_exits_2_with_the_fix(tmp_path: Path, capsys: Capture) -> None:
    code, _, err = run(["run", "ci_smoke", "--state-dir", str(tmp_path)], capsys)
    assert code == 2
    assert "no target" in err and "loadlab up" in err


def test_run_against_a_closed_port_exits_3(tmp_path: Path, capsys: Capture) -> None:
    argv = ["run", "ci_smoke", "--target", "http://127.0.0.1:9", "--state-dir", str(tmp_path)]
    code, _, err = run(argv, capsys)
    assert code == 3
    assert "cannot reach the target http://127.0.0.1:9" in err


def test_run_with_a_non_http_target_exits_2(tmp_path: Path, capsys: Capture) -> None:
    argv = ["run", "ci_smoke", "--target", "ftp://127.0.0.1:9", "--state-dir", str(tmp_path)]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert "is not an http(s) URL" in err


def test_a_stale_stack_file_is_ignored(tmp_path: Path, capsys: Capture) -> None:
    # The stack that wrote it is gone (a pid that no longer runs): not a target any more.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    state = stack_json(pid=int(dead.stdout))
    (tmp_path / "stack.json").write_text(json.dumps(state))
    code, _, err = run(["run", "ci_smoke", "--state-dir", str(tmp_path)], capsys)
    assert code == 2
    assert "no target" in err


def test_an_unreadable_stack_file_exits_4_naming_it(tmp_path: Path, capsys: Capture) -> None:
    (tmp_path / "stack.json").write_text("{not json")
    code, _, err = run(["run", "ci_smoke", "--state-dir", str(tmp_path)], capsys)
    assert code == 4
    assert str(tmp_path / "stack.json") in err and "fix:" in err


def test_demo_with_kill_at_outside_0_1_exits_2(capsys: Capture) -> None:
    code, _, err = run(["demo", "--kill-at", "1.5"], capsys)
    assert code == 2
    assert "--kill-at 1.5 is outside [0, 1)" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ('{"title": "x",}', "is not valid JSON: line 1"),
        ("[1, 2]", "must be a JSON object"),
        ('{"title": "x"}', "lacks 'description', 'method'"),
        ('{"title": "x", "description": "y", "method": []}', "non-empty list"),
    ],
)
def test_gameday_refuses_a_bad_experiment_with_exit_2(
    tmp_path: Path, capsys: Capture, content: str | None, message: str
) -> None:
    experiment = tmp_path / "experiment.json"
    if content is not None:
        experiment.write_text(content)
    argv = ["gameday", str(experiment), "--runs-root", str(tmp_path / "runs")]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert message in err


def stack_json(*, pid: int) -> dict[str, object]:
    return {
        "format": 1,
        "pid": pid,
        "started_at": 0.0,
        "endpoints": {
            "agent_url": "http://127.0.0.1:9",
            "aws_endpoint_url": "http://127.0.0.1:8",
            "llm_url": "http://127.0.0.1:7",
            "fleet_url": "http://127.0.0.1:6",
            "region": "us-east-1",
            "table": "t",
        },
        "jwt_secret": "s",
        "aws": {
            "access_key_id": "k",
            "secret_access_key": "s",
            "region": "us-east-1",
            "endpoint_url": "http://127.0.0.1:8",
        },
        "replicas": 1,
        "time_scale": 1.0,
        "agent_mode": "correct",
        "seed": 0,
        "pids": {"ministack": None, "llm": None},
        "logs": {},
    }


def test_the_console_script_is_the_same_main() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "loadlab", "--version"],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    assert out.stdout.startswith("loadlab ")
