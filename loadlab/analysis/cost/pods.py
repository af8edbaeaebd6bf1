"""What the same load costs on pods: EKS on EC2 nodes, EKS on Fargate, and active-CPU
billing (AgentCore-style: CPU only while busy)."""

from __future__ import annotations

import math

from loadlab.analysis.cost.model import CostLine, PlatformCost, Usage
from loadlab.analysis.prices import PriceTable
from loadlab.errors import ConfigError

__all__ = ["active_cpu", "eks", "fargate"]


def _pods(usage: Usage, prices: PriceTable) -> tuple[int | None, str]:
    asked = int(prices.number("pods"))
    if asked > 0:
        return asked, "pods from --set / the price table"
    if usage.pods:
        return usage.pods, "pods alive at the run's peak (measured)"
    return None, ""


_NO_PODS = (
    "how many pods the load needs: a Lambda run does not measure it; pass --set pods=N "
    "(e.g. the replicas of the pods run of the same scenario)"
)


def eks(usage: Usage, prices: PriceTable, shared: tuple[CostLine, ...]) -> PlatformCost:
    node_type = prices.text("node_type")
    title = f"EKS pods on {node_type} nodes"
    pods, pods_note = _pods(usage, prices)
    if pods is None:
        return PlatformCost(model="eks", title=title, basis="missing", missing=_NO_PODS)
    per_node = prices.number("pods_per_node")
    if per_node <= 0:
        raise ConfigError(f"pods_per_node must be > 0, not {per_node:g}")
    nodes = math.ceil(pods / per_node)
    hours = usage.run_s / 3600.0
    return PlatformCost(
        model="eks",
        title=title,
        basis="measured" if usage.platform == "pods" else "projected",
        sessions=usage.sessions,
        cold_starts=0,
        compute=(
            CostLine.at(
                prices,
                f"node_hour_{node_type}",
                item=f"{nodes} x {node_type} nodes ({pods} pods, {per_node:g} per node)",
                quantity=nodes * hours,
                unit="node-hours",
            ),
            CostLine.at(
                prices,
                "eks_cluster_hour",
                item="EKS cluster",
                quantity=hours,
                unit="cluster-hours",
            ),
        ),
        shared=shared,
        notes=(pods_note, "pods run for the whole run; they are started before the sale"),
    )


def fargate(usage: Usage, prices: PriceTable, shared: tuple[CostLine, ...]) -> PlatformCost:
    title = "EKS pods on Fargate"
    pods, pods_note = _pods(usage, prices)
    if pods is None:
        return PlatformCost(model="fargate", title=title, basis="missing", missing=_NO_PODS)
    hours = usage.run_s / 3600.0
    vcpu, mem = prices.number("pod_vcpu"), prices.number("pod_memory_gb")
    return PlatformCost(
        model="fargate",
        title=title,
        basis="measured" if usage.platform == "pods" else "projected",
        sessions=usage.sessions,
        cold_starts=0,
        compute=(
            CostLine.at(
                prices,
                "fargate_vcpu_hour",
                item=f"{pods} pods x {vcpu:g} vCPU",
                quantity=pods * vcpu * hours,
                unit="vCPU-hours",
            ),
            CostLine.at(
                prices,
                "fargate_gb_hour",
                item=f"{pods} pods x {mem:g} GB",
                quantity=pods * mem * hours,
                unit="GB-hours",
            ),
            CostLine.at(
                prices,
                "eks_cluster_hour",
                item="EKS cluster",
                quantity=hours,
                unit="cluster-hours",
            ),
        ),
        shared=shared,
        notes=(pods_note,),
    )


def active_cpu(usage: Usage, prices: PriceTable, shared: tuple[CostLine, ...]) -> PlatformCost:
    fraction = prices.number("active_cpu_fraction")
    vcpu, mem = prices.number("pod_vcpu"), prices.number("active_memory_gb")
    busy_h = usage.compute_s / 3600.0
    return PlatformCost(
        model="active_cpu",
        title="active-CPU billing (AgentCore-style)",
        basis="projected",
        sessions=usage.sessions,
        cold_starts=None,
        compute=(
            CostLine.at(
                prices,
                "active_cpu_vcpu_hour",
                item=f"CPU while busy ({fraction:.1%} of {usage.compute_s:,.1f} s)",
                quantity=busy_h * fraction * vcpu,
                unit="vCPU-hours",
            ),
            CostLine.at(
                prices,
                "active_cpu_gb_hour",
                item=f"memory held ({mem:g} GB)",
                quantity=busy_h * mem,
                unit="GB-hours",
            ),
        ),
        shared=shared,
        notes=(
            "active_cpu_fraction is an assumption (the run does not measure CPU time); "
            "waiting on the LLM is not billed",
        ),
    )
