"""An incremental Server-Sent Events parser: byte chunks in, events out.

It follows the WHATWG event-stream rules (``event``/``data``/``id``/``retry``
fields, ``:`` comments, LF, CR or CRLF line ends, multi-line ``data``, an event
dispatched on a blank line), and copes with chunks split anywhere, even inside
a CRLF or a UTF-8 character. What it cannot read (invalid UTF-8, a line longer
than the limit) comes out as a :class:`MalformedStream` item rather than an
exception, so a garbage stream is a measurement, not a crash.
"""

from __future__ import annotations

from dataclasses import dataclass

DONE_SENTINEL = "[DONE]"
"""OpenAI-style streams end with ``data: [DONE]``."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event. ``event`` is ``"message"`` when the stream names none."""

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


SSEItem = SSEEvent | MalformedStream


class SSEParser:
    """Feed it byte chunks as they arrive; it returns the events they complete.

    After a :class:`MalformedStream` item the parser ignores further input:
    a stream that broke once cannot be trusted to be aligned again.
    """

    def __init__(self, *, max_line_bytes: int = 1 << 20) -> None:
        self._max_line = max_line_bytes
        self._buffer = b""
        self._first = True
        self._pending_cr = False
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._broken = False

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
        self._buffer += chunk
        out: list[SSEItem] = []
        while True:
            line, rest, found = self._next_line(self._buffer)
            if not found:
                break
            self._buffer = rest
            item = self._line(line)
            if item is not None:
                out.append(item)
                if isinstance(item, MalformedStream):
                    return out
        if len(self._buffer) > self._max_line:
            out.append(self._fail(f"line longer than {self._max_line} bytes", self._buffer[:64]))
        return out

    def close(self) -> list[SSEItem]:
        """End of stream: per the spec an event not ended by a blank line is dropped."""
        self._buffer = b""
        self._reset_event()
        return []

    def _next_line(self, buffer: bytes) -> tuple[bytes, bytes, bool]:
        lf = buffer.find(b"\n")
        cr = buffer.find(b"\r")
        if cr == -1 and lf == -1:
            return b"", buffer, False
        if cr != -1 and (lf == -1 or cr < lf):
            if cr + 1 < len(buffer):
                skip = 2 if buffer[cr + 1 : cr + 2] == b"\n" else 1
                return buffer[:cr], buffer[cr + skip :], True
            # CR at the very end: the line ends here, the LF may come next chunk.
            self._pending_cr = True
            return buffer[:cr], b"", True
        return buffer[:lf], buffer[lf + 1 :], True

    def _line(self, raw: bytes) -> SSEItem | None:
        if self._first:
            self._first = False
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self._fail("invalid UTF-8 in the event stream", raw[:64])
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        # Unknown field names are ignored, as the spec requires.
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            # The spec drops an event without data lines (e.g. a bare "event: x").
            self._reset_event()
            return None
        event = SSEEvent(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self._id,
            retry_ms=self._retry,
        )
        self._reset_event()
        return event

    def _reset_event(self) -> None:
        self._event = ""
        self._data = []
        self._retry = None

    def _fail(self, reason: str, sample: bytes) -> MalformedStream:
        self._broken = True
        self._buffer = b""
        return MalformedStream(reason=reason, sample=sample)
