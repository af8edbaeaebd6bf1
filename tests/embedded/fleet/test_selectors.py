"""Kubernetes label and field selectors: parsing, matching and the errors they give."""

from __future__ import annotations

import pytest

from loadlab.embedded.fleet.selectors import (
    FieldRequirement,
    LabelRequirement,
    SelectorError,
    is_qualified_name,
    parse_field_selector,
    parse_label_selector,
)
from loadlab.errors import ConfigError

POD = {"app": "shopping-agent", "tier": "web", "replicas": "3", "example.com/team": "cart"}

# (selector, matches POD?)
MATCH_TABLE = [
    ("", True),
    ("app=shopping-agent", True),
    ("app==shopping-agent", True),
    ("app=other", False),
    ("app!=other", True),
    ("app!=shopping-agent", False),
    ("missing!=x", True),  # != matches a pod without the label, as in Kubernetes
    ("tier in (web,api)", True),
    ("tier in (api)", False),
    ("missing in (web)", False),
    ("tier notin (canary)", True),
    ("tier notin (canary, web)", False),
    ("missing notin (web)", True),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("replicas>2", True),
    ("replicas>3", False),
    ("replicas<4", True),
    ("app>1", False),  # not an integer: no match
    ("example.com/team=cart", True),
    ("app=shopping-agent,tier=web", True),
    ("app=shopping-agent,tier=api", False),
    (" app = shopping-agent , tier in ( web ) , !canary ", True),
    ("app=", False),
]


@pytest.mark.parametrize(("selector", "expected"), MATCH_TABLE)
def test_label_selector_matches_like_kubernetes(selector: str, expected: bool) -> None:
    assert parse_label_selector(selector).matches(POD) is expected


def test_empty_value_matches_an_empty_label() -> None:
    assert parse_label_selector("flag=").matches({"flag": ""})
    assert parse_label_selector("flag in (x,)").matches({"flag": ""})


def test_parsed_requirements_are_the_ones_written() -> None:
    selector = parse_label_selector("a==1, b notin (x,y), !c, d, e>5")
    assert selector.requirements == (
        LabelRequirement(key="a", operator="=", values=("1",)),
        LabelRequirement(key="b", operator="notin", values=("x", "y")),
        LabelRequirement(key="c", operator="!"),
        LabelRequirement(key="d", operator="exists"),
        LabelRequirement(key="e", operator=">", values=("5",)),
    )
    assert str(selector) == "a=1,b notin (x,y),!c,d,e>5"
    assert parse_label_selector(str(selector)) == selector


# (selector, a fragment the error message must contain)
BAD_LABEL_SELECTORS = [
    ("app in (", "expected ',' or ')'"),
    ("app in ()", "at least one value"),
    ("app in web", "expected '(' after 'in'"),
    ("app=a,", "found end of selector"),
    (",app=a", "found ','"),
    ("=a", "expected a label key"),
    ("app=a=b", "found '='"),
    ("app web", "found 'web'"),
    ("!", "a label key after '!'"),
    ("n>x", "an integer after '>'"),
    ("-bad=x", "'-bad' is not a valid label key"),
    ("Upper.Case/x=y", "not a valid label key"),
    ("app=-x", "'-x' is not a valid label value"),
    ("app=" + "v" * 64, "not a valid label value"),
    ("k" * 64, "not a valid label key"),
]


@pytest.mark.parametrize(("selector", "fragment"), BAD_LABEL_SELECTORS)
def test_bad_label_selectors_say_what_is_wrong(selector: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_label_selector(selector)
    assert fragment in caught.value.message
    assert repr(selector) in caught.value.message
    assert caught.value.hint
    assert isinstance(caught.value, ConfigError)


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("app", True),
        ("app.kubernetes.io/name", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("/app", False),
        ("app/", False),
        ("_app", False),
        ("UPPER/app", False),
        ("x/y/z", False),
    ],
)
def test_qualified_label_keys(key: str, valid: bool) -> None:
    assert is_qualified_name(key) is valid


FIELDS = {"metadata.name", "status.phase"}
POD_FIELDS = {"metadata.name": "shopping-agent-b2c4d", "status.phase": "Running"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("status.phase=Running", True),
        ("status.phase==Running", True),
        ("status.phase!=Running", False),
        ("status.phase=Pending", False),
        ("metadata.name=shopping-agent-b2c4d", True),
        ("metadata.name=shopping-agent-b2c4d,status.phase=Pending", False),
        ("metadata.name!=x,status.phase=Running", True),
        ("metadata.name=", False),
    ],
)
def test_field_selector_matches(selector: str, expected: bool) -> None:
    assert parse_field_selector(selector, fields=FIELDS).matches(POD_FIELDS) is expected


def test_field_selector_values_may_escape_commas_and_equals() -> None:
    selector = parse_field_selector(r"metadata.name=a\,b\=c\\d", fields=FIELDS)
    assert selector.requirements == (
        FieldRequirement(field="metadata.name", operator="=", value="a,b=c\\d"),
    )


@pytest.mark.parametrize(
    ("selector", "fragment"),
    [
        ("spec.foo=x", "field 'spec.foo' is not supported"),
        ("status.phase", "cannot understand 'status.phase'"),
        ("=Running", "cannot understand '=Running'"),
        ("status.phase=Running,", "cannot understand ''"),
        (r"metadata.name=a\x", "invalid escape"),
    ],
)
def test_bad_field_selectors_say_what_is_wrong(selector: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_field_selector(selector, fields=FIELDS)
    assert fragment in caught.value.message
    assert caught.value.hint


def test_unsupported_field_error_lists_the_supported_ones() -> None:
    with pytest.raises(SelectorError) as caught:
        parse_field_selector("spec.foo=x", fields=FIELDS)
    assert caught.value.hint == "use one of metadata.name, status.phase"
