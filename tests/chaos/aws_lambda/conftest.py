"""A real ministack (Lambda and SSM) for the Lambda chaos activities, and tiny functions in it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lambda_chaos_support import tiny_zip

from loadlab.chaos.aws_lambda.aws_clients import Clients, aws_client_factory
from loadlab.embedded.aws_lambda.deploy import FunctionSpec, deploy_function, lambda_client

REPO = Path(__file__).resolve().parents[3]
MINISTACK = REPO / ".venv-ministack" / "bin" / "ministack"
STARTUP_TIMEOUT_S = 30.0


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
