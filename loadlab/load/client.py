"""The agent client: one turn out, one measured :class:`TurnResult` back.

:meth:`AgentClient.send_turn` never raises on a bad response: a refused
connection, a 503, a stream cut in the middle or a stream of garbage are all
results with an ``error_kind`` (see :data:`loadlab.rows.ErrorKind`),
because under load and chaos they are the data, not accidents. Only the
caller's own cancellation (e.g. a Locust user being stopped, which is a
``BaseException``) goes through.

What an attempt holds is bounded whatever the agent sends: at most
``max_answer_bytes`` of answer text (the rest is counted in ``answer_bytes``,
and ``truncated`` says so), one event of at most ``max_event_bytes``, and the
whole attempt at most ``turn_deadline_s`` long (``timeout_s`` alone only bounds
each silence, and a stream that trickles a byte now and then never falls silent).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from loadlab.load.adapters import (
    AgentFailure,
    EndpointAdapter,
    Malformed,
    TokenText,
    TurnRequest,
)
from loadlab.load.in_flight import InFlightCounters
from loadlab.load.payloads import (
    AgentDone,
    AgentMeta,
    ErrorPayload,
    load_json_object,
    parse_error_payload,
)
from loadlab.load.sse import MalformedStream, PlainTokens, SSEParser
from loadlab.load.transport import (
    ConnectFailed,
    MalformedResponse,
    StreamingResponse,
    StreamReset,
    Transport,
    TransportTimeout,
)
from loadlab.redact import Redactor
from loadlab.rows import row_builder
from loadlab.scenario.model import DEADLINE_TIMEOUTS

_MAX_ERROR_BODY = 64 * 1024
DEFAULT_MAX_ANSWER_BYTES = 64 * 1024
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnResult:
    """The measured outcome of one attempt of one turn.

    ``t_start`` is epoch seconds; durations are milliseconds. ``ttft_ms`` is
    the time to the first token (None if none came); ``max_gap_ms`` the longest
    pause between two tokens. ``status`` is 0 when no response arrived.
    ``agent_error_kind`` is the agent's own name for its error (``stale_turn``,
    ``llm_unavailable`` ...) when it sent one, in a JSON body or an error event.
    ``answer_bytes`` counts the answer's UTF-8 bytes received; ``text`` keeps at
    most the client's ``max_answer_bytes`` of them, and ``truncated`` is True
    when it kept less.
    """

    t_start: float
    latency_ms: float
    ttft_ms: float | None
    max_gap_ms: float | None
    bytes: int
    status: int
    tokens: int
    text: str = field(default="", repr=False)
    error_kind: str | None = None
    error: str | None = None
    agent_error_kind: str | None = None
    retry_after_s: float | None = None
    meta: AgentMeta | None = None
    done: AgentDone | None = None
    answer_bytes: int = 0
    truncated: bool = False

    @property
    def ok(self) -> bool:
        """True when the turn completed (the agent's ``done`` arrived)."""
        return self.error_kind is None

    @property
    def t_end(self) -> float:
        """Epoch seconds when the attempt ended."""
        return self.t_start + self.latency_ms / 1000.0

    @property
    def mid_stream(self) -> bool:
        """True when the attempt failed after the agent had started answering."""
        return self.error_kind is not None and (self.meta is not None or self.tokens > 0)


_turn_result = row_builder(
    TurnResult,
    (
        "t_start",
        "latency_ms",
        "ttft_ms",
        "max_gap_ms",
        "bytes",
        "status",
        "tokens",
        "text",
        "error_kind",
        "error",
        "agent_error_kind",
        "retry_after_s",
        "meta",
        "done",
        "answer_bytes",
        "truncated",
    ),
)


def is_retryable(result: TurnResult) -> bool:
    """Whether retrying the same turn (same idempotency key) may succeed.

    Faults (no connection, timeouts, cut streams, garbage, the agent's own
    error events, throttling, 5xx) are worth retrying; a refused credential or
    a request the agent rejects as wrong (4xx) will fail the same way again.
    """
    kind = result.error_kind
    if kind is None or kind == "auth":
        return False
    if kind == "http_status":
        # A checkpoint conflict (409) means another writer got in first: try again.
        conflict = result.agent_error_kind == "checkpoint_conflict"
        return result.status >= 500 or result.status == 408 or conflict
    return True


class AgentClient:
    """Sends turns through a transport and measures them.

    ``clock`` is a monotonic clock for durations and ``wall`` the epoch clock
    for timestamps; both are parameters so tests can drive time.
    """

    def __init__(
        self,
        *,
        transport: Transport,
        adapter: EndpointAdapter,
        base_url: str,
        timeout_s: float = 30.0,
        turn_deadline_s: float | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        clock: Callable[[], float] = time.perf_counter,
        wall: Callable[[], float] = time.time,
        live: InFlightCounters | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        deadline = DEADLINE_TIMEOUTS * timeout_s if turn_deadline_s is None else turn_deadline_s
        for name, value in (
            ("timeout_s", timeout_s),
            ("turn_deadline_s", deadline),
            ("max_answer_bytes", max_answer_bytes),
            ("max_event_bytes", max_event_bytes),
        ):
            if not value > 0:
                raise ValueError(f"AgentClient: {name} must be > 0, got {value!r}")
        self._deadline = deadline
        self._max_answer = max_answer_bytes
        self._max_event = max_event_bytes
        self._transport = transport
        # an agent may echo a credential in its error: the message is redacted where it is made
        self._redact = Redactor.from_env() if redactor is None else redactor
        self._adapter = adapter
        self._base_url = base_url
        self._timeout = timeout_s
        self._clock = clock
        self._live = live
        self._wall = wall

    @property
    def adapter(self) -> EndpointAdapter:
        """The endpoint adapter this client speaks through."""
        return self._adapter

    def send_turn(
        self, request: TurnRequest, *, at_stake: bool = False, with_cart: bool = False
    ) -> TurnResult:
        """Send one attempt of a turn and return what happened; never raises.

        ``at_stake``: the session has completed turns (state a fault can lose);
        ``with_cart``: its cart is not empty. Both only feed the in-flight counters.
        """
        live = self._live
        if live is None:
            return self._send(request)
        live.turns_in_flight += 1
        live.turns_in_flight_at_stake += at_stake
        live.turns_in_flight_with_cart += with_cart
        try:
            return self._send(request)
        finally:
            live.turns_in_flight -= 1
            live.turns_in_flight_at_stake -= at_stake
            live.turns_in_flight_with_cart -= with_cart

    def _send(self, request: TurnRequest) -> TurnResult:
        prepared = self._adapter.prepare(self._base_url, request)
        run = _Attempt(
            t_start=self._wall(),
            t0=self._clock(),
            clock=self._clock,
            live=self._live,
            redact=self._redact,
            max_answer=self._max_answer,
        )
        # No single wait may outlast the deadline; the read loop checks the total.
        wait = min(self._timeout, self._deadline)
        try:
            response = self._transport.open(
                prepared.method, prepared.url, prepared.headers, prepared.body, wait
            )
        except Exception as exc:
            if self._past_deadline(run):
                return self._deadline_passed(run)
            return run.failed(_classify(exc, responded=False), _describe(exc))
        try:
            return self._read(response, run)
        except Exception as exc:
            if run.done is not None:
                # The agent finished the turn; a connection dropped after that is not ours.
                return run.finish(error_kind=None, error=None)
            if self._past_deadline(run):
                return self._deadline_passed(run)
            return run.failed(_classify(exc, responded=True), _describe(exc))
        finally:
            # Releasing a broken connection may fail in turn; there is nothing left to do.
            run.settle()
            with contextlib.suppress(Exception):
                response.close()

    def _read(self, response: StreamingResponse, run: _Attempt) -> TurnResult:
        run.status = response.status
        if not 200 <= response.status < 300:
            return self._error_status(response, run)
        content_type = response.headers.get("content-type", "")
        if "text/event-stream" not in content_type:
            run.drain(response, limit=_MAX_ERROR_BODY)
            return run.failed("malformed", f"expected text/event-stream, got {content_type!r}")
        parser = SSEParser(
            max_line_bytes=self._max_event,
            max_event_bytes=self._max_event,
            tokens=self._adapter.token_lane,
        )
        decode = self._adapter.decode
        plain_tokens = self._adapter.plain_tokens
        deadline = run.t0 + self._deadline
        for chunk in response.chunks:
            now = run.chunk(chunk)
            items = parser.feed(chunk)
            index, count = 0, len(items)
            while index < count:
                item = items[index]
                if isinstance(item, PlainTokens):
                    # Token events the parser read at once (the same as decoding each).
                    index += 1
                    if run.done is None:
                        run.token_run(item.texts, now)
                    continue
                if run.done is None:
                    # A run of tokens that need no decoding, taken at once (same result).
                    texts, index = plain_tokens(items, index)
                    if texts:
                        run.token_run(texts, now)
                        continue
                index += 1
                if isinstance(item, MalformedStream):
                    return run.failed("malformed", item.reason)
                if run.done is not None:
                    continue  # the turn is complete: what follows changes nothing
                try:
                    decoded = decode(item)
                except (ValueError, TypeError, ArithmeticError, RecursionError) as exc:
                    # A value no adapter anticipated is the agent's garbage, not a cut stream.
                    return run.failed("malformed", f"{item.event} event: {_describe(exc)}")
                if decoded is None:
                    continue
                if isinstance(decoded, TokenText):
                    run.token(decoded.text, now)
                elif isinstance(decoded, AgentMeta):
                    run.acknowledged(decoded)
                elif isinstance(decoded, AgentDone):
                    run.done = decoded
                elif isinstance(decoded, AgentFailure):
                    run.agent_error_kind = decoded.kind
                    return run.failed("agent_error", f"{decoded.kind}: {decoded.message}")
                elif isinstance(decoded, Malformed):
                    return run.failed("malformed", decoded.reason)
            if run.done is None and now > deadline:
                return self._deadline_passed(run)
        if run.done is None:
            return run.failed("reset", "stream ended before the done event")
        return run.finish(error_kind=None, error=None)

    def _past_deadline(self, run: _Attempt) -> bool:
        return self._clock() - run.t0 >= self._deadline

    def _deadline_passed(self, run: _Attempt) -> TurnResult:
        return run.failed(
            "deadline",
            f"turn not done within its deadline of {self._deadline:g} s "
            "(target.turn_deadline_s; target.timeout_s bounds each silence only)",
        )

    def _error_status(self, response: StreamingResponse, run: _Attempt) -> TurnResult:
        body = run.drain(response, limit=_MAX_ERROR_BODY)
        status = response.status
        error = _error_body(body)
        run.agent_error_kind = None if error is None else error.kind
        detail = _describe_body(body, error)
        if status in (401, 403):
            return run.failed("auth", f"HTTP {status}: {detail}")
        if status == 429:
            run.retry_after_s = _retry_after(response.headers)
            return run.failed("throttled", f"HTTP 429: {detail}")
        return run.failed("http_status", f"HTTP {status}: {detail}")


class _Attempt:
    """The measurements of one attempt as they accumulate."""

    __slots__ = (
        "agent_error_kind",
        "answer_bytes",
        "awaiting",
        "bytes",
        "clock",
        "done",
        "first_token",
        "kept_bytes",
        "last_token",
        "live",
        "max_answer",
        "max_gap",
        "meta",
        "redact",
        "retry_after_s",
        "status",
        "t0",
        "t_start",
        "text",
        "tokens",
        "truncated",
    )

    def __init__(
        self,
        *,
        t_start: float,
        t0: float,
        clock: Callable[[], float],
        live: InFlightCounters | None = None,
        redact: Callable[[str], str] | None = None,
        max_answer: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self.redact = redact
        self.t_start = t_start
        self.t0 = t0
        self.clock = clock
        self.status = 0
        self.bytes = 0
        self.tokens = 0
        self.text: list[str] = []
        self.answer_bytes = 0
        self.kept_bytes = 0
        self.max_answer = max_answer
        self.truncated = False
        self.first_token: float | None = None
        self.last_token: float | None = None
        self.max_gap: float | None = None
        self.meta: AgentMeta | None = None
        self.done: AgentDone | None = None
        self.retry_after_s: float | None = None
        self.agent_error_kind: str | None = None
        self.live = live
        self.awaiting = False

    def acknowledged(self, meta: AgentMeta) -> None:
        self.meta = meta
        if self.live is not None and self.first_token is None and not self.awaiting:
            self.awaiting = True
            self.live.awaiting_first_token += 1

    def settle(self) -> None:
        """Leave the awaiting-first-token count, whatever ended the attempt."""
        if self.awaiting and self.live is not None:
            self.awaiting = False
            self.live.awaiting_first_token -= 1

    def chunk(self, chunk: bytes) -> float:
        self.bytes += len(chunk)
        return self.clock()

    def token(self, text: str, now: float) -> None:
        self._arrived(now, 1)
        self._keep(text)

    def token_run(self, texts: list[str], now: float) -> None:
        """``token(text, now)`` for each of ``texts`` (all arrived at ``now``), at once."""
        self._arrived(now, len(texts))
        # Kept as one text: the bound cuts the joined text where it would cut the token
        # that crosses it (whole tokens before it kept, whole characters of that one).
        self._keep("".join(texts))

    def _arrived(self, now: float, count: int) -> None:
        """Time ``count`` tokens that arrived together at ``now``: the first, the widest gap."""
        last = self.last_token
        if last is None:
            self.first_token = now
            self.settle()
            gap = 0.0 if count > 1 else None  # between the tokens of one arrival
        else:
            gap = now - last
        if gap is not None:
            max_gap = self.max_gap
            if max_gap is None or gap > max_gap:
                self.max_gap = gap
        self.last_token = now
        self.tokens += count

    def _keep(self, text: str) -> None:
        """Count a token's bytes and keep its text while the answer is within its bound."""
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
        self.answer_bytes += size
        if self.truncated:
            return
        room = self.max_answer - self.kept_bytes
        if size <= room:
            self.text.append(text)
            self.kept_bytes += size
            return
        # Keep what fits (whole characters); count the rest without holding it.
        kept = text.encode("utf-8")[:room].decode("utf-8", "ignore")
        self.text.append(kept)
        self.kept_bytes += len(kept.encode("utf-8"))
        self.truncated = True

    def drain(self, response: StreamingResponse, *, limit: int) -> bytes:
        body = b""
        for chunk in response.chunks:
            self.bytes += len(chunk)
            body += chunk
            if len(body) >= limit:
                break
        return body

    def failed(self, kind: str, message: str) -> TurnResult:
        return self.finish(error_kind=kind, error=message)

    def finish(self, *, error_kind: str | None, error: str | None) -> TurnResult:
        end = self.clock()
        # Built by loadlab.rows.row_builder, values in the order named above.
        return _turn_result(
            (
                self.t_start,
                (end - self.t0) * 1000.0,
                None if self.first_token is None else (self.first_token - self.t0) * 1000.0,
                None if self.max_gap is None else self.max_gap * 1000.0,
                self.bytes,
                self.status,
                self.tokens,
                "".join(self.text),
                error_kind,
                error if error is None or self.redact is None else self.redact(error),
                self.agent_error_kind,
                self.retry_after_s,
                self.meta,
                self.done,
                self.answer_bytes,
                self.truncated,
            )
        )


def _classify(exc: Exception, *, responded: bool) -> str:
    if isinstance(exc, TransportTimeout | TimeoutError):
        return "timeout"
    if isinstance(exc, MalformedResponse):
        return "malformed"
    if isinstance(exc, ConnectFailed | ConnectionRefusedError):
        return "connect"
    if isinstance(exc, StreamReset | ConnectionError | OSError):
        return "reset"
    # Anything else escaping a transport is a broken exchange: if it happened
    # before a response we never connected properly, after it the stream broke.
    return "reset" if responded else "connect"


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}"[:500] if text else type(exc).__name__


def _error_body(body: bytes) -> ErrorPayload | None:
    try:
        return parse_error_payload(load_json_object(body.decode("utf-8", "replace")))
    except ValueError:
        return None


def _describe_body(body: bytes, error: ErrorPayload | None) -> str:
    if error is not None:
        return str(error)
    return body[:200].decode("utf-8", "replace") if body else "(empty body)"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from APIs, and the backoff still applies
    return seconds if seconds >= 0 else None
