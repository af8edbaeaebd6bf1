"""How the agent client reaches the network, and an in-process stand-in for tests.

:class:`Transport` is the one seam between :class:`~loadlab.load.client.AgentClient`
and I/O (httpx's transports are the model). Under Locust the transport is
:class:`~loadlab.load.fasthttp.FastHttpTransport` (geventhttpclient, the client
Locust's ``FastHttpUser`` uses); unit tests use :class:`MockTransport`, which
plays scripted responses, including ones that break mid-stream.

A transport raises only :class:`TransportError` subclasses (or, for a stand-in,
the built-in ``OSError``/``TimeoutError`` family), so the client can classify
failures without knowing which library produced them.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


class TransportError(Exception):
    """A request could not be completed at the transport level."""


class ConnectFailed(TransportError):
    """No connection could be opened (refused, unreachable, DNS)."""


class TransportTimeout(TransportError):
    """No response, or no next chunk, arrived within the deadline."""


class StreamReset(TransportError):
    """The connection was closed or reset before the response was complete."""


class MalformedResponse(TransportError):
    """The bytes received are not valid HTTP (bad status line, broken chunking)."""


def forget_traceback(exc: BaseException) -> None:
    """Drop a handled exception's traceback and what its frames hold.

    A transport reports a failure it caught by its message alone. The caught
    exception's traceback can hold a reference cycle: geventhttpclient keeps a
    failed connect's error in a local of a frame that error's traceback holds
    (``first_error``), and a transport's own timer is both the exception and a
    local of the frame it fired in. Python's cyclic collector is off while the
    load runs (:mod:`loadlab.load.gc_pause`), so every refused connection or
    timeout left 30-50 objects until the load stopped, and a pod kill makes
    thousands of them. With the frames cleared, reference counting frees them
    at once (tests/load/locust_runs/failure_cycles.py counts what is left).
    """
    tb = exc.__traceback__
    if tb is not None:
        traceback.clear_frames(tb)
        exc.__traceback__ = None


@dataclass(frozen=True, slots=True)
class StreamingResponse:
    """A response whose body is read chunk by chunk as it arrives.

    ``headers`` keys are lower case. Iterating ``chunks`` may raise a
    :class:`TransportError`; ``close`` releases the connection and is safe to
    call more than once.
    """

    status: int
    headers: Mapping[str, str]
    chunks: Iterator[bytes]
    close: Callable[[], None] = field(default=lambda: None)


class Transport(Protocol):
    """Opens one HTTP request and returns its streaming response."""

    def open(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,
    ) -> StreamingResponse:
        """Send the request; return once the status line and headers are in.

        ``timeout`` bounds the wait for the headers and for each later chunk.
        """
        ...


@dataclass(frozen=True, slots=True)
class MockRequest:
    """A request as :class:`MockTransport` received it."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    timeout: float


@dataclass(frozen=True, slots=True)
class MockResponse:
    """A scripted response: ``chunks`` items that are exceptions are raised in turn.

    ``chunks`` may be a generator, e.g. one that advances a test clock before
    yielding each chunk, to script when each one arrives.
    """

    status: int = 200
    headers: Mapping[str, str] = field(
        default_factory=lambda: {"content-type": "text/event-stream"}
    )
    chunks: Iterable[bytes | BaseException] = ()


class MockTransport:
    """An in-process transport: ``handler(request)`` returns the response to play.

    The handler may raise a :class:`TransportError` (e.g. ``ConnectFailed``) to
    fail before any response. Every request is kept in ``requests``.
    """

    def __init__(self, handler: Callable[[MockRequest], MockResponse]) -> None:
        self._handler = handler
        self.requests: list[MockRequest] = []
        self.closed = 0

    def open(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,
    ) -> StreamingResponse:
        """Record the request and play the handler's scripted response."""
        request = MockRequest(
            method=method, url=url, headers=dict(headers), body=body, timeout=timeout
        )
        self.requests.append(request)
        response = self._handler(request)
        return StreamingResponse(
            status=response.status,
            headers={k.lower(): v for k, v in response.headers.items()},
            chunks=_play(response.chunks),
            close=self._count_close,
        )

    def _count_close(self) -> None:
        self.closed += 1


def _play(items: Iterable[bytes | BaseException]) -> Iterator[bytes]:
    for item in items:
        if isinstance(item, BaseException):
            raise item
        yield item
