"""Credentials out of everything loadlab writes or prints.

An agent that echoes the ``Authorization`` header in its error body, a URL
with ``user:password@`` in it, a provider error that quotes an API key: text
like this reaches error messages, verdict reasons, the run directory and the
terminal. :class:`Redactor` replaces, in any string:

* the **configured secrets**: the values of the environment variables in
  :data:`SECRET_ENV_VARS` (the agent's JWT secret, the OpenAI-compatible API
  key, the AWS secret key and session token, the embedded stack's admin token,
  Kubernetes credentials) plus any given explicitly, also in their URL-quoted
  and JSON-escaped spellings;
* ``Bearer <token>`` and ``Basic <token>`` values;
* JWT-shaped strings (``eyJ...`` header, payload, signature);
* ``sk-...``-shaped API keys;
* AWS access key ids (``AKIA...``, ``ASIA...``) and secret access keys given
  after a ``secret_access_key``-like name;
* ``api_key=``/``password=``-style values;
* the userinfo of URLs (``scheme://user:password@host``).

Each is replaced by :data:`REDACTED`. Writers apply it as a last line
(recorder rows, ``summary.json``, the reports, ``junit.xml``, ``live.json``,
printed errors), and the agent client where an error message is made. A
redactor is built once per process from its environment
(:meth:`Redactor.from_env`) and passed down; there is no module state.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar
from urllib.parse import quote

REDACTED = "[REDACTED]"

#: Environment variables whose values are secrets wherever they appear.
SECRET_ENV_VARS: tuple[str, ...] = (
    "LOADLAB_JWT_SECRET",
    "LOADLAB_OPENAI_API_KEY",
    "LOADLAB_ADMIN_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "KUBERNETES_API_KEY",
    "KUBERNETES_PASSWORD",
    "OPENAI_API_KEY",
)

#: Configured secrets shorter than this are not searched for: replacing every
#: "ab" in a report would hide the report, and so short a value protects nothing.
MIN_SECRET_LENGTH = 6

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://userinfo@host: the whole userinfo goes (a lone token is a credential too)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/?#@'\"<>\\]+@"), rf"\1{REDACTED}@"),
    (re.compile(r"(?i)\b(bearer|basic)(\s+|%20)[A-Za-z0-9._~+/=\-]{8,}"), rf"\1\2{REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*"), REDACTED),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"), REDACTED),
    (
        re.compile(
            r"(?i)((?:aws_?)?secret_?access_?key|x-api-key|api[_\-]?key|passw(?:or)?d)"
            r"([\"']?\s*[:=]\s*[\"']?)[^\s\"'\\,;&}]+"
        ),
        rf"\1\2{REDACTED}",
    ),
)

# What some pattern above needs somewhere in the (lower-cased) text: looking for
# these first lets the usual text, with no credential in it, through ten times
# faster than running every pattern (substring tests beat one regex alternation).
_TRIGGERS = (
    "://", "bearer", "basic", "eyj", "sk-", "secret", "api", "passw",
    "akia", "asia", "aida", "aroa", "agpa", "anpa", "anva", "aipa",
)  # fmt: skip

T = TypeVar("T")


class Redactor:
    """Replaces credentials in strings (see the module docstring for what counts)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        spellings: set[str] = set()
        for secret in secrets:
            if secret is None or len(secret.strip()) < MIN_SECRET_LENGTH:
                continue
            value = secret.strip()
            spellings.update({value, quote(value, safe=""), json.dumps(value)[1:-1]})
        # the longest first, so that a secret containing another goes whole
        ordered = sorted(spellings, key=len, reverse=True)
        self._spellings = tuple(ordered)
        self._nul_in_secret = any("\0" in spelling for spelling in ordered)
        self._secrets = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __repr__(self) -> str:
        return "Redactor(...)"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, extra: Iterable[str | None] = ()
    ) -> Redactor:
        """A redactor for the secrets configured in ``environ`` (default: this process's)."""
        env = os.environ if environ is None else environ
        return cls([*(env.get(name) for name in SECRET_ENV_VARS), *extra])

    def __call__(self, text: str) -> str:
        """``text`` with every credential replaced by :data:`REDACTED`."""
        if len(text) < MIN_SECRET_LENGTH or not self._may_hold_a_credential(text):
            return text
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def _may_hold_a_credential(self, text: str) -> bool:
        for secret in self._spellings:
            if secret in text:
                return True
        lower = text.lower()
        for trigger in _TRIGGERS:  # noqa: SIM110 - a plain loop is 4x faster than any() here
            if trigger in lower:
                return True
        return False

    def column(self, values: Sequence[object]) -> Sequence[object]:
        """:meth:`optional` for each of ``values`` (a table's column), looking for
        credentials once over all its strings: a column with none comes back as it is.

        Joined with NUL, which no pattern, trigger or configured secret contains, the
        strings hold a credential's first sign only where one of them does.
        """
        if self._nul_in_secret:
            return tuple(map(self.optional, values))
        try:
            joined = "\0".join(filter(None, values))  # type: ignore[arg-type]
        except TypeError:  # a value that is not a string: each is looked at alone
            return tuple(map(self.optional, values))
        if not self._may_hold_a_credential(joined):
            return values
        return tuple(map(self.optional, values))

    def optional(self, text: object) -> object:
        """Like calling the redactor, for any value: strings are redacted, the rest (None,
        a number a worker sent for a text column) is returned as it is, for the caller
        to convert or report."""
        return self(text) if isinstance(text, str) else text

    def tree(self, value: T) -> T:
        """A JSON-like value (dicts, lists, strings, numbers) with every string redacted."""
        return self._tree(value)  # type: ignore[return-value]

    def _tree(self, value: object) -> object:
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self._tree(k): self._tree(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._tree(v) for v in value)
        return value


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` redacted with the secrets of ``environ`` (default: this process's).

    For one-off messages (a printed error); a writer of many rows keeps one
    :class:`Redactor` instead.
    """
    return Redactor.from_env(environ)(text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (and its traceback text)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted text; never drops a record."""
        record.msg = self._redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


def redact_logs(redactor: Redactor | None = None) -> None:
    """Redact everything the root logger's handlers write (call after configuring logging)."""
    log_filter = RedactingFilter(Redactor.from_env() if redactor is None else redactor)
    for handler in logging.getLogger().handlers:
        handler.addFilter(log_filter)
