"""Actions: LLM faults and DynamoDB capacity cuts, each a lease that ends by itself.

Every fault is sent with ``expires_at = now + duration_s``; the target stops
applying it at that time whether or not a rollback runs. Declare
``llm_faults_clear`` / ``dynamodb_capacity_restore`` as rollbacks to end a fault
early (an interrupted experiment, a failed hypothesis).

LLM faults applied while another is active combine with it (a 429 storm during
a slowdown), and all of them then share the newest lease. LLM quotas count per
simulated minute and DynamoDB capacity per simulated second of the embedded
stack's time scale; ``duration_s`` is always real (wall-clock) seconds.
"""

from __future__ import annotations

from typing import Any

from chaoslib.exceptions import ActivityFailed

from loadlab.chaos.downstream._admin import (
    gate_base,
    gate_capacity,
    lease_expiry,
    llm_base,
    llm_faults,
    number,
)

__all__ = [
    "dynamodb_capacity_cut",
    "dynamodb_capacity_restore",
    "llm_429_storm",
    "llm_faults_clear",
    "llm_quota_cut",
    "llm_slowdown",
]


def _llm_fault(
    changes: dict[str, Any], duration_s: float, llm_admin_url: str | None
) -> dict[str, Any]:
    duration, expires_at = lease_expiry(duration_s)
    body = {**changes, "expires_at": expires_at}
    view = llm_faults("POST", llm_admin_url, body)
    return {
        "target": "llm",
        "url": llm_base(llm_admin_url),
        **body,
        "duration_s": duration,
        "active": view["active"],
        "fault": view["fault"],
    }


def llm_429_storm(
    reject_fraction: float = 0.5, duration_s: float = 60.0, llm_admin_url: str | None = None
) -> dict[str, Any]:
    """Answer a share of LLM requests with 429 + Retry-After for ``duration_s`` seconds.

    The agent retries them within its budget, so expect LLM retries and throttles
    in the turns' downstream counts, some slower turns, maybe a few failed ones,
    but no restarted or duplicated session.

    :param reject_fraction: share of chat requests refused, in [0, 1].
    :param duration_s: real seconds the storm lasts (its lease); > 0.
    :param llm_admin_url: the LLM simulator's base URL (default ``$LOADLAB_LLM_URL``).
    :returns: ``{"target", "url", <the values set>, "expires_at", "duration_s", "active",
        "fault"}``: flat, so the timeline records what was set and its lease.
    """
    fraction = number("reject_fraction", reject_fraction)
    if fraction > 1:
        raise ActivityFailed(
            f"reject_fraction={reject_fraction!r} is invalid: give a share in [0, 1]"
        )
    return _llm_fault({"reject_fraction": fraction}, duration_s, llm_admin_url)


def llm_quota_cut(
    rpm: int | None = None,
    tpm: int | None = None,
    duration_s: float = 60.0,
    llm_admin_url: str | None = None,
) -> dict[str, Any]:
    """Lower the LLM's requests- and/or tokens-per-minute quota for ``duration_s`` seconds.

    Requests over the quota are answered 429 with the Retry-After of the next
    free slot, as a provider does when an account hits its limit.

    :param rpm: requests per simulated minute while the cut lasts (0: unlimited).
    :param tpm: tokens per simulated minute while the cut lasts (0: unlimited).
    :param duration_s: real seconds the cut lasts (its lease); > 0.
    :param llm_admin_url: the LLM simulator's base URL (default ``$LOADLAB_LLM_URL``).
    :returns: ``{"target", "url", <the values set>, "expires_at", "duration_s", "active",
        "fault"}``: flat, so the timeline records what was set and its lease.
    """
    changes = {
        name: int(number(name, value))
        for name, value in (("rpm", rpm), ("tpm", tpm))
        if value is not None
    }
    if not changes:
        raise ActivityFailed("llm_quota_cut needs rpm or tpm (or both)")
    return _llm_fault(changes, duration_s, llm_admin_url)


