"""loadlab's locustfile for plain Locust: shoppers holding sessions with an agent.

    locust -f scenarios/shopping_assistant.py --scenario scenarios/demo.yaml --host URL
    locust -f scenarios/shopping_assistant.py --scenario scenarios/ci_smoke.yaml --headless

It is the same file ``loadlab run`` uses (``loadlab/app/locustfile.py``): the
scenario picks the load shape, the personas and the agent protocol; rows go to
the run directory given by --run-dir (default: a new one under runs/). For an
agent deployed as a Lambda function, use ``loadlab/app/lambda_locustfile.py``.
"""

from loadlab.app.locustfile import ScenarioShape, ShoppingSessionUser

__all__ = ["ScenarioShape", "ShoppingSessionUser"]
