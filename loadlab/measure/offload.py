"""Blocking file I/O off the load's loop: gevent's pool of real threads under Locust.

Under Locust, gevent has patched ``threading``: a "thread" of the harness (the
recorder's flusher, the live status writer) is a greenlet on the same loop as
every user, and a blocking write stops them all for its duration. On this kind
of machine, replacing a small file (write, then rename over the old one) takes
1-3 ms (the filesystem flushes the new data at the rename); a parquet part
more. :func:`offloader` gives the function that runs such a write in gevent's
pool of real OS threads (file writes and pyarrow release the GIL for most of
it) while only the calling greenlet waits. Without gevent's patching the caller
is already a real thread, and the write runs inline.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Offloader", "offloader", "under_gevent"]

Offloader = Callable[[Callable[[], None]], None]


def offloader() -> Offloader:
    """How this process runs a blocking write without stalling the load (see above)."""
    if not under_gevent():
        return _run_inline
    from gevent import get_hub

    pool = get_hub().threadpool
    apply: Offloader = pool.apply
    return apply


def _run_inline(fn: Callable[[], None]) -> None:
    fn()


def under_gevent() -> bool:
    """Whether gevent has patched ``threading`` (threads of the harness are greenlets)."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent comes with locust
        return False
    return bool(monkey.is_module_patched("threading"))
