"""What the agent sends cannot make the client hold more, wait longer, or record the unrecordable.

Issue 14: an out-of-range or non-finite number is a ``malformed`` turn (it was
recorded as ``reset``, or passed on to break the recorder); the answer text kept
per turn and the data held per event are bounded (50 MB of tokens, or of data
lines without a blank line, grew the client without end); and a stream that
trickles a byte now and then is cut at the turn's deadline (the timeout alone
measures silence only).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from load_testkit import AgentModel, ManualClock, done, meta, token

from loadlab.errors import ScenarioError
from loadlab.load.adapters import ReferenceAdapter, TurnRequest
from loadlab.load.auth import SessionCredentials
from loadlab.load.client import AgentClient, TurnResult
from loadlab.load.context import ListSink
from loadlab.load.ledger import SessionLedger
from loadlab.load.player import SessionPlayer
from loadlab.load.sse import MalformedStream, SSEEvent, SSEParser
from loadlab.load.transport import MockRequest, MockResponse, MockTransport, TransportTimeout
from loadlab.scenario import parse_scenario, plan_session

REQUEST = TurnRequest(session_id="s-1", turn_index=1, message="hi", idempotency_key="s-1-t1")
MB = 1024 * 1024


def _send(
    chunks: object,
    clock: ManualClock,
    *,
    timeout_s: float = 10.0,
    deadline_s: float | None = None,
    answer: int = 64 * 1024,
) -> tuple[TurnResult, MockTransport]:
    transport = MockTransport(lambda request: MockResponse(chunks=chunks))  # type: ignore[arg-type]
    client = AgentClient(
        transport=transport,
        adapter=ReferenceAdapter(),
        base_url="http://agent.test",
        timeout_s=timeout_s,
        turn_deadline_s=deadline_s,
        max_answer_bytes=answer,
        clock=clock,
        wall=clock,
    )
    return client.send_turn(REQUEST), transport


def _done_raw(downstream: str, state: str = '{"turn": 1, "cart": {}, "version": 1}') -> bytes:
    return f'event: done\ndata: {{"state": {state}, "downstream": {downstream}}}\n\n'.encode()


# -- finding 1: numbers the run cannot hold are malformed turns -----------------


@pytest.mark.parametrize(
    "raw",
    ["1e20", "18446744073709551616", "Infinity", "-Infinity", "NaN", "-1", '"12"', "2.5", "true"],
)
def test_a_count_out_of_range_non_finite_or_wrong_typed_is_a_malformed_turn(
    raw: str, clock: ManualClock
) -> None:
    result, _ = _send([meta(), token("ok"), _done_raw(f'{{"ddb_calls": {raw}}}')], clock)
    assert result.error_kind == "malformed", result.error
    assert result.error is not None and "ddb_calls" in result.error
    assert result.done is None


@pytest.mark.parametrize("raw", ["Infinity", "NaN", "-0.5", '"0.5"', "1e400"])
def test_a_capacity_measure_that_is_not_a_finite_number_is_malformed(
    raw: str, clock: ManualClock
) -> None:
    result, _ = _send([meta(), _done_raw(f'{{"ddb_rcu": {raw}}}')], clock)
    assert result.error_kind == "malformed" and "ddb_rcu" in str(result.error)


@pytest.mark.parametrize(
    "state",
    [
        '{"turn": 1e30, "cart": {}}',
        '{"turn": 99999999999999999999, "cart": {}}',
        '{"turn": 1, "cart": {"P-1": 1e19}}',
        '{"turn": 1, "cart": {"P-1": -2}}',
        '{"turn": 1, "cart": {}, "version": Infinity}',
    ],
)
def test_state_numbers_beyond_int64_are_malformed(state: str, clock: ManualClock) -> None:
    result, _ = _send([meta(), _done_raw("{}", state)], clock)
    assert result.error_kind == "malformed", result.error


def test_a_meta_init_time_that_is_not_finite_is_malformed(clock: ManualClock) -> None:
    bad_meta = b'event: meta\ndata: {"instance_id": "p", "init_ms": NaN}\n\n'
    result, _ = _send([bad_meta, done(1)], clock)
    assert result.error_kind == "malformed" and "init_ms" in str(result.error)


def test_whole_floats_absent_and_null_counts_are_accepted(clock: ManualClock) -> None:
    result, _ = _send([meta(), _done_raw('{"ddb_calls": 3.0, "llm_calls": null}')], clock)
    assert result.ok and result.done is not None
    assert (result.done.downstream.ddb_calls, result.done.downstream.llm_calls) == (3, 0)


# -- finding 6: bounded per turn and per event ----------------------------------


def _token_flood(total: int, text: str) -> Iterator[bytes]:
    event = token(text)
    chunk = event * (64 * 1024 // len(event))
    sent = 0
    while sent < total:
        yield chunk
        sent += len(chunk)


def test_fifty_mb_of_tokens_keep_only_the_answer_limit(clock: ManualClock) -> None:
    def stream() -> Iterator[bytes]:
        yield meta()
        yield from _token_flood(50 * MB, "y" * 1000)
        yield done(1)

    result, _ = _send(stream(), clock, answer=64 * 1024)
    assert result.ok
    assert result.bytes > 50 * MB
    assert result.answer_bytes >= 48 * MB  # the rest of the bytes is event framing
    assert len(result.text) == 64 * 1024 and result.truncated


def test_truncation_keeps_whole_characters_and_a_short_answer_is_whole(
    clock: ManualClock,
) -> None:
    result, _ = _send([meta(), token("é" * 10), done(1)], clock, answer=7)
    assert result.text == "ééé" and result.truncated and result.answer_bytes == 20
    result, _ = _send([meta(), token("abc"), token("de"), done(1)], clock, answer=5)
    assert result.text == "abcde" and not result.truncated and result.answer_bytes == 5


def _data_lines(total: int) -> Iterator[bytes]:
    line = b"data: " + b"x" * 1017 + b"\n"
    chunk = line * (64 * 1024 // len(line))
    sent = 0
    while sent < total:
        yield chunk
        sent += len(chunk)


def test_data_lines_without_a_blank_line_stop_at_the_event_limit() -> None:
    parser = SSEParser(max_event_bytes=MB)
    fed = 0
    items: list[SSEEvent | MalformedStream] = []
    for chunk in _data_lines(50 * MB):
        items += parser.feed(chunk)
        fed += len(chunk)
        if parser.broken:
            break
    assert len(items) == 1 and isinstance(items[0], MalformedStream)
    assert items[0].reason == f"event data longer than {MB} bytes"
    # It gave up within one chunk of the limit, not after the whole 50 MB.
    assert MB < fed <= MB + 64 * 1024
    assert parser.feed(b"data: more\n\n") == []


def test_an_event_at_the_limit_is_whole_and_the_next_one_starts_afresh() -> None:
    parser = SSEParser(max_event_bytes=100)
    first = parser.feed(b"data: " + b"a" * 94 + b"\n\n")
    second = parser.feed(b"data: " + b"b" * 94 + b"\n\n")
    assert [len(e.data) for e in first + second if isinstance(e, SSEEvent)] == [94, 94]
    assert isinstance(parser.feed(b"data: " + b"c" * 95 + b"\n")[0], MalformedStream)


def test_the_client_turns_an_endless_event_into_a_malformed_turn(clock: ManualClock) -> None:
    def stream() -> Iterator[bytes]:
        yield meta()
        yield from _data_lines(50 * MB)

    transport = MockTransport(lambda request: MockResponse(chunks=stream()))
    client = AgentClient(
        transport=transport,
        adapter=ReferenceAdapter(),
        base_url="http://agent.test",
        max_event_bytes=256 * 1024,
        clock=clock,
        wall=clock,
    )
    result = client.send_turn(REQUEST)
    assert result.error_kind == "malformed"
    assert result.error == "event data longer than 262144 bytes"
    assert result.bytes < 512 * 1024


def test_bounds_come_from_the_scenario_with_defaults() -> None:
    target = parse_scenario({"name": "t", "target": {"timeout_s": 10}}).target
    assert (target.max_answer_kib, target.max_event_kib, target.deadline_s) == (64, 1024, 30.0)
    target = parse_scenario(
        {"name": "t", "target": {"turn_deadline_s": 45, "max_answer_kib": 8, "max_event_kib": 16}}
    ).target
    assert (target.max_answer_kib, target.max_event_kib, target.deadline_s) == (8, 16, 45.0)
    # An override of the timeout moves a derived deadline with it.
    assert parse_scenario({"name": "t"}).with_overrides(timeout_s=5).target.deadline_s == 15.0


@pytest.mark.parametrize(
    ("key", "value"),
    [("turn_deadline_s", 0), ("turn_deadline_s", "soon"), ("max_answer_kib", 0),
     ("max_event_kib", 1.5)],
)  # fmt: skip
def test_bad_bounds_are_refused_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario({"name": "t", "target": {key: value}})
    assert f"target.{key}" in caught.value.message


# -- finding 7: a total deadline per attempt ------------------------------------


def test_a_stream_trickling_inside_the_idle_timeout_is_cut_at_the_deadline(
    clock: ManualClock,
) -> None:
    start = clock.now

    def trickle() -> Iterator[bytes]:
        for _ in range(1000):  # far longer than any deadline
            clock.advance(8.0)
            yield b":"

    result, transport = _send(trickle(), clock, timeout_s=10.0)
    assert result.error_kind == "deadline"
    assert "30 s" in str(result.error)
    # Cut at the first byte past 3 x timeout_s, not 1000 x 8 s later.
    assert clock.now - start == pytest.approx(32.0)
    assert transport.requests[0].timeout == 10.0


def test_no_single_wait_outlasts_a_deadline_shorter_than_the_timeout(clock: ManualClock) -> None:
    def late() -> Iterator[bytes | BaseException]:
        clock.advance(2.0)
        yield TransportTimeout("no data for 2 s")

    result, transport = _send(late(), clock, timeout_s=10.0, deadline_s=2.0)
    assert transport.requests[0].timeout == 2.0
    assert result.error_kind == "deadline"


def test_an_idle_timeout_before_the_deadline_stays_a_timeout(clock: ManualClock) -> None:
    def quiet() -> Iterator[bytes | BaseException]:
        yield meta()
        clock.advance(10.0)
        yield TransportTimeout("no data for 10 s")

    result, _ = _send(quiet(), clock, timeout_s=10.0)
    assert result.error_kind == "timeout"


# -- a session with no completed turn is never clean ----------------------------


def test_a_session_stopped_before_any_turn_completed_is_not_clean() -> None:
    ledger = SessionLedger(session_id="s")
    ledger.stopped()
    verdict = ledger.verdict()
    assert verdict.verdict == "failed" and verdict.reason == "stopped before any turn completed"


class _Stopped(BaseException):
    """Stands in for the GreenletExit that stops a Locust user mid-request."""


def test_a_session_stopped_inside_its_first_attempt_leaves_no_verdict(clock: ManualClock) -> None:
    scenario = parse_scenario({"name": "t", "session": {"turns": {"min": 2, "max": 2}}})

    def stopped(request: MockRequest) -> MockResponse:
        raise _Stopped

    sink = ListSink()
    player = SessionPlayer(
        spec=plan_session(scenario, 1, session_id="s-1"),
        client=AgentClient(
            transport=MockTransport(stopped),
            adapter=ReferenceAdapter(),
            base_url="http://agent.test",
            clock=clock,
            wall=clock,
        ),
        retry=scenario.retry,
        sink=sink,
        credentials=SessionCredentials(secret="x" * 32, session_id="s-1"),
        sleep=clock.advance,
        wall=clock,
    )
    with pytest.raises(_Stopped):
        player.play_next_turn()
    assert player.finish(stopped=True) is None
    assert sink.sessions == [] and sink.requests == []


def test_a_session_stopped_after_a_completed_turn_is_still_judged(clock: ManualClock) -> None:
    scenario = parse_scenario({"name": "t", "session": {"turns": {"min": 3, "max": 3}}})
    model = AgentModel()

    def agent(request: MockRequest) -> MockResponse:
        body = json.loads(request.body)
        head, tail = model.stream("s-1", request.headers["Idempotency-Key"], body["message"])
        return MockResponse(chunks=[*head, *tail])

    sink = ListSink()
    player = SessionPlayer(
        spec=plan_session(scenario, 1, session_id="s-1"),
        client=AgentClient(
            transport=MockTransport(agent),
            adapter=ReferenceAdapter(),
            base_url="http://agent.test",
            clock=clock,
            wall=clock,
        ),
        retry=scenario.retry,
        sink=sink,
        credentials=SessionCredentials(secret="x" * 32, session_id="s-1"),
        sleep=clock.advance,
        wall=clock,
    )
    player.play_next_turn()
    record = player.finish(stopped=True)
    assert record is not None and record.verdict == "clean" and record.turns_done == 1
    assert sink.turns[0].answer_bytes is not None and sink.turns[0].answer_truncated is False
