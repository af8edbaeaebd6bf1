"""loadlab's locustfile: shopping sessions over HTTP, the scenario's load shape, the recorder.

``loadlab run`` hands this file to Locust. It works with plain Locust too::

    locust -f loadlab/app/locustfile.py --scenario scenarios/flash_sale.yaml \\
        --host http://127.0.0.1:8080 --headless

For an agent deployed as a Lambda function, use ``lambda_locustfile.py`` beside it.
"""

import locust

from loadlab.app.locust_plugin import register
from loadlab.load.shapes import ScenarioShape
from loadlab.load.users import ShoppingSessionUser

register(locust.events)

__all__ = ["ScenarioShape", "ShoppingSessionUser"]
