"""loadlab's locustfile for an agent deployed as a Lambda function: turns are Invoke calls.

``loadlab run`` hands this file to Locust when the run names a function. With
plain Locust::

    locust -f loadlab/app/lambda_locustfile.py --scenario scenarios/demo.yaml \\
        --lambda-function loadlab-agent --host https://lambda.us-east-1.amazonaws.com

Credentials and region come from the usual AWS settings.
"""

import locust

from loadlab.app.locust_plugin import register
from loadlab.load.aws_lambda.users import LambdaSessionUser
from loadlab.load.shapes import ScenarioShape

register(locust.events)

__all__ = ["LambdaSessionUser", "ScenarioShape"]
