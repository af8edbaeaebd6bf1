"""``python -m loadlab.embedded.llm`` as a real subprocess."""

from __future__ import annotations

import json
import re
import selectors
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
COMMAND = [sys.executable, "-m", "loadlab.embedded.llm"]


def _start(*flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COMMAND, *flags], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _first_line(proc: subprocess.Popen[str], timeout_s: float = 20) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            proc.kill()
            proc.wait()
            pytest.fail("the simulator printed nothing")
    return proc.stdout.readline()


def _post(url: str) -> int:
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_prints_listening_line_serves_and_exits_cleanly(signum: int) -> None:
    proc = _start("--port", "0", "--time-scale", "0.01", "--rpm", "1", "--seed", "3")
    try:
        line = _first_line(proc)
        match = re.fullmatch(r"LISTENING (http://127\.0\.0\.1:(\d+))\n", line)
        assert match, line
        base = match.group(1)
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:
            assert response.status == 200
        statuses = [_post(f"{base}/v1/chat/completions") for _ in range(2)]
        assert statuses == [200, 429]  # --rpm took effect
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == ""  # exactly one line in all


def test_refuses_non_loopback_host() -> None:
    proc = subprocess.run(
        [*COMMAND, "--host", "0.0.0.0", "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "--allow-non-loopback" in proc.stderr


def test_invalid_value_is_a_config_error() -> None:
    proc = subprocess.run(
        [*COMMAND, "--time-scale", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "time_scale" in proc.stderr


def test_help_documents_every_flag() -> None:
    proc = subprocess.run(
        [*COMMAND, "--help"], cwd=REPO, capture_output=True, text=True, timeout=30, check=True
    )
    for flag in (
        "--host", "--port", "--allow-non-loopback", "--time-scale", "--rpm", "--tpm",
        "--max-concurrency", "--seed", "--ttft-median-ms", "--token-interval-median-ms",
    ):  # fmt: skip
        assert flag in proc.stdout
