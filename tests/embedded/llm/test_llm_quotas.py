"""Quota arithmetic with an injected clock: no sleeping."""

from __future__ import annotations

import pytest

from loadlab.embedded.llm.config import Quotas
from loadlab.embedded.llm.quotas import RateLimiter, retry_after_ms, retry_after_seconds


class Clock:
    """A settable clock (the limiter's time source)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **quotas: int) -> RateLimiter:
    return RateLimiter(quotas=Quotas(**quotas), clock=clock)


def test_rpm_rejects_until_the_oldest_request_leaves_the_window() -> None:
    clock = Clock()
    rl = limiter(clock, rpm=3)
    for offset in (0, 10, 20):
        clock.now = 1000 + offset
        assert rl.admit(tokens=1) is None
    clock.now = 1030
    rejection = rl.admit(tokens=1)
    assert rejection is not None
    assert (rejection.reason, rejection.error_type) == ("rpm", "rate_limit_exceeded")
    assert rejection.retry_after_s == 30  # the request at t=0 leaves at t=60
    assert rejection.retry_after_ms == 30_000
    clock.now = 1059.5
    assert rl.admit(tokens=1) is not None
    clock.now = 1060
    assert rl.admit(tokens=1) is None
    clock.now = 1061  # full again: next slot frees when the t=10 request leaves
    rejection = rl.admit(tokens=1)
    assert rejection is not None and rejection.retry_after_s == 9


def test_tpm_retry_after_counts_the_tokens_that_must_leave() -> None:
    clock = Clock()
    rl = limiter(clock, tpm=100)
    assert rl.admit(tokens=60) is None
    clock.now = 1020
    assert rl.admit(tokens=30) is None
    clock.now = 1030
    small, large = rl.admit(tokens=20), rl.admit(tokens=80)
    assert small is not None and small.reason == "tpm" and small.retry_after_s == 30
    # 80 tokens fit only after both earlier requests left (t=80).
    assert large is not None and large.retry_after_s == 50
    assert rl.admit(tokens=10) is None  # 100 exactly fits


def test_request_larger_than_tpm_waits_a_whole_window() -> None:
    rejection = limiter(Clock(), tpm=100).admit(tokens=101)
    assert rejection is not None and rejection.retry_after_s == 60


def test_rejected_requests_consume_no_quota() -> None:
    clock = Clock()
    rl = limiter(clock, rpm=1)
    assert rl.admit(tokens=1) is None
    for _ in range(5):
        assert rl.admit(tokens=1) is not None
    clock.now = 1060
    assert rl.admit(tokens=1) is None


def test_overrides_replace_the_configured_limits() -> None:
    rl = limiter(Clock(), rpm=100)
    assert rl.admit(tokens=1, rpm=1) is None
    rejection = rl.admit(tokens=1, rpm=1)
    assert rejection is not None and rejection.reason == "rpm"
    assert rl.admit(tokens=1, rpm=0) is None  # 0 lifts the limit
    assert rl.admit(tokens=50, tpm=10) is not None


def test_scaled_window_never_gives_retry_after_zero() -> None:
    clock = Clock()
    rl = RateLimiter(quotas=Quotas(rpm=1, max_concurrency=1), time_scale=0.01, clock=clock)
    assert rl.admit(tokens=1) is None  # the window is 0.6 real seconds
    rl.release()
    clock.now += 0.5
    rejection = rl.admit(tokens=1)
    assert rejection is not None and rejection.retry_after_s == 1
    assert rejection.retry_after_ms == 100
    clock.now += 0.1
    assert rl.admit(tokens=1) is None
    busy = rl.admit(tokens=1, rpm=0)
    assert busy is not None and busy.reason == "concurrency"
    assert (busy.retry_after_s, busy.retry_after_ms) == (1, 10)  # one simulated second


@pytest.mark.parametrize(
    ("seconds", "header"), [(0.0, 1), (-3, 1), (0.2, 1), (1.0, 1), (1.01, 2), (29.5, 30)]
)
def test_retry_after_is_whole_seconds_at_least_one(seconds: float, header: int) -> None:
    assert retry_after_seconds(seconds) == header


@pytest.mark.parametrize(("seconds", "header"), [(0.0, 1), (0.0004, 1), (0.006, 6), (0.1, 100)])
def test_retry_after_ms_is_whole_milliseconds_at_least_one(seconds: float, header: int) -> None:
    assert retry_after_ms(seconds) == header


def test_concurrency_limit_frees_on_release() -> None:
    rl = limiter(Clock(), max_concurrency=2)
    assert rl.admit(tokens=1) is None
    assert rl.admit(tokens=1) is None
    rejection = rl.admit(tokens=1)
    assert rejection is not None
    assert (rejection.reason, rejection.error_type) == ("concurrency", "concurrency_limit")
    assert rejection.retry_after_s >= 1
    assert rl.in_flight == 2
    rl.release()
    assert rl.admit(tokens=1) is None
