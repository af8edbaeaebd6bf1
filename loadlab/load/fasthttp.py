"""The transport used under Locust: geventhttpclient, as in ``FastHttpUser``.

It sends requests through the user's own connection pool
(``FastHttpUser.client.client.clientpool``) but bypasses Locust's
``FastHttpSession.request``, which would fire Locust's ``request`` event as soon
as the headers arrive and count a stream's time to its first byte as the
request's time. The load user fires the event itself once the stream has ended.

The body is read line by line (``readline``), which returns as soon as a line
is in, so a token's arrival time is measured when it arrives rather than when a
read buffer fills up. Importing this module imports gevent.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from typing import Any

import gevent
from geventhttpclient.client import HTTPClientPool
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError
from geventhttpclient.url import URL

from loadlab.load.transport import (
    ConnectFailed,
    MalformedResponse,
    StreamingResponse,
    StreamReset,
    TransportTimeout,
)


class FastHttpTransport:
    """A :class:`~loadlab.load.transport.Transport` over a geventhttpclient pool."""

    def __init__(self, pool: HTTPClientPool | None = None, **pool_kwargs: Any) -> None:
        self._owned = pool is None
        self._pool = pool if pool is not None else HTTPClientPool(**pool_kwargs)

    @classmethod
    def for_user(cls, user: Any) -> FastHttpTransport:
        """The transport over a ``FastHttpUser``'s own connection pool."""
        return cls(user.client.client.clientpool)

    def close(self) -> None:
        """Close the pool if this transport created it."""
        if self._owned:
            self._pool.close()

    def open(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,
    ) -> StreamingResponse:
        """Send the request and wait (at most ``timeout``) for the status and headers."""
        parsed = URL(url)
        timer = gevent.Timeout(timeout)
        timer.start()
        try:
            client = self._pool.get_client(parsed)
            uri = getattr(parsed, "quoted_uri", parsed.request_uri)
            response = client.request(method, uri, body=body, headers=dict(headers))
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            raise TransportTimeout(f"no response within {timeout:g} s") from None
        except (HTTPConnectionClosed, ConnectionResetError, BrokenPipeError) as exc:
            raise StreamReset(f"connection closed before the response: {exc}") from None
        except HTTPParseError as exc:
            raise _parse_failure(exc, "response") from None
        except (OSError, socket.gaierror) as exc:
            raise ConnectFailed(f"cannot connect to {parsed.host}:{parsed.port}: {exc}") from None
        finally:
            timer.close()
        status = int(response.status_code)
        response_headers = {str(k).lower(): str(v) for k, v in response.items()}
        return StreamingResponse(
            status=status,
            headers=response_headers,
            chunks=_read_lines(response, timeout),
            close=response.release,
        )


def _read_lines(response: Any, timeout: float) -> Iterator[bytes]:
    while True:
        timer = gevent.Timeout(timeout)
        timer.start()
        try:
            line = response.readline(b"\n")
            if not line:
                # readline keeps back a last line with no newline; read() has it.
                line = response.read()
                if not line:
                    return
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            response.release()
            raise TransportTimeout(f"no data for {timeout:g} s") from None
        except (HTTPConnectionClosed, OSError) as exc:
            raise StreamReset(f"connection closed mid-stream: {exc}") from None
        except HTTPParseError as exc:
            raise _parse_failure(exc, "body") from None
        finally:
            timer.close()
        yield bytes(line)


def _parse_failure(exc: Exception, where: str) -> StreamReset | MalformedResponse:
    # The parser reports the peer closing before the end of the message as a
    # parse error ("Incomplete response."): that is a cut connection, not garbage.
    if "incomplete" in str(exc).lower():
        return StreamReset(f"connection closed mid-{where}: {exc}")
    return MalformedResponse(f"invalid HTTP {where}: {exc}")
