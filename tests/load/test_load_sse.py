"""The SSE parser: any split of the bytes gives the same events; garbage is a typed item."""

from __future__ import annotations

import random

import pytest

from loadlab.load.sse import MalformedStream, SSEEvent, SSEParser

STREAM = (
    b": keep-alive comment\n"
    b"event: meta\n"
    b'data: {"instance_id": "pod-1"}\n'
    b"\n"
    b"event: token\r\n"
    b'data: {"text": "Sure, "}\r\n'
    b"\r\n"
    b"event: token\r"
    b'data: {"text": "caf\xc3\xa9"}\r'
    b"\r"
    b"data: line one\n"
    b"data: line two\n"
    b"id: 7\n"
    b"retry: 1500\n"
    b"\n"
    b"data: [DONE]\n\n"
)

EXPECTED = [
    SSEEvent("meta", '{"instance_id": "pod-1"}'),
    SSEEvent("token", '{"text": "Sure, "}'),
    SSEEvent("token", '{"text": "café"}'),
    SSEEvent("message", "line one\nline two", id="7", retry_ms=1500),
    SSEEvent("message", "[DONE]", id="7"),
]


def _parse(chunks: list[bytes]) -> list[object]:
    parser = SSEParser()
    out: list[object] = []
    for chunk in chunks:
        out += parser.feed(chunk)
    out += parser.close()
    return out


def test_whole_stream() -> None:
    assert _parse([STREAM]) == EXPECTED
    assert EXPECTED[-1].is_done and not EXPECTED[0].is_done


def test_byte_by_byte() -> None:
    assert _parse([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@pytest.mark.parametrize("seed", range(25))
def test_random_splits(seed: int) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 30)))
    chunks = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
    assert _parse(chunks) == EXPECTED


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    assert _parse([b"data: a\r", b"\n\r", b"\n"]) == [SSEEvent("message", "a")]


def test_event_without_blank_line_at_eof_is_dropped() -> None:
    assert _parse([b"data: complete\n\ndata: cut off"]) == [SSEEvent("message", "complete")]


def test_bom_field_without_colon_and_unknown_fields() -> None:
    stream = b"\xef\xbb\xbfdata\nfoo: bar\n\nevent: ping\n\n"
    # "data" alone is an empty data line; "foo" is ignored; an event without data is dropped.
    assert _parse([stream]) == [SSEEvent("message", "")]


def test_invalid_utf8_is_a_malformed_item_and_stops_parsing() -> None:
    parser = SSEParser()
    items = parser.feed(b"data: ok\n\ndata: \xff\xfe\n\ndata: later\n\n")
    assert items[0] == SSEEvent("message", "ok")
    assert isinstance(items[1], MalformedStream)
    assert "UTF-8" in items[1].reason
    assert len(items) == 2
    assert parser.broken
    assert parser.feed(b"data: more\n\n") == []


def test_endless_line_is_malformed() -> None:
    parser = SSEParser(max_line_bytes=100)
    items = parser.feed(b"data: " + b"x" * 200)
    assert len(items) == 1 and isinstance(items[0], MalformedStream)


@pytest.mark.parametrize("seed", range(20))
def test_random_garbage_never_raises(seed: int) -> None:
    rng = random.Random(seed)
    parser = SSEParser(max_line_bytes=4096)
    for _ in range(50):
        items = parser.feed(rng.randbytes(rng.randint(0, 300)))
        assert all(isinstance(i, SSEEvent | MalformedStream) for i in items)
    parser.close()


def test_retry_takes_ascii_digits_only() -> None:
    # "²" is a digit to str.isdigit but not to int(): the field is ignored, not a crash.
    assert _parse([b"retry: \xc2\xb2\ndata: x\n\nretry: 250\ndata: y\n\n"]) == [
        SSEEvent("message", "x"),
        SSEEvent("message", "y", retry_ms=250),
    ]


