"""AWS Lambda's ``REPORT`` line: what an invocation took, cost and whether it started cold.

Lambda ends every invocation's log with one platform line, and ``Invoke`` with
``LogType=Tail`` returns the last 4 KB of that log, base64-encoded, in
``LogResult``::

    REPORT RequestId: 8f5e…\\tDuration: 102.25 ms\\tBilled Duration: 103 ms\\t
    Memory Size: 128 MB\\tMax Memory Used: 70 MB\\tInit Duration: 245.32 ms\\t

``Init Duration`` is there only when the invocation started a new execution
environment (a cold start); SnapStart functions report ``Restore Duration`` and
``Billed Restore Duration`` instead; a failed invocation may add ``Status:``
and ``Error Type:``; with X-Ray active tracing an ``XRAY TraceId: …\\tSegmentId:
…\\tSampled: true`` line follows. :func:`parse_report_line` reads one line,
:func:`find_report` the report of a log tail, :func:`report_from_log_result`
the ``LogResult`` value itself.

Not every Lambda implementation writes the line into the tail: ministack
returns only the function's own output there (see
``loadlab.embedded.aws_lambda.deploy``), so callers fall back on what the function
reports about itself when :func:`report_from_log_result` returns ``None``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

REPORT_PREFIX = "REPORT RequestId:"
XRAY_PREFIX = "XRAY TraceId:"


class ReportFormatError(ValueError):
    """A ``REPORT`` line lacks a field every report has, or a value is not a number."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LambdaReport:
    """The figures of one ``REPORT`` line (durations in ms, memory in MB)."""

    request_id: str
    duration_ms: float
    billed_duration_ms: float
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None
    restore_duration_ms: float | None = None
    billed_restore_duration_ms: float | None = None
    status: str | None = None
    error_type: str | None = None
    xray_trace_id: str | None = None
    xray_segment_id: str | None = None
    xray_sampled: bool | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())

    @property
    def cold_start(self) -> bool:
        """True when this invocation initialised (or restored) an execution environment."""
        return self.init_duration_ms is not None or self.restore_duration_ms is not None


_DURATIONS = {
    "Duration": "duration_ms",
    "Billed Duration": "billed_duration_ms",
    "Init Duration": "init_duration_ms",
    "Restore Duration": "restore_duration_ms",
    "Billed Restore Duration": "billed_restore_duration_ms",
}
_MEMORY = {"Memory Size": "memory_size_mb", "Max Memory Used": "max_memory_used_mb"}
# Kept as text: the request id, a failed invocation's status, the X-Ray ids.
_TEXT = frozenset({"RequestId", "Status", "Error Type", "TraceId", "SegmentId"})
_REQUIRED = ("Duration", "Billed Duration", "Memory Size", "Max Memory Used")


def _fields(text: str) -> list[tuple[str, str]]:
    """``Name: value`` pairs of a tab-separated platform line (empty parts skipped)."""
    pairs = []
    for part in text.split("\t"):
        name, sep, value = part.strip().partition(":")
        if sep and name:
            # X-Ray's fields may follow on the same line: "XRAY TraceId: 1-…".
            pairs.append((name.strip().removeprefix("XRAY "), value.strip()))
    return pairs


def _number(name: str, value: str, unit: str) -> float:
    number, _, given_unit = value.partition(" ")
    if given_unit.strip() not in ("", unit):
        raise ReportFormatError(
            f"{name} is in {given_unit.strip()!r}, expected {unit!r}: {value!r}"
        )
    try:
        return float(number)
    except ValueError:
        raise ReportFormatError(f"{name} is not a number: {value!r}") from None


def parse_report_line(line: str, *, xray_line: str | None = None) -> LambdaReport:
    """Parse one ``REPORT RequestId: …`` line (and the ``XRAY`` line after it, if given).

    An ``XRAY TraceId`` suffix on the same line is read too. Raises
    :class:`ReportFormatError` if the line is not a report or lacks Duration,
    Billed Duration, Memory Size or Max Memory Used.
    """
    text = line.strip("\r\n")
    if not text.startswith(REPORT_PREFIX):
        raise ReportFormatError(f"not a REPORT line: {text[:80]!r}")
    pairs = _fields(text[len("REPORT ") :])
    if xray_line is not None:
        pairs += _fields(xray_line.strip("\r\n"))
    ms: dict[str, float] = {}
    mb: dict[str, int] = {}
    words: dict[str, str] = {}
    sampled: bool | None = None
    extra: list[tuple[str, str]] = []
    for name, value in pairs:
        if name in _DURATIONS:
            ms[_DURATIONS[name]] = _number(name, value, "ms")
        elif name in _MEMORY:
            mb[_MEMORY[name]] = int(_number(name, value, "MB"))
        elif name in _TEXT:
            words[name] = value
        elif name == "Sampled":
            sampled = value.lower() == "true"
        else:
            extra.append((name, value))
    given = {name for name, value in pairs if value}
    missing = [name for name in ("RequestId", *_REQUIRED) if name not in given]
    if missing:
        raise ReportFormatError(f"REPORT line without {', '.join(missing)}: {text[:120]!r}")
    return LambdaReport(
        request_id=words["RequestId"],
        duration_ms=ms["duration_ms"],
        billed_duration_ms=ms["billed_duration_ms"],
        memory_size_mb=mb["memory_size_mb"],
        max_memory_used_mb=mb["max_memory_used_mb"],
        init_duration_ms=ms.get("init_duration_ms"),
        restore_duration_ms=ms.get("restore_duration_ms"),
        billed_restore_duration_ms=ms.get("billed_restore_duration_ms"),
        status=words.get("Status"),
        error_type=words.get("Error Type"),
        xray_trace_id=words.get("TraceId"),
        xray_segment_id=words.get("SegmentId"),
        xray_sampled=sampled,
        extra=tuple(extra),
    )


def find_report(log_text: str, *, request_id: str | None = None) -> LambdaReport | None:
    """The last ``REPORT`` of a log tail (the one of ``request_id`` if given), else ``None``.

    A malformed ``REPORT`` line is skipped rather than raised: a log tail is
    cut at 4 KB and function output can contain anything.
    """
    lines = log_text.splitlines()
    found: LambdaReport | None = None
    for index, line in enumerate(lines):
        if not line.startswith(REPORT_PREFIX):
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        xray = following if following.startswith(XRAY_PREFIX) else None
        try:
            report = parse_report_line(line, xray_line=xray)
        except ReportFormatError:
            continue
        if request_id is None or report.request_id == request_id:
            found = report
    return found


def decode_log_result(log_result: str) -> str:
    """The text of a base64 ``LogResult`` (undecodable bytes replaced).

    Raises :class:`ValueError` if ``log_result`` is not base64.
    """
    try:
        raw = base64.b64decode(log_result, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"LogResult is not base64: {exc}") from None
    return raw.decode("utf-8", errors="replace")


def report_from_log_result(
    log_result: str | None, *, request_id: str | None = None
) -> LambdaReport | None:
    """The ``REPORT`` figures in an ``Invoke`` response's ``LogResult``, if it has them."""
    if not log_result:
        return None
    try:
        text = decode_log_result(log_result)
    except ValueError:
        return None
    return find_report(text, request_id=request_id)
