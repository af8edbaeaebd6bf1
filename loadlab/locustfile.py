"""loadlab's locustfile: shopping sessions, the scenario's load shape, the recorder.

``loadlab run`` hands this file to Locust. It works with plain Locust too::

    locust -f loadlab/locustfile.py --scenario scenarios/flash_sale.yaml \\
        --host http://127.0.0.1:8080 --headless
"""

import locust

from loadlab.load.shapes import ScenarioShape
from loadlab.load.users import ShoppingSessionUser
from loadlab.measure.plugin import register

register(locust.events)

__all__ = ["ScenarioShape", "ShoppingSessionUser"]
