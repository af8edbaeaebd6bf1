"""Kubernetes label and field selectors: parse them, match them against a pod.

The grammar is Kubernetes' own (``k8s.io/apimachinery`` ``labels.Parse`` and
``fields.ParseSelector``), so a selector that works against EKS works against
the embedded fleet, and one that EKS refuses is refused here too.

Label selectors: comma-separated requirements, all of which must hold::

    app=shopping-agent        app==shopping-agent        tier!=canary
    tier in (web, api)        tier notin (canary)         track   !track
    replicas>2                replicas<5                  (empty: matches every pod)

``!=`` and ``notin`` also match a pod that lacks the label, as in Kubernetes;
``>`` and ``<`` need an integer and match only labels whose value is one.

Field selectors: comma-separated ``field=value``, ``field==value`` or
``field!=value`` terms over a fixed set of fields (a backslash escapes ``,``,
``=`` and ``\\`` in a value).

Errors are :class:`SelectorError` (a :class:`~loadlab.errors.ConfigError`)
naming the selector, the offending part and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from loadlab.errors import ConfigError

LabelOperator = Literal["=", "!=", "in", "notin", "exists", "!", ">", "<"]
FieldOperator = Literal["=", "!="]

# Qualified label key: optional DNS-subdomain prefix and '/', then a name of at most
# 63 characters starting and ending with an alphanumeric.
_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_MAX_PREFIX = 253
_INTEGER = re.compile(r"-?[0-9]+")
# Characters that end an identifier in the label selector lexer.
_SPECIAL = frozenset("!=,()<> \t\n\r\f\v")


class SelectorError(ConfigError, ValueError):
    """A label or field selector does not parse; the message names the bad part."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelRequirement:
    """One requirement of a label selector, e.g. ``tier in (web,api)``."""

    key: str
    operator: LabelOperator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True if ``labels`` satisfy this requirement."""
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case "exists":
                return present
            case "!":
                return not present
            case _:  # ">" or "<"
                if value is None or not _INTEGER.fullmatch(value):
                    return False
                bound = int(self.values[0])
                return int(value) > bound if self.operator == ">" else int(value) < bound

    def __str__(self) -> str:
        match self.operator:
            case "exists":
                return self.key
            case "!":
                return f"!{self.key}"
            case "in" | "notin":
                return f"{self.key} {self.operator} ({','.join(self.values)})"
            case _:
                return f"{self.key}{self.operator}{self.values[0]}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A parsed label selector: the AND of its requirements (none: matches everything)."""

    requirements: tuple[LabelRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True if ``labels`` satisfy every requirement."""
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldRequirement:
    """One term of a field selector, e.g. ``status.phase=Running``."""

    field: str
    operator: FieldOperator
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        """True if the object's ``fields`` satisfy this term."""
        equal = fields.get(self.field) == self.value
        return equal if self.operator == "=" else not equal


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A parsed field selector: the AND of its terms (none: matches everything)."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        """True if the object's ``fields`` satisfy every term."""
        return all(r.matches(fields) for r in self.requirements)


# -- label selectors ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["id", "op", "end"]
    text: str
    at: int


def _tokens(text: str) -> Iterator[_Token]:
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _SPECIAL:
            two = text[i : i + 2]
            op = two if two in ("==", "!=") else ch
            yield _Token("op", op, i)
            i += len(op)
        else:
            start = i
            while i < len(text) and text[i] not in _SPECIAL:
                i += 1
            yield _Token("id", text[start:i], start)
    yield _Token("end", "", len(text))


class _LabelParser:
    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens = list(_tokens(text))
        self._pos = 0

    def _peek(self) -> _Token:
        return self._tokens[self._pos]

    def _next(self) -> _Token:
        token = self._tokens[self._pos]
        if token.kind != "end":
            self._pos += 1
        return token

    def _fail(self, token: _Token, expected: str) -> SelectorError:
        found = "end of selector" if token.kind == "end" else repr(token.text)
        return SelectorError(
            f"label selector {self._text!r}: found {found} at position {token.at}, "
            f"expected {expected}",
            hint="write requirements like app=shopping-agent, tier in (web,api), !canary, "
            "joined by commas",
        )

    def parse(self) -> LabelSelector:
        if self._peek().kind == "end":
            return LabelSelector()
        requirements = [self._requirement()]
        while (token := self._next()).kind != "end":
            if token.text != ",":
                raise self._fail(token, "',' or end of selector")
            requirements.append(self._requirement())
        return LabelSelector(tuple(requirements))

    def _requirement(self) -> LabelRequirement:
        token = self._next()
        if token.text == "!":
            absent = self._next()
            if absent.kind != "id":
                raise self._fail(absent, "a label key after '!'")
            self._check_key(absent)
            return LabelRequirement(key=absent.text, operator="!")
        if token.kind != "id":
            raise self._fail(token, "a label key or '!'")
        self._check_key(token)
        key = token.text
        op = self._peek()
        if op.kind == "end" or op.text == ",":
            return LabelRequirement(key=key, operator="exists")
        self._next()
        if op.text in ("=", "==", "!="):
            value = self._optional_value()
            return LabelRequirement(
                key=key, operator="!=" if op.text == "!=" else "=", values=(value,)
            )
        if op.kind == "id" and op.text in ("in", "notin"):
            operator: LabelOperator = "in" if op.text == "in" else "notin"
            return LabelRequirement(key=key, operator=operator, values=self._value_set(op.text))
        if op.text in (">", "<"):
            bound = self._next()
            if bound.kind != "id" or not _INTEGER.fullmatch(bound.text):
                raise self._fail(bound, f"an integer after '{op.text}'")
            operator = ">" if op.text == ">" else "<"
            return LabelRequirement(key=key, operator=operator, values=(bound.text,))
        raise self._fail(op, "one of =, ==, !=, in, notin, >, <, ',' after the key")

    def _optional_value(self) -> str:
        token = self._peek()
        if token.kind == "end" or token.text in (",", ")"):
            return ""
        if token.kind != "id":
            raise self._fail(token, "a label value")
        self._next()
        self._check_value(token)
        return token.text

    def _value_set(self, operator: str) -> tuple[str, ...]:
        opening = self._next()
        if opening.text != "(":
            raise self._fail(opening, f"'(' after '{operator}'")
        values: list[str] = []
        if self._peek().text == ")":
            raise self._fail(self._peek(), f"at least one value: '{operator} ()' is empty")
        while True:
            values.append(self._optional_value())
            token = self._next()
            if token.text == ")":
                return tuple(values)
            if token.text != ",":
                raise self._fail(token, "',' or ')' in the value list")

    def _check_key(self, token: _Token) -> None:
        if not is_qualified_name(token.text):
            raise SelectorError(
                f"label selector {self._text!r}: {token.text!r} is not a valid label key",
                hint="a key is [prefix/]name: name up to 63 of A-Z a-z 0-9 - _ . starting "
                "and ending alphanumeric; prefix a lowercase DNS subdomain",
            )

    def _check_value(self, token: _Token) -> None:
        if token.text and not _NAME.fullmatch(token.text):
            raise SelectorError(
                f"label selector {self._text!r}: {token.text!r} is not a valid label value",
                hint="a value is empty or up to 63 of A-Z a-z 0-9 - _ . starting and "
                "ending alphanumeric",
            )


def is_qualified_name(key: str) -> bool:
    """True if ``key`` is a valid Kubernetes label key (``[prefix/]name``)."""
    prefix, slash, name = key.rpartition("/")
    if slash and not (0 < len(prefix) <= _MAX_PREFIX and _PREFIX.fullmatch(prefix)):
        return False
    return _NAME.fullmatch(name) is not None


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a Kubernetes label selector; raises :class:`SelectorError`."""
    return _LabelParser(text).parse()


# -- field selectors ------------------------------------------------------------------


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(value: str, selector: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1 : i + 2]
            if nxt not in (",", "=", "\\"):
                raise SelectorError(
                    f"field selector {selector!r}: invalid escape '\\{nxt}' in {value!r}",
                    hint="only \\, \\= and \\\\ are escapes in a field selector value",
                )
            out.append(nxt)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _split_term(term: str) -> tuple[str, FieldOperator, str] | None:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                operator: FieldOperator = "!=" if op == "!=" else "="
                return term[:i], operator, term[i + len(op) :]
        i += 1
    return None


def parse_field_selector(text: str, *, fields: Collection[str]) -> FieldSelector:
    """Parse a field selector naming only ``fields``; raises :class:`SelectorError`."""
    if not text.strip():
        return FieldSelector()
    supported = ", ".join(sorted(fields))
    terms: list[FieldRequirement] = []
    for term in _split_unescaped(text, ","):
        split = _split_term(term)
        if split is None or not split[0].strip():
            raise SelectorError(
                f"field selector {text!r}: cannot understand {term!r}",
                hint="write terms like status.phase=Running or metadata.name!=x, joined by commas",
            )
        field, operator, raw = split
        field = field.strip()
        if field not in fields:
            raise SelectorError(
                f"field selector {text!r}: field {field!r} is not supported",
                hint=f"use one of {supported}",
            )
        terms.append(FieldRequirement(field=field, operator=operator, value=_unescape(raw, text)))
    return FieldSelector(tuple(terms))
