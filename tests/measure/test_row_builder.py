"""row_builder: the rows of every turn, made without the frozen __init__, equal its own."""

from __future__ import annotations

import dataclasses

import pytest

from loadlab.rows import RequestSample, TurnRecord, row_builder


def test_a_built_row_equals_the_one_its_constructor_makes() -> None:
    names = tuple(f.name for f in dataclasses.fields(RequestSample))
    reference = RequestSample(
        t_start=1.5,
        name="turn:search",
        session_id="s1",
        turn_index=2,
        attempt=1,
        latency_ms=210.0,
        ttft_ms=20.0,
        bytes=640,
        status=200,
        tokens=8,
        instance_id="i-1",
        cold_start=False,
        worker="w1",
    )
    built = row_builder(RequestSample, names)(tuple(getattr(reference, n) for n in names))
    assert built == reference and type(built) is RequestSample
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.latency_ms = 1.0  # type: ignore[misc]


def test_names_in_another_order_take_their_values_in_that_order() -> None:
    names = tuple(reversed([f.name for f in dataclasses.fields(RequestSample)]))
    row = row_builder(RequestSample, names)(tuple(range(len(names))))
    assert row.worker == 0 and row.t_start == len(names) - 1


TURN_FIELDS = tuple(f.name for f in dataclasses.fields(TurnRecord))


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("t_start",), "missing"),
        ((*TURN_FIELDS, "t_start"), "repeated"),
        ((*TURN_FIELDS[:-1], "latency"), "latency"),
    ],
)
def test_a_builder_that_misses_or_repeats_a_field_is_refused(
    names: tuple[str, ...], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        row_builder(TurnRecord, names)


def test_a_value_too_many_or_too_few_is_refused_when_built() -> None:
    names = tuple(f.name for f in dataclasses.fields(RequestSample))
    build = row_builder(RequestSample, names)
    with pytest.raises(ValueError):
        build(tuple(range(len(names) - 1)))


def test_every_row_type_of_a_turn_is_built_through_its_mutable_twin() -> None:
    # The fast path: a plain class of the same slots whose instances take the
    # row's class once filled. Without it each value costs a setter call.
    from loadlab.rows import _twin

    for row_type in (RequestSample, TurnRecord):
        twin = _twin(row_type)
        assert twin is not None and twin.__slots__ == row_type.__slots__


@dataclasses.dataclass(frozen=True, slots=True)
class _Base:
    a: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Derived(_Base):
    b: str


def test_a_layout_without_a_twin_is_built_through_the_slot_setters() -> None:
    from loadlab.rows import _twin

    assert _twin(_Derived) is None and _twin(_Base) is not None
    # _Derived's own slots hold only "b": "a" is its base's, set the same way.
    built = row_builder(_Derived, ("b", "a"))(("x", 7))
    assert built == _Derived(7, "x") and type(built) is _Derived
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.a = 8  # type: ignore[misc]
