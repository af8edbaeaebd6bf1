"""Malformed inputs generated with hypothesis: scenario files and flag values.

Whatever is generated, reading a scenario either builds one or raises
``ScenarioError`` (exit 2) naming the file, and a flag value is either used or
refused with exit 2 or 3: never another exception, never a hang.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadlab.cli import main
from loadlab.errors import ScenarioError
from loadlab.scenario.files import load_scenario
from loadlab.scenario.model import Scenario

Capture = pytest.CaptureFixture[str]
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

KEYS = {
    "": ["name", "seed", "time_scale", "description", "target", "shape", "session", "retry",
         "slo", "peak_user"],
    "target": ["url", "protocol", "timeout_s", "model", "function"],
    "shape": ["kind", "baseline_users", "peak_users", "ramp_s", "hold_s", "steps", "spike_s",
              "total_s", "users", "duration_s", "max_spawn_rate"],
    "session": ["turns", "think_time", "personas"],
    "retry": ["max_attempts", "backoff_s", "backoff_max_s"],
    "slo": ["p99_ms", "error_rate", "max_restarted", "intents", "ttft_p99_ms"],
}  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["flash_sale", "step", "spike", "soak", "http://127.0.0.1:abc",
                       "http://[::1", "lambda", "reference", "constant"])
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def scenario_mappings(draw: st.DrawFn) -> dict[str, object]:
    doc: dict[str, object] = {}
    for key in draw(st.lists(st.sampled_from(KEYS[""]), max_size=6, unique=True)):
        if key in KEYS and draw(st.booleans()):
            sub = draw(st.lists(st.sampled_from(KEYS[key]), max_size=4, unique=True))
            doc[key] = {k: draw(values) for k in sub}
        else:
            doc[key] = draw(values)
    return doc


def _read(path: Path) -> None:
    try:
        assert isinstance(load_scenario(path), Scenario)
    except ScenarioError as exc:
        assert str(path) in exc.message
        assert len(exc.message) < 1000, "an error names the value, it does not dump it"


@SETTINGS
@given(doc=scenario_mappings())
def test_a_generated_scenario_is_built_or_refused_with_a_scenario_error(
    tmp_path: Path, doc: dict[str, object]
) -> None:
    path = tmp_path / "generated.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    _read(path)


@SETTINGS
@given(text=st.text(max_size=300))
def test_generated_text_as_a_scenario_is_refused_with_a_scenario_error(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "generated.yaml"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    _read(path)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_generated_bytes_as_a_scenario_are_refused_with_a_scenario_error(
    tmp_path: Path, data: bytes
) -> None:
    path = tmp_path / "generated.yaml"
    path.write_bytes(data)
    _read(path)


number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["inf", "-inf", "nan", "1e309", "0x10", "1_000", " 5", "", "½", "٣"]),
    st.text(max_size=8),
)


@settings(max_examples=60, deadline=None)
@given(
    flag=st.sampled_from(["--time-scale", "--users", "--web-port", "--replicas",
                          "--stack-time-scale", "--provisioned-concurrency"]),
    value=number_text.filter(lambda t: "\x00" not in t and not t.startswith("-")),
)  # fmt: skip
def test_a_generated_flag_value_is_used_or_refused(flag: str, value: str) -> None:
    argv = ["run", "ci_smoke", "--target", "http://127.0.0.1:9", "--state-dir", "/nonexistent",
            flag, value]  # fmt: skip
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    # 2: refused; 3: accepted, and the run stopped at the closed target port
    assert code in (2, 3)
    if code == 3 and flag.endswith("time-scale"):
        assert math.isfinite(float(value)) and float(value) > 0
