"""Interrupts and orphans, on real processes: ``loadlab run --embedded`` against the stack.

Each test starts ``loadlab run`` as a terminal would (a process group of its own),
waits until turns are being played, and then does what a user or a crash does:
a Ctrl-C to the group (``os.killpg(SIGINT)``), two of them, Stop in Locust's web
UI, or SIGKILL to the loadlab process alone.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import pytest

from loadlab.analysis.rundata import load_run
from loadlab.embedded.state import STACK_FILE, StackState
from loadlab.orphans import running

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "ci_smoke.yaml"
STOP_WITHIN_S = 2.0

pytestmark = pytest.mark.integration


@dataclass
class Run:
    """A ``loadlab run`` in its own process group, its output in files."""

    proc: subprocess.Popen[bytes]
    run_dir: Path
    state_dir: Path
    out: Path
    err: Path

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"loadlab did not exit within {timeout} s:\n{self.output()[-3000:]}")

    def live(self) -> dict[str, object]:
        try:
            data: dict[str, object] = json.loads((self.run_dir / "live.json").read_text())
        except (OSError, ValueError):
            return {}
        return data

    def wait_for_turns(self, turns: int, *, timeout: float = 90.0) -> None:
        """Until the run has finished ``turns`` turns (the stack is up, load is flowing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"loadlab exited early ({self.proc.returncode}):\n{self.output()}")
            done = self.live().get("turns_done", 0)
            if isinstance(done, int) and done >= turns:
                return
            time.sleep(0.2)
        pytest.fail(f"no {turns} turns within {timeout} s:\n{self.output()[-3000:]}")

    def wait_for_rows_on_disk(self, table: str, *, timeout: float = 10.0) -> None:
        """Until the recorder has flushed a part of ``table`` (live.json counts turns sooner)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any((self.run_dir / f"{table}.parquet").glob("part-*.parquet")):
                return
            time.sleep(0.1)
        pytest.fail(f"no {table} part within {timeout} s:\n{self.output()[-3000:]}")


@pytest.fixture
def start_run(tmp_path: Path) -> Iterator[object]:
    started: list[Run] = []

    def start(*extra: str) -> Run:
        n = len(started)
        run = Run(
            proc=None,  # type: ignore[arg-type]
            run_dir=tmp_path / f"run{n}",
            state_dir=tmp_path / f"state{n}",
            out=tmp_path / f"out{n}.txt",
            err=tmp_path / f"err{n}.txt",
        )
        argv = [
            sys.executable, "-m", "loadlab", "run", str(SCENARIO), "--embedded",
            "--replicas", "2", "--stack-time-scale", "0.05",
            "--run-dir", str(run.run_dir), "--state-dir", str(run.state_dir), *extra,
        ]  # fmt: skip
        with run.out.open("wb") as out, run.err.open("wb") as err:
            # a process group of its own, as a shell gives a foreground job
            run.proc = subprocess.Popen(
                argv, cwd=tmp_path, stdout=out, stderr=err, start_new_session=True
            )
        started.append(run)
        return run

    yield start
    for run in started:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()


def _last_request_start(run_dir: Path) -> float:
    requests = load_run(run_dir).requests
    assert len(requests), "no request recorded"
    return float(pd.to_numeric(requests["t_start"]).max())


def _assert_report_written(run_dir: Path, *, audited: bool = True) -> dict[str, object]:
    for name in ("summary.json", "report.html", "junit.xml"):
        assert (run_dir / name).is_file(), name
    if audited:
        assert (run_dir / "checkpoints.parquet").exists(), "the audit did not run"
    summary: dict[str, object] = json.loads((run_dir / "summary.json").read_text())
    return summary


def test_one_ctrl_c_to_the_group_stops_the_load_and_writes_the_report(start_run) -> None:  # type: ignore[no-untyped-def]
    run = start_run()
    run.wait_for_turns(15)
    t_signal = time.time()
    os.killpg(run.proc.pid, signal.SIGINT)
    rc = run.wait(timeout=90)
    output = run.output()
    assert rc in (0, 6), output[-3000:]
    _assert_exit_is_the_verdict(rc, run.run_dir)
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-3000:]
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["stopped_by"] == "interrupt"
    assert manifest["ended_at"] - t_signal <= STOP_WITHIN_S, manifest["ended_at"] - t_signal
    assert _last_request_start(run.run_dir) - t_signal <= STOP_WITHIN_S
    summary = _assert_report_written(run.run_dir)
    run_info = summary["run"]
    assert isinstance(run_info, dict)
    assert run_info["stopped_by"] == "interrupt" and run_info["state"] == "ended"
    # the shape ran for ~30 s: the run was cut short, not played to its end
    assert manifest["ended_at"] - manifest["started_at"] < 25


def test_a_second_ctrl_c_aborts_at_once(start_run) -> None:  # type: ignore[no-untyped-def]
    run = start_run()
    run.wait_for_turns(5)
    os.killpg(run.proc.pid, signal.SIGINT)
    time.sleep(0.05)  # two key presses, the second before the load has stopped
    t_second = time.monotonic()
    os.killpg(run.proc.pid, signal.SIGINT)
    rc = run.wait(timeout=20)
    assert rc == 130, run.output()[-3000:]
    assert time.monotonic() - t_second < 10
    assert "interrupted" in run.output() and "has no end" in run.output()
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest.get("ended_at") is None  # killed: `loadlab report` says incomplete


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _post(url: str, data: bytes = b"") -> int:
    request = urllib.request.Request(url, data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        status: int = response.status
        return status


def _start_in_the_web_ui(run: Run, port: int) -> None:
    """Wait for the web UI (it comes up once the stack has started) and press Start."""
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(base + "/", timeout=2):
                break
        except OSError:
            assert time.monotonic() < deadline, run.output()[-3000:]
            assert run.proc.poll() is None, run.output()[-3000:]
            time.sleep(0.3)
    # with a load shape, the users and spawn rate come from the shape
    assert _post(base + "/swarm", b"user_count=1&spawn_rate=1") == 200


def test_stop_in_the_web_ui_finishes_the_run_and_the_ui_links_to_its_report(start_run) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    run = start_run("--web", "--web-port", str(port), "--web-linger", "120")
    _start_in_the_web_ui(run, port)
    run.wait_for_turns(10)
    t_stop = time.time()
    assert _post(base + "/stop") == 200
    # the audit and the report are done while the UI still serves, and it links to them
    deadline = time.monotonic() + 90
    while "report:" not in run.out.read_text(errors="replace"):  # printed once all are written
        assert run.proc.poll() is None, run.output()[-3000:]
        assert time.monotonic() < deadline, run.output()[-3000:]
        time.sleep(0.3)
    _assert_report_written(run.run_dir)
    with urllib.request.urlopen(base + "/loadlab/report", timeout=10) as served:
        assert served.read() == (run.run_dir / "report.html").read_bytes()
    with urllib.request.urlopen(base + "/stats/requests", timeout=10) as stats:
        [tab] = json.loads(stats.read())["extended_stats"]
    report_row = [r for r in tab["data"] if (r["section"], r["figure"]) == ("run", "report")]
    assert report_row == [{"section": "run", "figure": "report", "value": "./loadlab/report"}]
    # the UI offers a new test now; this run is sealed: refused, nothing more recorded
    turns = len(load_run(run.run_dir).turns)
    with pytest.raises(urllib.error.HTTPError) as refused:
        _post(base + "/swarm", b"user_count=1&spawn_rate=1")
    assert refused.value.code == 409 and b"sealed" in refused.value.read()
    time.sleep(1.0)
    assert len(load_run(run.run_dir).turns) == turns
    assert run.proc.poll() is None, "the UI closed before its linger"
    # a Ctrl-C ends the linger: the verdict's exit code, not 130
    t_signal = time.monotonic()
    os.killpg(run.proc.pid, signal.SIGINT)
    rc = run.wait(timeout=30)
    assert time.monotonic() - t_signal < 20
    assert rc in (0, 6), run.output()[-3000:]
    _assert_exit_is_the_verdict(rc, run.run_dir)
    assert "Traceback" not in run.output(), run.output()[-3000:]
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["stopped_by"] == "web_ui"
    assert _last_request_start(run.run_dir) - t_stop <= STOP_WITHIN_S
    # the verdict is said again last, after the summary Locust prints as it exits
    out = run.out.read_text(errors="replace").rstrip().splitlines()
    assert out[-1].startswith("report:"), out[-12:]
    assert any(line.startswith("verdict: ") for line in out[-12:]), out[-12:]
    assert "Aggregated" in run.err.read_text(errors="replace")  # Locust's summary: stderr


def test_one_ctrl_c_during_a_web_ui_run_finishes_it_with_its_report(start_run) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    run = start_run("--web", "--web-port", str(port))  # the default linger: 60 s
    _start_in_the_web_ui(run, port)
    run.wait_for_turns(10)
    t_signal = time.time()
    os.killpg(run.proc.pid, signal.SIGINT)
    rc = run.wait(timeout=90)
    assert time.time() - t_signal < 50, "who pressed Ctrl-C waited for the linger"
    assert rc in (0, 6), run.output()[-3000:]
    _assert_exit_is_the_verdict(rc, run.run_dir)
    assert "Traceback" not in run.output()
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["stopped_by"] == "interrupt"
    assert _last_request_start(run.run_dir) - t_signal <= STOP_WITHIN_S
    _assert_report_written(run.run_dir)


def test_a_web_ui_run_closes_out_when_its_shape_ends(start_run) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    run = start_run(
        "--web", "--web-port", str(port), "--time-scale", "0.01", "--web-linger", "0"
    )  # a ~5 s shape
    _start_in_the_web_ui(run, port)
    rc = run.wait(timeout=90)  # nobody presses Stop or Ctrl-C
    assert rc in (0, 6), run.output()[-3000:]
    _assert_exit_is_the_verdict(rc, run.run_dir)
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["stopped_by"] == "shape"
    _assert_report_written(run.run_dir)


def test_sigkill_of_loadlab_leaves_no_process_and_no_live_stack_behind(start_run) -> None:  # type: ignore[no-untyped-def]
    run = start_run()
    run.wait_for_turns(5)
    # the report judges what reached the disk: a kill before the first flush leaves no turn
    run.wait_for_rows_on_disk("turns")
    children = psutil.Process(run.proc.pid).children(recursive=True)
    names = {p.pid: _cmdline(p) for p in children}
    assert [pid for pid, name in names.items() if "locust" in " ".join(name)], names
    assert len(children) >= 4  # Locust, ministack, the LLM simulator, the fleet's pods
    os.kill(run.proc.pid, signal.SIGKILL)  # loadlab alone, not its group
    run.proc.wait()
    _gone, alive = psutil.wait_procs(children, timeout=2.0)
    # an orphan that died stays a zombie where PID 1 does not reap (a container without init)
    assert not [p.pid for p in alive if running(p.pid)], names
    # the stack's state file is left behind, and seen to be stale
    stack_file = run.state_dir / STACK_FILE
    assert StackState.read(stack_file) is not None
    assert StackState.read_running(stack_file) is None
    # and the run that was cut short says so
    report = subprocess.run(
        [sys.executable, "-m", "loadlab", "report", str(run.run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert report.returncode == 6, report.stdout + report.stderr
    assert "incomplete" in report.stdout
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["run"]["state"] == "incomplete"
    assert summary["run"]["sessions_in_flight"] > 0


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:  # ended meanwhile (a zombie has no command line left)
        return []


def _assert_exit_is_the_verdict(rc: int, run_dir: Path) -> None:
    """0 exactly when summary.json's verdict passed, 6 when it did not."""
    verdict = json.loads((run_dir / "summary.json").read_text())["verdict"]
    assert rc == (0 if verdict["passed"] else 6), (rc, verdict["reasons"])
