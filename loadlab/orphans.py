"""No orphans: every child process loadlab starts dies with the process that started it.

On Linux a child gets ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` between ``fork`` and
``exec`` (:func:`die_with_parent`), so a SIGKILLed or crashed loadlab takes its
Locust process, its ``chaos run`` and the embedded stack's servers with it
instead of leaving them re-parented to PID 1, still sending load and writing
rows. The kernel sends the signal when the *thread* that forked the child
exits: start children from a thread that outlives them (the main thread, with
``asyncio.run``; Chaos Toolkit runs the activities of a method there too).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["die_with_parent", "running"]

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """Return a ``preexec_fn`` that makes the child SIGKILLed when its parent dies.

    Linux only (``None`` elsewhere). libc's ``prctl`` is looked up here, in the
    parent, because loading a library between ``fork`` and ``exec`` can deadlock.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent_pid = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        # The parent may have died between fork and prctl; then no signal will come.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def running(pid: int) -> bool:
    """True while ``pid`` is a process that has not ended.

    ``os.kill(pid, 0)`` alone is not enough: a process that ended but was not
    yet reaped (a zombie) still answers it. An orphan's zombie stays until PID 1
    reaps it, and in a container whose PID 1 is not an init (``docker run``
    without ``--init``, many CI runners) that never happens. On Linux the state
    letter in ``/proc/<pid>/stat`` tells: ``Z`` or ``X`` means ended.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, under another user; /proc still tells its state
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return not sys.platform.startswith("linux")  # ended meanwhile, or no /proc here
    except OSError:
        return True
    # the state follows the command name, which may itself contain ") "
    fields = stat.rsplit(")", 1)[-1].split()
    return not fields or fields[0] not in ("Z", "X")
