"""YAML text in, plain data out, with the limits a hand-written file never reaches.

PyYAML's ``SafeLoader`` builds only plain data, but three things it accepts
make a bad file cost more than an error message: a key written twice (the last
one silently wins, so the file runs a different test than the one read),
aliases that expand to billions of values (a few hundred bytes of "billion
laughs" that hang whatever walks or prints the result), and brackets nested
deeper than Python's stack. :class:`BoundedSafeLoader` refuses all three while
it reads, with the line and column, before anything looks at the values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

from loadlab.errors import ScenarioError

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "BoundedSafeLoader",
    "YAMLLimitExceeded",
    "load_yaml",
    "read_yaml_file",
]

MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences a file may have."""

MAX_NODES = 100_000
"""Most values a document may hold once every alias is expanded."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YAMLLimitExceeded(yaml.MarkedYAMLError):
    """A document nests too deep or expands to too many values; ``hint`` says what to do."""

    def __init__(self, problem: str, mark: yaml.Mark | None, *, hint: str) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.hint = hint


class BoundedSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, deep nesting and alias bombs."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        """Compose one node, refusing nesting past :data:`MAX_DEPTH` before the stack does."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YAMLLimitExceeded(
                    f"nesting deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                    hint="a scenario nests a few levels at most: check for unbalanced brackets",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Node | None:
        """The document's root node, refused when its aliases expand past :data:`MAX_NODES`."""
        node: Node | None = super().get_single_node()
        if node is not None:
            _check_expanded_size(node)
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping, refusing a key written twice (merge keys ``<<`` may override)."""
        if isinstance(node, MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = first_line.get(key)
                except TypeError:  # unhashable: the base class names that error
                    continue
                if seen is not None:
                    raise ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"duplicate key {key!r} (first written on line {seen + 1})",
                        key_node.start_mark,
                    )
                first_line[key] = key_node.start_mark.line
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _check_expanded_size(root: Node) -> None:
    """Count the values ``root`` expands to (each alias counted in full), at most MAX_NODES."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:
            raise YAMLLimitExceeded(
                "an alias refers to the value that contains it (a value without end)",
                node.start_mark,
                hint="point the alias (*name) at a value defined before and outside it",
            )
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        if total > MAX_NODES:
            raise YAMLLimitExceeded(
                f"aliases expand to more than {MAX_NODES:,} values",
                node.start_mark,
                hint="write the values out, or use fewer nested aliases (*name)",
            )
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root)


def load_yaml(text: str) -> object:
    """Parse one YAML document with :class:`BoundedSafeLoader`.

    Raises :class:`yaml.YAMLError` (a :class:`YAMLLimitExceeded` for the limits,
    a ``ConstructorError`` naming a duplicate key and its line).
    """
    loader = BoundedSafeLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml_file(path: str | Path, *, kind: str, example: str) -> Any:
    """Read a YAML file (a ``kind``, e.g. "scenario file") with :func:`load_yaml`.

    Raises :class:`~loadlab.errors.ScenarioError` naming the file and the fix for a
    missing or unreadable file and for malformed YAML (with its line and column).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(
            f"{source}: {kind} not found",
            hint=f"pass the path of a {kind} (YAML), e.g. {example}",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(
            f"{source}: cannot read {kind}: {exc}",
            hint="check the path and that the file is UTF-8 text",
        ) from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if isinstance(exc, YAMLLimitExceeded):
            hint = exc.hint
        elif "duplicate key" in problem:
            hint = "keep one of the two keys (YAML would silently use the last one)"
        else:
            hint = "fix the YAML syntax at that position (indentation, a missing ':' or quote)"
        raise ScenarioError(f"{source}: malformed YAML{where}: {problem}", hint=hint) from None
