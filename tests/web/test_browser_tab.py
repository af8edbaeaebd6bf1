"""The loadlab tab in real headless Chromium, against a real ``loadlab run --web``.

``loadlab run scenarios/ci_smoke.yaml --embedded --web`` is started as a user
would; the browser presses Start, an LLM 429 storm is injected by a real
``chaos run`` with loadlab's timeline control (as a game day does), the browser
reads the verdict counts and the active fault off the loadlab tab and presses
Stop. The UI stays up while loadlab audits and writes the report (and lingers):
the browser waits until the tab links to the report and follows the *Download
Data* tab's link to it; a Ctrl-C ends the linger. Then the run directory must
say the same: the sessions that had ended by the tab's "as of" time, by
verdict, and the fault with its lease.

The screenshot goes to ``docs/images/web-ui-tab.png`` when ``UPDATE_DOCS_IMAGES=1``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadlab.analysis.rundata import load_run
from loadlab.embedded.state import STACK_FILE, StackState
from loadlab.rows import VERDICTS

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "ci_smoke.yaml"
BROWSER = Path(__file__).with_name("browser.py")
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = REPO / "docs" / "images" / "web-ui-tab.png"
FAULT = "llm-429-storm"
LEASE_S = 45.0

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is absent: apt-get install -y chromium (scripts/check does, as root)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="playwright is not installed: scripts/bootstrap installs requirements/dev.lock",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def web_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """``loadlab run --web`` in a process group of its own; killed if the test fails."""
    port = _free_port()
    argv = [
        sys.executable, "-m", "loadlab", "run", str(SCENARIO), "--embedded",
        "--replicas", "2", "--stack-time-scale", "0.05", "--time-scale", "0.2",
        "--run-dir", "runs/ci_smoke", "--state-dir", str(tmp_path / "state"),
        "--web", "--web-port", str(port),
    ]  # fmt: skip
    with (tmp_path / "loadlab.log").open("wb") as log:
        proc = subprocess.Popen(
            argv, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    yield proc, f"http://127.0.0.1:{port}", tmp_path
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _log(tmp_path: Path) -> str:
    return (tmp_path / "loadlab.log").read_text(errors="replace")[-3000:]


def _browser(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BROWSER), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _inject_llm_storm(tmp_path: Path) -> None:
    """A 429 storm with a lease, through chaos run and loadlab's timeline control."""
    state = StackState.read(tmp_path / "state" / STACK_FILE)
    assert state is not None, "the stack wrote no stack.json"
    experiment = {
        "version": "1.0.0",
        "title": "an LLM 429 storm while the web UI watches",
        "description": "loadlab web UI test",
        "configuration": {"loadlab_run_dir": {"type": "env", "key": "LOADLAB_RUN_DIR"}},
        "controls": [
            {
                "name": "loadlab-timeline",
                "provider": {
                    "type": "python",
                    "module": "loadlab.chaos.control",
                    "arguments": {"run_dir": "${loadlab_run_dir}"},
                },
            }
        ],
        "method": [
            {
                "type": "action",
                "name": FAULT,
                "provider": {
                    "type": "python",
                    "module": "loadlab.chaos.downstream.actions",
                    "func": "llm_429_storm",
                    "arguments": {"reject_fraction": 0.2, "duration_s": LEASE_S},
                },
            }
        ],
    }
    chaos_dir = tmp_path / "chaos"
    chaos_dir.mkdir()
    (chaos_dir / "experiment.json").write_text(json.dumps(experiment))
    env = os.environ | {
        "LOADLAB_RUN_DIR": str(tmp_path / "runs" / "ci_smoke"),
        "LOADLAB_LLM_URL": state.endpoints.llm_url,
        "LOADLAB_ADMIN_TOKEN": state.admin_token,
    }
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "chaos"), "--no-version-check", "--no-log-file",
            "--settings", str(chaos_dir / "settings.yaml"),
            "run", "--journal-path", str(chaos_dir / "journal.json"), "experiment.json",
        ],
        cwd=chaos_dir, env=env, check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    journal = json.loads((chaos_dir / "journal.json").read_text())
    assert journal["status"] == "completed", done.stdout + done.stderr


def test_the_browser_reads_verdicts_and_a_fault_that_the_run_directory_confirms(
    web_run: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    proc, base, tmp_path = web_run
    deadline = time.monotonic() + 90
    while True:  # the web UI comes up once the embedded stack has started
        try:
            with urllib.request.urlopen(base + "/", timeout=2):
                break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, _log(tmp_path)
            time.sleep(0.3)

    _browser("start", base)
    _inject_llm_storm(tmp_path)
    shot = tmp_path / "web-ui-tab.png"
    rows = json.loads(_browser("read", base, str(shot), "left on its lease"))
    # Stop pressed: the UI stays up (its linger) and links to the report once written
    page = _browser("report", base)
    run_dir = tmp_path / "runs" / "ci_smoke"
    assert "verdict" in page.lower() and str(run_dir.name) in page, page[:2000]
    assert proc.poll() is None, "the web UI closed before its linger"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C ends the linger: the verdict's exit code
    assert proc.wait(timeout=60) in (0, 6), _log(tmp_path)

    tab = {(section, figure): value for section, figure, value in rows}
    as_of = float(tab[("run", "as of (epoch s)")])
    run = load_run(run_dir)
    assert run.manifest["stopped_by"] == "web_ui"
    ended = run.sessions[run.sessions["t_end"] <= as_of]
    assert len(ended) > 0
    for verdict in VERDICTS:
        assert int(tab[("sessions", verdict)]) == int((ended["verdict"] == verdict).sum()), (
            verdict,
            rows,
        )
    # the fault: the tab's row, and the event the chaos control wrote
    shown = tab[("faults", f"{FAULT} → llm")]
    left = float(shown.removeprefix("active: ").removesuffix(" s left on its lease"))
    [end] = [
        e
        for e in run.events.to_dict("records")
        if e["kind"] == "fault" and e["name"] == FAULT and e["attrs"].get("phase") == "end"
    ]
    assert end["target"] == "llm" and end["attrs"]["status"] == "succeeded"
    assert abs((end["lease_expires"] - as_of) - left) <= 1.0, (shown, end, as_of)
    assert 0 < left <= LEASE_S

    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_DOCS_IMAGES") == "1":
        shutil.copyfile(shot, SCREENSHOT)
