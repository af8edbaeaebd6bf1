"""Session credentials: an HS256 JWT per shopper session (docs/protocol.md).

The secret comes from the caller (``LOADLAB_JWT_SECRET`` by convention) and is
never logged or put in a repr; neither is a minted token.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

import jwt

from loadlab.errors import ConfigError

JWT_SECRET_ENV = "LOADLAB_JWT_SECRET"


def jwt_secret_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """Return the JWT secret from ``LOADLAB_JWT_SECRET``, or None when it is unset."""
    env = os.environ if environ is None else environ
    secret = env.get(JWT_SECRET_ENV)
    if secret is not None and not secret.strip():
        raise ConfigError(
            f"{JWT_SECRET_ENV} is set but empty",
            hint=f"set {JWT_SECRET_ENV} to the agent's HS256 secret, or unset it",
        )
    return secret


def mint_session_token(
    *, secret: str, session_id: str, ttl_s: float = 3600.0, now: float | None = None
) -> str:
    """Return an HS256 JWT for one session: ``sub`` = session id, ``iat``, ``exp``."""
    issued = int(time.time() if now is None else now)
    claims = {"sub": session_id, "iat": issued, "exp": issued + max(1, int(ttl_s))}
    return jwt.encode(claims, secret, algorithm="HS256")


class SessionCredentials:
    """Mints a session's token once and renews it shortly before it expires."""

    def __init__(self, *, secret: str | None, session_id: str, ttl_s: float = 3600.0) -> None:
        self._secret = secret
        self._session_id = session_id
        self._ttl = ttl_s
        self._token: str | None = None
        self._expires = 0.0

    def __repr__(self) -> str:
        return f"SessionCredentials(session_id={self._session_id!r})"

    def token(self, now: float | None = None) -> str | None:
        """The bearer token to send now (None when no secret was configured)."""
        if self._secret is None:
            return None
        t = time.time() if now is None else now
        if self._token is None or t > self._expires - 60.0:
            self._token = mint_session_token(
                secret=self._secret, session_id=self._session_id, ttl_s=self._ttl, now=t
            )
            self._expires = int(t) + max(1, int(self._ttl))
        return self._token
