"""loadlab's locustfile: shoppers holding sessions with a shopping-assistant agent.

    locust -f scenarios/shopping_assistant.py --scenario scenarios/demo.yaml --host URL
    locust -f scenarios/shopping_assistant.py --scenario scenarios/ci_smoke.yaml --headless

The scenario picks the load shape, the personas and the agent protocol; rows go
to the run directory given by --run-dir.
"""

import locust

from loadlab.load.shapes import ScenarioShape
from loadlab.load.users import ShoppingSessionUser
from loadlab.measure import plugin

plugin.register(locust.events)

__all__ = ["ScenarioShape", "ShoppingSessionUser"]
