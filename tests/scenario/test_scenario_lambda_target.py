"""The scenario's Lambda target: ``target.protocol: lambda`` with ``target.function``."""

from __future__ import annotations

import re
from typing import Any

import pytest

from loadlab.errors import ScenarioError
from loadlab.scenario import parse_scenario


def scenario(**target: Any) -> dict[str, Any]:
    return {"name": "lambda", "target": target}


def test_a_lambda_target_names_its_function() -> None:
    parsed = parse_scenario(
        scenario(
            protocol="lambda",
            function="arn:aws:lambda:us-east-1:123456789012:function:agent",
            url="https://lambda.us-east-1.amazonaws.com",
        )
    )
    assert parsed.target.protocol == "lambda"
    assert parsed.target.function == "arn:aws:lambda:us-east-1:123456789012:function:agent"
    assert parse_scenario(scenario()).target.function is None


@pytest.mark.parametrize(
    ("target", "words"),
    [
        ({"protocol": "lambda"}, "target.function"),
        ({"protocol": "lambda", "function": "  "}, "target.function"),
        ({"protocol": "reference", "function": "agent"}, "target.protocol"),
        ({"function": "agent"}, "target.protocol"),
        ({"protocol": "lamda", "function": "agent"}, "did you mean 'lambda'"),
    ],
)
def test_lambda_settings_that_do_not_fit_are_refused(target: dict[str, Any], words: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(words)):
        parse_scenario(scenario(**target))


def test_switching_to_lambda_needs_a_function() -> None:
    plain = parse_scenario(scenario(url="http://127.0.0.1:8080"))
    with pytest.raises(ScenarioError, match=r"needs target\.function"):
        plain.with_overrides(protocol="lambda")
    with_function = parse_scenario(scenario(protocol="lambda", function="agent"))
    assert with_function.with_overrides(timeout_s=5).target.function == "agent"
