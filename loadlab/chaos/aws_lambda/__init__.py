"""Chaos Toolkit activities for a Lambda function: recycle, kill and throttle its environments.

* :mod:`~loadlab.chaos.aws_lambda.actions` — ``recycle_environments`` (a
  deployment's effect), ``kill_environments`` (a share of the environments end
  mid-invocation, through a kill order the function's hook obeys),
  ``throttle`` (reserved concurrency down), their rollbacks, and
  ``revert_expired_leases``;
* :mod:`~loadlab.chaos.aws_lambda.probes` — reserved concurrency, the kill
  order, the leases in force;
* :mod:`~loadlab.chaos.aws_lambda.leases` — every fault is a lease recorded in
  SSM Parameter Store before it is applied, and reverted by its rollback, its
  expiry (:mod:`~loadlab.chaos.aws_lambda.watchdog`) or loadlab's next start
  (:func:`~loadlab.chaos.aws_lambda.leases.revert_orphaned_leases`).

The function side of kill orders is ``loadlab.embedded.aws_lambda.killhook``.
"""
