"""LLM fault actions and probes against a real LLM simulator."""

from __future__ import annotations

import json
import time

import pytest
from aiohttp import web
from chaoslib.exceptions import ActivityFailed
from downstream_support import LoopThread, chat_status

from loadlab.chaos.downstream.actions import (
    llm_429_storm,
    llm_faults_clear,
    llm_quota_cut,
    llm_slowdown,
)
from loadlab.chaos.downstream.probes import llm_fault, llm_fault_active

pytestmark = pytest.mark.integration


def test_a_429_storm_is_a_lease_that_probes_read_and_clear_ends(
    llm_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADLAB_LLM_URL", llm_url + "/v1")  # an OpenAI-style base URL works
    assert llm_fault_active() is False
    before = time.time()
    applied = llm_429_storm(reject_fraction=1.0, duration_s=120)
    assert applied["target"] == "llm" and applied["url"] == llm_url
    assert applied["reject_fraction"] == 1.0 and applied["active"] is True
    assert before + 120 <= applied["expires_at"] <= time.time() + 120
    json.dumps(applied)  # a Chaos Toolkit journal must be able to hold it
    assert chat_status(llm_url) == 429
    assert llm_fault_active() is True
    assert llm_fault()["fault"]["expires_at"] == applied["expires_at"]

    cleared = llm_faults_clear()
    assert cleared["active"] is False and cleared["fault"]["reject_fraction"] == 0
    assert llm_fault_active() is False
    assert chat_status(llm_url) == 200


def test_faults_combine_and_share_the_newest_lease(llm_url: str) -> None:
    cut = llm_quota_cut(rpm=1, duration_s=60, llm_admin_url=llm_url)
    slow = llm_slowdown(
        extra_latency_ms="5", token_interval_factor=2, duration_s=90, llm_admin_url=llm_url
    )
    fault = llm_fault(llm_admin_url=llm_url)["fault"]
    assert cut["rpm"] == 1 and "tpm" not in cut  # only what was asked is set
    assert fault["rpm"] == 1 and fault["token_interval_factor"] == 2.0
    assert fault["extra_latency_ms"] == 5.0
    assert fault["expires_at"] == slow["expires_at"] > cut["expires_at"]
    assert [chat_status(llm_url) for _ in range(2)] == [200, 429]  # 1 request per minute


def test_an_llm_fault_ends_by_itself_when_its_lease_expires(llm_url: str) -> None:
    llm_429_storm(reject_fraction=1.0, duration_s=0.3, llm_admin_url=llm_url)
    assert chat_status(llm_url) == 429
    deadline = time.monotonic() + 10
    while llm_fault_active(llm_admin_url=llm_url) and time.monotonic() < deadline:
        time.sleep(0.05)  # the lease runs on the wall clock: nothing to await
    assert llm_fault_active(llm_admin_url=llm_url) is False
    assert chat_status(llm_url) == 200  # nobody cleared it


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda url: llm_429_storm(reject_fraction=2, llm_admin_url=url), "reject_fraction=2"),
        (lambda url: llm_429_storm(duration_s=0, llm_admin_url=url), "duration_s=0"),
        (lambda url: llm_429_storm(duration_s="soon", llm_admin_url=url), "not a number"),
        (lambda url: llm_quota_cut(llm_admin_url=url), "needs rpm or tpm"),
        (lambda url: llm_slowdown(token_interval_factor=0, llm_admin_url=url), "factor=0"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_injected(
    llm_url: str, call: object, message: str
) -> None:
    with pytest.raises(ActivityFailed, match=message):
        call(llm_url)  # type: ignore[operator]
    assert llm_fault_active(llm_admin_url=llm_url) is False


def test_without_a_url_the_action_says_where_to_set_it() -> None:
    with pytest.raises(ActivityFailed, match="LOADLAB_LLM_URL"):
        llm_429_storm()


def test_a_real_provider_has_no_admin_api_and_receives_no_fault(loop_thread: LoopThread) -> None:
    """An OpenAI-compatible endpoint that is not loadlab's simulator."""
    seen: list[tuple[str, str]] = []

    async def anything(request: web.Request) -> web.Response:
        seen.append((request.method, request.path))
        return web.json_response({"error": {"message": "Unknown request URL"}}, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    url, runner = loop_thread.serve(app)
    try:
        with pytest.raises(ActivityFailed, match="does not apply to it"):
            llm_429_storm(llm_admin_url=url)
        with pytest.raises(ActivityFailed, match="not a loadlab LLM simulator"):
            llm_fault_active(llm_admin_url=url)
    finally:
        loop_thread.run(runner.cleanup())
    assert seen == [("GET", "/admin/faults")] * 2  # looked, never posted


def test_an_llm_that_does_not_answer_is_reported() -> None:
    with pytest.raises(ActivityFailed, match=r"cannot reach http://127\.0\.0\.1:9/admin/faults"):
        llm_faults_clear(llm_admin_url="http://127.0.0.1:9")


@pytest.mark.parametrize("token", [None, "garbage"], ids=["no-token", "garbage-token"])
def test_without_the_stacks_token_the_action_fails_and_sets_nothing(
    llm_url: str, monkeypatch: pytest.MonkeyPatch, token: str | None, admin_token: str
) -> None:
    monkeypatch.setenv("LOADLAB_LLM_URL", llm_url)
    if token is None:
        monkeypatch.delenv("LOADLAB_ADMIN_TOKEN")
    else:
        monkeypatch.setenv("LOADLAB_ADMIN_TOKEN", token)
    with pytest.raises(ActivityFailed, match=r"401.*set LOADLAB_ADMIN_TOKEN") as caught:
        llm_429_storm(reject_fraction=1.0, duration_s=60)
    assert admin_token not in str(caught.value)
    monkeypatch.setenv("LOADLAB_ADMIN_TOKEN", admin_token)
    assert llm_fault_active() is False
    assert chat_status(llm_url) == 200


def test_a_fault_longer_than_the_maximum_lease_is_refused_with_the_limit_named(
    llm_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADLAB_LLM_URL", llm_url)
    with pytest.raises(ActivityFailed, match=r"maximum lease of 900 s \(15 minutes\)"):
        llm_slowdown(extra_latency_ms=100, duration_s=3600)
    assert llm_fault_active() is False
