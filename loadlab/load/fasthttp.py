"""The transport used under Locust: geventhttpclient, as in ``FastHttpUser``.

It sends requests through the user's own connection pool
(``FastHttpUser.client.client.clientpool``) but bypasses Locust's
``FastHttpSession.request``, which would fire Locust's ``request`` event as soon
as the headers arrive and count a stream's time to its first byte as the
request's time. The load user fires the event itself once the stream has ended.

The body is handed on as it arrives: whatever the response has buffered, else
what the next socket read brings, never waiting for a buffer to fill up, so the
client stamps each token with the time its bytes came in. ``timeout`` bounds
each wait for more bytes (an idle timeout: a stream that keeps sending is never
cut, one that goes quiet for ``timeout`` seconds is); the client's turn deadline
bounds the whole stream, and never passes a ``timeout`` longer than it. Importing
this module imports gevent.
"""

from __future__ import annotations

import errno
import re
import select
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from gevent import get_hub, getcurrent, monkey
from geventhttpclient.client import HTTPClient, HTTPClientPool
from geventhttpclient.header import Headers
from geventhttpclient.response import (
    HTTPConnectionClosed,
    HTTPParseError,
    HTTPSocketPoolResponse,
)
from geventhttpclient.url import URL

from loadlab.load.transport import (
    ConnectFailed,
    MalformedResponse,
    StreamingResponse,
    StreamReset,
    TransportTimeout,
    forget_traceback,
)
from loadlab.rows import row_builder

# An http(s) URL whose path holds only unreserved characters and slashes: its
# request target is its path as it stands (re-quoting would leave it unchanged).
_PLAIN_URL = re.compile(r"(https?://[A-Za-z0-9.:\[\]-]+)(/[A-Za-z0-9._~/-]*)")
_MAX_ORIGINS = 64

# The header names the fast path writes itself, or leaves to geventhttpclient:
# a request that sets one of them goes through ``HTTPClient.request``.
_OWN_FIELDS = ("host", "content-length", "transfer-encoding", "expect")
# geventhttpclient's own rules for a field name (a token) and value (no CR, LF, NUL).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELDS = re.compile(r"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [\t\x20-\x7e\x80-\xff]*\r\n)*")

# The real poll(), not gevent's cooperative one: a zero-timeout check never waits.
_poll = monkey.get_original("select", "poll")
_READABLE = select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL


def _socket_alive(sock: Any) -> bool:
    """Whether an idle pooled connection can carry the next request.

    geventhttpclient's own check (``ConnectionPool._is_socket_alive``) asks
    ``select.select``, which refuses a descriptor above 1023 with ValueError;
    the pool takes that for a dead connection and closes it. A Locust process
    holding more than about a thousand connections (a flash sale of 5,000
    sessions) then closed every kept-alive connection and opened a new one for
    each turn: a name resolution on gevent's thread pool, a connect and a
    close per turn, turns queued behind the recorder's writes on that pool
    (seconds at P99). The same test, with poll (no descriptor limit): an idle
    keep-alive connection has nothing to read; readable means closed by the
    peer or dirty.
    """
    try:
        fd = sock.fileno()
        if fd < 0:
            return False
        poller = _poll()
        poller.register(fd, _READABLE)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


