"""Event data reads exactly as ``json.loads`` reads it.

``load_json_object`` takes the usual event through ``JSONDecoder.raw_decode``
(no argument checks, no whitespace scans) and only the rest through
``json.loads``: values, errors and their messages must be ``json.loads``' in
every case. (This test also turned down orjson as the first parser: it reads an
integer past 64 bits as a float, silently.)
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadlab.load.payloads import PayloadError, load_json_object

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)  # NaN, Infinity: json's extensions
    | st.text()  # lone surrogates and control characters included
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN, and a float never equal to an int or a bool."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _as_json_loads(text: str) -> tuple[str, Any]:
    """What the standard library makes of ``text``: ("ok", value) or ("error", message)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return "error", f"event data is not JSON: {exc.args[0]}"
    except RecursionError:
        return "recursion", None
    if not isinstance(value, dict):
        return "error", f"event data is not a JSON object: {type(value).__name__}"
    return "ok", value


def _as_loadlab(text: str) -> tuple[str, Any]:
    try:
        return "ok", load_json_object(text)
    except PayloadError as exc:
        return "error", str(exc)
    except RecursionError:
        return "recursion", None


def _check(text: str) -> None:
    expected, got = _as_json_loads(text), _as_loadlab(text)
    assert expected[0] == got[0], (text, expected, got)
    if expected[0] == "ok":
        assert _same(expected[1], got[1]), (text, expected, got)
    else:
        assert expected[1] == got[1], (text, expected, got)


@settings(max_examples=400)
@given(
    st.dictionaries(st.text(), _values, max_size=5),
    st.booleans(),
    st.sampled_from(["", " ", "\n", "\t "]),
)
def test_objects_read_as_json_loads_reads_them(
    obj: dict[str, Any], ascii_only: bool, pad: str
) -> None:
    _check(pad + json.dumps(obj, ensure_ascii=ascii_only) + pad)


@settings(max_examples=400)
@given(
    st.text(alphabet=st.sampled_from('{}[]":,0123456789.eE+-truefalsnNIy \\u"x\t\n'), max_size=40)
)
def test_any_text_reads_or_fails_as_json_loads_says(text: str) -> None:
    _check(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"a":2}',  # the last duplicate wins
        '{"n":NaN,"i":-Infinity}',
        '{"big":123456789012345678901234567890}',
        '{"f":1e400}',  # json makes it inf
        '{"s":"\\ud800"}',  # a lone surrogate, escaped
        '{"z":-0,"fz":-0.0,"e":1E2}',
        '{"x":1} trailing',
        '{"x":1}\n',
        "[1,2]",
        "",
        '{"x":' * 5000 + "1" + "}" * 5000,  # deeper than either parser goes
        '{"u":"\\u00e9\\u2028"}',
        '{"t":"tab\there"}',  # a raw control character
    ],
)
def test_the_edges_read_as_json_loads_reads_them(text: str) -> None:
    _check(text)
