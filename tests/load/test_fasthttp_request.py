"""FastHttpTransport writes a turn's POST itself: the bytes geventhttpclient would send."""

from __future__ import annotations

import pytest
from geventhttpclient.client import HTTPClient
from geventhttpclient.header import Headers
from geventhttpclient.url import URL

from loadlab.load.fasthttp import FastHttpTransport, _lowered

TURN_HEADERS = {
    "Accept": "text/event-stream",
    "Content-Type": "application/json",
    "Idempotency-Key": "flash-7-t3",
    "Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
}
BODY = b'{"turn": 3, "message": "Add P-0042 to my cart"}'


def _client(transport: FastHttpTransport, origin: str) -> HTTPClient:
    client: HTTPClient = transport._pool.get_client(URL(origin))
    return client


def _as_geventhttpclient_writes(client: HTTPClient, uri: str, headers: dict[str, str]) -> bytes:
    head: str = client._build_request("POST", uri, body=BODY, headers=headers)
    return head.encode("latin-1") + BODY


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:8080", "http://localhost", "https://agent.test", "http://[::1]:9"]
)
def test_a_turn_is_written_byte_for_byte_as_geventhttpclient_writes_it(origin: str) -> None:
    transport = FastHttpTransport()
    client = _client(transport, origin)
    uri = "/v1/sessions/flash-7/turns"
    written = transport._request_bytes(client, "POST", uri, TURN_HEADERS, BODY)
    assert written == _as_geventhttpclient_writes(client, uri, TURN_HEADERS)
    assert written is not None and written.startswith(b"POST /v1/sessions/flash-7/turns HTTP/1.1")


@pytest.mark.parametrize(
    "extra",
    [
        {"Host": "elsewhere"},  # a field the client writes itself
        {"content-length": "1"},
        {"Transfer-Encoding": "chunked"},
        {"User-Agent": "mine"},  # one of the client's default headers, any case
        {"X-Note": "two\r\nX-Injected: yes"},  # CR LF in a value
        {"Bad Name": "x"},  # not a token
        {"X-Name": "caf\u00e9 \u2603"},  # not latin-1
    ],
)
def test_a_request_the_fast_path_cannot_write_goes_to_geventhttpclient(
    extra: dict[str, str],
) -> None:
    transport = FastHttpTransport()
    client = _client(transport, "http://127.0.0.1:8080")
    headers = {**TURN_HEADERS, **extra}
    assert transport._request_bytes(client, "POST", "/v1/x", headers, BODY) is None


def test_only_a_post_with_a_bytes_body_takes_the_fast_path() -> None:
    transport = FastHttpTransport()
    client = _client(transport, "http://127.0.0.1:8080")
    assert transport._request_bytes(client, "GET", "/v1/x", TURN_HEADERS, BODY) is None
    assert transport._request_bytes(client, "POST", "/v1/x", TURN_HEADERS, bytearray(BODY)) is None


def test_a_header_with_cr_lf_never_reaches_the_wire() -> None:
    # Refused by geventhttpclient before any connection is opened (port 9: discard, closed here).
    transport = FastHttpTransport()
    with pytest.raises(ValueError, match="invalid value for header field"):
        transport.open(
            "POST",
            "http://127.0.0.1:9/v1/x",
            {**TURN_HEADERS, "X-Note": "a\r\nX-Injected: yes"},
            BODY,
            1.0,
        )


class _Answer:
    """What ``_lowered`` reads of a response: its header index and ``items()``."""

    def __init__(self, index: Headers) -> None:
        self._headers_index = index

    def items(self) -> list[tuple[str, str]]:
        return list(self._headers_index.items())


class _OtherHeaders(Headers):
    """A header type of the client's choosing (``headers_type``), not Headers itself."""


@pytest.mark.parametrize("kind", [Headers, _OtherHeaders])
def test_response_fields_by_lower_case_name_as_items_gives_them(kind: type[Headers]) -> None:
    index = kind()
    for name, value in [
        ("Content-Type", "text/event-stream"),
        ("X-Seen", "one"),
        ("x-seen", "two"),
        ("X-SEEN", "three"),  # repeated in any case: the last one stands
        ("Retry-After", "2"),
    ]:
        index.add(name, value)
    answer = _Answer(index)
    generic = {str(k).lower(): str(v) for k, v in answer.items()}
    fields = _lowered(answer)
    assert fields == generic and dict(fields) == generic and len(fields) == 3
    assert generic == {"content-type": "text/event-stream", "x-seen": "three", "retry-after": "2"}
    # What a turn reads: one field by its lower-case name, present or not.
    assert fields.get("content-type") == "text/event-stream" and fields["x-seen"] == "three"
    assert fields.get("x-absent") is None and fields.get("x-absent", "") == ""
    with pytest.raises(KeyError):
        fields["x-absent"]
    if kind is Headers:  # read in place: its repr names the fields, a value may be a credential
        assert type(fields).__name__ == "_IndexedFields" and "event-stream" not in repr(fields)