def llm_slowdown(
    extra_latency_ms: float = 0.0,
    token_interval_factor: float = 1.0,
    duration_s: float = 60.0,
    llm_admin_url: str | None = None,
) -> dict[str, Any]:
    """Make the LLM slower to start and/or to stream for ``duration_s`` seconds.

    :param extra_latency_ms: added to every time to first token (simulated ms), >= 0.
    :param token_interval_factor: multiplies the interval between tokens, > 0.
    :param duration_s: real seconds the slowdown lasts (its lease); > 0.
    :param llm_admin_url: the LLM simulator's base URL (default ``$LOADLAB_LLM_URL``).
    :returns: ``{"target", "url", <the values set>, "expires_at", "duration_s", "active",
        "fault"}``: flat, so the timeline records what was set and its lease.
    """
    changes = {
        "extra_latency_ms": number("extra_latency_ms", extra_latency_ms),
        "token_interval_factor": number(
            "token_interval_factor", token_interval_factor, positive=True
        ),
    }
    return _llm_fault(changes, duration_s, llm_admin_url)


def llm_faults_clear(llm_admin_url: str | None = None) -> dict[str, Any]:
    """Clear every injected LLM fault now (use as a rollback).

    :param llm_admin_url: the LLM simulator's base URL (default ``$LOADLAB_LLM_URL``).
    :returns: ``{"target", "url", "fault", "active"}`` as the simulator shows it afterwards.
    """
    view = llm_faults("DELETE", llm_admin_url)
    return {
        "target": "llm",
        "url": llm_base(llm_admin_url),
        "fault": view["fault"],
        "active": view["active"],
    }


def dynamodb_capacity_cut(
    rcu: float | None = None,
    wcu: float | None = None,
    duration_s: float = 60.0,
    burst_s: float = 0.0,
    gate_url: str | None = None,
) -> dict[str, Any]:
    """Provision every table behind the gate with less read and/or write capacity.

    Requests beyond it are refused with ``ProvisionedThroughputExceededException``
    (which the agent's boto3 retries, then reports as ``checkpoint_unavailable``).

    :param rcu: read capacity units per simulated second while the cut lasts.
    :param wcu: write capacity units per simulated second while the cut lasts.
    :param duration_s: real seconds the cut lasts (its lease); > 0.
    :param burst_s: seconds of unused capacity a table may save up during the cut:
        0 (the default) makes the cut bite at once, 300 is DynamoDB's own burst.
    :param gate_url: the capacity gate's base URL (default ``$LOADLAB_DDB_GATE_URL``).
    :returns: ``{"target", "url", "rcu"/"wcu", "burst_s", "expires_at", "duration_s",
        "time_scale", "active", "settings"}``: flat, so the timeline records what was set
        and its lease; at ``time_scale`` s the real-time limit is ``wcu / s`` per second.
    """
    changes: dict[str, Any] = {
        name: number(name, value)
        for name, value in (("rcu", rcu), ("wcu", wcu))
        if value is not None
    }
    if not changes:
        raise ActivityFailed("dynamodb_capacity_cut needs rcu or wcu (or both)")
    duration, expires_at = lease_expiry(duration_s)
    body = {**changes, "burst_s": number("burst_s", burst_s), "expires_at": expires_at}
    view = gate_capacity("POST", gate_url, body)
    return {
        "target": "dynamodb",
        "url": gate_base(gate_url),
        **body,
        "duration_s": duration,
        "time_scale": view.get("time_scale"),
        "active": view["active"],
        "settings": view["settings"],
    }


def dynamodb_capacity_restore(gate_url: str | None = None) -> dict[str, Any]:
    """Give the tables their configured capacity back now (use as a rollback).

    :param gate_url: the capacity gate's base URL (default ``$LOADLAB_DDB_GATE_URL``).
    :returns: ``{"target", "url", "settings", "active"}`` as the gate shows it afterwards.
    """
    view = gate_capacity("DELETE", gate_url)
    return {
        "target": "dynamodb",
        "url": gate_base(gate_url),
        "settings": view["settings"],
        "active": view["active"],
    }
