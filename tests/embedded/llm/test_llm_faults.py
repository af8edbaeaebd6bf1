"""The admin fault API: injected 429s, lowered quotas, leases that expire."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from llm_support import ADMIN_TOKEN, FAST, chat, metric, served

pytestmark = pytest.mark.integration


async def _set(
    s: aiohttp.ClientSession, fault: object, *, lease: bool = True
) -> tuple[int, dict[str, Any]]:
    """POST a fault; with ``lease``, one a minute long unless it names its own expiry."""
    if lease and isinstance(fault, dict) and "expires_at" not in fault:
        fault = {**fault, "expires_at": time.time() + 60}
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
    assert fresh["fault"]["reject_fraction"] == 0
    assert fresh["fault"]["expires_at"] > view["fault"]["expires_at"] + 60


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


@pytest.mark.parametrize(
    "fault",
    [
        {"reject_fraction": 1},
        {"reject_fraction": 1, "expires_at": None},
        {"rpm": 1, "expires_in_s": 16 * 60},
    ],
    ids=["no-expiry", "null-expiry", "past-the-maximum-lease"],
)
def test_a_fault_without_a_lease_or_past_the_maximum_is_refused(fault: dict[str, Any]) -> None:
    fault = dict(fault)
    if "expires_in_s" in fault:  # from now, when the test runs (not when it was collected)
        fault["expires_at"] = time.time() + fault.pop("expires_in_s")

    async def scenario() -> tuple[int, dict[str, Any], dict[str, Any]]:
        async with served(FAST) as s:
            status, body = await _set(s, fault, lease=False)
            async with s.get("/admin/faults") as r:
                return status, body, await r.json()

    status, body, view = asyncio.run(scenario())
    assert status == 400
    assert "900 s (15 minutes)" in body["error"]["message"]
    assert view["active"] is False and view["fault"]["reject_fraction"] == 0


@pytest.mark.parametrize("authorization", [None, "Bearer garbage", f"Basic {ADMIN_TOKEN}"])
def test_the_admin_api_refuses_a_missing_or_wrong_token(authorization: str | None) -> None:
    async def scenario() -> list[tuple[int, dict[str, Any]]]:
        async with served(FAST) as s:
            await _set(s, {"reject_fraction": 1})
            headers = {"Authorization": authorization or ""}
            answers = []
            for method in ("GET", "POST", "DELETE"):
                body = {"reject_fraction": 0, "expires_at": time.time() + 60}
                async with s.request(method, "/admin/faults", json=body, headers=headers) as r:
                    answers.append((r.status, await r.json()))
            async with s.get("/admin/faults") as r:
                answers.append((r.status, await r.json()))
            return answers

    *refused, (status, view) = asyncio.run(scenario())
    assert [code for code, _ in refused] == [401, 401, 401]
    for _, body in refused:
        assert "LOADLAB_ADMIN_TOKEN" in body["error"]["message"]
        assert ADMIN_TOKEN not in str(body)
    assert status == 200 and view["active"] is True, "the fault is still set"
