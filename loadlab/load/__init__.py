"""Load: the agent client, session ledger, load curves and Locust users.

This package's ``__init__`` imports nothing from Locust or gevent (importing
Locust monkey-patches the standard library). The Locust-facing parts live in
:mod:`loadlab.load.users` (``SessionUser``, ``ShoppingSessionUser``),
:mod:`loadlab.load.aws_lambda.users` (``LambdaSessionUser``),
:mod:`loadlab.load.shapes` (``FlashSale``, ``Step``, ``Spike``, ``Soak``,
``ScenarioShape``) and :mod:`loadlab.load.fasthttp` (``FastHttpTransport``);
import them from there. :mod:`loadlab.load.launch` starts Locust processes.
"""

from loadlab.load.adapters import (
    ChatMessage,
    EndpointAdapter,
    OpenAIChatAdapter,
    ReferenceAdapter,
    TurnRequest,
    adapter_for,
)
from loadlab.load.auth import mint_session_token
from loadlab.load.client import AgentClient, TurnResult, is_retryable
from loadlab.load.context import ListSink, LoadContext, RowSink
from loadlab.load.curves import shape_tick
from loadlab.load.ledger import SessionLedger, SessionVerdict
from loadlab.load.player import SessionPlayer
from loadlab.load.sse import SSEEvent, SSEParser
from loadlab.load.transport import MockResponse, MockTransport, StreamingResponse, Transport

__all__ = [
    "AgentClient",
    "ChatMessage",
    "EndpointAdapter",
    "ListSink",
    "LoadContext",
    "MockResponse",
    "MockTransport",
    "OpenAIChatAdapter",
    "ReferenceAdapter",
    "RowSink",
    "SSEEvent",
    "SSEParser",
    "SessionLedger",
    "SessionPlayer",
    "SessionVerdict",
    "StreamingResponse",
    "Transport",
    "TurnRequest",
    "TurnResult",
    "adapter_for",
    "is_retryable",
    "mint_session_token",
    "shape_tick",
]
