"""The embedded stack's token and maximum lease, and where the harness is given them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from loadlab.app.embedded import pressure_env
from loadlab.embedded.admin_auth import (
    MAX_LEASE_S,
    LeaseRefused,
    admin_token_from_env,
    check_lease,
    require_token,
)
from loadlab.embedded.state import LocalAWS, StackEndpoints, StackState

TOKEN = "admin-token-canary-0123456789"


def _state(tmp_path: Path) -> StackState:
    return StackState(
        pid=1,
        started_at=1.0,
        endpoints=StackEndpoints(
            agent_url="http://127.0.0.1:8001",
            aws_endpoint_url="http://127.0.0.1:8002",
            llm_url="http://127.0.0.1:8003",
            fleet_url="http://127.0.0.1:8004",
            region="eu-west-1",
            table="checkpoints",
        ),
        jwt_secret="jwt-canary",
        aws=LocalAWS(
            endpoint_url="http://127.0.0.1:8002",
            region="eu-west-1",
            access_key_id="k",
            secret_access_key="s",
        ),
        replicas=1,
        time_scale=1.0,
        agent_mode="correct",
        seed=1,
        pids={},
        logs={},
        admin_token=TOKEN,
        kubeconfig=str(tmp_path / "kubeconfig"),
    )


@pytest.mark.parametrize(
    ("expires_at", "message"),
    [
        (None, "needs an expiry"),
        (float("inf"), "needs an expiry"),
        (1_000.0 + MAX_LEASE_S + 1, "longer than the maximum lease of 900 s (15 minutes)"),
    ],
)
def test_a_lease_without_an_end_or_past_the_maximum_is_refused(
    expires_at: float | None, message: str
) -> None:
    with pytest.raises(LeaseRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_lease(expires_at, now=1_000.0)


def test_a_lease_up_to_the_maximum_is_accepted() -> None:
    check_lease(1_000.0 + MAX_LEASE_S, now=1_000.0)
    check_lease(999.0, now=1_000.0)  # already over: harmless, it applies to nothing


def test_without_the_variable_a_server_makes_up_a_token_nobody_knows() -> None:
    first, second = admin_token_from_env({}), admin_token_from_env({"LOADLAB_ADMIN_TOKEN": " "})
    assert len(first) >= 32 and first != second
    assert admin_token_from_env({"LOADLAB_ADMIN_TOKEN": TOKEN}) == TOKEN


def test_the_state_keeps_the_token_out_of_its_repr_and_reads_it_back(tmp_path: Path) -> None:
    state = _state(tmp_path)
    assert TOKEN not in repr(state)
    again = StackState.from_json(json.loads(json.dumps(state.to_json())))
    assert again.admin_token == TOKEN and again.kubeconfig == state.kubeconfig


def test_the_harness_gets_the_token_and_the_kubeconfig(tmp_path: Path) -> None:
    env = pressure_env(_state(tmp_path))
    assert env["LOADLAB_ADMIN_TOKEN"] == TOKEN
    assert env["KUBECONFIG"] == str(tmp_path / "kubeconfig")


def test_the_middleware_guards_only_its_prefixes() -> None:
    async def ok(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    def refuse(_request: web.Request, message: str) -> web.Response:
        return web.json_response({"message": message}, status=401)

    async def scenario() -> list[tuple[str, int]]:
        app = web.Application(
            middlewares=[require_token(TOKEN, prefixes=("/admin/",), refuse=refuse)]
        )
        app.router.add_get("/admin/x", ok)
        app.router.add_get("/metrics", ok)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        out = []
        try:
            async with aiohttp.ClientSession() as http:
                for path, auth in (
                    ("/metrics", ""),
                    ("/admin/x", ""),
                    ("/admin/x", "Bearer wrong"),
                    ("/admin/x", f"Bearer {TOKEN}x"),
                    ("/admin/x", f"bearer {TOKEN}"),
                ):
                    async with http.get(url + path, headers={"Authorization": auth}) as resp:
                        out.append((f"{path} {auth[:6]}", resp.status))
        finally:
            await runner.cleanup()
        return out

    statuses = [status for _, status in asyncio.run(scenario())]
    assert statuses == [200, 401, 401, 401, 200]


def test_an_empty_token_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        require_token("", prefixes=("/admin/",), refuse=lambda r, m: web.Response(status=401))
