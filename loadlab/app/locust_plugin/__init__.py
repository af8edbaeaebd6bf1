"""loadlab inside the Locust process (the locustfiles call :func:`register`).

``register(locust.events)`` adds loadlab's command line options to Locust
(:mod:`.options`) and listens to its events (:mod:`.events`): at ``init`` it
builds the run's :class:`~loadlab.load.context.LoadContext` (:mod:`.context`,
where the transport is chosen once), writes ``manifest.json`` (:mod:`.manifest`)
and starts the recorder, or on a ``--worker`` the forwarding of rows to the
master (:mod:`.forwarding`); at ``quitting`` it seals the run directory.
"""

from loadlab.app.locust_plugin.events import register

__all__ = ["register"]
