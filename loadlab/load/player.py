"""Plays one shopper's session: turns, retries, the ledger, and the rows.

:class:`SessionPlayer` is the whole behaviour of a virtual user minus Locust:
it sends each turn through an :class:`~loadlab.load.client.AgentClient`,
retries an interrupted turn with the same idempotency key (exponential backoff
with jitter, at least ``Retry-After`` on a 429), keeps the
:class:`~loadlab.load.ledger.SessionLedger`, and emits a
:class:`~loadlab.rows.RequestSample` per attempt, a
:class:`~loadlab.rows.TurnRecord` per turn and a
:class:`~loadlab.rows.SessionRecord` at the end. Waiting is done through the
``sleep`` it is given (``gevent.sleep`` under Locust), so the player itself
never blocks a greenlet on its own.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from loadlab.load.adapters import ChatMessage, TurnRequest
from loadlab.load.auth import SessionCredentials
from loadlab.load.client import AgentClient, TurnResult, is_retryable
from loadlab.load.context import RowSink
from loadlab.load.ledger import SessionLedger, TurnCheck
from loadlab.rows import RequestSample, SessionRecord, TurnRecord, row_builder
from loadlab.scenario.model import RetryPolicy
from loadlab.scenario.script import SessionSpec, Turn

MAX_RETRY_AFTER_S = 60.0
"""A Retry-After longer than this is capped: the session would look dead otherwise."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One finished attempt, as handed to the ``on_attempt`` callback."""

    turn: Turn
    sample: RequestSample
    result: TurnResult


