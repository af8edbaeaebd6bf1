"""AgentClient against a scripted transport: measurements, every error kind, never raises."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest
from load_testkit import ManualClock, done, meta, sse, timed, token

from loadlab.load.adapters import ReferenceAdapter, TurnRequest
from loadlab.load.client import AgentClient, TurnResult, is_retryable
from loadlab.load.transport import (
    ConnectFailed,
    MalformedResponse,
    MockRequest,
    MockResponse,
    MockTransport,
    StreamReset,
    TransportTimeout,
)
from loadlab.rows import ERROR_KINDS

REQUEST = TurnRequest(
    session_id="run1-local-000001",
    turn_index=3,
    message="Add P-0042 to my cart",
    idempotency_key="run1-local-000001-t3",
    token="tok.en.value",
)


def _client(transport: MockTransport, clock: ManualClock) -> AgentClient:
    return AgentClient(
        transport=transport,
        adapter=ReferenceAdapter(),
        base_url="http://agent.test:8080/",
        timeout_s=7.0,
        clock=clock,
        wall=clock,
    )


def _send(response: MockResponse | BaseException, clock: ManualClock) -> TurnResult:
    def handler(request: MockRequest) -> MockResponse:
        if isinstance(response, BaseException):
            raise response
        return response

    return _client(MockTransport(handler), clock).send_turn(REQUEST)


def test_measures_a_clean_turn(clock: ManualClock) -> None:
    chunks = [
        (0.050, meta(instance_id="pod-3f2a", cold=True, init_ms=812.5, state_source="new")),
        (0.200, token("Sure, ")),
        (0.030, token("added ")),
        (0.090, token("it.")),
        (0.010, done(3, {"P-0042": 1}, version=5)),
    ]
    start = clock.now
    result = _send(MockResponse(chunks=timed(clock, chunks)), clock)
    assert result.ok and result.error_kind is None
    assert result.status == 200
    assert result.t_start == start
    assert result.ttft_ms == pytest.approx(250.0)
    assert result.max_gap_ms == pytest.approx(90.0)
    assert result.latency_ms == pytest.approx(380.0)
    assert result.bytes == sum(len(c) for _, c in chunks)
    assert result.tokens == 3
    assert result.text == "Sure, added it."
    assert result.meta is not None
    assert (result.meta.instance_id, result.meta.cold, result.meta.init_ms) == (
        "pod-3f2a",
        True,
        812.5,
    )
    assert result.meta.state_source == "new"
    assert result.done is not None and result.done.state is not None
    assert result.done.state.turn == 3
    assert result.done.state.cart_dict() == {"P-0042": 1}
    assert result.done.state.version == 5
    assert result.done.downstream.ddb_wcu == 2.0
    assert result.done.downstream.tokens_out == 80


def test_tokens_in_one_chunk_have_no_gap(clock: ManualClock) -> None:
    body = meta() + token("a") + token("b") + done(1)
    result = _send(MockResponse(chunks=[body]), clock)
    assert result.ok and result.tokens == 2
    assert result.max_gap_ms == 0.0


def test_sends_the_protocol_request(clock: ManualClock) -> None:
    transport = MockTransport(lambda r: MockResponse(chunks=[meta() + done(3)]))
    _client(transport, clock).send_turn(REQUEST)
    (sent,) = transport.requests
    assert sent.method == "POST"
    assert sent.url == "http://agent.test:8080/v1/sessions/run1-local-000001/turns"
    assert sent.headers["Authorization"] == "Bearer tok.en.value"
    assert sent.headers["Idempotency-Key"] == "run1-local-000001-t3"
    assert sent.headers["Accept"] == "text/event-stream"
    assert json.loads(sent.body) == {"turn": 3, "message": "Add P-0042 to my cart"}
    assert sent.timeout == 7.0
    assert transport.closed == 1


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectFailed("refused"), "connect"),
        (ConnectionRefusedError(111, "refused"), "connect"),
        (TransportTimeout("no response"), "timeout"),
        (TimeoutError(), "timeout"),
        (StreamReset("closed before headers"), "reset"),
        (MalformedResponse("bad status line"), "malformed"),
        (RuntimeError("library bug"), "connect"),
    ],
)
def test_failures_before_a_response(clock: ManualClock, error: Exception, kind: str) -> None:
    result = _send(error, clock)
    assert result.error_kind == kind
    assert result.status == 0
    assert not result.ok and not result.mid_stream
    assert result.error


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (StreamReset("connection closed mid-stream"), "reset"),
        (ConnectionResetError(104, "reset by peer"), "reset"),
        (TransportTimeout("no data for 7 s"), "timeout"),
        (MalformedResponse("bad chunk"), "malformed"),
        (ValueError("library bug"), "reset"),
    ],
)
def test_failures_mid_stream(clock: ManualClock, error: Exception, kind: str) -> None:
    chunks = [(0.05, meta()), (0.1, token("Sure")), (0.2, error)]
    result = _send(MockResponse(chunks=timed(clock, chunks)), clock)
    assert result.error_kind == kind
    assert result.mid_stream
    assert result.status == 200
    assert result.tokens == 1
    assert result.ttft_ms == pytest.approx(150.0)
    assert result.latency_ms == pytest.approx(350.0)
    assert result.meta is not None and result.done is None
    assert is_retryable(result)


def test_stream_ending_without_done_is_a_reset(clock: ManualClock) -> None:
    result = _send(MockResponse(chunks=[meta(), token("x")]), clock)
    assert result.error_kind == "reset"
    assert "done" in (result.error or "")


def test_connection_dropped_after_done_is_still_a_success(clock: ManualClock) -> None:
    result = _send(MockResponse(chunks=[meta(), done(1), StreamReset("late close")]), clock)
    assert result.ok


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (401, "auth", False),
        (403, "auth", False),
        (400, "http_status", False),
        (409, "http_status", False),
        (503, "http_status", True),
        (500, "http_status", True),
        (429, "throttled", True),
    ],
)
def test_error_statuses(clock: ManualClock, status: int, kind: str, retryable: bool) -> None:
    body = json.dumps({"error": {"kind": "not_ready", "message": "warming up"}}).encode()
    result = _send(
        MockResponse(
            status=status,
            headers={"Content-Type": "application/json"},
            chunks=[body[:10], body[10:]],
        ),
        clock,
    )
    assert result.error_kind == kind
    assert result.status == status
    assert result.bytes == len(body)
    assert f"HTTP {status}" in (result.error or "")
    assert "not_ready: warming up" in (result.error or "")
    assert is_retryable(result) is retryable


@pytest.mark.parametrize(
    ("agent_kind", "retryable"), [("stale_turn", False), ("checkpoint_conflict", True)]
)
def test_conflicts_are_retried_but_stale_turns_are_not(
    clock: ManualClock, agent_kind: str, retryable: bool
) -> None:
    body = json.dumps({"error": {"kind": agent_kind, "message": "m"}}).encode()
    result = _send(MockResponse(status=409, chunks=[body]), clock)
    assert result.agent_error_kind == agent_kind
    assert is_retryable(result) is retryable


def test_throttled_reads_retry_after(clock: ManualClock) -> None:
    result = _send(
        MockResponse(status=429, headers={"Retry-After": "2"}, chunks=[b"slow down"]), clock
    )
    assert result.error_kind == "throttled"
    assert result.retry_after_s == 2.0
    assert "slow down" in (result.error or "")


def test_agent_error_event(clock: ManualClock) -> None:
    error = sse("error", {"kind": "llm_unavailable", "message": "upstream 503"})
    result = _send(MockResponse(chunks=[meta(), token("Hm"), error, done(1)]), clock)
    assert result.error_kind == "agent_error"
    assert result.error == "llm_unavailable: upstream 503"
    assert result.agent_error_kind == "llm_unavailable"
    assert result.done is None
    assert is_retryable(result)


@pytest.mark.parametrize(
    "chunks",
    [
        [b"\x00\xff\xfe garbage \x80\x81\n\n"],
        [b"event: token\ndata: not json\n\n"],
        [b'event: token\ndata: {"txt": "wrong field"}\n\n'],
        [meta(), b'event: done\ndata: {"state": {"turn": "three"}}\n\n'],
        [meta(), b'event: done\ndata: {"replayed": false}\n\n'],
    ],
)
def test_garbage_streams_are_malformed(clock: ManualClock, chunks: list[bytes]) -> None:
    result = _send(MockResponse(chunks=chunks), clock)
    assert result.error_kind == "malformed"
    assert is_retryable(result)


def test_wrong_content_type_is_malformed(clock: ManualClock) -> None:
    result = _send(
        MockResponse(headers={"content-type": "text/html"}, chunks=[b"<html>hi</html>"]), clock
    )
    assert result.error_kind == "malformed"
    assert "text/html" in (result.error or "")


@pytest.mark.parametrize("seed", range(30))
def test_never_raises_on_random_input(clock: ManualClock, seed: int) -> None:
    rng = random.Random(seed)
    pieces = [meta(), token("x"), done(1), b"\n\n", b"data: {\n\n", b"event: done\n"]
    chunks: list[bytes | BaseException] = []
    for _ in range(rng.randint(0, 12)):
        roll = rng.random()
        if roll < 0.3:
            chunks.append(rng.randbytes(rng.randint(1, 64)))
        elif roll < 0.35:
            chunks.append(rng.choice([StreamReset("x"), OSError("y"), KeyError("z")]))
        else:
            chunks.append(rng.choice(pieces))
    status = rng.choice([200, 200, 200, 204, 302, 404, 429, 502])
    result = _send(MockResponse(status=status, chunks=chunks), clock)
    assert result.error_kind is None or result.error_kind in ERROR_KINDS
    assert result.ok == (result.error_kind is None)


@pytest.mark.parametrize("cut_after_meta", [False, True])
def test_live_counters_track_turns_in_flight_and_awaiting_first_token(
    clock: ManualClock, cut_after_meta: bool
) -> None:
    from loadlab.load.in_flight import InFlightCounters

    live = InFlightCounters()
    seen: list[tuple[int, int]] = []

    def chunks() -> Iterator[bytes]:
        seen.append((live.turns_in_flight, live.awaiting_first_token))
        yield meta(instance_id="pod-a")
        seen.append((live.turns_in_flight, live.awaiting_first_token))
        if cut_after_meta:
            raise StreamReset("pod killed inside the LLM call")
        yield token("Sure")
        seen.append((live.turns_in_flight, live.awaiting_first_token))
        yield done(1, {})

    def handler(request: MockRequest) -> MockResponse:
        return MockResponse(200, {"content-type": "text/event-stream"}, chunks())

    client = AgentClient(
        transport=MockTransport(handler),
        adapter=ReferenceAdapter(),
        base_url="http://agent.test:8080/",
        clock=clock,
        wall=clock,
        live=live,
    )
    result = client.send_turn(REQUEST)
    # in flight throughout; awaiting the first token only between meta and the token
    expected = [(1, 0), (1, 1)] + ([] if cut_after_meta else [(1, 0)])
    assert seen == expected
    assert (live.turns_in_flight, live.awaiting_first_token) == (0, 0)
    assert (result.error_kind == "reset") is cut_after_meta
