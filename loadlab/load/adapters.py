"""Endpoint adapters: how one turn is asked for, and how its stream is read.

* :class:`ReferenceAdapter` speaks docs/protocol.md: a turn per POST, an
  ``Idempotency-Key``, and ``meta``/``token``/``done``/``error`` events that
  carry the session state, so the continuity oracle can judge the session.
* :class:`OpenAIChatAdapter` speaks OpenAI-compatible chat completions with
  ``stream: true``: the whole conversation is resent each turn and content
  deltas are the tokens. Such an endpoint reports no session state, so its
  sessions can only be judged ``clean`` or ``failed``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from loadlab.load.payloads import (
    AgentDone,
    AgentMeta,
    PayloadError,
    load_json_object,
    parse_done,
    parse_error_payload,
    parse_meta,
)
from loadlab.load.sse import SSEEvent, SSEItem, TokenLane
from loadlab.rows import row_builder


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a conversation, for endpoints that need the history."""

    role: str
    content: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnRequest:
    """Everything needed to send one attempt of one turn."""

    session_id: str
    turn_index: int
    message: str
    idempotency_key: str
    token: str | None = field(default=None, repr=False)
    history: tuple[ChatMessage, ...] = ()


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """An HTTP request ready for a transport (headers hold credentials: never log them)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes


@dataclass(frozen=True, slots=True)
class TokenText:
    """A piece of the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class AgentFailure:
    """The agent reported an error inside the stream (``kind`` is the agent's own)."""

    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class Malformed:
    """An event that does not have the shape the protocol describes."""

    reason: str


Decoded = TokenText | AgentMeta | AgentDone | AgentFailure | Malformed

# Made for every turn: built by loadlab.rows.row_builder, values in this order.
_prepared = row_builder(PreparedRequest, ("method", "url", "headers", "body"))
_token_text = row_builder(TokenText, ("text",))


def _token(text: str) -> TokenText:
    """``TokenText(text)`` without the frozen dataclass's ``object.__setattr__``."""
    return _token_text((text,))


# Characters quote() never escapes: a session id made of them (loadlab's own) is its path.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
_REFERENCE_EVENTS = frozenset({"meta", "token", "done", "error"})


def _plain_text(data: str) -> str | None:
    """The text of a token event's data ``{"text":"..."}`` when reading it needs no JSON
    parse (no escape, no control character): most of a turn's events. None otherwise."""
    if data.startswith('{"text":"') and data.endswith('"}'):
        plain = data[9:-2]
        if '"' not in plain and "\\" not in plain and plain.isprintable():
            return plain
    return None


class EndpointAdapter(Protocol):
    """Builds the request for a turn and decodes the events of its stream."""

    @property
    def name(self) -> str:
        """Short name of the protocol (``reference``, ``openai``)."""
        ...

    @property
    def tracks_state(self) -> bool:
        """True when the endpoint reports session state the oracle can check."""
        ...

    @property
    def token_lane(self) -> TokenLane | None:
        """The shape of the protocol's plain token events, for the SSE parser to hand
        on as texts at once (see :class:`~loadlab.load.sse.TokenLane`); None if none."""
        ...

    def prepare(self, base_url: str, request: TurnRequest) -> PreparedRequest:
        """Build the HTTP request for one attempt of a turn."""
        ...

    def decode(self, event: SSEEvent) -> Decoded | None:
        """Interpret one event; None for events that carry nothing we measure."""
        ...

    def plain_tokens(self, items: Sequence[SSEItem], start: int) -> tuple[list[str], int]:
        """The texts of the events from ``items[start]`` on that ``decode`` would
        make :class:`TokenText` of at a glance, and the index of the first that
        is not one; ``([], start)`` when ``items[start]`` is not.

        A turn's stream is mostly such events: taking a run of them at once
        costs a fraction of decoding them one by one, with the same result.
        """
        ...


