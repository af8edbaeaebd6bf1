"""SessionPlayer end to end over an in-process agent: retries, rows, and verdicts.

The agent here is the protocol's session logic behind a scripted transport,
with the reference agent's breakage switches; each verdict is shown arising
from the breakage it exists to catch.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import jwt
import pytest
from load_testkit import AgentModel, ManualClock

from loadlab.load.adapters import OpenAIChatAdapter, ReferenceAdapter
from loadlab.load.auth import SessionCredentials
from loadlab.load.client import AgentClient
from loadlab.load.context import ListSink
from loadlab.load.player import Attempt, SessionPlayer
from loadlab.load.transport import MockRequest, MockResponse, MockTransport, StreamReset
from loadlab.scenario import parse_scenario, plan_session

SECRET = "test-secret-0123456789abcdef0123456789"
SESSION = "run1-local-000001"
StatusRule = Callable[[int, int], tuple[int, dict[str, str]] | None]


class AgentTransport:
    """Routes requests to an AgentModel; cuts streams or answers statuses on cue."""

    def __init__(
        self,
        model: AgentModel,
        *,
        cut: set[tuple[int, int]] = frozenset(),
        status: StatusRule | None = None,
    ) -> None:
        self.model = model
        self.cut = cut
        self.status = status
        self.attempts: Counter[int] = Counter()
        self.keys: list[str] = []

    def __call__(self, request: MockRequest) -> MockResponse:
        session_id = request.url.split("/")[-2]
        body = json.loads(request.body)
        turn = body["turn"]
        # The test clock is not the real time, so expiry is checked by value.
        claims = jwt.decode(
            request.headers["Authorization"].removeprefix("Bearer "),
            SECRET,
            algorithms=["HS256"],
            options={"verify_exp": False},
        )
        assert claims["sub"] == session_id
        assert claims["exp"] == claims["iat"] + 3600
        key = request.headers["Idempotency-Key"]
        self.keys.append(key)
        self.attempts[turn] += 1
        attempt = self.attempts[turn]
        if self.status is not None and (rule := self.status(turn, attempt)) is not None:
            error = json.dumps({"error": {"kind": "injected", "message": "by test"}}).encode()
            return MockResponse(status=rule[0], headers=rule[1], chunks=[error])
        head, tail = self.model.stream(session_id, key, body["message"])
        if (turn, attempt) in self.cut:
            self.model.cut(session_id)
            return MockResponse(chunks=[*head, StreamReset("pod killed")])
        return MockResponse(chunks=[*head, *tail])


def _scenario(max_attempts: int = 3):
    return parse_scenario(
        {
            "name": "t",
            "session": {
                "turns": {"min": 3, "max": 3},
                "think_time": {"distribution": "constant", "median_s": 4},
                "personas": [{"name": "buyer", "intents": {"add_to_cart": 1}}],
            },
            "retry": {"max_attempts": max_attempts, "backoff_s": 0.5, "backoff_max_s": 4},
        }
    )


class Rig:
    def __init__(
        self, transport: AgentTransport, clock: ManualClock, *, adapter=None, max_attempts: int = 3
    ) -> None:
        scenario = _scenario(max_attempts)
        self.sink = ListSink()
        self.sleeps: list[float] = []
        self.attempts: list[Attempt] = []
        self.clock = clock
        self.mock = MockTransport(transport)
        self.spec = plan_session(scenario, 11, session_id=SESSION)
        self.player = SessionPlayer(
            spec=self.spec,
            client=AgentClient(
                transport=self.mock,
                adapter=adapter or ReferenceAdapter(),
                base_url="http://agent:1",
                clock=clock,
                wall=clock,
            ),
            retry=scenario.retry,
            sink=self.sink,
            credentials=SessionCredentials(secret=SECRET, session_id=SESSION),
            sleep=self._sleep,
            wall=clock,
            clock=clock,
            on_attempt=self.attempts.append,
            worker_id="w1",
        )

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def play(self) -> None:
        for _ in range(10):
            if self.player.done:
                break
            self.clock.advance(self.player.next_think_time_s)
            self.player.play_next_turn()
        self.player.finish()


def test_healthy_session_is_clean_with_one_row_per_attempt_turn_and_session(
    clock: ManualClock,
) -> None:
    agent = AgentTransport(AgentModel())
    rig = Rig(agent, clock)
    rig.play()
    requests, turns, sessions = rig.sink.requests, rig.sink.turns, rig.sink.sessions
    assert [(r.turn_index, r.attempt, r.error_kind) for r in requests] == [
        (1, 1, None),
        (2, 1, None),
        (3, 1, None),
    ]
    assert all(r.name == "turn:add_to_cart" and r.worker == "w1" for r in requests)
    assert all(r.instance_id == "pod-1" and r.tokens == 2 for r in requests)
    assert [t.ok for t in turns] == [True, True, True]
    assert [t.state_turn for t in turns] == [1, 2, 3]
    assert [t.cart_items for t in turns] == [1, 2, 3]
    assert turns[0].ddb_calls == 3 and turns[0].tokens_out == 80
    (session,) = sessions
    assert session.verdict == "clean"
    assert session.turns_planned == session.turns_done == 3
    assert json.loads(session.cart_json) == rig.spec.expected_cart(3)
    assert session.checkpoint_version == 3
    assert len(set(agent.keys)) == 3
    assert [a.sample for a in rig.attempts] == requests
    assert rig.sleeps == []


def test_lateness_is_the_delay_from_the_due_time_to_the_first_send(clock: ManualClock) -> None:
    rig = Rig(AgentTransport(AgentModel(), cut={(2, 1)}), clock)
    due = clock() + rig.player.next_think_time_s
    clock.advance(rig.player.next_think_time_s + 0.25)  # the loop was busy 250 ms past due
    assert rig.player.play_next_turn(due=due).lateness_ms == pytest.approx(250.0)
    # turn 2 is cut and retried: the backoff is the session's, not the harness's lateness
    due = clock() + rig.player.next_think_time_s
    clock.advance(rig.player.next_think_time_s + 0.1)
    retried = rig.player.play_next_turn(due=due)
    assert retried.attempts == 2 and rig.sleeps
    assert retried.lateness_ms == pytest.approx(100.0)
    # sent before it was due counts as on time; without a due time there is no figure
    assert rig.player.play_next_turn(due=clock() + 1.0).lateness_ms == 0.0
    rig.player = Rig(AgentTransport(AgentModel()), clock).player
    assert rig.player.play_next_turn().lateness_ms is None


def test_cut_stream_retried_with_same_key_resumes(clock: ManualClock) -> None:
    agent = AgentTransport(AgentModel(), cut={(2, 1)})
    rig = Rig(agent, clock)
    rig.play()
    assert agent.keys[1] == agent.keys[2] == f"{SESSION}-t2"
    failed = [r for r in rig.sink.requests if r.error_kind]
    assert [(r.turn_index, r.attempt, r.error_kind) for r in failed] == [(2, 1, "reset")]
    turn2 = rig.sink.turns[1]
    assert (turn2.attempts, turn2.interrupted, turn2.replayed, turn2.error_kind) == (
        2,
        True,
        True,
        "reset",
    )
    assert turn2.resume_latency_ms == pytest.approx(turn2.latency_ms)
    assert turn2.resume_latency_ms == pytest.approx(rig.sleeps[0] * 1000)  # backoff only
    assert 0.25 <= rig.sleeps[0] <= 0.5
    (session,) = rig.sink.sessions
    assert session.verdict == "resumed"
    assert session.interrupted_turns == 1
    assert session.resume_latency_ms == pytest.approx(turn2.resume_latency_ms)


def test_agent_without_idempotency_is_caught_duplicating(clock: ManualClock) -> None:
    rig = Rig(AgentTransport(AgentModel(idempotent=False), cut={(2, 1)}), clock)
    rig.play()
    (session,) = rig.sink.sessions
    assert session.verdict == "duplicated"
    assert "2 in cart, asked for 1" in session.verdict_reason


def test_agent_without_checkpoint_is_caught_restarting(clock: ManualClock) -> None:
    rig = Rig(AgentTransport(AgentModel(lose_state_on_cut=True), cut={(3, 1)}), clock)
    rig.play()
    (session,) = rig.sink.sessions
    assert session.verdict == "restarted"
    assert "state lost at turn 3" in session.verdict_reason


def test_retries_exhausted_fail_the_session_and_stop_it(clock: ManualClock) -> None:
    rig = Rig(
        AgentTransport(AgentModel(), status=lambda t, a: (503, {}) if t == 2 else None), clock
    )
    rig.play()
    assert [(r.turn_index, r.status) for r in rig.sink.requests] == [
        (1, 200),
        (2, 503),
        (2, 503),
        (2, 503),
    ]
    assert [t.ok for t in rig.sink.turns] == [True, False]
    assert len(rig.sleeps) == 2 and rig.sleeps[1] >= 0.5
    (session,) = rig.sink.sessions
    assert session.verdict == "failed"
    assert "http_status after 3 attempt(s)" in session.verdict_reason
    assert session.turns_done == 1


def test_refused_credentials_are_not_retried(clock: ManualClock) -> None:
    rig = Rig(AgentTransport(AgentModel(), status=lambda t, a: (401, {})), clock)
    rig.play()
    assert len(rig.sink.requests) == 1
    assert rig.sink.sessions[0].verdict == "failed"


def test_throttled_turn_waits_at_least_retry_after(clock: ManualClock) -> None:
    rule: StatusRule = lambda t, a: (429, {"Retry-After": "3"}) if (t, a) == (1, 1) else None  # noqa: E731
    rig = Rig(AgentTransport(AgentModel(), status=rule), clock)
    rig.play()
    assert rig.sleeps == [3.0]
    assert rig.sink.requests[0].error_kind == "throttled"
    assert rig.sink.sessions[0].verdict == "resumed"


def test_stopped_session_emits_its_row_once(clock: ManualClock) -> None:
    rig = Rig(AgentTransport(AgentModel()), clock)
    assert rig.player.finish(stopped=True) is None  # nothing sent yet, nothing to report
    rig.player.play_next_turn()
    record = rig.player.finish(stopped=True)
    assert record is not None
    assert (record.verdict, record.verdict_reason, record.turns_done) == ("clean", "stopped", 1)
    assert rig.player.finish(stopped=True) is record
    assert rig.sink.sessions == [record]


def test_think_time_is_scaled_and_first_turn_starts_at_once(clock: ManualClock) -> None:
    rig = Rig(AgentTransport(AgentModel()), clock)
    assert rig.player.next_think_time_s == 0.0
    rig.player.play_next_turn()
    assert rig.player.next_think_time_s == 4.0


def test_openai_sessions_carry_history_and_stay_clean(clock: ManualClock) -> None:
    calls: list[dict[str, object]] = []
    cut_once = {"pending": True}

    def llm(request: MockRequest) -> MockResponse:
        calls.append(json.loads(request.body))
        chunks: list[bytes | BaseException] = [
            b'data: {"choices": [{"delta": {"content": "ok"}}]}\n\n'
        ]
        if len(calls) == 2 and cut_once.pop("pending", False):
            return MockResponse(chunks=[*chunks, StreamReset("cut")])
        return MockResponse(chunks=[*chunks, b"data: [DONE]\n\n"])

    scenario = _scenario()
    sink = ListSink()
    spec = plan_session(scenario, 3, session_id=SESSION)
    player = SessionPlayer(
        spec=spec,
        client=AgentClient(
            transport=MockTransport(llm),
            adapter=OpenAIChatAdapter(),
            base_url="http://llm:1",
            clock=clock,
            wall=clock,
        ),
        retry=scenario.retry,
        sink=sink,
        credentials=SessionCredentials(secret=None, session_id=SESSION),
        sleep=clock.advance,
        wall=clock,
    )
    while not player.done:
        player.play_next_turn()
    player.finish()
    assert [len(c["messages"]) for c in calls] == [2, 4, 4, 6]
    assert sink.sessions[0].verdict == "clean"
    assert sink.sessions[0].interrupted_turns == 1


def test_a_harness_error_fails_the_session_instead_of_looking_clean(clock: ManualClock) -> None:
    rig = Rig(AgentTransport(AgentModel()), clock)
    rig.player.play_next_turn()

    def broken(attempt: object) -> None:
        raise AttributeError("'NoneType' object has no attribute 'fire'")

    rig.player._on_attempt = broken  # the Locust side of a user breaking mid-session
    with pytest.raises(AttributeError):
        rig.player.play_next_turn()
    record = rig.player.fail("AttributeError: 'NoneType' object has no attribute 'fire'")
    assert record is not None and record.verdict == "failed"
    assert "harness error: AttributeError" in record.verdict_reason
    assert rig.sink.sessions == [record]