# LF line ends only, as agents send them: whole chunks take the parser's
# block-at-a-time path, small chunks its line-at-a-time one.
LF_STREAM = (
    "\ufeffevent: meta\n"
    'data: {"instance_id": "pod-1"}\n'
    "\n"
    "event: token\n"
    'data: {"text": "café ☕"}\n'
    "\n"
    ": a comment between events\n"
    "\n"
    "event:no-space\n"
    "data:no space either\n"
    "\n"
    "data: no event line\n"
    "\n"
    "event: \n"
    "data: an empty event name\n"
    "\n"
    "id: 9\n"
    "event: token\n"
    "data: with an id before\n"
    "\n"
    "event: token\n"
    "data: keeps the id\n"
    "\n\n\n"
    "data: one\n"
    "data: two\n"
    "\n"
    "retry: 30\n"
    "data: with retry\n"
    "\n"
    "event: dropped\n"
    "\n"
    "event: token\n"
    "data:  two spaces\n"
    "\n"
    "event: cut at the end\n"
    "data: never ended\n"
).encode()

LF_EXPECTED = [
    SSEEvent("meta", '{"instance_id": "pod-1"}'),
    SSEEvent("token", '{"text": "café ☕"}'),
    SSEEvent("no-space", "no space either"),
    SSEEvent("message", "no event line"),
    SSEEvent("message", "an empty event name"),
    SSEEvent("token", "with an id before", id="9"),
    SSEEvent("token", "keeps the id", id="9"),
    SSEEvent("message", "one\ntwo", id="9"),
    SSEEvent("message", "with retry", id="9", retry_ms=30),
    SSEEvent("token", " two spaces", id="9"),
]


def test_lf_stream_whole_byte_by_byte_and_split_anywhere() -> None:
    assert _parse([LF_STREAM]) == LF_EXPECTED
    assert _parse([LF_STREAM[i : i + 1] for i in range(len(LF_STREAM))]) == LF_EXPECTED
    rng = random.Random(7)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(LF_STREAM)), rng.randint(1, 12)))
        bounds = zip([0, *cuts], [*cuts, len(LF_STREAM)], strict=True)
        assert _parse([LF_STREAM[a:b] for a, b in bounds]) == LF_EXPECTED


@pytest.mark.parametrize("chunked", [False, True])
def test_event_data_limit_counts_utf8_bytes_of_the_data_line(chunked: bool) -> None:
    # "data: " + 10 two-byte characters = 26 bytes
    line = "data: " + "é" * 10 + "\n\n"
    for limit, ok in ((26, True), (25, False)):
        parser = SSEParser(max_event_bytes=limit)
        data = line.encode()
        chunks = [data[i : i + 1] for i in range(len(data))] if chunked else [data]
        items = [item for chunk in chunks for item in parser.feed(chunk)]
        if ok:
            assert items == [SSEEvent("message", "é" * 10)]
        else:
            assert len(items) == 1 and isinstance(items[0], MalformedStream)


def test_invalid_utf8_in_an_lf_stream_ends_it_after_the_good_events() -> None:
    parser = SSEParser()
    items = parser.feed(b"event: token\ndata: ok\n\ndata: \xff\n\ndata: later\n\n")
    assert items[0] == SSEEvent("token", "ok")
    assert isinstance(items[1], MalformedStream) and len(items) == 2


def test_usual_events_taken_whole_match_line_by_line() -> None:
    # A chunk made only of "event: NAME\ndata: DATA\n\n" / "data: DATA\n\n" events is read
    # whole by regular expressions: same events as byte by byte, the id carried on.
    rng = random.Random(11)
    names = ["token", "", "meta", " spaced", "a:b"]
    datas = ['{"text":"hi"}', "", "café ☕", " lead", "x: y", "[DONE]"]
    for _ in range(200):
        events = [(rng.choice(names), rng.choice(datas)) for _ in range(rng.randint(1, 6))]
        body = "".join(
            (f"event: {n}\n" if n or rng.random() < 0.5 else "") + f"data: {d}\n\n"
            for n, d in events
        ).encode()
        stream = b"id: 4\n\n" + body
        expected = [SSEEvent(n or "message", d, id="4") for n, d in events]
        assert _parse([b"id: 4\n\n", body]) == expected
        assert _parse([stream[i : i + 1] for i in range(len(stream))]) == expected


def test_usual_events_over_the_limit_together_each_within_it() -> None:
    body = b"data: " + b"a" * 20 + b"\n\nevent: t\ndata: " + b"b" * 20 + b"\n\n"
    assert SSEParser(max_event_bytes=26).feed(body) == [
        SSEEvent("message", "a" * 20),
        SSEEvent("t", "b" * 20),
    ]
    items = SSEParser(max_event_bytes=25).feed(body)
    assert len(items) == 1 and isinstance(items[0], MalformedStream)
