"""Probes: which LLM fault and which DynamoDB capacity are in force now."""

from __future__ import annotations

from typing import Any

from loadlab.chaos.downstream._admin import gate_capacity, llm_faults

__all__ = ["dynamodb_capacity", "dynamodb_capacity_cut_active", "llm_fault", "llm_fault_active"]

_TOTALS = (
    "consumed_rcu",
    "consumed_wcu",
    "read_throttle_events",
    "write_throttle_events",
    "throttled_requests",
)


def llm_fault(llm_admin_url: str | None = None) -> dict[str, Any]:
    """The LLM fault stored in the simulator and whether it applies now (lease not expired).

    :param llm_admin_url: the LLM simulator's base URL (default ``$LOADLAB_LLM_URL``).
    :returns: ``{"fault": {"reject_fraction", "extra_latency_ms", "token_interval_factor",
        "rpm", "tpm", "expires_at"}, "active": bool}``.
    """
    view = llm_faults("GET", llm_admin_url)
    return {"fault": view["fault"], "active": bool(view["active"])}


def llm_fault_active(llm_admin_url: str | None = None) -> bool:
    """True while an injected LLM fault applies (use tolerance ``false`` to check it ended).

    :param llm_admin_url: the LLM simulator's base URL (default ``$LOADLAB_LLM_URL``).
    """
    return bool(llm_faults("GET", llm_admin_url)["active"])


def dynamodb_capacity(gate_url: str | None = None) -> dict[str, Any]:
    """The capacity in force at the gate, its configured defaults, and totals so far.

    :param gate_url: the capacity gate's base URL (default ``$LOADLAB_DDB_GATE_URL``).
    :returns: ``{"settings": {"rcu", "wcu", "burst_s", "expires_at"}, "defaults", "active",
        "time_scale", "totals": {"consumed_rcu", "consumed_wcu", "read_throttle_events",
        "write_throttle_events", "throttled_requests"}}`` (rcu/wcu ``None``: unlimited).
    """
    view = gate_capacity("GET", gate_url)
    tables = view.get("tables") or {}
    totals = {name: sum(t.get(name, 0) for t in tables.values()) for name in _TOTALS}
    return {
        "settings": view["settings"],
        "defaults": view["defaults"],
        "active": bool(view["active"]),
        "time_scale": view.get("time_scale"),
        "totals": totals,
    }


def dynamodb_capacity_cut_active(gate_url: str | None = None) -> bool:
    """True while a capacity lease applies at the gate (use tolerance ``false`` to check
    it ended).

    :param gate_url: the capacity gate's base URL (default ``$LOADLAB_DDB_GATE_URL``).
    """
    return bool(gate_capacity("GET", gate_url)["active"])