class SessionPlayer:
    """Plays a planned session turn by turn (see the module docstring)."""

    def __init__(
        self,
        *,
        spec: SessionSpec,
        client: AgentClient,
        retry: RetryPolicy,
        sink: RowSink,
        credentials: SessionCredentials,
        sleep: Callable[[float], None],
        time_scale: float = 1.0,
        worker_id: str = "local",
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.perf_counter,
        rng: random.Random | None = None,
        on_attempt: Callable[[Attempt], None] | None = None,
    ) -> None:
        self.spec = spec
        self._client = client
        self._retry = retry
        self._sink = sink
        self._credentials = credentials
        self._sleep = sleep
        self._time_scale = time_scale
        self._worker = worker_id
        self._wall = wall
        self._clock = clock
        # Made at the first backoff: seeding a generator costs more than planning a turn.
        self._rng = rng
        self._on_attempt = on_attempt
        self.ledger = SessionLedger(
            session_id=spec.session_id, tracks_state=client.adapter.tracks_state
        )
        self._next = 0
        self._history: list[ChatMessage] = []
        self._t_start: float | None = None
        self._attempts = 0
        self._record: SessionRecord | None = None

    @property
    def done(self) -> bool:
        """True when every turn was played or a turn was given up."""
        return self._next >= len(self.spec.turns) or self.ledger.finished

    @property
    def next_think_time_s(self) -> float:
        """How long the shopper thinks before the next turn (scaled), 0 when done."""
        if self.done:
            return 0.0
        return self.spec.turns[self._next].think_time_s * self._time_scale

    def play_next_turn(self, *, due: float | None = None) -> TurnRecord:
        """Play the next turn with its retries, emit its rows, and return its record.

        ``due`` is when the turn should have started, on the player's ``clock``
        (the end of the think time the caller waited); the turn's ``lateness_ms``
        is how much later its first attempt was sent (None without ``due``).
        """
        if self.done:
            raise RuntimeError("the session has no turn left to play")
        turn = self.spec.turns[self._next]
        if self._t_start is None:
            self._t_start = self._wall()
        key = f"{self.spec.session_id}-t{turn.index}"
        results: list[TurnResult] = []
        check: TurnCheck | None = None
        at_stake = self.ledger.turns_done > 0
        with_cart = at_stake and bool(self.ledger.expected_cart)
        lateness_ms: float | None = None
        for attempt in range(1, self._retry.max_attempts + 1):
            request = _turn_request(
                (
                    self.spec.session_id,
                    turn.index,
                    turn.message,
                    key,
                    self._credentials.token(self._wall()),
                    tuple(self._history),
                )
            )
            if due is not None and attempt == 1:
                # Taken at the last moment before the send: whatever delayed the
                # send after the think time (a blocked loop, a slow greenlet) counts.
                lateness_ms = max(0.0, (self._clock() - due) * 1000.0)
            result = self._client.send_turn(request, at_stake=at_stake, with_cart=with_cart)
            results.append(result)
            self._emit_attempt(turn, attempt, result)
            if result.ok:
                state = result.done.state if result.done is not None else None
                check = self.ledger.turn_completed(turn, t_end=result.t_end, state=state)
                self._history += [
                    _message(("user", turn.message)),
                    _message(("assistant", result.text)),
                ]
                break
            self.ledger.attempt_failed(
                turn, t_start=result.t_start, error_kind=result.error_kind or "error"
            )
            if not is_retryable(result) or attempt == self._retry.max_attempts:
                self.ledger.turn_abandoned(
                    turn,
                    reason=f"{result.error_kind} after {attempt} attempt(s): {result.error}",
                )
                break
            self._sleep(self._backoff(attempt, result.retry_after_s))
        self._next += 1
        record = _turn_record(
            turn, results, check, self.spec.session_id, self._worker, lateness_ms=lateness_ms
        )
        self._sink.emit(record)
        return record

    def fail(self, reason: str) -> SessionRecord | None:
        """End the session as ``failed`` because the harness itself broke (never ``clean``)."""
        if self._t_start is None:
            self._t_start = self._wall()
        if self._next < len(self.spec.turns):
            turn = self.spec.turns[self._next]
            self.ledger.turn_abandoned(turn, reason=f"harness error: {reason}")
        return self.finish()

    def finish(self, *, stopped: bool = False) -> SessionRecord | None:
        """Emit and return the session's row (once); None if no attempt ever ended.

        A session stopped in the middle of its very first attempt left nothing on
        the timeline (the cut attempt has no request row either): there is
        nothing to judge, so it gets no row rather than a verdict on no evidence.
        """
        if self._record is not None or self._t_start is None:
            return self._record
        if stopped and self._attempts == 0:
            return None
        if stopped and not self.done:
            self.ledger.stopped()
        verdict = self.ledger.verdict()
        spec = self.spec
        self._record = _session_row(
            (
                spec.session_id,
                spec.persona,
                spec.seed,
                self._t_start,
                self._wall(),
                len(spec.turns),
                verdict.turns_done,
                verdict.interrupted_turns,
                verdict.verdict,
                verdict.reason,
                verdict.resume_latency_ms,
                verdict.checkpoint_version,
                verdict.cart_json,
                self._worker,
                json.dumps(self.ledger.expected_cart, sort_keys=True),
            )
        )
        self._sink.emit(self._record)
        return self._record

    def _backoff(self, attempt: int, retry_after_s: float | None) -> float:
        # Equal jitter: never retry instantly (a killed pod needs a moment),
        # and never in lock step with the other sessions the same fault hit.
        ceiling = min(self._retry.backoff_max_s, self._retry.backoff_s * 2.0 ** (attempt - 1))
        if self._rng is None:
            self._rng = random.Random(self.spec.seed)
        delay = (ceiling / 2 + self._rng.uniform(0, ceiling / 2)) * self._time_scale
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
        return delay

    def _emit_attempt(self, turn: Turn, attempt: int, result: TurnResult) -> None:
        meta = result.meta
        sample = _request_sample(
            (
                result.t_start,
                f"turn:{turn.intent}",
                self.spec.session_id,
                turn.index,
                attempt,
                result.latency_ms,
                result.ttft_ms,
                result.bytes,
                result.status,
                result.error_kind,
                result.error,
                result.tokens,
                result.max_gap_ms,
                None if meta is None else meta.instance_id,
                None if meta is None else meta.cold,
                None if meta is None else meta.init_ms,
                self._worker,
            )
        )
        self._attempts += 1
        self._sink.emit(sample)
        if self._on_attempt is not None:
            self._on_attempt(_attempt((turn, sample, result)))


