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

import _thread
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Offloader", "loop_lock", "offloader", "under_gevent"]

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


def loop_lock() -> _thread.LockType:
    """A lock for critical sections that never wait: a few updates of shared state.

    Under gevent's patching, ``threading.Lock()`` is gevent's cooperative lock,
    whose ``acquire`` runs Python code; taken for every turn (the live window
    counts each one) it cost more than the update it guarded. A section that
    never yields cannot be entered by another greenlet half way, so all it
    needs is the operating system's lock, which also keeps out the real
    threads of gevent's pool: this returns that one (``threading.Lock()``
    without gevent). Never hold it across anything that can yield (I/O, a
    sleep, a cooperative lock): a second greenlet waiting for it would block
    the whole loop.
    """
    if under_gevent():
        from gevent import monkey

        allocate: Any = monkey.get_original("_thread", "allocate_lock")
        lock: _thread.LockType = allocate()
        return lock
    return threading.Lock()
