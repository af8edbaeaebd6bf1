"""Rows on the run timeline.

Every layer of loadlab speaks in these rows: the load layer produces
:class:`RequestSample`, :class:`TurnRecord` and :class:`SessionRecord`, the chaos
layer produces :class:`TimelineEvent` (faults, phases), the recorder writes them
to the run directory and analysis reads them back. Times are UNIX epoch seconds
(UTC, float) so that rows from different processes and machines join on one
timeline; durations are milliseconds.

The field order of each dataclass is the column order of its parquet file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from loadlab.redact import Redactor

T = TypeVar("T")

ErrorKind = Literal[
    "connect",  # could not open a connection (refused, unreachable)
    "timeout",  # no answer, or no next event, within the deadline
    "reset",  # connection closed or reset in the middle of the stream
    "http_status",  # the agent answered with a non-2xx status
    "malformed",  # the stream or body could not be parsed as the protocol says
    "agent_error",  # the agent reported an error event (e.g. LLM unavailable)
    "auth",  # the agent refused our credentials
    "throttled",  # 429 / TooManyRequests
    "deadline",  # still not done when the turn's total deadline passed (a trickling stream)
]
ERROR_KINDS: tuple[str, ...] = get_args(ErrorKind)

Verdict = Literal["clean", "resumed", "restarted", "duplicated", "failed"]
VERDICTS: tuple[str, ...] = get_args(Verdict)


@dataclass(frozen=True, slots=True)
class RequestSample:
    """One HTTP request or stream against the target (one attempt of a turn)."""

    t_start: float
    name: str
    session_id: str
    turn_index: int
    attempt: int
    latency_ms: float
    ttft_ms: float | None
    bytes: int
    status: int
    error_kind: str | None = None
    error: str | None = None
    tokens: int = 0
    max_gap_ms: float | None = None
    instance_id: str | None = None
    cold_start: bool | None = None
    init_ms: float | None = None
    worker: str = "local"


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One logical turn of a session, after all its attempts."""

    t_start: float
    t_end: float
    session_id: str
    turn_index: int
    intent: str
    ok: bool
    attempts: int
    latency_ms: float
    ttft_ms: float | None
    interrupted: bool
    resume_latency_ms: float | None = None
    error_kind: str | None = None
    instance_id: str | None = None
    cold_start: bool | None = None
    state_source: str | None = None
    replayed: bool = False
    state_turn: int | None = None
    checkpoint_version: int | None = None
    cart_items: int | None = None
    ddb_calls: int = 0
    ddb_rcu: float = 0.0
    ddb_wcu: float = 0.0
    llm_calls: int = 0
    llm_retries: int = 0
    llm_throttles: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    worker: str = "local"
    # UTF-8 bytes of answer text the last attempt received, and whether the client
    # kept less than that (target.max_answer_kib); None in runs recorded before.
    answer_bytes: int | None = None
    answer_truncated: bool | None = None
    # How late the harness sent the turn: from the moment the shopper's think time
    # was over to the first attempt's send (monotonic clock). A stall of the load
    # generator delays the turns due during it; their latency does not show it
    # (coordinated omission), this does. None when no think time was scheduled
    # (a player driven outside Locust) and in runs recorded before.
    lateness_ms: float | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One shopper's session and the continuity verdict it ended with."""

    session_id: str
    persona: str
    seed: int
    t_start: float
    t_end: float
    turns_planned: int
    turns_done: int
    interrupted_turns: int
    verdict: str
    verdict_reason: str
    resume_latency_ms: float | None = None
    checkpoint_version: int | None = None
    cart_json: str = "{}"
    worker: str = "local"
    expected_cart_json: str | None = None


@dataclass(frozen=True, slots=True)
class PressureSample:
    """One downstream sample (DynamoDB, LLM, Lambda ...) on the run timeline."""

    t: float
    source: str
    metric: str
    value: float
    dimensions_json: str = "{}"


EventKind = Literal["phase", "fault", "probe", "users", "note", "error"]


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """A phase, fault or sample that is not a request: one line of events.jsonl."""

    t: float
    kind: str
    name: str
    target: str | None = None
    lease_expires: float | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


ROW_TYPES: dict[str, type[Any]] = {
    "requests": RequestSample,
    "turns": TurnRecord,
    "sessions": SessionRecord,
    "pressure": PressureSample,
}


LIVE_STATUS_FILE = "live.json"
"""Written into the run directory about once a second while a run goes.

Its keys (all always present): ``t`` (epoch s), ``state`` (``running`` or
``stopped``), ``users``, ``turns_in_flight`` (requests sent, answer not finished),
``awaiting_first_token`` (turns the agent acknowledged but has not started to
answer: typically inside the LLM call), ``turns_done``, ``turns_failed``,
``sessions`` (verdict -> count so far), ``window_s``, and ``window`` (``turns``,
``p99_ms`` (null without turns), ``error_rate``) over the last ``window_s``
seconds. Chaos probes read it; nothing else depends on it.
"""


