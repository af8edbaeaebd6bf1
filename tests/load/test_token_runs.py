"""Runs of plain tokens taken at once: the same turn as decoding them one by one.

:meth:`ReferenceAdapter.plain_tokens`, the SSE parser's token lane
(:class:`~loadlab.load.sse.TokenLane`) and :meth:`_Attempt.token_run` are the
client's fast path for the bulk of a stream; each test compares it with the
event-by-event path (an adapter that never offers a run) on the same bytes.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from load_testkit import ManualClock, done, meta, timed

from loadlab.load.adapters import ReferenceAdapter, TurnRequest
from loadlab.load.client import AgentClient, TurnResult
from loadlab.load.sse import PlainTokens, SSEEvent, SSEItem, SSEParser
from loadlab.load.transport import MockResponse, MockTransport

REQUEST = TurnRequest(
    session_id="s-1", turn_index=1, message="hi", idempotency_key="s-1-t1", token=None
)


class OneByOne(ReferenceAdapter):
    """The reference protocol without the run fast paths: every event through decode()."""

    token_lane = None

    def plain_tokens(self, items: Sequence[SSEItem], start: int) -> tuple[list[str], int]:
        return [], start


class CountingAdapter(ReferenceAdapter):
    """Counts the events decoded one by one."""

    def __init__(self) -> None:
        self.decoded: list[str] = []

    def decode(self, event: SSEEvent):  # type: ignore[no-untyped-def]
        self.decoded.append(event.event)
        return super().decode(event)


def compact_token(text: str, *, ascii_only: bool = False) -> bytes:
    """A token event as agents write it: compact JSON (``{"text":"..."}``)."""
    data = json.dumps({"text": text}, separators=(",", ":"), ensure_ascii=ascii_only)
    return f"event: token\ndata: {data}\n\n".encode()


def play(
    adapter: ReferenceAdapter, chunks: list[tuple[float, bytes]], *, max_answer: int = 1 << 20
) -> TurnResult:
    clock = ManualClock()
    transport = MockTransport(lambda _: MockResponse(chunks=timed(clock, chunks)))
    client = AgentClient(
        transport=transport,
        adapter=adapter,
        base_url="http://agent.test",
        clock=clock,
        wall=clock,
        max_answer_bytes=max_answer,
    )
    return client.send_turn(REQUEST)


def measured(result: TurnResult) -> tuple[object, ...]:
    return (
        result.ok,
        result.error_kind,
        result.text,
        result.tokens,
        result.answer_bytes,
        result.truncated,
        result.bytes,
        result.ttft_ms,
        result.max_gap_ms,
        result.latency_ms,
        result.done is not None,
    )


TEXTS = st.text(
    alphabet=st.one_of(
        st.sampled_from(["a", " ", "é", "€", "😀", '"', "\\", "\n", "\x07", "\u2028", "\x85"]),
        st.characters(codec="utf-8"),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(TEXTS, max_size=12),
    ascii_only=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
    max_answer=st.integers(min_value=1, max_value=40),
    gap_s=st.sampled_from([0.0, 0.005, 0.05]),
)
def test_a_run_measures_what_one_by_one_measures(
    texts: list[str], ascii_only: bool, cuts: list[int], max_answer: int, gap_s: float
) -> None:
    body = meta() + b"".join(compact_token(t, ascii_only=ascii_only) for t in texts) + done(1)
    # the same bytes cut anywhere (inside events, inside UTF-8 characters), each
    # piece arriving gap_s after the last
    bounds = sorted({min(c, len(body)) for c in cuts} | {0, len(body)})
    chunks = [(gap_s, body[a:b]) for a, b in itertools.pairwise(bounds) if b > a]
    fast = play(ReferenceAdapter(), chunks, max_answer=max_answer)
    slow = play(OneByOne(), chunks, max_answer=max_answer)
    assert measured(fast) == measured(slow)
    assert fast.ok and fast.tokens == len(texts)


def test_plain_tokens_are_not_decoded_one_by_one() -> None:
    adapter = CountingAdapter()
    body = meta() + b"".join(compact_token(t) for t in ["Sure", ", ", "added", " it."]) + done(1)
    result = play(adapter, [(0.01, body)])
    assert result.text == "Sure, added it." and result.tokens == 4
    assert result.max_gap_ms == 0.0  # four tokens that came in together
    assert adapter.decoded == ["meta", "done"]


def test_a_run_stops_at_a_token_that_needs_decoding() -> None:
    tokens = [
        SSEEvent("token", '{"text":"one"}'),
        SSEEvent("token", '{"text":"two"}'),
        SSEEvent("token", '{"text":"say \\"hi\\""}'),  # an escape: JSON decoding needed
        SSEEvent("token", '{"text":"three"}'),
        SSEEvent("token", '{"text":"line\u2028"}'),  # not printable (valid raw in JSON)
        SSEEvent("token", '{"text": "spaced"}'),  # not the compact shape
        SSEEvent("done", "{}"),
    ]
    adapter = ReferenceAdapter()
    assert adapter.plain_tokens(tokens, 0) == (["one", "two"], 2)
    assert adapter.plain_tokens(tokens, 2) == ([], 2)
    assert adapter.plain_tokens(tokens, 3) == (["three"], 4)
    assert adapter.plain_tokens(tokens, 5) == ([], 5)
    assert adapter.plain_tokens(tokens[:2], 0) == (["one", "two"], 2)
    wire = [(0.01, meta()), *((0.01, _wire(e)) for e in tokens[:-1]), (0.01, done(1))]
    result = play(adapter, wire)
    assert result.ok and result.text == 'onetwosay "hi"threeline\u2028spaced'
    assert result.tokens == 6


def test_tokens_after_done_change_nothing() -> None:
    body = meta() + compact_token("a") + done(1) + compact_token("b") + compact_token("c")
    result = play(ReferenceAdapter(), [(0.01, body)])
    assert result.ok and result.text == "a" and result.tokens == 1


def _wire(event: SSEEvent) -> bytes:
    return f"event: {event.event}\ndata: {event.data}\n\n".encode()


LANE = ReferenceAdapter.token_lane
assert LANE is not None


def expanded(items: list[SSEItem]) -> list[tuple[str, str]]:
    """Events as (name, data), a lane's run of texts as the token events it stands for."""
    assert LANE is not None
    out: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, PlainTokens):
            assert item.texts, "a run of no tokens"
            out += [(LANE.event, f"{LANE.prefix}{text}{LANE.suffix}") for text in item.texts]
        else:
            assert isinstance(item, SSEEvent), item
            out.append((item.event, item.data))
    return out


