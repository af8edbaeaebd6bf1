"""Fixtures for the Lambda target: ministack (DynamoDB and Lambda), an LLM, the zip."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from lambda_support import free_port, llm_server

from loadlab.target.agent.checkpoint import ensure_table
from loadlab.target.aws_lambda.package import Package, build_package

REPO = Path(__file__).resolve().parents[3]
MINISTACK = REPO / ".venv-ministack" / "bin" / "ministack"
STARTUP_TIMEOUT_S = 30.0
TABLE = "loadlab-lambda-tests"


@pytest.fixture(autouse=True)
def aws_dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """ministack accepts any key; boto3 only needs some key and a region."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="module")
def ministack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ministack on a free loopback port for this module; yields its endpoint URL."""
    if not MINISTACK.exists():
        pytest.skip(f"ministack is not installed at {MINISTACK}; run scripts/bootstrap")
    workdir = tmp_path_factory.mktemp("ministack")
    port = free_port()
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
                log_text = (workdir / "ministack.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"ministack exited with {process.returncode}:\n{log_text}")
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


@pytest.fixture(scope="module")
def table(ministack: str) -> str:
    """The checkpoint table in this module's ministack."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=ministack,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    try:
        ensure_table(client, TABLE)
    finally:
        client.close()
    return TABLE


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    """A fast LLM simulator (4-8 tokens, 100x time compression)."""
    with llm_server() as server:
        yield server.url


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    """The deployment zip, built once for the test session."""
    return build_package(cache_dir=tmp_path_factory.mktemp("lambda-zip"))
