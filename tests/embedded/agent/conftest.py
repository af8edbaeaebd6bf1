"""Fixtures for the agent tests: a real ministack (DynamoDB) per test module, AWS dummies."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_support import Dynamo

from loadlab.embedded.agent.checkpoint import ensure_table

REPO = Path(__file__).resolve().parents[3]
MINISTACK = REPO / ".venv-ministack" / "bin" / "ministack"
STARTUP_TIMEOUT_S = 30.0


@pytest.fixture(autouse=True)
def aws_dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """ministack accepts any key; boto3 only needs some key and a region."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="module")
def dynamo(ministack: str) -> Dynamo:
    """The checkpoint table of this module, created with the helper the stack uses."""
    target = Dynamo(endpoint=ministack, table="loadlab-checkpoints-test")
    client = target.client()
    try:
        ensure_table(client, target.table)
        ensure_table(client, target.table)  # a second start must not fail
    finally:
        client.close()
    return target
