"""An incremental Server-Sent Events parser: byte chunks in, events out.

It follows the WHATWG event-stream rules (``event``/``data``/``id``/``retry``
fields, ``:`` comments, LF, CR or CRLF line ends, multi-line ``data``, an event
dispatched on a blank line), and copes with chunks split anywhere, even inside
a CRLF or a UTF-8 character. What it cannot read (invalid UTF-8, a line longer
than the limit, an event whose data grows past the limit without the blank line
that ends it) comes out as a :class:`MalformedStream` item rather than an
exception, so a garbage stream is a measurement, not a crash. Both limits keep
what the parser holds bounded however long the stream runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple

DONE_SENTINEL = "[DONE]"
"""OpenAI-style streams end with ``data: [DONE]``."""


class SSEEvent(NamedTuple):
    """One dispatched event. ``event`` is ``"message"`` when the stream names none.

    A named tuple rather than a dataclass: every event of every turn is one, and
    a tuple is made in one C call (see :func:`_event`).
    """

    event: str
    data: str
    id: str | None = None
    retry_ms: int | None = None

    @property
    def is_done(self) -> bool:
        """True for the ``data: [DONE]`` end-of-stream marker."""
        return self.data == DONE_SENTINEL


@dataclass(frozen=True, slots=True)
class MalformedStream:
    """Bytes that could not be read as an event stream; parsing stops here."""

    reason: str
    sample: bytes = b""


class PlainTokens(NamedTuple):
    """Consecutive events of a parser's :class:`TokenLane`, as the texts they carry.

    Only a parser given a lane makes these; each stands for
    ``len(texts)`` events in a row, in stream order.
    """

    texts: list[str]


SSEItem = SSEEvent | MalformedStream | PlainTokens


class TokenLane:
    """Events whose text can be read off the wire without parsing their data.

    An endpoint's stream is mostly token events of one fixed shape
    (``event: token`` + ``data: {"text":"..."}`` in the reference protocol).
    A parser given a lane hands a run of them on as one :class:`PlainTokens`
    item instead of an :class:`SSEEvent` each, when the event is
    ``event: EVENT`` + ``data: PREFIX TEXT SUFFIX`` and TEXT is printable
    ASCII with no ``"`` or ``\\`` (nothing a JSON string would escape, so
    TEXT is the value itself). Any other event, including one of that shape
    with other characters in TEXT, comes out as an :class:`SSEEvent` as
    without a lane; so does everything the parser does not take at once
    (events cut across chunks, comments, ids, CR line ends).
    """

    __slots__ = ("_events", "event", "prefix", "suffix")

    def __init__(self, event: str, prefix: str, suffix: str) -> None:
        for name, value in (("event", event), ("prefix", prefix), ("suffix", suffix)):
            if "\n" in value or "\r" in value:
                raise ValueError(f"TokenLane: {name} must be one line, got {value!r}")
        self.event = event
        self.prefix = prefix
        self.suffix = suffix
        # Per event: the lane's (marker, text) or, for any other usual event, (name, data).
        self._events = re.compile(
            f"(event: {re.escape(event)}\n)data: {re.escape(prefix)}"
            f"([ !#-\\[\\]-~]*){re.escape(suffix)}\n\n"
            "|(?:event: ([^\n]*)\n)?data: ([^\n]*)\n\n"
        )

    def __repr__(self) -> str:
        return f"TokenLane({self.event!r}, {self.prefix!r}, {self.suffix!r})"

    def split(self, text: str, id_: str | None) -> list[SSEItem]:
        """The items of ``text``, made only of usual events (see ``_SIMPLE_EVENTS``)."""
        out: list[SSEItem] = []
        for marker, group in groupby(self._events.findall(text), _MARKER):
            if marker:
                out.append(_tuple_new(PlainTokens, ([found[1] for found in group],)))
            else:
                out += [
                    _tuple_new(SSEEvent, (name or "message", data, id_, None))
                    for _, _, name, data in group
                ]
        return out


# The usual event, as _simple_event takes it: an optional "event: NAME" line, one
# "data: DATA" line, the blank line. Neither line holds a CR (see _feed_text).
_SIMPLE = re.compile(r"(?:event: ([^\n]*)\n)?data: ([^\n]*)\n\n")
_SIMPLE_EVENTS = re.compile(r"(?:(?:event: [^\n]*\n)?data: [^\n]*\n\n)*")

_tuple_new = tuple.__new__
_MARKER = itemgetter(0)


def _event(name: str, data: str, id_: str | None, retry_ms: int | None) -> SSEEvent:
    """``SSEEvent(name, data, id_, retry_ms)`` without the named tuple's Python ``__new__``."""
    event: SSEEvent = _tuple_new(SSEEvent, (name, data, id_, retry_ms))
    return event


