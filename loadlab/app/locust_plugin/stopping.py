"""How a load run's Locust process ends: its shape, a Ctrl-C, Stop in the web UI.

A run stops the same way whatever ended it (Locust's runner quits: users are
stopped, the ``quitting`` listener seals the recorder and stamps the manifest's
end) and says why in the manifest's ``stopped_by``:

* ``shape``: the load shape ended (or the runner was stopped by other code);
* ``interrupt``: SIGINT, from a terminal's Ctrl-C or passed on by ``loadlab run``.
  Locust's own handling (a ``KeyboardInterrupt`` raised wherever the main
  greenlet is) is replaced: the first SIGINT stops the load at once, as the end
  of the shape would; a second exits at once with 130, leaving a run with no
  end, which loadlab judges incomplete;
* ``web_ui``: Stop pressed in Locust's web UI;
* ``abort_gate``: a stop condition (:mod:`.abort`);
* ``terminated``: the process quit while the load still ran (Locust's SIGTERM).

With the web UI, the process closes out once the load stops (Stop pressed, the
shape ended, a Ctrl-C) instead of serving the UI forever. Under ``loadlab run
--web`` (``--serve-until-interrupted``) it seals the run directory at once and
goes on serving the UI, whose loadlab tab and *Download Data* tab link to the
report once ``loadlab run`` has written it; the next SIGINT (``loadlab run``
sends it when its report is done and its ``--web-linger`` is over, or a Ctrl-C
of its own) closes the UI and the process exits as Locust does.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import Any, Literal

import gevent

__all__ = ["INTERRUPTED_EXIT_CODE", "RunStopper", "StoppedBy"]

StoppedBy = Literal["shape", "interrupt", "web_ui", "abort_gate", "terminated"]

INTERRUPTED_EXIT_CODE = 130
"""The exit code of a second SIGINT (the shell's code for death by SIGINT)."""


class RunStopper:
    """Stops one Locust process's load on SIGINT or Stop, and remembers what stopped it."""

    def __init__(
        self,
        environment: Any,
        *,
        web_ui: Any = None,
        seal: Callable[[], None] | None = None,
    ) -> None:
        """``seal``: with the web UI, seal the run when the load stops and serve on."""
        self._environment = environment
        self._web_ui = web_ui
        self._seal = seal
        self._interrupts = 0
        self._closing = False
        self.sealed = False
        self.stopped_by: StoppedBy | None = None

    def install(self) -> RunStopper:
        """Take over SIGINT; with the web UI, notice its Stop button."""
        gevent.signal_handler(signal.SIGINT, self._on_interrupt)
        if self._web_ui is not None:
            self._web_ui.app.before_request(self._notice_stop_button)
        return self

    def load_stopped(self) -> None:
        """Locust's ``test_stop``: with the web UI, close out (the run is over)."""
        if self.stopped_by is None:
            self.stopped_by = "shape"
        if self._web_ui is not None:
            self._close_out()

    def quitting(self) -> StoppedBy:
        """What stopped the run, asked when the process quits."""
        if self.stopped_by is None:
            self.stopped_by = "terminated"
        return self.stopped_by

    def _on_interrupt(self) -> None:
        if self.sealed and self._web_ui is not None:
            # the run is over and sealed; the UI was kept up to show the report
            self._web_ui.stop()
            return
        self._interrupts += 1
        if self._interrupts > 1:
            sys.stderr.write("loadlab: interrupted again: exiting now; the run has no end\n")
            sys.stderr.flush()
            os._exit(INTERRUPTED_EXIT_CODE)
        if self.stopped_by is None:
            self.stopped_by = "interrupt"
        sys.stderr.write(
            "loadlab: interrupted: stopping the load and sealing the run "
            "(interrupt again to exit at once)\n"
        )
        sys.stderr.flush()
        self._close_out()

    def _notice_stop_button(self) -> Any:
        from flask import request

        if request.method != "POST":
            return None
        if request.path == "/stop" and self.stopped_by is None:
            self.stopped_by = "web_ui"
        if request.path == "/swarm" and self.sealed:
            # the UI offers a new test once one stopped: this run is over and sealed
            return (
                {
                    "success": False,
                    "message": "this loadlab run has ended and its run directory is sealed; "
                    "start a new run with `loadlab run`",
                },
                409,
            )
        return None

    def _close_out(self) -> None:
        if self._closing:
            return
        self._closing = True
        # In a greenlet of its own: test_stop fires inside the runner's (or the
        # shape's) greenlet, which quitting the runner kills.
        gevent.spawn(self._quit)

    def _quit(self) -> None:
        runner = self._environment.runner
        shape = getattr(runner, "shape_greenlet", None)
        if self._web_ui is None and shape is not None and not shape.dead:
            # Headless, Locust's main greenlet waits for the shape and then quits
            # the runner itself: end the shape, as its last tick would.
            shape.kill(block=False)
            return
        if runner is not None:
            runner.quit()
        if self._web_ui is None:
            return
        if self._seal is None:
            self._web_ui.stop()  # Locust's main greenlet (the web server) ends: it shuts down
        else:
            # Sealed now (not when the process quits): `loadlab run` sees the run's
            # end stamped, audits and writes the report while the UI still serves it.
            self._seal()
            self.sealed = True
            sys.stderr.write(
                "loadlab: the load has stopped and the run is sealed; the web UI stays up "
                "to link to the report (interrupt to close it)\n"
            )
            sys.stderr.flush()