class ReferenceAdapter:
    """The reference session protocol (docs/protocol.md)."""

    name = "reference"
    tracks_state = True
    # What decode() makes a TokenText of at a glance (_plain_text), when its text is ASCII.
    token_lane: TokenLane | None = TokenLane("token", '{"text":"', '"}')

    def prepare(self, base_url: str, request: TurnRequest) -> PreparedRequest:
        """``POST /v1/sessions/{id}/turns`` with the JWT and the turn's idempotency key."""
        headers = {
            "Accept": "text/event-stream",
            "Content-Type": "application/json",
            "Idempotency-Key": request.idempotency_key,
        }
        if request.token is not None:
            headers["Authorization"] = f"Bearer {request.token}"
        # Byte for byte json.dumps({"turn": ..., "message": ...}), at a fraction
        # of its cost: encoding a dict builds a new encoder on every call.
        body = f'{{"turn": {request.turn_index:d}, "message": {json.dumps(request.message)}}}'
        session = request.session_id
        if _UNRESERVED.fullmatch(session) is None:  # quote() returns the others unchanged
            session = quote(session, safe="")
        path = f"/v1/sessions/{session}/turns"
        return _prepared(("POST", base_url.rstrip("/") + path, headers, body.encode()))

    def decode(self, event: SSEEvent) -> Decoded | None:
        """Decode ``meta``, ``token``, ``done`` and ``error`` events; ignore the rest."""
        kind = event.event
        if kind == "token":
            plain = _plain_text(event.data)
            if plain is not None:
                return _token(plain)
        elif kind not in _REFERENCE_EVENTS:
            return None
        try:
            obj = load_json_object(event.data)
            if kind == "token":
                text = obj.get("text")
                if not isinstance(text, str):
                    return Malformed("token event without a 'text' string")
                return _token(text)
            if kind == "meta":
                return parse_meta(obj)
            if kind == "done":
                return parse_done(obj)
            return _failure(obj)
        except PayloadError as exc:
            return Malformed(f"{kind} event: {exc}")

    def plain_tokens(self, items: Sequence[SSEItem], start: int) -> tuple[list[str], int]:
        """Token events whose data is ``{"text":"..."}`` with nothing to unescape (see
        :meth:`EndpointAdapter.plain_tokens`): the fast path of :meth:`decode`, for a run."""
        texts: list[str] = []
        index, end = start, len(items)
        while index < end:
            item = items[index]
            if type(item) is not SSEEvent or item.event != "token":
                break
            plain = _plain_text(item.data)
            if plain is None:
                break
            texts.append(plain)
            index += 1
        return texts, index


class OpenAIChatAdapter:
    """OpenAI-compatible ``POST /v1/chat/completions`` with ``stream: true``."""

    name = "openai"
    tracks_state = False
    token_lane: TokenLane | None = None  # every chunk is a JSON object to parse

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini",
        api_key: str | None = None,
        system_prompt: str = "You are a helpful shopping assistant for an online store.",
        max_tokens: int | None = 256,
    ) -> None:
        self._model = model
        self._api_key = api_key
        self._system = system_prompt
        self._max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"OpenAIChatAdapter(model={self._model!r})"

    def prepare(self, base_url: str, request: TurnRequest) -> PreparedRequest:
        """Resend the whole conversation plus the new user message."""
        messages: list[dict[str, str]] = [{"role": "system", "content": self._system}]
        messages += [{"role": m.role, "content": m.content} for m in request.history]
        messages.append({"role": "user", "content": request.message})
        payload: dict[str, Any] = {
            "model": self._model,
            "messages": messages,
            "stream": True,
            "user": request.session_id,
        }
        if self._max_tokens is not None:
            payload["max_tokens"] = self._max_tokens
        headers = {
            "Accept": "text/event-stream",
            "Content-Type": "application/json",
            "Idempotency-Key": request.idempotency_key,
        }
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key}"
        url = base_url.rstrip("/")
        url += "/chat/completions" if url.endswith("/v1") else "/v1/chat/completions"
        return _prepared(("POST", url, headers, json.dumps(payload).encode()))

    def plain_tokens(self, items: Sequence[SSEItem], start: int) -> tuple[list[str], int]:
        """None at a glance: every chunk is a JSON object to parse (see :meth:`decode`)."""
        return [], start

    def decode(self, event: SSEEvent) -> Decoded | None:
        """Content deltas are tokens; ``[DONE]`` or a finish reason ends the turn."""
        if event.is_done:
            return AgentDone()
        if event.event not in ("message", "error"):
            return None
        try:
            obj = load_json_object(event.data)
        except PayloadError as exc:
            return Malformed(str(exc))
        if "error" in obj or event.event == "error":
            return _failure(obj)
        choices = obj.get("choices")
        if not isinstance(choices, list):
            return Malformed("chunk without a 'choices' list")
        if not choices:
            return None  # usage-only chunks carry no content
        choice = choices[0]
        if not isinstance(choice, Mapping):
            return Malformed("choice is not an object")
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, Mapping) else None
        if isinstance(content, str) and content:
            return TokenText(content)
        if choice.get("finish_reason"):
            return AgentDone()
        return None


def _failure(obj: Mapping[str, Any]) -> AgentFailure:
    error = parse_error_payload(obj)
    return AgentFailure(kind=error.kind, message=error.message)


def adapter_for(
    protocol: str, *, model: str | None = None, api_key: str | None = None
) -> EndpointAdapter:
    """Return the adapter for a scenario's ``target.protocol``."""
    if protocol == "openai":
        return OpenAIChatAdapter(model=model or "gpt-4o-mini", api_key=api_key)
    return ReferenceAdapter()
