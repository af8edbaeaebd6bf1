"""One Lambda execution environment: its event loop and its started ShoppingAgent.

Lambda runs one invocation at a time per environment and keeps the process
between invocations, so :class:`LambdaAgent` owns one event loop for the
environment's whole life: the agent's LLM connection pool, DynamoDB client and
hot session cache survive from one invocation to the next, as they do in a pod.
Each invocation runs the turn to its end (the whole answer is buffered: Lambda's
response is not streamed) and returns a proxy response whose body is the SSE
text of the turn's events.

The turn is bounded by the function's remaining time minus a margin, so a slow
LLM ends the turn with an ``error`` event (the answer so far is kept, and the
``meta`` event tells the caller the turn was applied) instead of the whole
invocation timing out with nothing.

``on_event`` is called after each protocol event is buffered, in the middle of
the invocation. It is the seam for faults that must strike there: a hook that
kills its own process after the ``meta`` event (the checkpoint is written)
reproduces an environment dying mid-turn, on AWS as on ministack.

``init_scope="handler"`` reproduces a common mistake on purpose: the agent's
clients, catalog and loading are redone inside every invocation instead of once
per environment, so every turn pays the initialisation (its ``meta`` event
reports that invocation's ``init_ms``), not only the cold ones.
:meth:`LambdaAgent.before_snapshot` and :meth:`LambdaAgent.after_restore` are
the SnapStart runtime hooks (:mod:`~loadlab.embedded.aws_lambda.snapstart`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Literal

from loadlab.embedded.agent.config import AgentConfig
from loadlab.embedded.agent.core import ShoppingAgent
from loadlab.embedded.agent.events import ErrorEvent, ProtocolEvent, TurnRejected, encode_sse
from loadlab.embedded.aws_lambda.calls import (
    SSE_HEADERS,
    Call,
    HealthCall,
    ProxyResponse,
    SessionCall,
    TurnCall,
    parse_call,
)

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient

log = logging.getLogger(__name__)

EventHook = Callable[[ProtocolEvent], None]
InitScope = Literal["module", "handler"]
"""Where the agent initialises: once per environment (``module``) or in every invocation."""
INIT_SCOPES: tuple[InitScope, ...] = ("module", "handler")
DEADLINE_MARGIN_S = 1.0
"""Time kept back from the function's limit to return what the turn produced."""
MIN_TURN_BUDGET_S = 0.1


class LambdaAgent:
    """The agent of one execution environment: ``start()`` once, ``invoke()`` per event."""

    def __init__(
        self,
        *,
        config: AgentConfig,
        on_event: EventHook | None = None,
        dynamodb_client: DynamoDBClient | None = None,
        init_scope: InitScope = "module",
    ) -> None:
        self.config = config
        self.agent = ShoppingAgent(config=config, dynamodb_client=dynamodb_client)
        self.invocations = 0
        self.init_scope: InitScope = init_scope
        self.on_event = on_event
        self._loop = asyncio.new_event_loop()

    @property
    def instance_id(self) -> str:
        """The name this environment reports in ``meta`` events."""
        return self.agent.instance_id

    def start(self, *, began: float | None = None) -> None:
        """Initialise the agent (catalog, clients, simulated init delay) on this loop.

        ``began`` is the ``time.perf_counter()`` at which the environment began
        loading the function's code: the agent's ``init_ms`` then counts from
        there, as Lambda's ``Init Duration`` counts the imports too.
        """
        self._loop.run_until_complete(self.agent.start())
        if began is not None:
            self.agent.init_ms = (time.perf_counter() - began) * 1000

    def before_snapshot(self) -> None:
        """SnapStart hook: close every connection, thread and the event loop; keep the rest.

        A restored environment is a copy of this process: sockets, threads and an
        epoll descriptor shared with the snapshot would be shared by every copy.
        """
        self._loop.run_until_complete(self.agent.disconnect())
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()

    def after_restore(self, instance_id: str | None = None) -> None:
        """SnapStart hook: take the restored environment's name, open a loop and connections."""
        if instance_id is not None:
            self.config = dataclasses.replace(self.config, instance_id=instance_id)
            self.agent.config = self.config
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self.agent.reconnect())

    def close(self) -> None:
        """Close the agent's clients and the loop (tests; Lambda just freezes the process)."""
        if not self._loop.is_closed():
            self._loop.run_until_complete(self.agent.close())
            self._loop.close()

    def invoke(self, event: object, *, remaining_ms: float | None = None) -> dict[str, Any]:
        """Answer one invocation event with a proxy response (never raises)."""
        began = time.perf_counter()
        self.invocations += 1
        what = "event"
        try:
            call = parse_call(event, jwt_secret=self.config.jwt_secret)
            what = _describe(call)
            if self.init_scope == "handler":
                # The anti-pattern, on purpose: clients and loading redone in every invocation.
                self._loop.run_until_complete(self.agent.close())
                self._loop.run_until_complete(self.agent.start())
            response = self._loop.run_until_complete(self._answer(call, remaining_ms))
        except TurnRejected as rejected:
            response = ProxyResponse.rejected(rejected)
        except Exception as exc:
            log.exception("%s failed", what)
            response = ProxyResponse.rejected(
                TurnRejected(status=500, kind="internal", message=type(exc).__name__)
            )
        log.info(
            "%s -> %d in %.1f ms (instance %s, invocation %d)",
            what,
            response.status,
            (time.perf_counter() - began) * 1000,
            self.instance_id,
            self.invocations,
        )
        return response.to_lambda()

    async def _answer(self, call: Call, remaining_ms: float | None) -> ProxyResponse:
        if isinstance(call, HealthCall):
            body = {"status": "ok", "instance_id": self.instance_id}
            if not self.agent.ready:
                return ProxyResponse.json(503, body | {"status": "initialising"})
            return ProxyResponse.json(200, body)
        if isinstance(call, SessionCall):
            state = await self.agent.session_state(call.session_id)
            return ProxyResponse.json(200, state.to_json())
        budget = None
        if remaining_ms is not None:
            budget = max(remaining_ms / 1000 - DEADLINE_MARGIN_S, MIN_TURN_BUDGET_S)
        return await self._turn(call, budget)

    async def _turn(self, call: TurnCall, budget_s: float | None) -> ProxyResponse:
        frames: list[bytes] = []
        events = self.agent.handle_turn(
            call.session_id, call.turn, call.message, call.idempotency_key
        )
        async with aclosing(events):
            try:
                async with asyncio.timeout(budget_s):
                    async for event in events:
                        frames.append(encode_sse(event))
                        if self.on_event is not None:
                            self.on_event(event)
            except TimeoutError:
                if not frames:
                    raise TurnRejected(
                        status=504,
                        kind="timeout",
                        message=f"the turn did not start within the function's time limit "
                        f"({budget_s:.1f} s left)",
                    ) from None
                cut = ErrorEvent(kind="internal", message="the function's time limit cut the turn")
                frames.append(encode_sse(cut))
            except TurnRejected:
                raise
            except Exception as exc:
                if not frames:
                    raise
                log.exception("turn %d of %s failed mid-stream", call.turn, call.session_id)
                frames.append(encode_sse(ErrorEvent(kind="internal", message=type(exc).__name__)))
        body = b"".join(frames).decode("utf-8")
        return ProxyResponse(status=200, body=body, headers=SSE_HEADERS)


def _describe(call: Call) -> str:
    if isinstance(call, TurnCall):
        return f"turn {call.turn} of {call.session_id}"
    if isinstance(call, SessionCall):
        return f"state of {call.session_id}"
    return "health"
