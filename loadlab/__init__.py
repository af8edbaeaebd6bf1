"""loadlab: load generation and chaos testing for AI agent endpoints.

The public API is what ``__all__`` lists; everything else may change between
releases. Names are imported on first use: ``import loadlab`` stays cheap for the
embedded agent processes (which import ``loadlab.embedded``), and never imports
Locust, which monkey-patches the standard library with gevent.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadlab.analysis.coldstarts import cold_start_analysis
    from loadlab.analysis.impact import fault_impact
    from loadlab.analysis.journal import read_journal
    from loadlab.analysis.pressure import pressure_summary
    from loadlab.analysis.run_summary import RunSummary
    from loadlab.analysis.rundata import RunData, load_run
    from loadlab.analysis.summary import summarize
    from loadlab.errors import (
        ConfigError,
        LoadLabError,
        RunDirectoryError,
        ScenarioError,
        SLOFailed,
        StackError,
        TargetUnreachable,
    )
    from loadlab.load.adapters import OpenAIChatAdapter, ReferenceAdapter, TurnRequest
    from loadlab.load.aws_lambda.users import LambdaSessionUser
    from loadlab.load.client import AgentClient, TurnResult
    from loadlab.load.fasthttp import FastHttpTransport
    from loadlab.load.shapes import FlashSale, ScenarioShape, Soak, Spike, Step
    from loadlab.load.transport import MockTransport, Transport
    from loadlab.load.users import SessionUser, ShoppingSessionUser
    from loadlab.measure.checkpoint_audit import audit_checkpoints
    from loadlab.report.compare import compare_runs
    from loadlab.report.render import render_run
    from loadlab.rows import RequestSample, SessionRecord, TimelineEvent, TurnRecord
    from loadlab.scenario.files import load_scenario
    from loadlab.scenario.model import Scenario
    from loadlab.scenario.script import SessionSpec, Turn, plan_session

__version__ = "0.1.0"

_LAZY = {
    "fault_impact": "loadlab.analysis.impact",
    "read_journal": "loadlab.analysis.journal",
    "pressure_summary": "loadlab.analysis.pressure",
    "cold_start_analysis": "loadlab.analysis.coldstarts",
    "compare_runs": "loadlab.report.compare",
    "audit_checkpoints": "loadlab.measure.checkpoint_audit",
    "LambdaSessionUser": "loadlab.load.aws_lambda.users",
    "AgentClient": "loadlab.load.client",
    "ConfigError": "loadlab.errors",
    "FastHttpTransport": "loadlab.load.fasthttp",
    "FlashSale": "loadlab.load.shapes",
    "LoadLabError": "loadlab.errors",
    "MockTransport": "loadlab.load.transport",
    "OpenAIChatAdapter": "loadlab.load.adapters",
    "ReferenceAdapter": "loadlab.load.adapters",
    "RequestSample": "loadlab.rows",
    "RunData": "loadlab.analysis.rundata",
    "RunDirectoryError": "loadlab.errors",
    "RunSummary": "loadlab.analysis.run_summary",
    "SLOFailed": "loadlab.errors",
    "Scenario": "loadlab.scenario.model",
    "ScenarioError": "loadlab.errors",
    "ScenarioShape": "loadlab.load.shapes",
    "SessionRecord": "loadlab.rows",
    "SessionSpec": "loadlab.scenario.script",
    "SessionUser": "loadlab.load.users",
    "ShoppingSessionUser": "loadlab.load.users",
    "Soak": "loadlab.load.shapes",
    "Spike": "loadlab.load.shapes",
    "StackError": "loadlab.errors",
    "Step": "loadlab.load.shapes",
    "TargetUnreachable": "loadlab.errors",
    "TimelineEvent": "loadlab.rows",
    "Transport": "loadlab.load.transport",
    "Turn": "loadlab.scenario.script",
    "TurnRecord": "loadlab.rows",
    "TurnRequest": "loadlab.load.adapters",
    "TurnResult": "loadlab.load.client",
    "load_run": "loadlab.analysis.rundata",
    "load_scenario": "loadlab.scenario.files",
    "plan_session": "loadlab.scenario.script",
    "render_run": "loadlab.report.render",
    "summarize": "loadlab.analysis.summary",
}


def discover(discover_system: bool = True) -> Any:
    """Chaos Toolkit discovery entry point (``chaos discover loadlab --no-install``)."""
    from loadlab.chaos import discover as discover_loadlab

    return discover_loadlab(discover_system=discover_system)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loadlab' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "AgentClient",
    "ConfigError",
    "FastHttpTransport",
    "FlashSale",
    "LambdaSessionUser",
    "LoadLabError",
    "MockTransport",
    "OpenAIChatAdapter",
    "ReferenceAdapter",
    "RequestSample",
    "RunData",
    "RunDirectoryError",
    "RunSummary",
    "SLOFailed",
    "Scenario",
    "ScenarioError",
    "ScenarioShape",
    "SessionRecord",
    "SessionSpec",
    "SessionUser",
    "ShoppingSessionUser",
    "Soak",
    "Spike",
    "StackError",
    "Step",
    "TargetUnreachable",
    "TimelineEvent",
    "Transport",
    "Turn",
    "TurnRecord",
    "TurnRequest",
    "TurnResult",
    "__version__",
    "audit_checkpoints",
    "cold_start_analysis",
    "compare_runs",
    "discover",
    "fault_impact",
    "load_run",
    "load_scenario",
    "plan_session",
    "pressure_summary",
    "read_journal",
    "render_run",
    "summarize",
]
