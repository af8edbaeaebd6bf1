"""Scenario YAML: duplicate keys, alias bombs and deep nesting are refused while reading."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loadlab.errors import ScenarioError
from loadlab.scenario.files import load_scenario
from loadlab.scenario.yaml_text import MAX_DEPTH, load_yaml


def billion_laughs(levels: int = 9) -> str:
    """Nine values, each level nine aliases of the one before: 9**10 values expanded."""
    lines = ["name: laughs", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append(f"session: {{personas: *{chr(ord('a') + levels)}}}")
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_a_billion_laughs_is_refused_fast_naming_the_aliases(tmp_path: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, billion_laughs()))
    assert time.perf_counter() - start < 0.5
    assert "aliases expand to more than 100,000 values" in err.value.message
    assert "(line 7, column 4)" in err.value.message  # the first level past the bound
    assert err.value.hint is not None and "aliases" in err.value.hint


def test_a_few_aliases_still_work(tmp_path: Path) -> None:
    text = "name: &n x\ndescription: *n\n"
    assert load_scenario(write(tmp_path, text)).description == "x"
    assert load_yaml("a: &x [1, 2]\nb: *x\nc: {<<: {k: 1}, k: 2}\n") == {
        "a": [1, 2],
        "b": [1, 2],
        "c": {"k": 2},
    }


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_brackets_nested_900_deep_are_refused_not_a_recursion_error(
    tmp_path: Path, opener: str
) -> None:
    closer = "]" if opener == "[" else "}"
    text = "name: x\nshape: " + opener * 900 + closer * 900 + "\n"
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text))
    assert f"nesting deeper than {MAX_DEPTH} levels" in err.value.message
    assert "line 2" in err.value.message


def test_an_alias_inside_its_own_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, "name: x\nsession: &s {personas: [*s]}\n"))
    assert "an alias refers to the value that contains it" in err.value.message


def test_nesting_up_to_the_bound_is_read() -> None:
    assert load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


def test_a_duplicate_key_is_refused_naming_the_key_and_both_lines(tmp_path: Path) -> None:
    text = "name: x\nshape:\n  kind: flash_sale\n  peak_users: 5\n  peak_users: 50\n"
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, text))
    assert "duplicate key 'peak_users' (first written on line 4)" in err.value.message
    assert "(line 5, column 3)" in err.value.message
    assert err.value.hint is not None and "keep one" in err.value.hint


def test_a_duplicate_top_level_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="duplicate key 'name'"):
        load_scenario(write(tmp_path, "name: a\nname: b\n"))


def test_a_huge_value_is_named_in_a_line_not_dumped(tmp_path: Path) -> None:
    items = ", ".join(str(i) for i in range(20_000))
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, f"name: [{items}]\n"))
    assert len(err.value.message) < 400 and "characters)" in err.value.message


def test_an_integer_beyond_int64_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="seed"):
        load_scenario(write(tmp_path, "name: x\nseed: 99999999999999999999999\n"))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:abc", "port 'abc' is not a number"),
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://127.0.0.1:99999", "port 99999 out of range"),
        ("http://", "no host"),
    ],
)
def test_a_target_url_that_cannot_be_used_is_refused(
    tmp_path: Path, url: str, problem: str
) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, f"name: x\ntarget: {{url: '{url}'}}\n"))
    assert "target.url" in err.value.message and problem in (err.value.hint or "")