# What every turn makes (and every session: its row), built by loadlab.rows.row_builder:
# two rows, the request, two messages of the history, the attempt handed on; the
# values are given in these orders.
_turn_request = row_builder(
    TurnRequest, ("session_id", "turn_index", "message", "idempotency_key", "token", "history")
)
_message = row_builder(ChatMessage, ("role", "content"))
_attempt = row_builder(Attempt, ("turn", "sample", "result"))
_request_sample = row_builder(
    RequestSample,
    (
        "t_start",
        "name",
        "session_id",
        "turn_index",
        "attempt",
        "latency_ms",
        "ttft_ms",
        "bytes",
        "status",
        "error_kind",
        "error",
        "tokens",
        "max_gap_ms",
        "instance_id",
        "cold_start",
        "init_ms",
        "worker",
    ),
)
_session_row = row_builder(
    SessionRecord,
    (
        "session_id",
        "persona",
        "seed",
        "t_start",
        "t_end",
        "turns_planned",
        "turns_done",
        "interrupted_turns",
        "verdict",
        "verdict_reason",
        "resume_latency_ms",
        "checkpoint_version",
        "cart_json",
        "worker",
        "expected_cart_json",
    ),
)
_turn_row = row_builder(
    TurnRecord,
    (
        "t_start",
        "t_end",
        "session_id",
        "turn_index",
        "intent",
        "ok",
        "attempts",
        "latency_ms",
        "ttft_ms",
        "interrupted",
        "resume_latency_ms",
        "error_kind",
        "instance_id",
        "cold_start",
        "state_source",
        "replayed",
        "state_turn",
        "checkpoint_version",
        "cart_items",
        "ddb_calls",
        "ddb_rcu",
        "ddb_wcu",
        "llm_calls",
        "llm_retries",
        "llm_throttles",
        "tokens_in",
        "tokens_out",
        "worker",
        "answer_bytes",
        "answer_truncated",
        "lateness_ms",
    ),
)


def _turn_record(
    turn: Turn,
    results: list[TurnResult],
    check: TurnCheck | None,
    session_id: str,
    worker: str,
    *,
    lateness_ms: float | None,
) -> TurnRecord:
    first, last = results[0], results[-1]
    ok = last.ok
    failures = [r for r in results if not r.ok]
    ttft: float | None = None
    if ok and last.ttft_ms is not None:
        # What the shopper waited for the first word, retries included.
        ttft = (last.t_start - first.t_start) * 1000.0 + last.ttft_ms
    meta, done = last.meta, last.done
    state = done.state if done is not None else None
    down = done.downstream if done is not None else None
    return _turn_row(
        (
            first.t_start,
            last.t_end,
            session_id,
            turn.index,
            turn.intent,
            ok,
            len(results),
            (last.t_end - first.t_start) * 1000.0,
            ttft,
            bool(failures),
            None if check is None else check.resume_latency_ms,
            failures[0].error_kind if failures else None,
            None if meta is None else meta.instance_id,
            None if meta is None else meta.cold,
            None if meta is None else meta.state_source,
            bool((meta is not None and meta.replayed) or (done is not None and done.replayed)),
            None if state is None else state.turn,
            None if state is None else state.version,
            None if state is None else sum(units for _, units in state.cart),
            0 if down is None else down.ddb_calls,
            0.0 if down is None else down.ddb_rcu,
            0.0 if down is None else down.ddb_wcu,
            0 if down is None else down.llm_calls,
            0 if down is None else down.llm_retries,
            0 if down is None else down.llm_throttles,
            0 if down is None else down.tokens_in,
            0 if down is None else down.tokens_out,
            worker,
            last.answer_bytes,
            last.truncated,
            lateness_ms,
        )
    )
