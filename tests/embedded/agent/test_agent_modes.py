"""The deliberate breakages: each mode must leave the trace the continuity oracle looks for.

One script for every mode: turn 1 adds P-0001 on instance A, which then dies; the
shopper, unsure whether turn 1 took, retries it with the same key on instance B,
then adds P-0002 as turn 2.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from agent_support import Dynamo, agent_config, llm_simulator, new_session_id, post_turn

from loadlab.embedded.agent.service import AgentServer

pytestmark = pytest.mark.integration


async def _play(dynamo: Dynamo, mode: str, sid: str) -> tuple[Any, Any]:
    async with llm_simulator() as llm_url, aiohttp.ClientSession() as http:
        config = agent_config(llm_url=llm_url, dynamo=dynamo, mode=mode)
        async with AgentServer(config=config) as a:
            first = await post_turn(http, a.url, sid, turn=1, message="add P-0001", key="k1")
            assert first.one("done")["state"]["cart"] == {"P-0001": 1}
        async with AgentServer(config=config) as b:
            retry = await post_turn(http, b.url, sid, turn=1, message="add P-0001", key="k1")
            last = await post_turn(http, b.url, sid, turn=2, message="add P-0002", key="k2")
        return retry, last


@pytest.mark.parametrize(
    ("mode", "retry_replayed", "retry_source", "final_cart", "final_turn", "item_cart"),
    [
        ("correct", True, "checkpoint", {"P-0001": 1, "P-0002": 1}, 2, {"P-0001": 1, "P-0002": 1}),
        # the retry is applied again: the oracle's "duplicated"
        ("no_idempotency", False, "checkpoint", {"P-0001": 2, "P-0002": 1}, 3,
         {"P-0001": 2, "P-0002": 1}),
        # B starts from nothing (no item at all): "new" in the middle of a session
        ("no_checkpoint", False, "new", {"P-0001": 1, "P-0002": 1}, 2, None),
        # the item records each key but never the cart change of its turn: P-0001 is lost
        ("checkpoint_before_side_effect", True, "checkpoint", {"P-0002": 1}, 2, {}),
    ],
)  # fmt: skip
def test_each_mode_leaves_its_own_trace(
    dynamo: Dynamo,
    mode: str,
    retry_replayed: bool,
    retry_source: str,
    final_cart: dict[str, int],
    final_turn: int,
    item_cart: dict[str, int] | None,
) -> None:
    sid = new_session_id()
    retry, last = asyncio.run(_play(dynamo, mode, sid))
    assert retry.one("meta")["replayed"] is retry_replayed
    assert retry.one("meta")["state_source"] == retry_source
    state = last.one("done")["state"]
    assert (state["cart"], state["turn"]) == (final_cart, final_turn)
    item = dynamo.item(sid)
    if item_cart is None:
        assert item is None
    else:
        assert item is not None
        assert {sku: int(v["N"]) for sku, v in item["cart"]["M"].items()} == item_cart
