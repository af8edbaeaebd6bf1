"""The embedded stack's agents reach DynamoDB through the capacity gate."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from loadlab.embedded.stack import EmbeddedStack
from loadlab.errors import ConfigError

TIMEOUT = 30.0


@pytest.mark.parametrize(
    ("option", "value"), [("ddb_rcu", -1.0), ("ddb_wcu", -0.5), ("ddb_burst_s", -1.0)]
)
def test_bad_gate_capacity_names_the_option(option: str, value: float) -> None:
    with pytest.raises(ConfigError, match=option):
        EmbeddedStack(**{option: value})  # type: ignore[arg-type]


async def _turn(http: aiohttp.ClientSession, agent_url: str, secret: str) -> tuple[int, str]:
    session_id = f"s-{uuid.uuid4().hex[:12]}"
    now = int(time.time())
    token = jwt.encode({"sub": session_id, "iat": now, "exp": now + 600}, secret, "HS256")
    async with http.post(
        f"{agent_url}/v1/sessions/{session_id}/turns",
        json={"turn": 1, "message": "Add P-0001 to my cart"},
        headers={
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": uuid.uuid4().hex,
            "Accept": "text/event-stream",
        },
    ) as resp:
        return resp.status, await resp.text()


@pytest.mark.integration
def test_agents_checkpoint_through_the_gate_and_see_its_throttling(tmp_path: Path) -> None:
    async def scenario() -> dict[str, Any]:
        stack = EmbeddedStack(
            replicas=1, time_scale=0.01, startup_delay_s=0.1, state_dir=tmp_path,
            start_timeout_s=TIMEOUT,
        )  # fmt: skip
        out: dict[str, Any] = {}
        async with stack, aiohttp.ClientSession() as http:
            endpoints = stack.endpoints
            auth = {"Authorization": f"Bearer {stack.state.admin_token}"}
            out["endpoints"] = endpoints
            out["file"] = json.loads(stack.stack_file.read_text())["endpoints"]
            secret = json.loads(stack.stack_file.read_text())["jwt_secret"]
            gate = endpoints.ddb_gate_url
            out["ok"] = await _turn(http, endpoints.agent_url, secret)
            async with http.get(f"{gate}/admin/capacity", headers=auth) as resp:
                out["after_ok"] = await resp.json()
            lease = {"wcu": 0, "burst_s": 0, "expires_at": time.time() + 120}
            async with http.post(f"{gate}/admin/capacity", json=lease, headers=auth) as resp:
                assert resp.status == 200
            out["cut"] = await _turn(http, endpoints.agent_url, secret)
            async with http.get(f"{gate}/admin/capacity", headers=auth) as resp:
                out["after_cut"] = await resp.json()
        return out

    out = asyncio.run(scenario())

    endpoints = out["endpoints"]
    assert endpoints.ddb_gate_url.startswith("http://127.0.0.1:")
    assert endpoints.ddb_gate_url != endpoints.aws_endpoint_url
    assert out["file"]["ddb_gate_url"] == endpoints.ddb_gate_url
    status, body = out["ok"]
    assert status == 200 and "event: done" in body
    usage = out["after_ok"]["tables"][endpoints.table]["operations"]
    assert usage["PutItem"]["consumed_wcu"] >= 1.0
    assert usage["GetItem"]["requests"] >= 1
    status, body = out["cut"]
    assert status == 503 and json.loads(body)["error"]["kind"] == "checkpoint_unavailable"
    cut = out["after_cut"]["tables"][endpoints.table]
    # The agent's boto3 retried the throttled write (3 retries in standard mode).
    assert cut["operations"]["PutItem"]["write_throttle_events"] == 4
