"""Fixtures for the Lambda target: ministack (DynamoDB and Lambda), an LLM, the zip."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from lambda_support import llm_server

from loadlab.embedded.agent.checkpoint import ensure_table
from loadlab.embedded.aws_lambda.package import Package, build_package

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
