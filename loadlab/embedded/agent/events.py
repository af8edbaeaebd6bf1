"""The events of one turn (docs/protocol.md) and how they go on the wire as SSE.

A turn is ``meta``, then ``token`` events, then ``done`` or ``error``. A turn
refused before its first event is a :class:`TurnRejected`, which the HTTP layer
answers with a plain status and a JSON error body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from loadlab.embedded.agent.state import SessionState

StateSource = Literal["memory", "checkpoint", "new"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetaEvent:
    """First event of a turn: who serves it and what the agent made of it."""

    name: ClassVar[str] = "meta"
    instance_id: str
    cold: bool
    init_ms: float
    state_source: StateSource
    intent: str
    replayed: bool

    def data(self) -> dict[str, Any]:
        """The event's JSON payload."""
        return {
            "instance_id": self.instance_id,
            "cold": self.cold,
            "init_ms": round(self.init_ms, 1),
            "state_source": self.state_source,
            "intent": self.intent,
            "replayed": self.replayed,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenEvent:
    """One piece of the streamed answer."""

    name: ClassVar[str] = "token"
    text: str

    def data(self) -> dict[str, Any]:
        """The event's JSON payload."""
        return {"text": self.text}


@dataclass(frozen=True, slots=True, kw_only=True)
class DoneEvent:
    """Last event of a successful turn: the acknowledged state and what it cost."""

    name: ClassVar[str] = "done"
    state: SessionState
    replayed: bool
    downstream: Mapping[str, int | float]

    def data(self) -> dict[str, Any]:
        """The event's JSON payload."""
        return {
            "state": self.state.to_json(),
            "replayed": self.replayed,
            "downstream": dict(self.downstream),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent:
    """Last event of a turn that failed after its stream started."""

    name: ClassVar[str] = "error"
    kind: str
    message: str

    def data(self) -> dict[str, Any]:
        """The event's JSON payload."""
        return {"kind": self.kind, "message": self.message}


ProtocolEvent = MetaEvent | TokenEvent | DoneEvent | ErrorEvent


def encode_sse(event: ProtocolEvent) -> bytes:
    """One event as an SSE frame (``event:`` line, one ``data:`` line, blank line)."""
    payload = json.dumps(event.data(), separators=(",", ":"), ensure_ascii=False)
    return f"event: {event.name}\ndata: {payload}\n\n".encode()


class TurnRejected(Exception):
    """A turn refused before its stream started; answered with ``status`` and a JSON body.

    ``kind`` is one of: ``bad_request`` (400), ``auth`` (401), ``stale_turn`` (409),
    ``checkpoint_conflict`` (409), ``not_ready`` (503), ``checkpoint_unavailable`` (503).
    """

    def __init__(self, *, status: int, kind: str, message: str) -> None:
        self.status = status
        self.kind = kind
        self.message = message
        super().__init__(f"{status} {kind}: {message}")

    def body(self) -> dict[str, Any]:
        """The JSON error body of the protocol."""
        return {"error": {"kind": self.kind, "message": self.message}}
