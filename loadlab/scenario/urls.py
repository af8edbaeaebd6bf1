"""What is wrong with an agent URL, said before anything tries to connect to it."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["url_problem"]


def url_problem(url: str) -> str | None:
    """None for a usable ``http(s)://HOST[:PORT]`` URL, else what is wrong with it.

    ``urlsplit`` parses lazily: a bad port or an unclosed IPv6 bracket only
    raises when the port or host is read, so both are read here.
    """
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # "Invalid IPv6 URL"
        return f"{exc}: close the bracket, e.g. http://[::1]:8080"
    if parts.scheme not in ("http", "https"):
        return f"the scheme must be http or https, not {parts.scheme or 'missing'!r}"
    if not hostname:
        return "it has no host"
    try:
        port = parts.port
    except ValueError:
        written = parts.netloc.rpartition(":")[2]
        if written.isdigit():
            return f"port {written} out of range (1-65535)"
        return f"port {written!r} is not a number"
    if port == 0:
        return "port 0 out of range (1-65535)"
    return None
