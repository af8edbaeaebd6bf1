"""The endpoint under test: which one a run uses, and whether it answers."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from loadlab.embedded.state import StackState
from loadlab.errors import ConfigError, TargetUnreachable
from loadlab.scenario.model import Scenario
from loadlab.scenario.urls import url_problem


def resolve_target(
    flag: str | None, scenario: Scenario, running: StackState | None
) -> tuple[str, str | None]:
    """The agent URL and JWT secret for a run: ``--target``, the scenario, or ``loadlab up``.

    ``LOADLAB_JWT_SECRET`` wins; else a URL of the running embedded stack (its pods
    or its Lambda function URL) signs with that stack's secret.
    """
    secret = os.environ.get("LOADLAB_JWT_SECRET")
    target = flag or scenario.target.url
    if target:
        if secret is None and running is not None and running.serves(target):
            secret = running.jwt_secret
        return target, secret
    if running is not None:
        return running.endpoints.agent_url, secret or running.jwt_secret
    raise ConfigError(
        "no target: the scenario has no target.url and no embedded stack is running",
        hint="pass --target URL, add --embedded, or start `loadlab up` in another terminal",
    )


def check_target_url(url: str) -> None:
    """Refuse a target URL that cannot be connected to (scheme, host, port), before anything."""
    problem = url_problem(url)
    if problem is not None:
        raise ConfigError(
            f"target URL {url!r} is not an http(s) URL: {problem}",
            hint="pass --target http://HOST:PORT (the agent's base URL, port 1-65535)",
        )


def check_target(url: str, protocol: str, *, timeout_s: float = 5.0) -> None:
    """Fail fast, with a fix, when the agent endpoint does not answer."""
    check_target_url(url)
    parts = urlsplit(url)
    if protocol == "reference":
        probe = url.rstrip("/") + "/healthz"
        try:
            with urllib.request.urlopen(probe, timeout=timeout_s) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            raise TargetUnreachable(
                f"the agent at {url} answered {exc.code} on /healthz",
                hint="check that the URL points at the agent (not a gateway) and that it is ready",
            ) from exc
        except (OSError, urllib.error.URLError) as exc:
            raise _unreachable(url, exc) from exc
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return
    except OSError as exc:
        raise _unreachable(url, exc) from exc


def _unreachable(url: str, exc: BaseException) -> TargetUnreachable:
    reason = getattr(exc, "reason", exc)
    return TargetUnreachable(
        f"cannot reach the target {url} ({reason})",
        hint="start the embedded stack with `loadlab up` (or use `loadlab run --embedded`), "
        "or pass --target with the URL of a running agent",
    )
