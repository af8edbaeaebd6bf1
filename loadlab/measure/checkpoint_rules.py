"""The out-of-band continuity verdict: one checkpoint item against the shopper's ledger.

The in-band verdict (:mod:`loadlab.load.ledger`) compares what the agent
*reported* after each turn with what the shopper expected. This one compares
what the agent *stored*: the session's checkpoint item, read from DynamoDB after
the run. :func:`judge` applies these rules, in order:

1. **No item.** ``missing`` if the session completed at least one turn (its
   state was never checkpointed, or the item was lost); otherwise there is
   nothing to compare and the in-band verdict stands.
2. **The item matches** the turns the shopper completed: its ``turn`` equals
   ``turns_done``, its cart equals the expected cart, and its ``version`` is not
   behind the last version the agent acknowledged.
3. **The item is one turn ahead**, and that is allowed only when the session
   ended before its last planned turn (it failed or was stopped): the checkpoint
   is written before the LLM call, so the turn being played when the session
   ended may have been applied without the shopper ever hearing back. The item
   then holds ``turns_done + 1`` turns and the cart after that turn (exactly,
   when the session's script is known; otherwise at most one unit of one SKU
   away from the expected cart, since a planned cart turn adds or removes one).
4. **Otherwise** the item disagrees: ``restarted`` if anything was lost (turns
   below the completed count, units below the expected cart, a removed SKU back
   in the cart, a version behind the acknowledged one), else ``duplicated``
   (turns above the completed count, or more units than expected). Loss
   outranks duplication, as in band.

An item that matches (2 or 3) cannot tell ``clean`` from ``resumed``, nor see
that a session did not finish, so it keeps the in-band verdict when that is
``clean``, ``resumed`` or ``failed``. When the in-band verdict was
``restarted`` or ``duplicated`` but the stored item is intact, the item's
verdict is ``resumed`` if the shopper saw an interruption and ``clean``
otherwise: the disagreement is the finding. When the expected cart is not known
(see :class:`Expectation`) only the turn count and the version are compared,
and a match keeps the in-band verdict whatever it is.

The two verdicts agree when they are equal (as ``loadlab.analysis.continuity``
counts them): an in-band ``restarted`` whose item is ``missing`` is a
disagreement, listed as such, because the item tells more (nothing was stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

OOB_VERDICTS: tuple[str, ...] = ("clean", "resumed", "restarted", "duplicated", "failed", "missing")
"""Every out-of-band verdict: the in-band ones plus ``missing``."""

_KEPT_WHEN_INTACT = ("clean", "resumed", "failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectation:
    """What the shopper's ledger says a session's checkpoint item should hold.

    ``cart`` is ``None`` when the expected cart is not known: the session's
    script could not be replayed, no expected cart was recorded, and the cart
    the agent acknowledged cannot stand in for it (the in-band check found it
    wrong, or the agent reported no state). ``removed`` holds the SKUs the
    shopper removed (known only from the script); ``next_cart`` the cart after
    the unplayed next turn (idem). ``source`` says where ``cart`` came from:
    ``script``, ``recorded``, ``acknowledged``, ``empty`` (no turn completed, so
    nothing can be in it) or ``none``.
    """

    session_id: str
    inband_verdict: str
    turns_done: int
    interrupted_turns: int
    ended_early: bool
    acknowledged_version: int | None
    cart: Mapping[str, int] | None
    removed: frozenset[str] = frozenset()
    next_cart: Mapping[str, int] | None = None
    source: str = "none"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredCheckpoint:
    """The oracle's part of a checkpoint item: version, turn count and cart."""

    version: int | None
    turn: int
    cart: Mapping[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    """The out-of-band verdict on one session, and why."""

    verdict: str
    reason: str
    cart_checked: bool


def agrees(oob_verdict: str, inband_verdict: str) -> bool:
    """True when the out-of-band verdict is the in-band one."""
    return oob_verdict == inband_verdict


def judge(expected: Expectation, stored: StoredCheckpoint | None) -> Judgement:
    """Give one session its out-of-band verdict (the rules are in the module docstring)."""
    done = expected.turns_done
    if stored is None:
        if done >= 1:
            return Judgement(
                verdict="missing",
                reason=f"no checkpoint item although {done} turn(s) completed",
                cart_checked=False,
            )
        return Judgement(
            verdict=expected.inband_verdict,
            reason="no turn completed and no item: nothing to compare",
            cart_checked=False,
        )
    lost, extra = _differences(expected, stored)
    if not lost and not extra:
        return _intact(expected, f"the item matches the {done} turn(s) the shopper completed")
    if expected.ended_early and _one_turn_ahead(expected, stored):
        return _intact(
            expected,
            f"the item is one turn ahead: turn {done + 1} was applied but its answer "
            "never reached the shopper",
        )
    if lost:
        return Judgement(
            verdict="restarted",
            reason="state lost: " + "; ".join(lost),
            cart_checked=expected.cart is not None,
        )
    return Judgement(
        verdict="duplicated",
        reason="applied twice: " + "; ".join(extra),
        cart_checked=expected.cart is not None,
    )


def _differences(expected: Expectation, stored: StoredCheckpoint) -> tuple[list[str], list[str]]:
    done = expected.turns_done
    lost: list[str] = []
    extra: list[str] = []
    if stored.turn < done:
        lost.append(f"item holds {stored.turn} turn(s), the shopper completed {done}")
    elif stored.turn > done:
        extra.append(f"item holds {stored.turn} turn(s), the shopper completed {done}")
    version_lost = _version_lost(expected, stored)
    if version_lost is not None:
        lost.append(version_lost)
    if expected.cart is not None:
        for sku in sorted(set(expected.cart) | set(stored.cart)):
            want, have = expected.cart.get(sku, 0), stored.cart.get(sku, 0)
            if have < want:
                lost.append(f"{sku}: {have} in the item, expected {want}")
            elif have > want and want == 0 and sku in expected.removed:
                lost.append(f"{sku}: back in the item after it was removed")
            elif have > want:
                extra.append(f"{sku}: {have} in the item, expected {want}")
    return lost, extra


def _version_lost(expected: Expectation, stored: StoredCheckpoint) -> str | None:
    acknowledged = expected.acknowledged_version
    if acknowledged is None or acknowledged <= 0:
        return None
    if stored.version is None:
        return "item has no version"
    if stored.version < acknowledged:
        return (
            f"item is at version {stored.version}, behind the version {acknowledged} "
            "the agent acknowledged"
        )
    return None


def _one_turn_ahead(expected: Expectation, stored: StoredCheckpoint) -> bool:
    if stored.turn != expected.turns_done + 1 or _version_lost(expected, stored) is not None:
        return False
    if expected.cart is None:
        return True
    if expected.next_cart is not None:
        return dict(stored.cart) == dict(expected.next_cart)
    skus = set(expected.cart) | set(stored.cart)
    moved = sum(abs(stored.cart.get(s, 0) - expected.cart.get(s, 0)) for s in skus)
    return moved <= 1


def _intact(expected: Expectation, reason: str) -> Judgement:
    inband = expected.inband_verdict
    if expected.cart is None:
        return Judgement(
            verdict=inband,
            reason=f"{reason} (turn count and version only: the expected cart is not known, "
            f"so the in-band verdict {inband!r} stands)",
            cart_checked=False,
        )
    if inband in _KEPT_WHEN_INTACT:
        return Judgement(verdict=inband, reason=reason, cart_checked=True)
    verdict = "resumed" if expected.interrupted_turns > 0 else "clean"
    return Judgement(
        verdict=verdict,
        reason=f"{reason}, although in band the session was {inband!r}",
        cart_checked=True,
    )