Row = RequestSample | TurnRecord | SessionRecord | PressureSample | TimelineEvent


def row_to_dict(row: Row) -> dict[str, Any]:
    """Return a row as a plain dict (JSON- and Arrow-friendly)."""
    return dataclasses.asdict(row)


def row_builder(row_type: type[T], names: tuple[str, ...]) -> Callable[[tuple[Any, ...]], T]:
    """A function that builds a frozen, slotted ``row_type`` from values in ``names``' order.

    A frozen dataclass's ``__init__`` stores each field through
    ``object.__setattr__``: for what is built on every turn (the rows, 31 fields
    for a :class:`TurnRecord`; the decoded events of the stream, loadlab.load.payloads)
    that cost more than everything else about them. The builder makes the row as
    an instance of a plain twin class with the same slots, stores each value with
    an ordinary attribute assignment (the interpreter's fastest store), then gives
    the object its real class (``__class__`` assignment, allowed between classes of
    the same layout): a row of ``row_type``, frozen from then on. Where the layout
    does not allow that, each value goes through the slot's own setter instead
    (three times slower). No checks either way: ``names`` must name every field
    once (checked here, when the builder is made), and a tuple of another length
    is refused (ValueError) when a row is built.
    """
    declared = [f.name for f in dataclasses.fields(row_type)]  # type: ignore[arg-type]
    if sorted(names) != sorted(declared):
        wrong = sorted(n for n in set(names) if names.count(n) != 1 or n not in declared)
        raise TypeError(
            f"a {row_type.__name__} builder must name each of its fields once: "
            f"missing {sorted(set(declared) - set(names))}, unknown or repeated {wrong}"
        )
    # One straight-line function per builder, as dataclasses writes its __init__:
    # a loop over (name, value) pairs cost half as much again. The source holds
    # only numbered locals and the field names (identifiers: checked above).
    count = len(names)
    values = ", ".join(f"v{i}" for i in range(count))
    namespace: dict[str, Any] = {"new": object.__new__, "cls": row_type}
    twin = _twin(row_type)
    if twin is not None:
        namespace["twin"] = twin
        stores = "".join(f"    row.{name} = v{i}\n" for i, name in enumerate(names))
        body = f"    row = twin()\n{stores}    row.__class__ = cls\n"
    else:
        # A slot of a base class is found on the class as well (its member descriptor).
        namespace.update({f"s{i}": getattr(row_type, name).__set__ for i, name in enumerate(names)})
        stores = "".join(f"    s{i}(row, v{i})\n" for i in range(count))
        body = f"    row = new(cls)\n{stores}"
    exec(f"def build(values):\n    ({values},) = values\n{body}    return row\n", namespace)
    build: Callable[[tuple[Any, ...]], T] = namespace["build"]
    return build


def _twin(row_type: type[Any]) -> type[Any] | None:
    """A mutable class whose instances may become ``row_type``'s, or None if there is none.

    Same slots, same base, nothing else: what ``__class__`` assignment requires
    (tried once here on a blank instance, so a layout it refuses is found now).
    """
    slots = vars(row_type).get("__slots__")
    if not isinstance(slots, tuple) or row_type.__bases__ != (object,):
        return None
    twin = type(f"_{row_type.__name__}Draft", (), {"__slots__": slots})
    probe: Any = object.__new__(twin)
    try:
        probe.__class__ = row_type
    except TypeError:
        return None
    return twin


def column_names(row_type: type[Any]) -> list[str]:
    """Return the column names of a row type, in file order."""
    return [f.name for f in dataclasses.fields(row_type)]


def event_line(event: TimelineEvent) -> str:
    """One ``events.jsonl`` line for ``event`` (compact JSON, no trailing newline).

    Credentials in its values (an action's output quoting a URL with a password)
    are redacted (:mod:`loadlab.redact`).
    """
    data = Redactor.from_env().tree(dataclasses.asdict(event))
    return json.dumps(data, default=str, separators=(",", ":"))


def append_lines(path: Path, lines: list[str]) -> None:
    """Append text lines to ``path`` with one ``write`` on an O_APPEND descriptor.

    Several processes append to the same ``events.jsonl`` (the Locust process's
    recorder, a chaos experiment's control, the CLI); a single write to an
    O_APPEND file is placed at the end as a whole, so their lines never interleave.
    """
    if not lines:
        return
    data = ("\n".join(lines) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)