class SSEParser:
    """Feed it byte chunks as they arrive; it returns the events they complete.

    After a :class:`MalformedStream` item the parser ignores further input:
    a stream that broke once cannot be trusted to be aligned again.
    ``tokens``: the endpoint's :class:`TokenLane`, if it has one.
    """

    def __init__(
        self,
        *,
        max_line_bytes: int = 1 << 20,
        max_event_bytes: int = 1 << 20,
        tokens: TokenLane | None = None,
    ) -> None:
        if max_line_bytes < 1 or max_event_bytes < 1:
            raise ValueError(
                f"SSE limits must be >= 1 byte, got line {max_line_bytes}, event {max_event_bytes}"
            )
        self._max_line = max_line_bytes
        self._max_event = max_event_bytes
        self._data_bytes = 0
        self._buffer = b""
        self._first = True
        self._pending_cr = False
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._broken = False
        self._lane = tokens

    @property
    def broken(self) -> bool:
        """True once the parser has reported the stream malformed."""
        return self._broken

    def feed(self, chunk: bytes) -> list[SSEItem]:
        """Parse a chunk and return the events (or the one error) it completes."""
        if self._broken or not chunk:
            return []
        if self._pending_cr:
            # A CR ended the previous chunk; a LF starting this one belongs to it.
            self._pending_cr = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
                if not chunk:
                    return []
        data = self._buffer + chunk if self._buffer else chunk
        out: list[SSEItem] = []
        if b"\r" in data:
            self._feed_lines(data, out)
        else:
            # LF line ends only (what agents send): the complete lines are decoded
            # at once and the usual events taken whole (see _feed_text).
            cut = data.rfind(b"\n") + 1
            self._buffer = data[cut:]
            if cut:
                complete = data[:cut] if cut < len(data) else data
                if self._first:
                    self._first = False
                    if complete.startswith(b"\xef\xbb\xbf"):
                        complete = complete[3:]
                try:
                    text = complete.decode("utf-8")
                except UnicodeDecodeError:
                    # Line by line, to hand on the events before the bad line.
                    self._lines(complete.split(b"\n")[:-1], out)
                else:
                    self._feed_text(text, len(complete), out)
        if not self._broken and len(self._buffer) > self._max_line:
            out.append(self._fail(f"line longer than {self._max_line} bytes", self._buffer[:64]))
        return out

    def _feed_lines(self, data: bytes, out: list[SSEItem]) -> None:
        # One C-level split per chunk: bytes.splitlines breaks at LF, CR and
        # CRLF only, which are exactly the event-stream line ends.
        lines = data.splitlines()
        end = data[-1:]
        if end in (b"\n", b"\r"):
            self._buffer = b""
            # A CR at the very end: the LF that may complete it comes next chunk.
            self._pending_cr = end == b"\r"
        else:
            self._buffer = lines.pop()
        if lines and self._first:
            self._first = False
            if lines[0].startswith(b"\xef\xbb\xbf"):
                lines[0] = lines[0][3:]
        self._lines(lines, out)

    def _lines(self, lines: list[bytes], out: list[SSEItem]) -> None:
        for raw in lines:
            if not raw:
                event = self._dispatch()
                if event is not None:
                    out.append(event)
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                out.append(self._fail("invalid UTF-8 in the event stream", raw[:64]))
                return
            failed = self._field(line, len(raw))
            if failed is not None:
                out.append(failed)
                return

    def _feed_text(self, text: str, size: int, out: list[SSEItem]) -> None:
        """Complete lines (``text``: ``size`` bytes, LF ends, no CR): the events they end.

        Text made only of events of the usual shape (an ``event: `` line and a
        ``data: `` line, or the data line alone, each ended by a blank line) is
        read by two regular expressions, in C. Otherwise the text is cut at its
        blank lines; an event of the usual shape is taken whole, anything else
        (comments, ``id``, ``retry``, several data lines, an event split across
        chunks) line by line, with the same result.
        """
        fresh = not self._data and not self._event and self._retry is None
        # No event of the text can pass the data limit if the whole text does not.
        if fresh and size <= self._max_event and _SIMPLE_EVENTS.fullmatch(text):
            id_ = self._id
            if self._lane is not None:
                out += self._lane.split(text, id_)
                return
            # _event inlined: the bulk of a turn's events are made here
            out += [
                _tuple_new(SSEEvent, (name or "message", data, id_, None))
                for name, data in _SIMPLE.findall(text)
            ]
            return
        ascii_only = text.isascii()
        blocks = text.split("\n\n")
        # after the last blank line: lines of an event that is not over yet
        rest = blocks.pop()
        for block in blocks:
            if not self._data and not self._event and self._retry is None:
                event = self._simple_event(block, ascii_only)
                if event is not None:
                    out.append(event)
                    continue
            for line in block.split("\n"):
                if self._line(line, ascii_only, out):
                    return
            if self._line("", ascii_only, out):
                return
        if rest:
            for line in rest.split("\n")[:-1]:
                if self._line(line, ascii_only, out):
                    return

    def _simple_event(self, block: str, ascii_only: bool) -> SSEEvent | None:
        """``event: NAME\\ndata: DATA`` or ``data: DATA`` as one event; None for other shapes."""
        if block.startswith("data: "):
            start, name = 0, ""
        elif block.startswith("event: "):
            start = block.find("\n") + 1
            if not start or not block.startswith("data: ", start):
                return None
            name = block[7 : start - 1]
        else:
            return None
        if block.find("\n", start) >= 0:
            return None
        size = len(block) - start if ascii_only else len(block[start:].encode("utf-8"))
        if size > self._max_event:
            return None  # line by line, which reports it
        return _event(name or "message", block[start + 6 :], self._id, None)

    def _line(self, line: str, ascii_only: bool, out: list[SSEItem]) -> bool:
        """Take one line (a blank one dispatches the event); True if the stream broke."""
        if not line:
            event = self._dispatch()
            if event is not None:
                out.append(event)
            return False
        failed = self._field(line, len(line) if ascii_only else len(line.encode("utf-8")))
        if failed is not None:
            out.append(failed)
            return True
        return False

    def _field(self, line: str, size: int) -> MalformedStream | None:
        """Take one non-blank line of ``size`` bytes; the error if it breaks the stream."""
        # A comment line (":...") has an empty field name, which matches
        # nothing below; unknown field names are ignored, as the spec requires.
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_bytes += size
            if self._data_bytes > self._max_event:
                # A stream of data lines with no blank line would otherwise
                # grow one event without end.
                return self._fail(
                    f"event data longer than {self._max_event} bytes",
                    line.encode("utf-8")[:64],
                )
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        return None

    def close(self) -> list[SSEItem]:
        """End of stream: per the spec an event not ended by a blank line is dropped."""
        self._buffer = b""
        self._reset_event()
        return []

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            # The spec drops an event without data lines (e.g. a bare "event: x").
            self._reset_event()
            return None
        data = self._data
        event = _event(
            self._event or "message",
            data[0] if len(data) == 1 else "\n".join(data),
            self._id,
            self._retry,
        )
        self._reset_event()
        return event

    def _reset_event(self) -> None:
        self._event = ""
        self._data = []
        self._data_bytes = 0
        self._retry = None

    def _fail(self, reason: str, sample: bytes) -> MalformedStream:
        self._broken = True
        self._buffer = b""
        self._reset_event()
        return MalformedStream(reason=reason, sample=sample)
