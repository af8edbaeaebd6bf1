"""What one reference-agent instance is told, read from environment variables.

===================================  ==========================================================
variable                             meaning (default)
===================================  ==========================================================
``LOADLAB_JWT_SECRET``               HS256 secret the session tokens are signed with
                                     (required, >= 32 bytes; never logged or shown)
``LOADLAB_AGENT_LLM_URL``            base URL of the OpenAI-compatible LLM, e.g.
                                     ``http://127.0.0.1:8001`` (required)
``LOADLAB_AGENT_LLM_MODEL``          model name sent to the LLM (``loadlab-sim-1``)
``LOADLAB_AGENT_LLM_MAX_ATTEMPTS``   LLM requests per turn before giving up, >= 1 (``3``)
``LOADLAB_AGENT_LLM_TIMEOUT_S``      seconds to wait to connect, and for each next piece of
                                     the stream (``30``)
``LOADLAB_AGENT_LLM_MAX_RETRY_WAIT_S``  longest wait before a retry, in simulated seconds
                                     (``10``; Retry-After is honoured up to this)
``LOADLAB_AGENT_LLM_MAX_TOKENS``     ``max_tokens`` asked of the LLM (``120``)
``LOADLAB_AGENT_DYNAMODB_ENDPOINT``  DynamoDB endpoint URL; unset = the AWS default, which
                                     honours ``AWS_ENDPOINT_URL``
``LOADLAB_AGENT_TABLE``              checkpoint table (``loadlab-checkpoints``)
``LOADLAB_TIME_SCALE``               multiplies every delay the agent waits on its own
                                     (simulated init, retry waits), > 0 (``1.0``)
``LOADLAB_AGENT_INIT_MS``            simulated expensive initialisation in ms, before scaling
                                     (``800``)
``LOADLAB_AGENT_INIT``               Lambda only: where the agent initialises, ``module``
                                     (once per environment) or ``handler`` (in every
                                     invocation; read by the Lambda handler) (``module``)
``LOADLAB_AGENT_INSTANCE_ID``        name reported in every ``meta`` event
                                     (``agent-<pid>-<random hex>``)
``LOADLAB_AGENT_MODE``               ``correct``, or a deliberate breakage for oracle tests:
                                     ``no_checkpoint``, ``checkpoint_before_side_effect``,
                                     ``no_idempotency`` (``correct``)
``LOADLAB_AGENT_SHUTDOWN_GRACE_S``   on SIGTERM, how long in-flight turns may finish (``20``)
``LOADLAB_AGENT_CACHE_SIZE``         sessions kept in the hot in-process cache (``10000``)
===================================  ==========================================================

AWS credentials and region come from the usual AWS variables; the region falls
back to ``us-east-1`` when none is set.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar, cast, get_args
from urllib.parse import urlsplit

from loadlab.errors import ConfigError

AgentMode = Literal["correct", "no_checkpoint", "checkpoint_before_side_effect", "no_idempotency"]
AGENT_MODES: tuple[str, ...] = get_args(AgentMode)
DEFAULT_TABLE = "loadlab-checkpoints"
MIN_SECRET_BYTES = 32

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """Everything one agent instance needs; see the module docstring for the variables."""

    jwt_secret: str = field(repr=False)
    llm_url: str
    llm_model: str = "loadlab-sim-1"
    llm_max_attempts: int = 3
    llm_timeout_s: float = 30.0
    llm_max_retry_wait_s: float = 10.0
    llm_max_tokens: int = 120
    dynamodb_endpoint: str | None = None
    table: str = DEFAULT_TABLE
    time_scale: float = 1.0
    init_ms: float = 800.0
    instance_id: str = field(default_factory=lambda: f"agent-{os.getpid()}-{secrets.token_hex(2)}")
    mode: AgentMode = "correct"
    shutdown_grace_s: float = 20.0
    cache_size: int = 10_000

    def __post_init__(self) -> None:
        url_fix = "give a base URL such as http://127.0.0.1:8001"
        modes = ", ".join(AGENT_MODES)
        # DynamoDB's own naming rule for the table, so a typo fails here, not on a turn.
        table_ok = 3 <= len(self.table) <= 255 and all(
            c.isalnum() or c in "_.-" for c in self.table
        )
        rules: list[tuple[bool, str, object, str]] = [
            (len(self.jwt_secret.encode()) >= MIN_SECRET_BYTES, "LOADLAB_JWT_SECRET",
             f"<{len(self.jwt_secret.encode())} bytes>",
             f"use at least {MIN_SECRET_BYTES} bytes (RFC 7518 for HS256)"),
            (_is_http_url(self.llm_url), "LOADLAB_AGENT_LLM_URL", self.llm_url, url_fix),
            (bool(self.llm_model.strip()), "LOADLAB_AGENT_LLM_MODEL", self.llm_model, "name it"),
            (self.llm_max_attempts >= 1, "LOADLAB_AGENT_LLM_MAX_ATTEMPTS",
             self.llm_max_attempts, "use an integer >= 1"),
            (_positive(self.llm_timeout_s), "LOADLAB_AGENT_LLM_TIMEOUT_S",
             self.llm_timeout_s, "use a number > 0"),
            (_positive(self.llm_max_retry_wait_s, zero_ok=True),
             "LOADLAB_AGENT_LLM_MAX_RETRY_WAIT_S", self.llm_max_retry_wait_s, "use a number >= 0"),
            (self.llm_max_tokens >= 1, "LOADLAB_AGENT_LLM_MAX_TOKENS", self.llm_max_tokens,
             "use an integer >= 1"),
            (self.dynamodb_endpoint is None or _is_http_url(self.dynamodb_endpoint),
             "LOADLAB_AGENT_DYNAMODB_ENDPOINT", self.dynamodb_endpoint,
             "give a URL such as http://127.0.0.1:4566, or unset it"),
            (table_ok, "LOADLAB_AGENT_TABLE", self.table,
             "use 3-255 characters from a-z A-Z 0-9 _ . -"),
            (_positive(self.time_scale), "LOADLAB_TIME_SCALE", self.time_scale,
             "use a number > 0 (1.0 is real time, 0.01 is 100x faster)"),
            (_positive(self.init_ms, zero_ok=True), "LOADLAB_AGENT_INIT_MS", self.init_ms,
             "use a number of milliseconds >= 0"),
            (bool(self.instance_id.strip()), "LOADLAB_AGENT_INSTANCE_ID", self.instance_id,
             "give a non-empty name"),
            (self.mode in AGENT_MODES, "LOADLAB_AGENT_MODE", self.mode, f"use one of {modes}"),
            (_positive(self.shutdown_grace_s), "LOADLAB_AGENT_SHUTDOWN_GRACE_S",
             self.shutdown_grace_s, "use a number of seconds > 0"),
            (self.cache_size >= 1, "LOADLAB_AGENT_CACHE_SIZE", self.cache_size,
             "use an integer >= 1"),
        ]  # fmt: skip
        for ok, var, value, fix in rules:
            if not ok:
                raise ConfigError(f"{var}={value!r} is invalid", hint=fix)

    @property
    def init_delay_s(self) -> float:
        """The simulated initialisation delay, in real seconds."""
        return self.init_ms * self.time_scale / 1000.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentConfig:
        """Build the config from ``environ`` (default: ``os.environ``).

        Raises :class:`~loadlab.errors.ConfigError` naming the variable and the fix.
        """
        env = os.environ if environ is None else environ

        def get(name: str, parse: Callable[[str], _T], default: _T) -> _T:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                return parse(raw)
            except ValueError:
                raise ConfigError(
                    f"{name}={raw!r} is not a valid {parse.__name__}",
                    hint=f"set {name} to a {parse.__name__} or unset it",
                ) from None

        secret = env.get("LOADLAB_JWT_SECRET", "")
        if not secret:
            raise ConfigError(
                "LOADLAB_JWT_SECRET is not set",
                hint="export LOADLAB_JWT_SECRET=<the HS256 secret the load users sign with>",
            )
        llm_url = env.get("LOADLAB_AGENT_LLM_URL", "").strip()
        if not llm_url:
            raise ConfigError(
                "LOADLAB_AGENT_LLM_URL is not set",
                hint="export LOADLAB_AGENT_LLM_URL=http://127.0.0.1:<LLM simulator port>",
            )
        defaults = cls(jwt_secret=secret, llm_url=llm_url)
        mode: str = get("LOADLAB_AGENT_MODE", str, "correct")
        if mode not in AGENT_MODES:
            raise ConfigError(
                f"LOADLAB_AGENT_MODE={mode!r} is invalid",
                hint=f"use one of {', '.join(AGENT_MODES)}",
            )
        return cls(
            jwt_secret=secret,
            llm_url=llm_url.rstrip("/"),
            llm_model=get("LOADLAB_AGENT_LLM_MODEL", str, defaults.llm_model),
            llm_max_attempts=get("LOADLAB_AGENT_LLM_MAX_ATTEMPTS", int, defaults.llm_max_attempts),
            llm_timeout_s=get("LOADLAB_AGENT_LLM_TIMEOUT_S", float, defaults.llm_timeout_s),
            llm_max_retry_wait_s=get(
                "LOADLAB_AGENT_LLM_MAX_RETRY_WAIT_S", float, defaults.llm_max_retry_wait_s
            ),
            llm_max_tokens=get("LOADLAB_AGENT_LLM_MAX_TOKENS", int, defaults.llm_max_tokens),
            dynamodb_endpoint=get("LOADLAB_AGENT_DYNAMODB_ENDPOINT", str, None),
            table=get("LOADLAB_AGENT_TABLE", str, defaults.table),
            time_scale=get("LOADLAB_TIME_SCALE", float, defaults.time_scale),
            init_ms=get("LOADLAB_AGENT_INIT_MS", float, defaults.init_ms),
            instance_id=get("LOADLAB_AGENT_INSTANCE_ID", str, defaults.instance_id),
            mode=cast(AgentMode, mode),  # checked against AGENT_MODES just above
            shutdown_grace_s=get(
                "LOADLAB_AGENT_SHUTDOWN_GRACE_S", float, defaults.shutdown_grace_s
            ),
            cache_size=get("LOADLAB_AGENT_CACHE_SIZE", int, defaults.cache_size),
        )


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _positive(value: float, *, zero_ok: bool = False) -> bool:
    return math.isfinite(value) and (value >= 0 if zero_ok else value > 0)
