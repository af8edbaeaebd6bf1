"""Session tokens: an HS256 JWT whose ``sub`` is the session it may act on.

Load users sign one token per session (claims ``sub``, ``exp``, ``iat``). The
agent checks the signature, the expiry and that ``sub`` names the session in the
request path; anything else is a 401. Messages never echo the token or secret.
"""

from __future__ import annotations

import jwt

from loadlab.embedded.agent.events import TurnRejected

ALGORITHM = "HS256"


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; 401 if there is none."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TurnRejected(
            status=401, kind="auth", message="send Authorization: Bearer <session JWT>"
        )
    return token.strip()


def verify_session_token(token: str, *, secret: str, session_id: str) -> None:
    """Check that ``token`` is valid, unexpired and issued for ``session_id``; 401 if not."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise TurnRejected(status=401, kind="auth", message="the token has expired") from None
    except jwt.InvalidTokenError as exc:
        # PyJWT's messages name the failed check (signature, claim), never the token.
        raise TurnRejected(status=401, kind="auth", message=f"invalid token: {exc}") from None
    if claims.get("sub") != session_id:
        raise TurnRejected(
            status=401, kind="auth", message="the token was issued for another session"
        )
