"""A ``StackState`` to build tests on (canary secrets, loopback endpoints)."""

from __future__ import annotations

import os
import time

from loadlab.embedded.state import LocalAWS, StackEndpoints, StackState

STARTED_AT = time.time()
"""After this process started, as a stack's owner writes it (one value: states compare equal)."""


def state(**overrides: object) -> StackState:
    values: dict[str, object] = {
        "pid": os.getpid(),
        "started_at": STARTED_AT,
        "endpoints": StackEndpoints(
            agent_url="http://127.0.0.1:8001",
            aws_endpoint_url="http://127.0.0.1:8002",
            llm_url="http://127.0.0.1:8003",
            fleet_url="http://127.0.0.1:8004",
            region="eu-west-1",
            table="checkpoints",
            lambda_function="agent",
            lambda_url="http://127.0.0.1:8005/fn",
        ),
        "jwt_secret": "jwt-canary",
        "aws": LocalAWS(
            endpoint_url="http://127.0.0.1:8002",
            region="eu-west-1",
            access_key_id="key-canary",
            secret_access_key="secret-canary",
        ),
        "replicas": 3,
        "time_scale": 0.05,
        "agent_mode": "correct",
        "seed": 9,
        "pids": {"ministack": 10, "llm": None},
        "logs": {"llm": "/tmp/llm.log"},
    }
    values |= overrides
    return StackState(**values)  # type: ignore[arg-type]
