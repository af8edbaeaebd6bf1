"""Provider quotas: RPM and TPM over a sliding window, and a concurrency limit.

A request is admitted when, counting it, the requests and tokens admitted in the
window (below) stay within the limits and a concurrency slot is free.
Tokens are counted at admission as the prompt estimate plus the request's
``max_tokens`` when it gives one (as providers reserve it), else plus the output
tokens the simulator drew for it. Rejected requests consume no quota.

The window is 60 simulated seconds, ``60 * time_scale`` real ones. ``Retry-After``
is the real time until enough of the window has slid past for the same request
to fit, rounded up to whole seconds and never below 1; ``retry-after-ms`` (as
Azure OpenAI sends it) carries the same wait in milliseconds, which matters when
time is scaled down. Concurrency rejections ask for one simulated second.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from loadlab.embedded.llm.config import Quotas

RejectReason = Literal["rpm", "tpm", "concurrency", "fault"]


def retry_after_seconds(seconds: float) -> int:
    """Whole seconds for a ``Retry-After`` header: rounded up, at least 1."""
    # The epsilon keeps float noise (59.000000001) from adding a whole second.
    return max(1, math.ceil(seconds - 1e-9))


def retry_after_ms(seconds: float) -> int:
    """Whole milliseconds for a ``retry-after-ms`` header: rounded up, at least 1."""
    return max(1, math.ceil(seconds * 1000 - 1e-6))


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """Why a request was refused with 429, and when to come back."""

    reason: RejectReason
    retry_after_s: int
    retry_after_ms: int
    message: str

    @property
    def error_type(self) -> str:
        """The OpenAI-style ``error.type``."""
        return "concurrency_limit" if self.reason == "concurrency" else "rate_limit_exceeded"


class RateLimiter:
    """Admission control for one simulator; single-threaded (one event loop)."""

    def __init__(
        self,
        *,
        quotas: Quotas,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._quotas = quotas
        self._time_scale = time_scale
        self._window_s = 60.0 * time_scale
        self._clock = clock
        self._admitted: deque[tuple[float, int]] = deque()  # (admitted at, tokens)
        self._window_tokens = 0
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Requests admitted and not yet released."""
        return self._in_flight

    def admit(
        self, *, tokens: int, rpm: int | None = None, tpm: int | None = None
    ) -> Rejection | None:
        """Admit a request of ``tokens`` (see the module doc for what counts) or say why not.

        ``rpm``/``tpm`` override the configured limits (0 = unlimited) for this
        call, e.g. while an injected fault lowers them. On success the request
        holds a concurrency slot until :meth:`release`.
        """
        now = self._clock()
        self._expire(now)
        limit_rpm = self._quotas.rpm if rpm is None else rpm
        limit_tpm = self._quotas.tpm if tpm is None else tpm
        cap = self._quotas.max_concurrency
        if cap and self._in_flight >= cap:
            return Rejection(
                reason="concurrency",
                retry_after_s=retry_after_seconds(self._time_scale),
                retry_after_ms=retry_after_ms(self._time_scale),
                message=f"Too many concurrent requests: limit {cap}, in flight {self._in_flight}.",
            )
        count = len(self._admitted)
        if limit_rpm and count >= limit_rpm:
            # The request fits once the (count - limit + 1) oldest entries have left.
            frees_at = self._admitted[count - limit_rpm][0] + self._window_s
            return self._rate_rejection("rpm", limit_rpm, count, 1, frees_at - now)
        if limit_tpm and self._window_tokens + tokens > limit_tpm:
            wait = (
                self._window_s
                if tokens > limit_tpm
                else self._tokens_free_in(now, tokens, limit_tpm)
            )
            return self._rate_rejection("tpm", limit_tpm, self._window_tokens, tokens, wait)
        self._admitted.append((now, tokens))
        self._window_tokens += tokens
        self._in_flight += 1
        return None

    def release(self) -> None:
        """Give back the concurrency slot of an admitted request."""
        self._in_flight = max(0, self._in_flight - 1)

    def _expire(self, now: float) -> None:
        while self._admitted and self._admitted[0][0] + self._window_s <= now:
            self._window_tokens -= self._admitted.popleft()[1]

    def _tokens_free_in(self, now: float, tokens: int, limit: int) -> float:
        used = self._window_tokens
        for admitted_at, spent in self._admitted:
            used -= spent
            if used + tokens <= limit:
                return admitted_at + self._window_s - now
        return self._window_s  # unreachable while tokens <= limit; kept total for safety

    @staticmethod
    def _rate_rejection(
        reason: RejectReason, limit: int, used: int, requested: int, wait_s: float
    ) -> Rejection:
        unit = "requests" if reason == "rpm" else "tokens"
        retry = retry_after_seconds(wait_s)
        return Rejection(
            reason=reason,
            retry_after_s=retry,
            retry_after_ms=retry_after_ms(wait_s),
            message=(
                f"Rate limit reached for {unit} per minute ({reason.upper()}): limit {limit}, "
                f"used {used}, requested {requested}. Please try again in {retry}s."
            ),
        )
