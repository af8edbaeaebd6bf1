"""Malformed SSE streams: the client turns each into a turn with an error kind, never raises.

The byte files of ``tests/malformed/sse/`` (written by ``make_corpus.py``) and
streams generated with hypothesis are played through the real ``AgentClient``
and ``SSEParser`` over an in-process transport, cut into chunks at every kind
of boundary.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadlab.load.adapters import ReferenceAdapter, TurnRequest
from loadlab.load.client import AgentClient, TurnResult
from loadlab.load.sse import MalformedStream, SSEEvent, SSEParser
from loadlab.load.transport import MockRequest, MockResponse, MockTransport
from loadlab.rows import ERROR_KINDS

HERE = Path(__file__).resolve().parent
STREAMS = sorted((HERE / "sse").glob("*.bin"))
REQUEST = TurnRequest(
    session_id="corpus-000001",
    turn_index=1,
    message="Add P-0042 to my cart",
    idempotency_key="corpus-000001-t1",
    token="tok.en.value",
)

# Streams the client cannot yet turn into an error kind; each is strict, so
# the day it is fixed the test says so.
CRASHES: dict[str, str] = {}


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def play(stream: bytes, chunk_size: int) -> TurnResult:
    def handler(request: MockRequest) -> MockResponse:
        return MockResponse(chunks=list(chunks(stream, chunk_size)))

    client = AgentClient(
        transport=MockTransport(handler),
        adapter=ReferenceAdapter(),
        base_url="http://agent.test:8080/",
        timeout_s=5.0,
    )
    return client.send_turn(REQUEST)


def _params() -> list[object]:
    out: list[object] = []
    for path in STREAMS:
        marks = []
        if path.stem in CRASHES:
            marks.append(pytest.mark.xfail(strict=True, reason=CRASHES[path.stem]))
        out.append(pytest.param(path, id=path.stem, marks=marks))
    return out


def test_the_sse_corpus_is_there() -> None:
    assert len(STREAMS) >= 20


@pytest.mark.timeout(20)
@pytest.mark.parametrize("path", _params())
@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
def test_a_malformed_stream_is_a_turn_with_an_error_kind(path: Path, chunk_size: int) -> None:
    result = play(path.read_bytes(), chunk_size)
    assert not result.ok
    assert result.error_kind in ERROR_KINDS, result


@pytest.mark.parametrize("path", STREAMS, ids=[p.stem for p in STREAMS])
def test_the_parser_never_raises_on_a_corpus_stream(path: Path) -> None:
    parser = SSEParser(max_line_bytes=1024)
    items = [item for chunk in chunks(path.read_bytes(), 3) for item in parser.feed(chunk)]
    items += parser.close()
    assert all(isinstance(item, SSEEvent | MalformedStream) for item in items)


def _json_values() -> st.SearchStrategy[object]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=20,
    )


META = (
    b'event: meta\ndata: {"instance_id": "pod-1", "cold": false, "init_ms": 0.0, '
    b'"state_source": "memory", "intent": "browse", "replayed": false}\n\n'
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=st.binary(max_size=2048), chunk_size=st.integers(min_value=1, max_value=64))
def test_random_bytes_never_raise(stream: bytes, chunk_size: int) -> None:
    result = play(stream, chunk_size)
    assert result.ok or result.error_kind in ERROR_KINDS


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event=st.sampled_from(["meta", "token", "done", "error", "surprise"]),
    payload=_json_values(),
    chunk_size=st.integers(min_value=1, max_value=64),
)
def test_any_json_in_any_event_never_raises(event: str, payload: object, chunk_size: int) -> None:
    data = json.dumps(payload, allow_nan=True)  # NaN and Infinity too, as a bad agent writes
    stream = META + f"event: {event}\ndata: {data}\n\n".encode()
    result = play(stream, chunk_size)
    assert result.ok or result.error_kind in ERROR_KINDS
