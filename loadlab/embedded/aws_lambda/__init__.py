"""The reference agent as an AWS Lambda function (zip), for ministack and for AWS.

Modules, by role:

* :mod:`~loadlab.embedded.aws_lambda.handler` — ``handler(event, context)``, the
  function's entry point (``loadlab.embedded.aws_lambda.handler.handler``);
* :mod:`~loadlab.embedded.aws_lambda.runtime` — :class:`LambdaAgent`: one execution
  environment's event loop and :class:`~loadlab.embedded.agent.core.ShoppingAgent`;
* :mod:`~loadlab.embedded.aws_lambda.calls` — direct and HTTP-proxy events in,
  proxy-shaped responses out;
* :mod:`~loadlab.embedded.aws_lambda.killhook` — kill orders: an environment ends
  its own process mid-invocation when a chaos experiment asks (usable in any
  Python function);
* :mod:`~loadlab.embedded.aws_lambda.snapstart` — SnapStart runtime hooks, and an
  environment restored from the snapshot instead of initialised;
* :mod:`~loadlab.embedded.aws_lambda.snapshot_keeper` — the process that initialises
  once and forks restored environments (started by the stack, not in the zip);
* :mod:`~loadlab.embedded.aws_lambda.provisioned` — emulated provisioned concurrency;
* :mod:`~loadlab.embedded.aws_lambda.package` — the deployment zip (cached);
* :mod:`~loadlab.embedded.aws_lambda.deploy` — create/update the function with boto3,
  and what ministack's Lambda does and does not do.

Only ``handler``, ``runtime``, ``calls``, ``killhook`` and ``snapstart`` go into the
zip; this ``__init__`` imports nothing, so the function's cold start pays only for what it uses.
"""
