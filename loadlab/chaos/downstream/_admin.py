"""The admin APIs the downstream activities speak: the LLM simulator's and the gate's.

Both require the embedded stack's token: it is read from ``LOADLAB_ADMIN_TOKEN``
(``loadlab gameday`` and ``loadlab run`` set it from the stack) and sent as a
bearer token, never logged, returned or put in an error message.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from chaoslib.exceptions import ActivityFailed

LLM_URL_ENV = "LOADLAB_LLM_URL"
GATE_URL_ENV = "LOADLAB_DDB_GATE_URL"
ADMIN_TOKEN_ENV = "LOADLAB_ADMIN_TOKEN"
LLM_FAULTS_PATH = "/admin/faults"
GATE_CAPACITY_PATH = "/admin/capacity"
_TIMEOUT_S = 10.0
_NOT_APPLICABLE = (
    "LLM faults are injected through the admin API of loadlab's LLM simulator "
    f"({LLM_FAULTS_PATH}); a real provider (Bedrock, OpenAI ...) has none, so this action "
    "does not apply to it: to throttle a real provider, lower its quota or put a proxy in front"
)


def _base(url: str | None, env: str, what: str) -> str:
    value = (url or os.environ.get(env, "")).strip().rstrip("/")
    if not value:
        raise ActivityFailed(
            f"no {what} URL: pass it to the activity or set {env} (loadlab gameday sets it "
            "for the embedded stack)"
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ActivityFailed(f"{what} URL {value!r} is not an http(s) URL")
    return value


def llm_base(url: str | None) -> str:
    """The LLM simulator's base URL (an OpenAI-style ``/v1`` suffix is dropped)."""
    return _base(url, LLM_URL_ENV, "LLM").removesuffix("/v1")


def gate_base(url: str | None) -> str:
    """The DynamoDB capacity gate's base URL."""
    return _base(url, GATE_URL_ENV, "DynamoDB gate")


def _call(method: str, url: str, body: dict[str, Any] | None) -> tuple[int, Any]:
    """``(status, parsed JSON or None)``; ActivityFailed when nothing answers."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json"}
    token = os.environ.get(ADMIN_TOKEN_ENV, "").strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ActivityFailed(f"cannot reach {url}: {reason}") from None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def _error_message(answer: Any) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return str(answer["error"].get("message", answer["error"]))
    return repr(answer)[:200]


def llm_faults(method: str, url: str | None, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call the LLM simulator's fault API; its answer ``{"fault": {...}, "active": bool}``.

    The API is looked at with a GET first, so nothing is sent to an endpoint
    that is not loadlab's simulator.
    """
    target = llm_base(url) + LLM_FAULTS_PATH
    status, answer = _call("GET", target, None)
    if status == 401:
        raise _refused_token(target)
    if status != 200 or not (isinstance(answer, dict) and {"fault", "active"} <= set(answer)):
        raise ActivityFailed(
            f"{target} answered {status}, not a loadlab LLM simulator: {_NOT_APPLICABLE}"
        )
    if method == "GET":
        return answer
    status, answer = _call(method, target, body)
    if status != 200 or not isinstance(answer, dict):
        raise ActivityFailed(
            f"the LLM simulator refused {method} {target} {body}: {_error_message(answer)}"
        )
    return answer


def gate_capacity(
    method: str, url: str | None, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Call the capacity gate's admin API; its answer (settings, lease, counters)."""
    target = gate_base(url) + GATE_CAPACITY_PATH
    status, answer = _call(method, target, body)
    if status == 200 and isinstance(answer, dict) and "settings" in answer:
        return answer
    if status == 401:
        raise _refused_token(target)
    if status == 400:
        raise ActivityFailed(f"the DynamoDB gate refused {body}: {_error_message(answer)}")
    raise ActivityFailed(
        f"{target} answered {status}, not a loadlab DynamoDB capacity gate: against a real "
        "table, lower its provisioned capacity with UpdateTable (chaostoolkit-aws) instead"
    )


def _refused_token(target: str) -> ActivityFailed:
    sent = "a token that is not the stack's" if os.environ.get(ADMIN_TOKEN_ENV) else "no token"
    return ActivityFailed(
        f"{target} refused the request (401: {sent} sent): set {ADMIN_TOKEN_ENV} to the "
        "admin_token in the embedded stack's stack.json (loadlab gameday and loadlab run set it)"
    )


def number(name: str, value: object, *, minimum: float = 0.0, positive: bool = False) -> float:
    """An activity argument as a float (experiments may pass strings), checked."""
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ActivityFailed(f"{name}={value!r} is not a number") from None
    if not math.isfinite(result) or result < minimum or (positive and result <= 0):
        rule = "> 0" if positive else f">= {minimum:g}"
        raise ActivityFailed(f"{name}={value!r} is invalid: give a number {rule}")
    return result


def lease_expiry(duration_s: object) -> tuple[float, float]:
    """``(duration_s, expires_at)``: the lease of a fault applied now for ``duration_s``."""
    duration = number("duration_s", duration_s, positive=True)
    return duration, time.time() + duration
