"""The shopping agent's one async core, independent of how turns arrive (HTTP or Lambda).

A turn: load the session (hot in-process cache, else its DynamoDB checkpoint,
else new); detect the intent; if the ``Idempotency-Key`` was already applied,
answer from the stored state without applying anything; otherwise run the tool,
count the turn, and checkpoint with a conditional write **after** the side effect
and **before** the LLM call, so a kill at any point either loses the whole turn
(the retry applies it) or keeps it (the retry is a replay). Then stream the
LLM's answer. A write that loses a race (another instance moved the session on)
reloads from the checkpoint and decides again, once.

``config.mode`` other than ``correct`` breaks this on purpose, so tests can show
the continuity oracle catching each breakage:

* ``no_checkpoint``: state lives in this instance's memory only;
* ``checkpoint_before_side_effect``: the checkpoint is written before the turn's
  cart change (it records the key and turn but the cart without this turn's
  change), so a session resumed elsewhere has lost that change;
* ``no_idempotency``: the key and turn number are not checked, so a retried turn
  is applied again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config as BotoConfig

from loadlab.embedded.agent.catalog import Catalog
from loadlab.embedded.agent.checkpoint import (
    CheckpointConflict,
    CheckpointStore,
    CheckpointUnavailable,
)
from loadlab.embedded.agent.config import AgentConfig
from loadlab.embedded.agent.events import (
    DoneEvent,
    ErrorEvent,
    MetaEvent,
    ProtocolEvent,
    StateSource,
    TokenEvent,
    TurnRejected,
)
from loadlab.embedded.agent.intent import detect_intent
from loadlab.embedded.agent.llm import ChatMessage, LLMClient, LLMUnavailable
from loadlab.embedded.agent.state import DownstreamCounts, SessionState
from loadlab.embedded.agent.tools import ToolResult, replay_summary, run_tool

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are the shopping assistant of the loadlab demo store. Answer the shopper in two "
    "or three friendly sentences, using only the tool result you are given."
)
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Runtime:
    """What :meth:`ShoppingAgent.start` builds once per instance."""

    catalog: Catalog
    store: CheckpointStore
    llm: LLMClient
    client: DynamoDBClient


@dataclass(frozen=True, slots=True, kw_only=True)
class _Decision:
    """How a turn was settled before its answer is streamed."""

    state: SessionState
    source: StateSource
    replayed: bool
    tool: ToolResult
    history: tuple[str, ...]


def dynamodb_client(config: AgentConfig) -> DynamoDBClient:
    """A DynamoDB client for ``config`` (endpoint, else ``AWS_ENDPOINT_URL``, else AWS)."""
    session = boto3.session.Session()
    return session.client(
        "dynamodb",
        endpoint_url=config.dynamodb_endpoint,
        region_name=session.region_name or DEFAULT_REGION,
        config=BotoConfig(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=2,
            read_timeout=5,
            max_pool_connections=16,
        ),
    )


class ShoppingAgent:
    """One agent instance: call :meth:`start` once, then :meth:`handle_turn` per turn."""

    def __init__(
        self, *, config: AgentConfig, dynamodb_client: DynamoDBClient | None = None
    ) -> None:
        self.config = config
        self.init_ms: float | None = None
        self._given_client = dynamodb_client
        self._runtime: _Runtime | None = None
        self._cache: OrderedDict[str, SessionState] = OrderedDict()
        self._served_a_turn = False
        self._parked: _Runtime | None = None

    @property
    def instance_id(self) -> str:
        """The name this instance reports in ``meta`` events."""
        return self.config.instance_id

    @property
    def ready(self) -> bool:
        """True between the end of :meth:`start` and :meth:`close`."""
        return self._runtime is not None

    async def start(self) -> None:
        """Do the expensive initialisation once: catalog, AWS client, LLM pool, init delay."""
        if self._runtime is not None:
            return
        began = time.perf_counter()
        catalog = await asyncio.to_thread(Catalog.load)
        client, llm = await self._connect()
        # Stands in for what a real agent loads at start (models, prompts, secrets).
        await asyncio.sleep(self.config.init_delay_s)
        store = CheckpointStore(client=client, table=self.config.table)
        self._runtime = _Runtime(catalog=catalog, store=store, llm=llm, client=client)
        self.init_ms = (time.perf_counter() - began) * 1000
        log.info("agent %s ready in %.1f ms", self.instance_id, self.init_ms)

    async def _connect(self) -> tuple[DynamoDBClient, LLMClient]:
        client = self._given_client
        if client is None:
            client = await asyncio.to_thread(dynamodb_client, self.config)
        llm = self._llm_client()
        await llm.start()
        return client, llm

    def _llm_client(self) -> LLMClient:
        return LLMClient(
            base_url=self.config.llm_url,
            model=self.config.llm_model,
            max_attempts=self.config.llm_max_attempts,
            timeout_s=self.config.llm_timeout_s,
            max_tokens=self.config.llm_max_tokens,
            max_retry_wait_s=self.config.llm_max_retry_wait_s,
            time_scale=self.config.time_scale,
        )

    async def disconnect(self) -> None:
        """Close every connection but keep what was loaded (before a snapshot is taken).

        The catalog and the DynamoDB client (its service model loaded) stay; its
        pooled sockets, the checkpoint threads and the LLM pool go.
        :meth:`reconnect` opens them again.
        """
        runtime, self._runtime = self._runtime, None
        if runtime is None:
            return
        await runtime.llm.close()
        await asyncio.to_thread(runtime.store.close)
        runtime.client.close()  # drops the pool's sockets; the next call opens new ones
        self._parked = runtime

    async def reconnect(self) -> None:
        """Open the connections again after a restore (no catalog load, no init delay)."""
        parked, self._parked = self._parked, None
        if parked is None:
            raise RuntimeError("reconnect() without disconnect(): call start() instead")
        llm = self._llm_client()
        await llm.start()
        store = CheckpointStore(client=parked.client, table=self.config.table)
        self._runtime = _Runtime(catalog=parked.catalog, store=store, llm=llm, client=parked.client)

    def mark_provisioned(self) -> None:
        """This instance was initialised before any turn (provisioned concurrency).

        Its first turn then reports ``cold: false``: no caller waited for its INIT.
        """
        self._served_a_turn = True

    async def close(self) -> None:
        """Release the LLM pool, the checkpoint threads and the AWS client it created."""
        runtime, self._runtime = self._runtime, None
        if runtime is None:
            return
        await runtime.llm.close()
        await asyncio.to_thread(runtime.store.close)
        if self._given_client is None:
            runtime.client.close()

    def _require_runtime(self) -> _Runtime:
        if self._runtime is None:
            raise TurnRejected(status=503, kind="not_ready", message="the agent is not started")
        return self._runtime

    async def session_state(self, session_id: str) -> SessionState:
        """The session's state as checkpointed (this instance's memory in ``no_checkpoint``)."""
        runtime = self._require_runtime()
        if self.config.mode == "no_checkpoint":
            return self._cache.get(session_id) or SessionState(session_id=session_id)
        try:
            stored = await runtime.store.load(session_id, DownstreamCounts())
        except CheckpointUnavailable as exc:
            raise TurnRejected(
                status=503, kind="checkpoint_unavailable", message=str(exc)
            ) from None
        return stored or SessionState(session_id=session_id)

    async def handle_turn(
        self, session_id: str, turn: int, message: str, idempotency_key: str
    ) -> AsyncGenerator[ProtocolEvent, None]:
        """The events of one turn: ``meta``, ``token``…, then ``done`` or ``error``.

        Raises :class:`TurnRejected` before the first event if the turn is refused
        (not ready, stale turn, checkpoint conflict or DynamoDB unavailable).
        """
        runtime = self._require_runtime()
        counts = DownstreamCounts()
        intent = detect_intent(message)
        decision = await self._decide(
            runtime,
            session_id=session_id,
            turn=turn,
            message=message,
            intent=intent,
            key=idempotency_key,
            counts=counts,
        )
        cold, self._served_a_turn = not self._served_a_turn, True
        yield MetaEvent(
            instance_id=self.instance_id,
            cold=cold,
            init_ms=self.init_ms or 0.0,
            state_source=decision.source,
            intent=intent,
            replayed=decision.replayed,
        )
        prompt = _prompt(message, decision)
        try:
            async with aclosing(runtime.llm.stream(prompt, counts)) as pieces:
                async for text in pieces:
                    yield TokenEvent(text=text)
        except LLMUnavailable as exc:
            log.warning("turn %d of %s: LLM unavailable: %s", turn, session_id, exc)
            yield ErrorEvent(kind="llm_unavailable", message=str(exc))
            return
        yield DoneEvent(
            state=decision.state, replayed=decision.replayed, downstream=counts.to_json()
        )

    async def _decide(
        self,
        runtime: _Runtime,
        *,
        session_id: str,
        turn: int,
        message: str,
        intent: str,
        key: str,
        counts: DownstreamCounts,
    ) -> _Decision:
        honour_keys = self.config.mode != "no_idempotency"
        for fresh in (False, True):
            state, source = await self._load(runtime, session_id, counts, fresh=fresh)
            applied_turn = state.applied_turn(key) if honour_keys else None
            if applied_turn is not None:
                self._remember(state)
                tool = replay_summary(intent, state=state, applied_turn=applied_turn)
                return _Decision(
                    state=state, source=source, replayed=True, tool=tool, history=state.history
                )
            if honour_keys and turn <= state.turn:
                if source == "memory" and self.config.mode != "no_checkpoint":
                    continue  # the cache may be behind a turn applied by another instance
                raise TurnRejected(
                    status=409,
                    kind="stale_turn",
                    message=f"turn {turn} is not after turn {state.turn}, the last applied to "
                    f"session {session_id!r}, and its Idempotency-Key was never applied",
                )
            tool = run_tool(intent, message, state=state, catalog=runtime.catalog)
            after = state.advanced(cart=tool.cart, key=key, note=f"{intent}: {message[:80]}")
            try:
                saved = await self._checkpoint(runtime, state, after, counts)
            except CheckpointConflict:
                self._cache.pop(session_id, None)
                continue
            self._remember(saved)
            return _Decision(
                state=saved, source=source, replayed=False, tool=tool, history=state.history
            )
        raise TurnRejected(
            status=409,
            kind="checkpoint_conflict",
            message=f"session {session_id!r} changed twice under this turn; retry it",
        )

    async def _load(
        self, runtime: _Runtime, session_id: str, counts: DownstreamCounts, *, fresh: bool
    ) -> tuple[SessionState, StateSource]:
        cached = None if fresh else self._cache.get(session_id)
        if cached is not None:
            self._cache.move_to_end(session_id)
            return cached, "memory"
        if self.config.mode == "no_checkpoint":
            return SessionState(session_id=session_id), "new"
        try:
            stored = await runtime.store.load(session_id, counts)
        except CheckpointUnavailable as exc:
            raise TurnRejected(
                status=503, kind="checkpoint_unavailable", message=str(exc)
            ) from None
        if stored is None:
            return SessionState(session_id=session_id), "new"
        return stored, "checkpoint"

    async def _checkpoint(
        self,
        runtime: _Runtime,
        before: SessionState,
        after: SessionState,
        counts: DownstreamCounts,
    ) -> SessionState:
        mode = self.config.mode
        if mode == "no_checkpoint":
            return after
        # The deliberate bug: the item records the turn and key but not the cart change.
        written = dataclasses.replace(after, cart=before.cart)
        if mode != "checkpoint_before_side_effect":
            written = after
        try:
            saved = await runtime.store.save(
                written, expected_version=before.version, counts=counts
            )
        except CheckpointUnavailable as exc:
            raise TurnRejected(
                status=503, kind="checkpoint_unavailable", message=str(exc)
            ) from None
        return after.with_version(saved.version)

    def _remember(self, state: SessionState) -> None:
        self._cache[state.session_id] = state
        self._cache.move_to_end(state.session_id)
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)


def _prompt(message: str, decision: _Decision) -> list[ChatMessage]:
    messages: list[ChatMessage] = [{"role": "system", "content": SYSTEM_PROMPT}]
    if decision.history:
        earlier = "; ".join(decision.history)
        messages.append({"role": "system", "content": f"Earlier in this session: {earlier}"})
    result = json.dumps(decision.tool.summary, separators=(",", ":"))
    messages.append({"role": "user", "content": f"{message}\n\nTool result: {result}"})
    return messages
