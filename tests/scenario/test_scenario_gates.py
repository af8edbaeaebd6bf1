"""The gate language: every catalog gate is accepted, defaults hold, bad gates name the fix."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from loadlab.errors import ScenarioError
from loadlab.scenario import (
    DEFAULT_LIMITS,
    GATE_CATALOG,
    SLO,
    Gate,
    load_scenario,
    parse_scenario,
    parse_slo,
    slo_from_manifest,
)

_EXAMPLE = {"ms": 5000, "fraction": 0.05, "count": 2, "ratio": 1.5}
# a flash sale of 60 s in all (10 + 40 + 10), at time scale 1
_SHAPE = {"kind": "flash_sale", "ramp_s": 10, "hold_s": 40, "decay_s": 10}


def _scenario(slo: object, **extra: object) -> dict[str, object]:
    return {"name": "t", "shape": _SHAPE, "slo": slo, **extra}


@pytest.mark.parametrize("spec", GATE_CATALOG, ids=lambda s: s.key)
def test_every_catalog_gate_is_accepted_in_each_form_it_allows(spec) -> None:  # type: ignore[no-untyped-def]
    limit = _EXAMPLE[spec.kind]
    plain = parse_slo({spec.key: limit}).gate(spec.key)
    assert plain == Gate(key=spec.key, limit=limit)
    written: dict[str, object] = {"max": limit}
    if spec.windowed:
        written["window_s"] = 30
    if spec.live:
        written["abort"] = True
    full = parse_slo({spec.key: written}, run_s=60).gate(spec.key)
    assert full is not None and full.limit == limit
    assert full.window_s == (30 if spec.windowed else None) and full.abort is spec.live
    if spec.per_intent:
        scoped = parse_slo({"intents": {"search": {spec.key: limit}}}).gate(spec.key, "search")
        assert scoped == Gate(key=spec.key, limit=limit, intent="search")


def test_without_an_slo_block_the_default_gates_still_hold() -> None:
    slo = parse_scenario({"name": "t"}).slo
    assert {g.key: g.limit for g in slo.gates} == DEFAULT_LIMITS
    assert all(g.default for g in slo.gates)
    assert slo == SLO()
    assert DEFAULT_LIMITS == {
        "max_restarted": 0,
        "max_duplicated": 0,
        "error_rate": 0.01,
        "max_audit_disagreements": 0,
    }


def test_a_scenario_relaxes_a_default_by_setting_it() -> None:
    slo = parse_slo({"max_restarted": 5, "error_rate": 1.0, "p99_ms": 8000})
    restarted, errors = slo.gate("max_restarted"), slo.gate("error_rate")
    assert restarted == Gate(key="max_restarted", limit=5)  # no longer a default
    assert errors == Gate(key="error_rate", limit=1.0)
    duplicated = slo.gate("max_duplicated")
    assert duplicated is not None and duplicated.default and duplicated.limit == 0


def test_live_and_abort_gates_for_the_harness() -> None:
    slo = parse_slo(
        {
            "p99_ms": {"max": 5000, "window_s": 30, "abort": True},
            "max_restarted": {"max": 3, "abort": True},
            "resume_p99_ms": 4000,
            "intents": {"search": {"error_rate": {"max": 0.1, "window_s": 10, "abort": True}}},
        },
        run_s=600,
    )
    assert [g.name for g in slo.abort_gates()] == [
        "p99_ms[30s]",
        "max_restarted",
        "search.error_rate[10s]",
    ]
    live = {g.name for g in slo.live_gates()}
    assert "resume_p99_ms" not in live and "max_audit_disagreements" not in live
    assert {"p99_ms[30s]", "error_rate", "max_duplicated"} <= live


@pytest.mark.parametrize(
    ("slo", "message", "hint"),
    [
        ({"p99ms": 5000}, "slo.p99ms: unknown gate", "did you mean 'p99_ms'?"),
        ({"max_restart": 1}, "slo.max_restart: unknown gate", "did you mean 'max_restarted'?"),
        ({"p99_ms": -1}, "slo.p99_ms: got -1", "a number of milliseconds > 0"),
        ({"max_restarted": -1}, "slo.max_restarted: got -1", "a whole number >= 0"),
        ({"max_restarted": 0.5}, "slo.max_restarted: got 0.5", "a whole number >= 0"),
        ({"error_rate": 1.5}, "slo.error_rate: got 1.5", "a fraction between 0 and 1"),
        ({"llm_429_rate": -0.1}, "slo.llm_429_rate: got -0.1", "a fraction between 0 and 1"),
        ({"max_amplification": 0.5}, "slo.max_amplification: got 0.5", "a number >= 1"),
        ({"p99_ms": "fast"}, "slo.p99_ms: got 'fast'", "a number of milliseconds"),
        (
            {"p99_ms": {"max": 5000, "window_s": 61}},
            "slo.p99_ms.window_s: got 61",
            "at most the run's length (60 s",
        ),
        (
            {"resume_p99_ms": {"max": 5000, "window_s": 30}},
            "slo.resume_p99_ms.window_s: resume_p99_ms takes no window",
            "remove window_s",
        ),
        (
            {"max_audit_disagreements": {"max": 0, "abort": True}},
            "slo.max_audit_disagreements.abort: max_audit_disagreements cannot be judged",
            "remove abort",
        ),
        ({"p99_ms": {"max": 1, "abort": "yes"}}, "slo.p99_ms.abort: got 'yes'", "true or false"),
        ({"p99_ms": {"limit": 1}}, "slo.p99_ms.max: required key is missing", "add 'max:'"),
        ({"p99_ms": {"max": 1, "windw_s": 2}}, "slo.p99_ms.windw_s: unknown key", "window_s"),
        (
            {"intents": {"serch": {"p99_ms": 1}}},
            "slo.intents.serch: unknown intent (did you mean 'search'?)",
            "use one of: browse",
        ),
        (
            {"intents": {"search": {"max_restarted": 1}}},
            "slo.intents.search.max_restarted: max_restarted cannot be set per intent",
            "set it directly under slo",
        ),
    ],
)
def test_a_bad_gate_names_the_key_path_and_the_fix(slo: object, message: str, hint: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(_scenario(slo), source="s.yaml")
    assert caught.value.exit_code == 2
    assert f"s.yaml: {message}" in caught.value.message
    assert hint in (caught.value.hint or "")


def test_the_window_is_bounded_by_the_scaled_run() -> None:
    # 60 s of shape at time scale 0.5 is a 30 s run
    with pytest.raises(ScenarioError, match="window_s"):
        parse_scenario(_scenario({"p99_ms": {"max": 1, "window_s": 31}}, time_scale=0.5))
    ok = parse_scenario(_scenario({"p99_ms": {"max": 1, "window_s": 30}}, time_scale=0.5))
    assert ok.slo.gate("p99_ms") == Gate(key="p99_ms", limit=1, window_s=30)


def test_the_manifest_form_reads_back_through_the_same_parser() -> None:
    scenario = parse_scenario(
        _scenario(
            {
                "p99_ms": {"max": 5000, "window_s": 30, "abort": True},
                "max_restarted": 2,
                "intents": {"search": {"ttft_p99_ms": 900}},
            }
        )
    )
    # what the manifest holds: dataclasses.asdict of the scenario, through JSON
    stored = json.loads(json.dumps(dataclasses.asdict(scenario)))["slo"]
    assert slo_from_manifest(stored) == scenario.slo
    assert slo_from_manifest(None) == SLO()
    bad = {"gates": [{"key": "p99_ms", "limit": -5}]}
    with pytest.raises(ScenarioError, match=r"slo\.p99_ms\.max: got -5"):
        slo_from_manifest(bad)


def test_an_old_manifest_slo_reads_with_none_as_not_set() -> None:
    old = {"p99_ms": 8000, "ttft_p99_ms": None, "error_rate": 0.01}
    slo = slo_from_manifest(old)
    assert slo.gate("p99_ms") == Gate(key="p99_ms", limit=8000)
    assert slo.gate("ttft_p99_ms") is None
    assert slo.gate("error_rate") == Gate(key="error_rate", limit=0.01)  # set, so not default
    restarted = slo.gate("max_restarted")
    assert restarted is not None and restarted.default


@pytest.mark.parametrize("path", sorted(Path("scenarios").glob("*.yaml")), ids=str)
def test_the_shipped_scenarios_validate(path: Path) -> None:
    slo = load_scenario(path).slo
    assert {"max_restarted", "max_duplicated", "error_rate"} <= {g.key for g in slo.gates}