class FastHttpTransport:
    """A :class:`~loadlab.load.transport.Transport` over a geventhttpclient pool."""

    def __init__(self, pool: HTTPClientPool | None = None, **pool_kwargs: Any) -> None:
        self._owned = pool is None
        self._pool = pool if pool is not None else HTTPClientPool(**pool_kwargs)
        self._origins: dict[str, URL] = {}
        self._heads: dict[HTTPClient, _RequestHead | None] = {}
        # The pooled client of each plain origin: the pool finds it by parsing the URL's host.
        self._clients: dict[str, HTTPClient] = {}

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
        parsed, uri, origin = self._route(url)
        timer, expired = _arm(timeout)
        try:
            client = self._clients.get(origin) if origin else None
            if client is None:
                client = self._pool.get_client(parsed)
                _check_with_poll(client)
                if origin:
                    self._clients[origin] = client
            data = self._request_bytes(client, method, uri, headers, body) if origin else None
            if data is None:
                response = client.request(method, uri, body=body, headers=dict(headers))
            else:
                response = _post(client, data)
        except _Expired as exc:
            if exc is not expired:
                raise
            forget_traceback(exc)
            raise TransportTimeout(f"no response within {timeout:g} s") from None
        except (HTTPConnectionClosed, ConnectionResetError, BrokenPipeError) as exc:
            forget_traceback(exc)
            raise StreamReset(f"connection closed before the response: {exc}") from None
        except HTTPParseError as exc:
            forget_traceback(exc)
            raise _parse_failure(exc, "response") from None
        except (OSError, socket.gaierror) as exc:
            forget_traceback(exc)
            raise ConnectFailed(f"cannot connect to {parsed.host}:{parsed.port}: {exc}") from None
        finally:
            timer.close()
        status = int(response.status_code)
        response_headers = _lowered(response)
        return _streaming_response(
            (status, response_headers, _read_body(response, timeout), response.release)
        )

    def _route(self, url: str) -> tuple[URL, str, str]:
        """The URL that picks the pooled client, the request target, and the plain origin.

        The origin is "" when the URL is not plain (its path needs quoting).
        """
        # Parsing every URL with geventhttpclient's URL and re-quoting its path
        # cost as much as the rest of open(); turn URLs differ only in a plain
        # path, so their origin is parsed once.
        plain = _PLAIN_URL.fullmatch(url)
        if plain is None:
            parsed = URL(url)
            return parsed, str(getattr(parsed, "quoted_uri", parsed.request_uri)), ""
        origin, path = plain.groups()
        cached = self._origins.get(origin)
        if cached is None:
            if len(self._origins) >= _MAX_ORIGINS:
                self._origins.clear()
                self._clients.clear()
            cached = self._origins[origin] = URL(origin)
        return cached, path, origin

    def _request_bytes(
        self, client: HTTPClient, method: str, uri: str, headers: Mapping[str, str], body: bytes
    ) -> bytes | None:
        """The request as geventhttpclient would write it, or None to let it do so.

        ``HTTPClient.request`` merges the headers into case-insensitive dicts
        twice, checks every name and value with a regular expression each and
        builds the head a field at a time: more CPU than the rest of a turn's
        request. A plain POST (the turns) is written here in one pass instead, its
        fields checked by one regular expression, with the same bytes on the wire.
        Anything else, or a field the client writes itself (Host, Content-Length,
        its default headers), goes through ``HTTPClient.request``.
        """
        if method != "POST" or type(body) is not bytes:
            return None
        head = self._heads.get(client, _UNSEEN)
        if head is _UNSEEN:
            if len(self._heads) >= _MAX_ORIGINS:
                self._heads.clear()
            head = self._heads[client] = _RequestHead.of(client)
        if head is None:
            return None
        assert isinstance(head, _RequestHead)
        names = head.names
        for name in headers:
            known = names.get(name)
            if known is None:
                if len(names) >= _MAX_ORIGINS:
                    names.clear()
                known = names[name] = head.may_write(name)
            if not known:
                return None
        fields = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        # One line per field: a value holding CR LF would make two.
        if fields.count("\n") != len(headers) or _FIELDS.fullmatch(fields) is None:
            return None
        try:
            return (
                f"POST {uri} HTTP/1.1\r\n{head.defaults}{fields}{head.host}"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode("latin-1") + body
        except UnicodeEncodeError:
            return None


_UNSEEN = object()
# Made for every request: built by loadlab.rows.row_builder.
_streaming_response = row_builder(StreamingResponse, ("status", "headers", "chunks", "close"))


class _RequestHead:
    """What one pooled client writes around a request's own header fields."""

    __slots__ = ("defaults", "host", "names", "own")

    def __init__(self, defaults: str, host: str, own: frozenset[str]) -> None:
        self.defaults = defaults
        self.host = host
        self.own = own
        # Field names seen, and whether the fast path may write them (a turn has four).
        self.names: dict[str, bool] = {}

    def may_write(self, name: str) -> bool:
        """A token, and not a field the client writes itself (any case)."""
        return _TOKEN.fullmatch(name) is not None and name.lower() not in self.own

    @classmethod
    def of(cls, client: HTTPClient) -> _RequestHead | None:
        """The client's head, or None if it writes requests some other way (a proxy, HTTP/1.0)."""
        if client.version != HTTPClient.HTTP_11 or (client.use_proxy and not client.ssl):
            return None
        defaults = [(str(name), str(value)) for name, value in client.default_headers.items()]
        written = "".join(f"{name}: {value}\r\n" for name, value in defaults)
        if _FIELDS.fullmatch(written) is None or written.count("\n") != len(defaults):
            return None
        # As _build_request: brackets around an IPv6 address, the port unless 80 or 443.
        host = str(client.host)
        if ":" in host and host[0] != "[" and host[-1] != "]":
            host = f"[{host}]"
        if client.port not in (80, 443):
            host += f":{client.port}"
        own = frozenset([*_OWN_FIELDS, *(name.lower() for name, _ in defaults)])
        return cls(written, f"Host: {host}\r\n", own)


def _post(client: HTTPClient, data: bytes) -> HTTPSocketPoolResponse:
    """Send a written POST on a pooled connection; the response owns the connection after.

    As ``HTTPClient.request`` does for a POST: no second try once the request may
    have reached the server; a connection reset while sending may still carry the
    server's answer (an early 4xx), so the response is read before giving up.
    """
    pool = client._connection_pool
    sock = pool.get_socket()
    try:
        sock.sendall(data)
    except OSError as exc:
        if exc.errno not in (errno.ECONNRESET, errno.EPIPE):
            pool.release_socket(sock)
            raise
    return HTTPSocketPoolResponse(
        sock, pool, block_size=client.block_size, method="POST", headers_type=client.headers_type
    )


def _check_with_poll(client: HTTPClient) -> None:
    """Make the client's connection pool test idle connections with :func:`_socket_alive`."""
    pool = client._connection_pool
    if pool.__dict__.get("_is_socket_alive") is not _socket_alive:
        pool._is_socket_alive = _socket_alive  # type: ignore[method-assign]


def _read_body(response: Any, timeout: float) -> Iterator[bytes]:
    # geventhttpclient has no public "what has arrived" read: read(n) waits for
    # n bytes and readline for a whole line (one timer and one pass of the SSE
    # parser per line made line reading the costliest part of a turn). So this
    # does what its readline does inside, on the response's parsed-body buffer,
    # but hands on everything buffered at once. A timer is armed only around a
    # socket read, the one place the stream can stall. (Checked against
    # geventhttpclient 2.6, pinned through locust; the transport tests in
    # tests/load/test_load_locust.py fail if these attributes change.)
    buffered: bytearray = response._body_buffer
    while True:
        if buffered:
            chunk = bytes(buffered)
            del buffered[:]
            yield chunk
            continue
        if response.message_complete:
            return
        sock = response._sock
        if sock is None:
            raise StreamReset("connection closed mid-stream")
        # A fresh timer per wait: one stopped and started again resumes its
        # remaining time (libev keeps it), which would turn this idle timeout
        # into a budget for the whole stream.
        timer, expired = _arm(timeout)
        try:
            response.feed(sock.recv(response.block_size))
        except _Expired as exc:
            response.release()
            if exc is not expired:
                raise
            forget_traceback(exc)
            raise TransportTimeout(f"no data for {timeout:g} s") from None
        except (HTTPConnectionClosed, OSError) as exc:
            response.release()
            forget_traceback(exc)
            raise StreamReset(f"connection closed mid-stream: {exc}") from None
        except HTTPParseError as exc:
            response.release()
            forget_traceback(exc)
            raise _parse_failure(exc, "body") from None
        finally:
            timer.close()


class _Expired(BaseException):
    """Thrown into a greenlet by the timer :func:`_arm` started for it.

    A ``BaseException``, as ``gevent.Timeout`` is: no ``except Exception`` of
    the HTTP client on the way up can take it for an error of its own.
    """


def _arm(seconds: float) -> tuple[Any, _Expired]:
    """A started timer that throws a fresh :class:`_Expired` into this greenlet after ``seconds``.

    What ``gevent.Timeout(seconds).start()`` does, through the loop's own timer
    (C code) rather than the ``Timeout`` object's Python code: two per turn, they
    cost a few per cent of its CPU. The caller closes the timer when the wait is
    over and tells its own expiry from any other by identity.
    """
    expired = _Expired()
    timer = get_hub().loop.timer(seconds)
    # update: the loop's clock is read first, so a long callback before does not
    # make the timer expire early (as Timeout.start does)
    timer.start(getcurrent().throw, expired, update=True)
    return timer, expired


def _lowered(response: Any) -> Mapping[str, str]:
    """The response's header fields by lower-case name; the last one of a repeated field.

    geventhttpclient's ``Headers`` is a dict of lower-case names to ``(name,
    value)``, or a list of them for a repeated field: read in place, as it stands
    (:class:`_IndexedFields`), instead of copied through its ``items()``
    generator (a turn's CPU counts, and a turn reads one or two fields). Another
    header type goes through ``items()`` into a dict.
    """
    index = response._headers_index
    if type(index) is Headers:
        return _IndexedFields(index)
    return {str(k).lower(): str(v) for k, v in response.items()}


class _IndexedFields(Mapping[str, str]):
    """geventhttpclient's header index as lower-case name -> the field's last value."""

    __slots__ = ("_index",)

    def __init__(self, index: Headers) -> None:
        self._index = index

    def get(self, key: str, default: Any = None) -> Any:
        """The field's last value, or ``default`` (what a turn calls: no exception made)."""
        value = dict.get(self._index, key)
        if value is None:
            return default
        return value[1] if type(value) is tuple else value[-1][1]

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        field: str = value
        return field

    def __iter__(self) -> Iterator[str]:
        return iter(dict.keys(self._index))

    def __len__(self) -> int:
        return dict.__len__(self._index)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(names={list(self)!r})"  # values may be credentials


def _parse_failure(exc: Exception, where: str) -> StreamReset | MalformedResponse:
    # The parser reports the peer closing before the end of the message as a
    # parse error ("Incomplete response."): that is a cut connection, not garbage.
    if "incomplete" in str(exc).lower():
        return StreamReset(f"connection closed mid-{where}: {exc}")
    return MalformedResponse(f"invalid HTTP {where}: {exc}")
