"""The blast radius of a game day: which pods and functions a fault action may touch.

A plan's ``blast_radius`` (:class:`loadlab.scenario.plan.BlastRadius`) is checked
twice: by ``loadlab gameday`` on every action of every experiment before
anything starts (exit 2), and by loadlab's Chaos Toolkit control right before
each action runs (the experiment is interrupted and nothing is touched), so a
value that only resolves at run time is checked too. The control reads the
radius from ``LOADLAB_BLAST_RADIUS`` (JSON).

What is checked, on the action's arguments as Chaos Toolkit will pass them:

* ``ns``/``namespace`` in ``namespaces`` (a Kubernetes action without one acts
  on ``default``);
* ``label_selector`` at least as narrow as one allowed selector (it has all of
  that selector's ``key=value`` pairs); a pod action without a selector would
  act on every pod and is refused when selectors are listed;
* ``function_name`` (a name or an ARN) in ``lambda_functions`` (names or ARNs).

Actions that touch none of these (the LLM and DynamoDB faults of the embedded
stack, loadlab's own orchestration) pass.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from loadlab.scenario.plan import BlastRadius

__all__ = ["ENV", "radius_from_env", "violations"]

ENV = "LOADLAB_BLAST_RADIUS"
_K8S_MODULES = ("chaosk8s.",)


def radius_from_env(environ: Mapping[str, str] | None = None) -> BlastRadius | None:
    """The radius a game day set for its chaos run, or None (no plan, no limit)."""
    raw = (environ if environ is not None else os.environ).get(ENV)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        # A radius that cannot be read allows nothing: refuse rather than guess.
        return BlastRadius(namespaces=("<unreadable LOADLAB_BLAST_RADIUS>",))
    return BlastRadius.from_json(data if isinstance(data, dict) else {})


def _pairs(selector: str) -> frozenset[str]:
    return frozenset(
        part.replace(" ", "").replace("==", "=") for part in selector.split(",") if part.strip()
    )


def _function_name(value: str) -> str:
    # arn:aws:lambda:region:account:function:name[:qualifier]
    parts = value.split(":")
    return parts[6] if value.startswith("arn:") and len(parts) >= 7 else value


def violations(function: str, arguments: Mapping[str, Any], radius: BlastRadius) -> list[str]:
    """Why ``function(**arguments)`` would act outside ``radius``; empty when it may act."""
    found: list[str] = []
    is_k8s = function.startswith(_K8S_MODULES)
    namespace = arguments.get("ns", arguments.get("namespace"))
    if namespace is None and is_k8s:
        namespace = "default"
    if radius.namespaces and namespace is not None and str(namespace) not in radius.namespaces:
        found.append(
            f"namespace {namespace!r} is outside the blast radius "
            f"(allowed: {', '.join(radius.namespaces)})"
        )
    selector = arguments.get("label_selector")
    if radius.label_selectors:
        if selector is None and is_k8s and ".pod." in function and not arguments.get("name"):
            found.append("no label selector: the action would act on every pod of the namespace")
        elif selector is not None:
            have = _pairs(str(selector))
            if not any(_pairs(allowed) <= have for allowed in radius.label_selectors):
                found.append(
                    f"label selector {selector!r} is outside the blast radius "
                    f"(allowed: {'; '.join(radius.label_selectors)})"
                )
    name = arguments.get("function_name")
    if radius.lambda_functions and name is not None:
        allowed = {_function_name(f) for f in radius.lambda_functions} | set(
            radius.lambda_functions
        )
        if str(name) not in allowed and _function_name(str(name)) not in allowed:
            found.append(
                f"Lambda function {name!r} is outside the blast radius "
                f"(allowed: {', '.join(radius.lambda_functions)})"
            )
    return found
