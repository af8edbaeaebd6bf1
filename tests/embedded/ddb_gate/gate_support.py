"""Helpers for the DynamoDB gate tests: a background event loop, a manual clock, boto3."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import boto3
import botocore.session
from botocore.config import Config

T = TypeVar("T")
TIMEOUT = 30.0
ADMIN_TOKEN = "gate-test-admin-token"
"""The token the test gates' admin API requires."""


class LoopThread:
    """An event loop running on its own thread; :meth:`run` waits for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="gate-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(TIMEOUT)
        self.loop.close()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def aws_client(service: str, endpoint: str, *, retries: int = 0) -> Any:
    """A boto3 client with dummy credentials and the agent's retry mode (close it after use).

    ``retries`` is botocore's ``max_attempts``: retries after the first attempt.
    """
    no_profile = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    return boto3.session.Session(
        botocore_session=no_profile,
        aws_access_key_id="loadlab",
        aws_secret_access_key="loadlab-local",
        region_name="us-east-1",
    ).client(
        service,
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": retries, "mode": "standard"}),
    )


def create_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
