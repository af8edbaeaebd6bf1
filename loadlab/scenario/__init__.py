"""What a load test says: scenarios, load shapes and seeded shopper sessions.

Nothing here talks to the network or imports Locust: a scenario is plain,
validated data, and a session script is a pure function of a seed.
"""

from loadlab.scenario.files import (
    load_scenario,
    parse_scenario,
    parse_shape,
    parse_slo,
    slo_from_manifest,
)
from loadlab.scenario.gates import DEFAULT_LIMITS, GATE_CATALOG, GATES, Gate, GateSpec
from loadlab.scenario.model import (
    INTENTS,
    PROTOCOLS,
    SHAPE_KINDS,
    SLO,
    FlashSaleShape,
    Intent,
    Persona,
    RetryPolicy,
    Scenario,
    SessionModel,
    Shape,
    SoakShape,
    SpikeShape,
    StepShape,
    Target,
    ThinkTime,
    TurnCount,
)
from loadlab.scenario.script import SessionSpec, Turn, expected_cart, plan_session

__all__ = [
    "DEFAULT_LIMITS",
    "GATES",
    "GATE_CATALOG",
    "INTENTS",
    "PROTOCOLS",
    "SHAPE_KINDS",
    "SLO",
    "FlashSaleShape",
    "Gate",
    "GateSpec",
    "Intent",
    "Persona",
    "RetryPolicy",
    "Scenario",
    "SessionModel",
    "SessionSpec",
    "Shape",
    "SoakShape",
    "SpikeShape",
    "StepShape",
    "Target",
    "ThinkTime",
    "Turn",
    "TurnCount",
    "expected_cart",
    "load_scenario",
    "parse_scenario",
    "parse_shape",
    "parse_slo",
    "plan_session",
    "slo_from_manifest",
]
