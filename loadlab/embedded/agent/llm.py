"""A streaming client for an OpenAI-compatible ``/v1/chat/completions`` endpoint.

It asks for ``stream: true`` with ``stream_options.include_usage`` and yields the
text of each ``choices[0].delta.content`` until ``data: [DONE]``. Before the first
piece arrives, a 429 is retried after its ``Retry-After`` (``retry-after-ms`` when
present; either capped at the configured wait), a 5xx, refused connection or
timeout after a short backoff, up to ``max_attempts`` requests in all. Once text
has been streamed nothing is retried (the shopper has already seen it): the turn
fails with :class:`LLMUnavailable`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, TypedDict

import aiohttp

from loadlab.embedded.agent.state import DownstreamCounts

_BACKOFF_S = 0.2  # first backoff after a 5xx or network error, doubled per retry


class ChatMessage(TypedDict):
    """One message of a chat-completions request."""

    role: str
    content: str


class LLMUnavailable(Exception):
    """The LLM gave no complete answer within the retry budget."""


class _Retry(Exception):
    def __init__(self, reason: str, wait_s: float) -> None:
        super().__init__(reason)
        self.wait_s = wait_s


class LLMClient:
    """One agent instance's connection pool to the LLM (create in :meth:`start`)."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        max_attempts: int = 3,
        timeout_s: float = 30.0,
        max_tokens: int = 120,
        max_retry_wait_s: float = 10.0,
        time_scale: float = 1.0,
        max_connections: int = 512,
    ) -> None:
        self.url = base_url.rstrip("/") + "/v1/chat/completions"
        self.model = model
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.max_retry_wait_s = max_retry_wait_s * time_scale
        self.time_scale = time_scale
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the connection pool (needs a running event loop)."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s
            )
            connector = aiohttp.TCPConnector(limit=self.max_connections)
            self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _retry_wait(self, headers: Mapping[str, str]) -> float:
        raw_ms, raw_s = headers.get("retry-after-ms"), headers.get("Retry-After")
        try:
            wait = float(raw_ms) / 1000 if raw_ms else float(raw_s) if raw_s else 1.0
        except ValueError:  # an HTTP-date: rare from LLM APIs, so wait the maximum
            wait = self.max_retry_wait_s
        return max(0.0, min(wait, self.max_retry_wait_s))

    async def stream(
        self, messages: Sequence[ChatMessage], counts: DownstreamCounts
    ) -> AsyncGenerator[str, None]:
        """Yield the answer's text pieces; count calls, retries, 429s and tokens in ``counts``.

        Raises :class:`LLMUnavailable` when the budget is spent or the stream breaks.
        """
        if self._session is None:
            raise RuntimeError("LLMClient.start() was not awaited")
        body = {
            "model": self.model,
            "messages": list(messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": self.max_tokens,
        }
        for attempt in range(1, self.max_attempts + 1):
            counts.llm_calls += 1
            streamed = False
            try:
                async with self._session.post(self.url, json=body) as response:
                    if response.status == 429:
                        counts.llm_throttles += 1
                        raise _Retry("the LLM answered 429", self._retry_wait(response.headers))
                    if response.status >= 500:
                        raise _Retry(f"the LLM answered {response.status}", self._backoff(attempt))
                    if response.status != 200:
                        detail = (await response.text())[:200]
                        raise LLMUnavailable(f"the LLM answered {response.status}: {detail}")
                    async for piece in _pieces(response, counts, messages):
                        streamed = True
                        yield piece
                    return
            except _Retry as retry:
                reason, wait_s = str(retry), retry.wait_s
            except (aiohttp.ClientError, TimeoutError) as exc:
                if streamed:
                    raise LLMUnavailable(f"the LLM stream broke: {_describe(exc)}") from None
                reason, wait_s = _describe(exc), self._backoff(attempt)
            if attempt == self.max_attempts:
                raise LLMUnavailable(f"{reason} ({attempt} attempts)")
            counts.llm_retries += 1
            await asyncio.sleep(wait_s)

    def _backoff(self, attempt: int) -> float:
        return min(_BACKOFF_S * 2.0 ** (attempt - 1) * self.time_scale, self.max_retry_wait_s)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _pieces(
    response: aiohttp.ClientResponse, counts: DownstreamCounts, messages: Sequence[ChatMessage]
) -> AsyncGenerator[str, None]:
    usage: Mapping[str, Any] | None = None
    pieces = 0
    async for raw in response.content:
        line = raw.decode("utf-8", errors="replace").strip()
        if not line.startswith("data:"):
            continue  # blank separators, comments, event names
        data = line[5:].strip()
        if data == "[DONE]":
            break
        try:
            chunk = json.loads(data)
        except ValueError:
            raise LLMUnavailable(f"the LLM sent a malformed chunk: {data[:100]!r}") from None
        if "error" in chunk:
            raise LLMUnavailable(f"the LLM reported an error: {chunk['error']}")
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                pieces += 1
                yield text
    else:
        raise LLMUnavailable("the LLM stream ended without [DONE]")
    if usage is not None:
        counts.tokens_in += int(usage.get("prompt_tokens", 0))
        counts.tokens_out += int(usage.get("completion_tokens", 0))
    else:  # a provider without usage reporting: estimate (~4 characters per token)
        counts.tokens_in += sum(len(m["content"]) for m in messages) // 4
        counts.tokens_out += pieces
