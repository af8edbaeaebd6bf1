"""Bad input is a clear error (exit 2, 3 or 5) naming the value, never a traceback.

Each case here reproduced a traceback, a hang or a silent merge before the
check that refuses it was added (issue 14, findings 3, 8 and 11).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from loadlab.cli import main

Capture = pytest.CaptureFixture[str]


def run(argv: list[str], capsys: Capture) -> tuple[int, str]:
    """Exit code and stderr of ``loadlab argv``, argparse's own exit included."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = int(stop.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--time-scale", "inf"], "'inf' must be a finite number"),
        (["--time-scale", "nan"], "'nan' must be a finite number"),
        (["--time-scale", "0"], "'0' must be > 0"),
        (["--time-scale", "-1"], "'-1' must be > 0"),
        (["--stack-time-scale", "inf"], "'inf' must be a finite number"),
        (["--web-port", "99999"], "port '99999' out of range"),
        (["--provisioned-concurrency", "-1"], "'-1' must be >= 0"),
    ],
)
def test_non_finite_zero_or_negative_numbers_are_refused_at_parse_time(
    capsys: Capture, flags: list[str], named: str
) -> None:
    code, err = run(["run", "ci_smoke", "--target", "http://127.0.0.1:9", *flags], capsys)
    assert code == 2
    assert named in err


def test_gameday_hypothesis_frequency_inf_is_refused(capsys: Capture) -> None:
    code, err = run(["gameday", "x.json", "--hypothesis-frequency", "inf"], capsys)
    assert code == 2 and "'inf' must be a finite number" in err


@pytest.mark.parametrize(
    ("target", "named"),
    [
        ("http://127.0.0.1:abc", "port 'abc' is not a number"),
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://127.0.0.1:99999", "port 99999 out of range (1-65535)"),
        ("http://:80", "has no host"),
    ],
)
def test_a_target_url_that_cannot_be_used_exits_2_not_connection_refused(
    tmp_path: Path, capsys: Capture, target: str, named: str
) -> None:
    argv = ["run", "ci_smoke", "--target", target, "--state-dir", str(tmp_path)]
    code, err = run(argv, capsys)
    assert code == 2, err
    assert named in err and target in err and "Traceback" not in err
    assert "refused" not in err


def test_gameday_target_url_is_checked_before_anything(tmp_path: Path, capsys: Capture) -> None:
    argv = ["gameday", "pod-kill-mid-session", "--target", "http://127.0.0.1:99999",
            "--runs-root", str(tmp_path / "runs")]  # fmt: skip
    code, err = run(argv, capsys)
    assert code == 2 and "port 99999 out of range" in err
    assert not (tmp_path / "runs").exists()


def test_run_dir_naming_a_file_exits_5(tmp_path: Path, capsys: Capture) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("x")
    for command in (["run", "ci_smoke", "--target", "http://127.0.0.1:9"], ["gameday", "x"]):
        code, err = run([*command, "--run-dir", str(file)], capsys)
        assert code == 5
        assert f"--run-dir '{file}' is a file" in err and "fix:" in err
    code, err = run(["run", "ci_smoke", "--run-dir", str(file / "sub")], capsys)
    assert code == 5 and "which is a file" in err


def test_run_dir_of_an_existing_run_is_refused_not_merged(
    known_run: Callable[..., Path], capsys: Capture
) -> None:
    existing = known_run()
    before = sorted(p.name for p in existing.rglob("*"))
    argv = ["run", "ci_smoke", "--target", "http://127.0.0.1:9", "--run-dir", str(existing)]
    code, err = run(argv, capsys)
    assert code == 5
    assert "already holds a run (manifest.json)" in err
    assert f"{existing.name}-2" in err  # a free path is suggested
    assert sorted(p.name for p in existing.rglob("*")) == before
    code, err = run(["gameday", "pod-kill-mid-session", "--run-dir", str(existing)], capsys)
    assert code == 5 and "already holds a run" in err


def test_run_dir_that_is_not_empty_is_refused_and_an_empty_one_accepted(
    tmp_path: Path, capsys: Capture
) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "a.txt").write_text("x")
    argv = ["run", "ci_smoke", "--target", "http://127.0.0.1:9", "--state-dir", str(tmp_path)]
    code, err = run([*argv, "--run-dir", str(full)], capsys)
    assert code == 5 and "is not empty (it holds a.txt)" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = run([*argv, "--run-dir", str(empty)], capsys)
    assert code == 3, err  # accepted: it got as far as the (closed) target


@pytest.mark.parametrize(
    ("manifest", "named"),
    [
        (b"\xff\xfe\x00{\x00", "is not valid JSON ('utf-8' codec can't decode"),
        ("{}".encode("utf-16"), "is not valid JSON"),
        (b"[" * 100_000, "is not valid JSON"),
        (None, "cannot be read (Is a directory)"),
    ],
)
def test_report_on_an_unreadable_manifest_exits_5(
    known_run: Callable[..., Path], capsys: Capture, manifest: bytes | None, named: str
) -> None:
    run_dir = known_run()
    path = run_dir / "manifest.json"
    path.unlink()
    if manifest is None:
        path.mkdir()
    else:
        path.write_bytes(manifest)
    code, err = run(["report", str(run_dir)], capsys)
    assert code == 5, err
    assert named in err and "manifest.json" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "line",
    [
        {"t": "abc", "kind": "phase", "name": "x"},
        {"t": None, "kind": "fault"},
        {"t": 1.0, "kind": ["fault"]},
        {"t": True, "kind": "phase"},
    ],
)
def test_report_skips_an_event_with_a_bad_time_and_names_it(
    known_run: Callable[..., Path], capsys: Capture, line: dict[str, object]
) -> None:
    run_dir = known_run(slo={"p99_ms": 120_000, "error_rate": 0.05, "max_restarted": 1})
    with (run_dir / "events.jsonl").open("a") as fh:
        fh.write(json.dumps(line) + "\n")
    code, err = run(["report", str(run_dir)], capsys)
    # the rest is reported; the record could not be read whole, so it cannot pass
    assert code == 6, err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert any("is not an event" in p for p in summary["problems"]), summary["problems"]
    recording = next(e for e in summary["verdict"]["evidence"] if e["source"] == "recording")
    assert recording["status"] == "missed" and "is not an event" in recording["detail"]
