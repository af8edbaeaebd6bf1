"""Lambda's REPORT line, in AWS's exact formats, and LogResult decoding."""

from __future__ import annotations

import base64

import pytest

from loadlab.load.aws_lambda.log_report import (
    LambdaReport,
    ReportFormatError,
    decode_log_result,
    find_report,
    parse_report_line,
    report_from_log_result,
)

RID = "8f5e1c2a-9b3d-4e7f-a1b2-c3d4e5f60718"
# As CloudWatch and LogResult show them: tab-separated, with a trailing tab.
COLD = (
    f"REPORT RequestId: {RID}\tDuration: 102.25 ms\tBilled Duration: 103 ms\t"
    "Memory Size: 128 MB\tMax Memory Used: 70 MB\tInit Duration: 245.32 ms\t"
)
WARM = (
    f"REPORT RequestId: {RID}\tDuration: 3.71 ms\tBilled Duration: 4 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 81 MB\t"
)
SNAPSTART = (
    f"REPORT RequestId: {RID}\tDuration: 21.04 ms\tBilled Duration: 517 ms\t"
    "Memory Size: 1024 MB\tMax Memory Used: 142 MB\tRestore Duration: 474.16 ms\t"
    "Billed Restore Duration: 496 ms\t"
)
TIMED_OUT = (
    f"REPORT RequestId: {RID}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\t"
    "Memory Size: 128 MB\tMax Memory Used: 40 MB\tStatus: timeout"
)
XRAY = (
    "XRAY TraceId: 1-5e1b4151-5ac6c58f5b5dbd6a3c2e9b7d\tSegmentId: 6b6a8f1d2e3c4b5a\t"
    "Sampled: true\t"
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            COLD,
            LambdaReport(
                request_id=RID,
                duration_ms=102.25,
                billed_duration_ms=103.0,
                memory_size_mb=128,
                max_memory_used_mb=70,
                init_duration_ms=245.32,
            ),
        ),
        (
            WARM,
            LambdaReport(
                request_id=RID,
                duration_ms=3.71,
                billed_duration_ms=4.0,
                memory_size_mb=512,
                max_memory_used_mb=81,
            ),
        ),
        (
            SNAPSTART,
            LambdaReport(
                request_id=RID,
                duration_ms=21.04,
                billed_duration_ms=517.0,
                memory_size_mb=1024,
                max_memory_used_mb=142,
                restore_duration_ms=474.16,
                billed_restore_duration_ms=496.0,
            ),
        ),
        (
            TIMED_OUT,
            LambdaReport(
                request_id=RID,
                duration_ms=3000.0,
                billed_duration_ms=3000.0,
                memory_size_mb=128,
                max_memory_used_mb=40,
                status="timeout",
            ),
        ),
    ],
    ids=["cold", "warm", "snapstart", "timeout"],
)
def test_report_lines_in_aws_format(line: str, expected: LambdaReport) -> None:
    assert parse_report_line(line) == expected


def test_cold_start_is_an_init_or_a_restore() -> None:
    assert parse_report_line(COLD).cold_start
    assert parse_report_line(SNAPSTART).cold_start
    assert not parse_report_line(WARM).cold_start


def test_xray_fields_on_the_next_line_or_the_same_line() -> None:
    for report in (
        parse_report_line(COLD, xray_line=XRAY),
        parse_report_line(COLD + XRAY),
        find_report(f"{COLD}\n{XRAY}\n"),
    ):
        assert report is not None
        assert report.xray_trace_id == "1-5e1b4151-5ac6c58f5b5dbd6a3c2e9b7d"
        assert report.xray_segment_id == "6b6a8f1d2e3c4b5a"
        assert report.xray_sampled is True
        assert report.init_duration_ms == 245.32
        assert report.extra == ()


def test_unknown_fields_are_kept_aside() -> None:
    report = parse_report_line(WARM + "Error Type: Runtime.ExitError\tNew Field: 7 units\t")
    assert report.error_type == "Runtime.ExitError"
    assert report.extra == (("New Field", "7 units"),)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("START RequestId: x Version: $LATEST", "not a REPORT line"),
        (
            f"REPORT RequestId: {RID}\tDuration: 1.0 ms\tMemory Size: 128 MB\t",
            "without Billed Duration, Max Memory Used",
        ),
        ("REPORT RequestId: \tDuration: 1.0 ms\tBilled Duration: 1 ms\t", "without RequestId"),
        (WARM.replace("3.71 ms", "3.71 s"), "expected 'ms'"),
        (WARM.replace("3.71 ms", "fast ms"), "not a number"),
    ],
)
def test_malformed_reports_are_refused(line: str, message: str) -> None:
    with pytest.raises(ReportFormatError, match=message):
        parse_report_line(line)


def test_find_report_reads_a_whole_log_tail() -> None:
    other = WARM.replace(RID, "11111111-2222-3333-4444-555555555555")
    tail = "\n".join(
        [
            f"START RequestId: {RID} Version: $LATEST",
            "INFO loadlab: turn 1 of s-1 -> 200",
            "REPORT RequestId: broken\tDuration: soon",  # skipped, not raised
            f"END RequestId: {RID}",
            COLD,
            other,
        ]
    )
    report = find_report(tail)
    assert report is not None and report.request_id.startswith("1111")
    by_id = find_report(tail, request_id=RID)
    assert by_id is not None and by_id.init_duration_ms == 245.32
    assert find_report(tail, request_id="absent") is None
    assert find_report("INFO only the function's own output\n") is None


def test_log_result_is_base64_of_the_tail() -> None:
    tail = f"START RequestId: {RID} Version: $LATEST\nhello\nEND RequestId: {RID}\n{COLD}\n"
    encoded = base64.b64encode(tail.encode()).decode()
    assert decode_log_result(encoded) == tail
    report = report_from_log_result(encoded)
    assert report is not None and report.cold_start and report.billed_duration_ms == 103.0
    # ministack's tail: the function's own output only.
    assert report_from_log_result(base64.b64encode(b"INFO turn done\n").decode()) is None
    assert report_from_log_result(None) is None
    assert report_from_log_result("not base64!") is None
    with pytest.raises(ValueError, match="not base64"):
        decode_log_result("not base64!")
