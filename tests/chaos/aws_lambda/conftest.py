"""A real ministack (Lambda and SSM) for the Lambda chaos activities, and tiny functions in it."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lambda_chaos_support import tiny_zip

from loadlab.chaos.aws_lambda._aws import Clients, aws_client_factory
from loadlab.target.aws_lambda.deploy import FunctionSpec, deploy_function, lambda_client

REPO = Path(__file__).resolve().parents[3]
MINISTACK = REPO / ".venv-ministack" / "bin" / "ministack"
STARTUP_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def ministack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ministack on a free loopback port for this module; yields its endpoint URL."""
    if not MINISTACK.exists():
        pytest.skip(f"ministack is not installed at {MINISTACK}; run scripts/bootstrap")
    import socket

    workdir = tmp_path_factory.mktemp("ministack")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "BIND_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
    }
    endpoint = f"http://127.0.0.1:{port}"
    with (workdir / "ministack.log").open("wb") as log:
        process = subprocess.Popen(
            [str(MINISTACK)], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"ministack exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"{endpoint}/_ministack/health", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"ministack did not answer within {STARTUP_TIMEOUT_S} s")
                time.sleep(0.1)  # no readiness event to await: poll the health endpoint
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(autouse=True)
def aws_env(ministack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The activities reach ministack through the usual AWS settings; no watchdog unless asked."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", ministack)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("LOADLAB_LEASE_WATCHDOG", "off")


@pytest.fixture
def clients(ministack: str) -> Iterator[Clients]:
    """Lambda and SSM clients straight to ministack (to read back what the activities did)."""
    both = Clients(
        aws_client_factory(
            endpoint_url=ministack,
            region="us-east-1",
            access_key_id="test",
            secret_access_key="test",
        )
    )
    yield both
    both.close()


@pytest.fixture
def make_function(ministack: str) -> Iterator[Callable[..., str]]:
    """Creates tiny functions (a new name each) with the given reserved concurrency."""
    client = lambda_client(
        endpoint_url=ministack, region="us-east-1", access_key_id="t", secret_access_key="t"
    )

    def make(reserved: int | None = 8, environment: dict[str, str] | None = None) -> str:
        name = f"tiny-{uuid.uuid4().hex[:10]}"
        spec = FunctionSpec(
            name=name,
            handler="tiny.handler",
            timeout_s=10,
            reserved_concurrency=reserved,
            environment=environment or {"SHOP": "flash-sale", "REGION_HINT": "eu"},
        )
        deploy_function(client, spec, tiny_zip())
        return name

    yield make
    client.close()