EVENTS = st.one_of(
    TEXTS.map(lambda t: compact_token(t, ascii_only=False)),
    TEXTS.map(lambda t: compact_token(t, ascii_only=True)),
    # the lane's shape, but JSON would read it otherwise, or not at all
    st.sampled_from(['{"text":"a\\"}', '{"text":"\\u0041"}', '{"text":"x"} ', '{"text":"x"']).map(
        lambda d: f"event: token\ndata: {d}\n\n".encode()
    ),
    st.sampled_from([b"data: plain\n\n", b"event: meta\ndata: {}\n\n", b"event: token\ndata:\n\n"]),
)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(EVENTS, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=4),
)
def test_the_lane_reads_what_the_parser_reads_event_by_event(
    events: list[bytes], cuts: list[int]
) -> None:
    body = b"".join(events)
    bounds = sorted({min(c, len(body)) for c in cuts} | {0, len(body)})
    lane, plain = SSEParser(tokens=LANE), SSEParser()
    with_lane: list[SSEItem] = []
    without: list[SSEItem] = []
    for a, b in itertools.pairwise(bounds):
        with_lane += lane.feed(body[a:b])
        without += plain.feed(body[a:b])
    assert expanded(with_lane) == expanded(without)


def test_the_lane_takes_plain_ascii_tokens_and_leaves_the_rest() -> None:
    body = (
        meta()
        + compact_token("Sure")
        + compact_token(", it")
        + compact_token("caf\u00e9")  # printable, not ASCII: an event, decoded as before
        + compact_token('say "hi"')  # an escape: an event
        + compact_token("ok")
        + done(1)
    )
    items = SSEParser(tokens=LANE).feed(body)
    assert [type(i).__name__ for i in items] == [
        "SSEEvent",
        "PlainTokens",
        "SSEEvent",
        "SSEEvent",
        "PlainTokens",
        "SSEEvent",
    ]
    assert items[1] == PlainTokens(["Sure", ", it"]) and items[4] == PlainTokens(["ok"])
    result = play(CountingAdapter(), [(0.01, body)])
    assert result.ok and result.text == 'Sure, itcaf\u00e9say "hi"ok' and result.tokens == 5
