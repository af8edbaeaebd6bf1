"""Session credentials: an HS256 JWT per shopper session (docs/protocol.md).

The secret comes from the caller (``LOADLAB_JWT_SECRET`` by convention) and is
never logged or put in a repr; neither is a minted token.
"""

from __future__ import annotations

import functools
import json
import os
import time
import warnings
from collections.abc import Mapping

from jwt.algorithms import HMACAlgorithm
from jwt.utils import base64url_encode
from jwt.warnings import InsecureKeyLengthWarning

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
    """Return an HS256 JWT for one session: ``sub`` = session id, ``iat``, ``exp``.

    The token ``jwt.encode(claims, secret, algorithm="HS256")`` returns, byte for
    byte, signed by PyJWT's own HS256 algorithm. ``jwt.encode`` checks and
    prepares the key on every call (PEM and JWK look-alikes, its length): at a
    flash sale's peak, hundreds of sessions start every second, and that was
    most of what a session's start cost. Here the key is prepared once per secret.
    """
    issued = int(time.time() if now is None else now)
    claims = {"sub": session_id, "iat": issued, "exp": issued + max(1, int(ttl_s))}
    algorithm, key = _hs256(secret)
    payload = json.dumps(claims, separators=(",", ":")).encode()
    signing_input = _HS256_HEADER + b"." + base64url_encode(payload)
    signature = base64url_encode(algorithm.sign(signing_input, key))
    return (signing_input + b"." + signature).decode("ascii")


# PyJWT's header for HS256, as jwt.encode writes it (sorted keys, no spaces).
_HS256_HEADER = base64url_encode(
    json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":"), sort_keys=True).encode()
)


@functools.lru_cache(maxsize=4)
def _hs256(secret: str) -> tuple[HMACAlgorithm, bytes]:
    """PyJWT's HS256 algorithm and the secret prepared as its key (checked, and warned
    about if short, as jwt.encode does: once per secret instead of once per token)."""
    algorithm = HMACAlgorithm(HMACAlgorithm.SHA256)
    key = algorithm.prepare_key(secret)
    too_short = algorithm.check_key_length(key)
    if too_short:
        warnings.warn(too_short, InsecureKeyLengthWarning, stacklevel=3)
    return algorithm, key


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
