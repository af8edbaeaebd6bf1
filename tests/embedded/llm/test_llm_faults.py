"""The admin fault API: injected 429s, lowered quotas, leases that expire."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from llm_support import FAST, chat, metric, served

pytestmark = pytest.mark.integration


async def _set(s: aiohttp.ClientSession, fault: object) -> tuple[int, dict[str, Any]]:
    async with s.post("/admin/faults", json=fault) as r:
        return r.status, await r.json()


async def _statuses(s: aiohttp.ClientSession, n: int) -> list[tuple[int, str | None]]:
    out = []
    for _ in range(n):
        async with s.post("/v1/chat/completions", json=chat()) as r:
            body = await r.json()
            out.append((r.status, body["error"]["code"] if r.status != 200 else None))
    return out


def test_reject_fraction_one_rejects_everything_until_cleared() -> None:
    async def scenario() -> tuple[
        list[tuple[int, str | None]], str, tuple[str, str], dict[str, Any]
    ]:
        async with served(FAST) as s:
            status, view = await _set(s, {"reject_fraction": 1})
            assert status == 200 and view["active"] is True
            rejected = await _statuses(s, 3)
            async with s.post("/v1/chat/completions", json=chat()) as r:
                retry_after = (r.headers["Retry-After"], r.headers["retry-after-ms"])
            async with s.get("/metrics") as r:
                text = await r.text()
            async with s.delete("/admin/faults") as r:
                cleared = await r.json()
            after = await _statuses(s, 1)
            return rejected + after, text, retry_after, cleared

    results, text, retry_after, cleared = asyncio.run(scenario())
    assert results == [(429, "fault")] * 3 + [(200, None)]
    assert retry_after == ("1", "10")  # one simulated second at time_scale 0.01
    assert metric(text, 'loadlab_llm_rate_limited_total{reason="fault"}') == 4
    assert cleared["active"] is False and cleared["fault"]["reject_fraction"] == 0


def test_expired_fault_is_ignored() -> None:
    async def scenario() -> tuple[dict[str, Any], list[tuple[int, str | None]], dict[str, Any]]:
        async with served(FAST) as s:
            _, view = await _set(s, {"reject_fraction": 1, "expires_at": time.time() - 10})
            results = await _statuses(s, 2)
            # A partial update of an expired fault starts afresh, not from the stale lease.
            _, fresh = await _set(s, {"extra_latency_ms": 1})
            return view, results, fresh

    view, results, fresh = asyncio.run(scenario())
    assert view["active"] is False
    assert results == [(200, None)] * 2
    assert fresh["fault"]["reject_fraction"] == 0 and fresh["fault"]["expires_at"] is None


def test_partial_updates_merge_and_lower_the_rpm() -> None:
    async def scenario() -> tuple[dict[str, Any], list[tuple[int, str | None]]]:
        async with served(FAST) as s:
            await _set(s, {"token_interval_factor": 2.0, "expires_at": time.time() + 600})
            _, view = await _set(s, {"rpm": 1})
            return view, await _statuses(s, 2)

    view, results = asyncio.run(scenario())
    assert view["active"] is True
    assert view["fault"]["token_interval_factor"] == 2.0 and view["fault"]["rpm"] == 1
    assert results == [(200, None), (429, "rpm")]


@pytest.mark.parametrize(
    "fault",
    [
        {"reject_fraction": 1.5},
        {"reject_fraction": True},
        {"extra_latency_ms": -1},
        {"token_interval_factor": 0},
        {"rpm": -1},
        {"tpm": 2.5},
        {"expires_at": "soon"},
        {"surprise": 1},
        [1, 2],
    ],
)
def test_bad_fault_values_get_400_and_change_nothing(fault: object) -> None:
    async def scenario() -> tuple[int, dict[str, Any], dict[str, Any]]:
        async with served(FAST) as s:
            status, body = await _set(s, fault)
            async with s.get("/admin/faults") as r:
                return status, body, await r.json()

    status, body, view = asyncio.run(scenario())
    assert status == 400
    assert body["error"]["code"] == "invalid_fault" and body["error"]["message"]
    assert view["active"] is False
