"""loadlab's locustfile with Locust's own web UI and no loadlab tab.

bench/web_tab_overhead.py's ``web`` variant: everything ``loadlab run --web``
runs (the users, the shape, the recorder, live.json, Locust's UI and its
statistics cache), but the loadlab tab is never installed, so what ``on`` costs
beyond this is the tab and the metrics endpoint alone.
"""

import loadlab.app.locust_plugin.events as _events

# looked up when Locust's init event fires, after this file is imported
_events.install_tab = lambda *args, **kwargs: None

from loadlab.app.locustfile import *  # noqa: E402, F403  (the users, the shape, the plugin)
from loadlab.app.locustfile import __all__  # noqa: E402, F401
