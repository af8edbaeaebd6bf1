"""``python -m loadlab.embedded.agent``: READY line, SO_REUSEPORT sharing, SIGTERM, refusals."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from agent_support import SECRET, free_port

from loadlab.embedded.agent.__main__ import main

READY = re.compile(
    r"READY pid=(?P<pid>\d+) instance=(?P<instance>\S+) init_ms=(?P<init_ms>\d+\.\d) "
    r"url=(?P<url>http://127\.0\.0\.1:\d+)"
)
DEADLINE_S = 30.0


def _env(instance: str) -> dict[str, str]:
    return os.environ | {
        "LOADLAB_JWT_SECRET": SECRET,
        "LOADLAB_AGENT_LLM_URL": "http://127.0.0.1:9",  # never called: no turn is played
        "LOADLAB_AGENT_DYNAMODB_ENDPOINT": "http://127.0.0.1:9",
        "LOADLAB_TIME_SCALE": "0.01",
        "LOADLAB_AGENT_INSTANCE_ID": instance,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def _start(port: int, instance: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadlab.embedded.agent",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra,
        ],
        env=_env(instance),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _first_line(process: subprocess.Popen[str]) -> str:
    """The first stdout line, or fail with stderr if none comes before the deadline."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], DEADLINE_S)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.kill()
        _, err = process.communicate(timeout=10)
        pytest.fail(f"no READY line (exit {process.returncode}); stderr:\n{err[-2000:]}")
    return line


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@pytest.mark.integration
def test_two_instances_share_one_port_and_exit_0_on_sigterm(
    processes: list[subprocess.Popen[str]],
) -> None:
    port = free_port()
    for name in ("pod-a", "pod-b"):
        processes.append(_start(port, name, "--reuse-port"))
    lines = [_first_line(p) for p in processes]
    for process, name, line in zip(processes, ("pod-a", "pod-b"), lines, strict=True):
        match = READY.fullmatch(line.strip())
        assert match, line
        assert int(match["pid"]) == process.pid and match["instance"] == name
        assert match["url"] == f"http://127.0.0.1:{port}" and float(match["init_ms"]) > 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert response.status == 200

    # Without SO_REUSEPORT a third instance cannot bind the shared port.
    loner = _start(port, "pod-c")
    processes.append(loner)
    _, err = loner.communicate(timeout=DEADLINE_S)
    assert loner.returncode == 4 and "cannot listen" in err

    for process in processes[:2]:
        process.send_signal(signal.SIGTERM)
    for process in processes[:2]:
        out, err = process.communicate(timeout=DEADLINE_S)
        assert process.returncode == 0, err
        assert out == ""  # the READY line was the only stdout line
        assert SECRET not in err


def test_a_non_loopback_host_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", "0.0.0.0", "--port", "0"]) == 2
    assert "--allow-non-loopback" in capsys.readouterr().err


def test_a_missing_secret_is_a_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "0"]) == 2
    assert "LOADLAB_JWT_SECRET" in capsys.readouterr().err


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--reuse-port", "--allow-non-loopback"):
        assert option in out
