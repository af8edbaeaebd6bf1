"""The embedded stack's token, and the longest a fault may last.

Every embedded server that can change the system under test (the pods API and
the fleet's pod routes, the LLM simulator's ``/admin/faults``, the DynamoDB
gate's ``/admin/capacity``) answers those routes only to a request carrying
``Authorization: Bearer <token>`` with the stack's token; anything else is a
401. The token is generated at each start of the stack, kept in ``stack.json``
and the stack's kubeconfig (both mode 0600), handed to the harness in
``LOADLAB_ADMIN_TOKEN`` and never printed or logged. A server started on its
own (``python -m loadlab.embedded.llm``) takes it from ``LOADLAB_ADMIN_TOKEN``;
without it, it makes one up that nobody knows, so its admin routes stay shut.

A fault is a lease: the admin APIs refuse (400) a fault without ``expires_at``,
or one that would last longer than :data:`MAX_LEASE_S` from now, so a crashed
harness can never leave the stack broken for long.
"""

from __future__ import annotations

import hmac
import math
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware

ADMIN_TOKEN_ENV = "LOADLAB_ADMIN_TOKEN"
MAX_LEASE_S = 15 * 60.0
"""The longest a fault may last: 15 minutes from when it is set."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Refusal = Callable[[web.Request, str], web.StreamResponse]


class LeaseRefused(ValueError):
    """A fault without an expiry, or one longer than :data:`MAX_LEASE_S` (answered 400)."""


def new_admin_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def admin_token_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``LOADLAB_ADMIN_TOKEN``, or a fresh token nobody knows when it is unset or empty."""
    env = os.environ if environ is None else environ
    return env.get(ADMIN_TOKEN_ENV, "").strip() or new_admin_token()


def check_lease(expires_at: float | None, *, now: float) -> None:
    """Refuse a fault lease that never ends or ends more than MAX_LEASE_S from ``now``."""
    limit = f"{MAX_LEASE_S:.0f} s ({MAX_LEASE_S / 60:.0f} minutes)"
    if expires_at is None or not math.isfinite(expires_at):
        raise LeaseRefused(
            f"a fault needs an expiry: set expires_at (epoch seconds) at most {limit} from "
            f"now, got {expires_at!r}"
        )
    if expires_at - now > MAX_LEASE_S:
        raise LeaseRefused(
            f"expires_at={expires_at:.0f} is {expires_at - now:.0f} s from now, longer than the "
            f"maximum lease of {limit}: end the fault sooner and renew it if it must go on"
        )


def presented_token(request: web.Request) -> str | None:
    """The bearer token a request carries, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def token_matches(presented: str | None, token: str) -> bool:
    """Constant-time comparison of a presented token with the stack's."""
    return presented is not None and hmac.compare_digest(presented.encode(), token.encode())


def require_token(token: str, *, prefixes: tuple[str, ...], refuse: Refusal) -> Middleware:
    """An aiohttp middleware: requests to a path under ``prefixes`` need ``token``.

    ``refuse(request, message)`` builds the 401 answer in the server's own error
    shape. The message names the fix, never the token.
    """
    if not token:
        raise ValueError("the admin token must not be empty")

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(prefixes):
            presented = presented_token(request)
            if not token_matches(presented, token):
                what = "no bearer token" if presented is None else "a wrong bearer token"
                return refuse(
                    request,
                    f"{request.method} {request.path} needs the embedded stack's token; the "
                    f"request carried {what}: send 'Authorization: Bearer <token>' with the "
                    f"token of stack.json ({ADMIN_TOKEN_ENV} for loadlab's chaos actions, the "
                    "stack's kubeconfig for Kubernetes clients)",
                )
        return await handler(request)

    return middleware
