"""Provisioned concurrency for the embedded function: N environments initialised before the sale.

ministack 1.5.33 stores ``PutProvisionedConcurrencyConfig`` (and answers
``GetProvisionedConcurrencyConfig`` with it, ``READY``) but starts no
environment for it: its provisioned concurrency is a stub. So the embedded
stack emulates it: it records the configuration through that API (so the run's
manifest reads it back as on AWS), then sends N *concurrent* provisioning
invocations (``{"loadlab_provision": {"hold_ms": H}}``). Each one lands on an
environment of its own (ministack leases one worker per invocation in flight,
and each holds its worker for ``hold_ms``), initialises the agent there, and
marks it provisioned: the environment's first turn is then not a cold start,
as on an AWS provisioned environment whose INIT ran before any request.

What this does not emulate: AWS keeps provisioned environments forever and
replaces them; ministack reaps idle surplus workers after
``LAMBDA_WARM_TTL_SECONDS`` (300 s), so provision right before the sale. The
provisioned environments also count against the function's reserved
concurrency only while busy (as on AWS).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from loadlab.errors import StackError

if TYPE_CHECKING:
    from types_boto3_lambda.client import LambdaClient

PROVISION_EVENT = "loadlab_provision"
"""The key of a provisioning invocation's event."""
QUALIFIER = "$LATEST"
"""ministack accepts provisioned concurrency on ``$LATEST`` (AWS needs a version or alias)."""


def provision(
    client: LambdaClient, function: str, environments: int, *, hold_ms: float = 1500.0
) -> tuple[str, ...]:
    """Record and emulate provisioned concurrency ``environments``; the instance ids warmed.

    Raises :class:`StackError` when fewer distinct environments answered than asked.
    """
    client.put_provisioned_concurrency_config(
        FunctionName=function,
        Qualifier=QUALIFIER,
        ProvisionedConcurrentExecutions=environments,
    )
    event = json.dumps({PROVISION_EVENT: {"hold_ms": hold_ms}}).encode()

    def one(_: int) -> dict[str, Any]:
        response = client.invoke(FunctionName=function, Payload=event)
        payload = json.loads(response["Payload"].read() or b"{}")
        body = payload.get("body")
        return json.loads(body) if isinstance(body, str) else {}

    with ThreadPoolExecutor(max_workers=environments) as pool:
        answers = list(pool.map(one, range(environments)))
    warmed = tuple(sorted({str(a["instance_id"]) for a in answers if a.get("instance_id")}))
    if len(warmed) < environments:
        raise StackError(
            f"provisioned concurrency {environments}: only {len(warmed)} distinct environments "
            f"were initialised ({list(warmed)})",
            hint="lower --provisioned-concurrency, or raise the hold time",
        )
    return warmed
