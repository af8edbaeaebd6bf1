"""Scenario files: the shipped ones load, and every bad value is named with its fix."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from loadlab.errors import ConfigError, ScenarioError
from loadlab.scenario import (
    FlashSaleShape,
    SoakShape,
    SpikeShape,
    StepShape,
    load_scenario,
    parse_scenario,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(mapping: object) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(mapping, source="s.yaml")
    return info.value


@pytest.mark.parametrize("name", ["flash_sale", "ci_smoke", "demo"])
def test_shipped_scenarios_load(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    assert scenario.name == name
    assert scenario.source == str(SCENARIOS / f"{name}.yaml")
    assert isinstance(scenario.shape, FlashSaleShape)


def test_flash_sale_scenario_matches_its_promise() -> None:
    scenario = load_scenario(SCENARIOS / "flash_sale.yaml")
    assert scenario.shape.peak == 5000
    assert scenario.session.turns.min == 4
    assert scenario.session.turns.max == 10
    assert scenario.session.think_time.min_s == 5
    assert scenario.session.think_time.max_s == 15
    assert len(scenario.session.personas) == 3


def test_ci_smoke_and_demo_are_short() -> None:
    smoke = load_scenario(SCENARIOS / "ci_smoke.yaml")
    demo = load_scenario(SCENARIOS / "demo.yaml")
    assert smoke.shape.peak <= 25
    assert smoke.shape.duration_s * smoke.time_scale <= 35
    assert demo.shape.peak == 150
    assert demo.shape.duration_s * demo.time_scale <= 130


def test_minimal_scenario_gets_defaults() -> None:
    scenario = parse_scenario({"name": "x"})
    assert scenario.seed == 1
    assert scenario.time_scale == 1.0
    assert scenario.target.protocol == "reference"
    assert scenario.target.url is None
    assert scenario.shape == FlashSaleShape()
    assert scenario.slo.gate("p99_ms") is None  # only the default gates


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (
            {"kind": "step", "start_users": 5, "step_users": 5, "step_s": 10, "steps": 3},
            StepShape(start_users=5, step_users=5, step_s=10, steps=3),
        ),
        (
            {
                "kind": "spike",
                "base_users": 1,
                "spike_users": 9,
                "at_s": 5,
                "spike_s": 5,
                "total_s": 20,
            },
            SpikeShape(base_users=1, spike_users=9, at_s=5, spike_s=5, total_s=20),
        ),
        (
            {"kind": "soak", "users": 7, "ramp_s": 3, "duration_s": 30},
            SoakShape(users=7, ramp_s=3, duration_s=30),
        ),
    ],
)
def test_every_shape_kind_parses(shape: dict[str, object], expected: object) -> None:
    parsed = parse_scenario({"name": "x", "shape": shape}).shape
    assert parsed == expected
    assert dataclasses.asdict(parsed)["kind"] == shape["kind"]  # the manifest names the kind


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nshape:\n  kind: flash_sale\n   peak_users: 3\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message
    assert "malformed YAML" in message
    assert "line 4" in message


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "nope.yaml")


def test_empty_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="empty"):
        load_scenario(_write(tmp_path, ""))


def test_unknown_key_suggests_the_close_one() -> None:
    error = _error({"name": "x", "shape": {"kind": "flash_sale", "peak_user": 10}})
    assert "s.yaml" in str(error)
    assert "shape.peak_user" in str(error)
    assert "unknown key" in str(error)
    assert error.hint is not None and "did you mean 'peak_users'" in error.hint


def test_unknown_top_level_key_is_an_error() -> None:
    error = _error({"name": "x", "sedd": 3})
    assert "sedd" in error.message
    assert error.hint is not None and "'seed'" in error.hint


def test_key_of_another_shape_kind_says_which_kind() -> None:
    error = _error({"name": "x", "shape": {"kind": "flash_sale", "spike_users": 10}})
    assert "shape.spike_users" in error.message
    assert error.hint is not None and "'spike'" in error.hint


def test_wrong_type_names_path_value_and_expected() -> None:
    error = _error({"name": "x", "shape": {"kind": "flash_sale", "peak_users": "lots"}})
    assert "shape.peak_users" in error.message
    assert "'lots'" in error.message
    assert error.hint is not None and "whole number" in error.hint


def test_boolean_is_not_a_number() -> None:
    error = _error({"name": "x", "retry": {"max_attempts": True}})
    assert "retry.max_attempts" in error.message


def test_negative_duration_is_rejected() -> None:
    error = _error({"name": "x", "shape": {"kind": "soak", "ramp_s": -5}})
    assert "shape.ramp_s" in error.message
    assert "-5" in error.message
    assert error.hint is not None and ">= 0" in error.hint


def test_unknown_shape_kind_lists_valid_kinds() -> None:
    error = _error({"name": "x", "shape": {"kind": "flashsale"}})
    assert "'flashsale'" in error.message
    assert "did you mean 'flash_sale'" in error.message
    assert error.hint is not None
    for kind in ("flash_sale", "step", "spike", "soak"):
        assert kind in error.hint


def test_missing_name_is_required() -> None:
    error = _error({"seed": 3})
    assert "name" in error.message and "missing" in error.message


def test_cross_field_rules() -> None:
    assert (
        "baseline_users"
        in _error(
            {"name": "x", "shape": {"kind": "flash_sale", "baseline_users": 9, "peak_users": 5}}
        ).message
    )
    assert (
        "session.turns.max"
        in _error({"name": "x", "session": {"turns": {"min": 5, "max": 2}}}).message
    )
    assert (
        "shape.total_s"
        in _error(
            {"name": "x", "shape": {"kind": "spike", "at_s": 50, "spike_s": 60, "total_s": 100}}
        ).message
    )


def test_personas_are_validated_with_index_in_path() -> None:
    error = _error(
        {"name": "x", "session": {"personas": [{"name": "a"}, {"name": "b", "intents": {"by": 1}}]}}
    )
    assert "session.personas[1].intents.by" in error.message
    assert error.hint is not None and "add_to_cart" in error.hint
    parsed = parse_scenario(
        {"name": "x", "session": {"personas": [{"name": "a", "intents": {"search": 2}}]}}
    )
    assert parsed.session.personas[0].intents == (("search", 2.0),)


def test_section_that_is_not_a_mapping() -> None:
    error = _error({"name": "x", "target": "http://127.0.0.1:1"})
    assert "target" in error.message and "mapping" in error.message


def test_target_url_and_protocol_are_checked() -> None:
    assert "target.url" in _error({"name": "x", "target": {"url": "127.0.0.1:80"}}).message
    assert "target.protocol" in _error({"name": "x", "target": {"protocol": "grpc"}}).message


def test_slo_error_rate_is_a_fraction() -> None:
    assert "slo.error_rate" in _error({"name": "x", "slo": {"error_rate": 5}}).message


def test_scenario_error_is_a_config_error_with_exit_code_2() -> None:
    error = _error({"name": "x", "bogus": 1})
    assert isinstance(error, ConfigError)
    assert error.exit_code == 2


def test_overrides_replace_values_and_keep_the_rest() -> None:
    base = parse_scenario({"name": "x", "shape": {"kind": "flash_sale", "baseline_users": 50}})
    out = base.with_overrides(users=20, target_url="http://127.0.0.1:9", time_scale=0.5, seed=9)
    assert out.shape == dataclasses.replace(base.shape, peak_users=20, baseline_users=20)
    assert out.target.url == "http://127.0.0.1:9"
    assert out.time_scale == 0.5
    assert out.seed == 9
    assert out.session == base.session
    assert base.with_overrides() == base


@pytest.mark.parametrize(
    ("shape", "users", "peak"),
    [
        ({"kind": "step", "start_users": 10, "step_users": 10, "steps": 5}, 90, 90),
        ({"kind": "spike", "base_users": 10, "spike_users": 50}, 80, 80),
        ({"kind": "soak", "users": 10}, 33, 33),
    ],
)
def test_users_override_sets_each_shapes_peak(
    shape: dict[str, object], users: int, peak: int
) -> None:
    scenario = parse_scenario({"name": "x", "shape": shape}).with_overrides(users=users)
    assert scenario.shape.peak == peak


def test_bad_overrides_are_scenario_errors() -> None:
    base = parse_scenario({"name": "x"})
    with pytest.raises(ScenarioError, match="users"):
        base.with_overrides(users=0)
    with pytest.raises(ScenarioError, match="http"):
        base.with_overrides(target_url="localhost:8080")
    with pytest.raises(ScenarioError, match="time_scale"):
        base.with_overrides(time_scale=-1.0)
