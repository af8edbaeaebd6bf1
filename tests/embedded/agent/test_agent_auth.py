"""Session tokens: signature, expiry, and sub bound to the session in the path."""

from __future__ import annotations

import time

import jwt
import pytest

from loadlab.embedded.agent.auth import bearer_token, verify_session_token
from loadlab.embedded.agent.events import TurnRejected

SECRET = "k" * 40


def _token(claims: dict[str, object], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def test_a_valid_token_for_the_session_passes() -> None:
    token = _token({"sub": "s-1", "exp": int(time.time()) + 60, "iat": int(time.time())})
    verify_session_token(token, secret=SECRET, session_id="s-1")


@pytest.mark.parametrize(
    ("claims", "secret"),
    [
        ({"sub": "s-2", "exp": 2**40}, SECRET),  # another session
        ({"sub": "s-1", "exp": 1}, SECRET),  # expired
        ({"sub": "s-1"}, SECRET),  # no exp
        ({"exp": 2**40}, SECRET),  # no sub
        ({"sub": "s-1", "exp": 2**40}, "x" * 40),  # signed with another secret
    ],
)
def test_a_bad_token_is_a_401(claims: dict[str, object], secret: str) -> None:
    with pytest.raises(TurnRejected) as caught:
        verify_session_token(_token(claims, secret), secret=SECRET, session_id="s-1")
    assert (caught.value.status, caught.value.kind) == (401, "auth")
    assert SECRET not in caught.value.message


def test_an_unsigned_token_is_refused() -> None:
    unsigned = jwt.encode({"sub": "s-1", "exp": 2**40}, None, algorithm="none")
    with pytest.raises(TurnRejected):
        verify_session_token(unsigned, secret=SECRET, session_id="s-1")


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer"])
def test_a_missing_bearer_token_is_a_401(header: str | None) -> None:
    with pytest.raises(TurnRejected) as caught:
        bearer_token(header)
    assert caught.value.status == 401


def test_the_bearer_token_is_extracted() -> None:
    assert bearer_token("bearer abc.def.ghi") == "abc.def.ghi"
