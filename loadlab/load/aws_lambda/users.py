"""The Locust user for an agent deployed as a Lambda function.

:class:`LambdaSessionUser` is a plain Locust ``User`` (it never speaks HTTP)
whose turns go through :class:`~loadlab.load.aws_lambda.invoke.LambdaTransport`:
the same seeded sessions, think times, retries, ledger, verdicts and Locust
statistics as :class:`~loadlab.load.users.ShoppingSessionUser`. The run's
context names the function (``--lambda-function``, or the scenario's
``target.function``) and the Lambda API endpoint (``target.url`` or ``--host``:
ministack's URL, or ``https://lambda.<region>.amazonaws.com``); credentials and
region come from the usual AWS variables.

Every invocation also adds ``pressure`` rows (source ``lambda``: ``invoke_ms``,
``cold_start``, ``init_ms``, ``throttled``, and ``duration_ms``,
``billed_duration_ms``, ``max_memory_used_mb`` when Lambda's ``REPORT`` line is
available), whose ``figures`` dimension says where the cold-start figures come
from. All users of a Locust process share one boto3 client (thread-safe, and
cooperative under gevent), kept on the run's context.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loadlab.errors import ConfigError
from loadlab.load.adapters import ReferenceAdapter
from loadlab.load.aws_lambda.invoke import (
    LambdaInvocation,
    LambdaTransport,
    function_and_qualifier,
    invoke_client,
)
from loadlab.load.client import AgentClient
from loadlab.load.context import LoadContext
from loadlab.load.users import SessionUser

if TYPE_CHECKING:
    from types_boto3_lambda.client import LambdaClient

_SPARE_CONNECTIONS = 10


def shared_invoke_client(
    context: LoadContext, *, endpoint_url: str, timeout_s: float, max_connections: int
) -> LambdaClient:
    """The Lambda client of this Locust process for ``endpoint_url`` (made on first use)."""
    key = (endpoint_url, timeout_s)
    client: LambdaClient | None = context.lambda_clients.get(key)
    if client is None:
        client = invoke_client(
            endpoint_url=endpoint_url, timeout_s=timeout_s, max_connections=max_connections
        )
        context.lambda_clients[key] = client
    return client


def function_settings(context: LoadContext) -> dict[str, int]:
    """What the cost model needs from the function's configuration, read before the sale.

    ``memory_mb``, ``snapstart`` (1: ``SnapStart.ApplyOn`` is ``PublishedVersions``) and
    ``agent_init_in_handler`` (1: the reference agent initialises in every invocation),
    from ``GetFunctionConfiguration``, and ``provisioned_concurrency``
    (``GetProvisionedConcurrencyConfig`` of ``$LATEST``: allocated environments),
    each left out when the API does not answer it. Never raises: the run goes on
    without them and ``loadlab cost`` says what is missing.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    function = context.lambda_function
    if not function:
        return {}
    settings: dict[str, int] = {}
    try:
        client = shared_invoke_client(
            context,
            endpoint_url=context.target_url,
            timeout_s=context.scenario.target.timeout_s,
            max_connections=context.scenario.shape.peak + _SPARE_CONNECTIONS,
        )
        config = client.get_function_configuration(FunctionName=function)
        if isinstance(config.get("MemorySize"), int):
            settings["memory_mb"] = config["MemorySize"]
        snapstart = config.get("SnapStart", {})
        variables = config.get("Environment", {}).get("Variables", {})
        # AWS reports ApplyOn for $LATEST too, with OptimizationStatus Off: only a
        # published version restores from a snapshot. The embedded emulation restores
        # $LATEST through its snapshot keeper (the reference agent's socket variable).
        if (
            snapstart.get("ApplyOn") == "PublishedVersions"
            and snapstart.get("OptimizationStatus") == "On"
        ) or variables.get("LOADLAB_SNAPSTART_SOCKET"):
            settings["snapstart"] = 1
        if variables.get("LOADLAB_AGENT_INIT") == "handler":  # the reference agent's switch
            settings["agent_init_in_handler"] = 1
        name, qualifier = function_and_qualifier(function)
        provisioned = client.get_provisioned_concurrency_config(
            FunctionName=name, Qualifier=qualifier
        )
        allocated = provisioned.get("AllocatedProvisionedConcurrentExecutions")
        if isinstance(allocated, int) and allocated > 0:
            settings["provisioned_concurrency"] = allocated
    except (BotoCoreError, ClientError, ConfigError):
        pass
    return settings


def lambda_agent_client(context: LoadContext) -> AgentClient:
    """An agent client that plays each turn as a ``lambda:Invoke`` of the context's function."""
    function = context.lambda_function
    if not function:
        raise ConfigError(
            "the Lambda user needs a function to invoke, and this run names none",
            hint="pass --lambda-function NAME, or set target: {protocol: lambda, function: "
            "<name or ARN>} in the scenario",
        )
    timeout_s = context.scenario.target.timeout_s
    client = shared_invoke_client(
        context,
        endpoint_url=context.target_url,
        timeout_s=timeout_s,
        max_connections=context.scenario.shape.peak + _SPARE_CONNECTIONS,
    )

    def invoked(invocation: LambdaInvocation) -> None:
        for row in invocation.pressure_samples():
            context.sink.emit(row)

    return AgentClient(
        transport=LambdaTransport(client=client, function=function, on_invocation=invoked),
        adapter=ReferenceAdapter(),
        base_url=context.target_url,
        timeout_s=timeout_s,
        turn_deadline_s=context.scenario.target.deadline_s,
        max_answer_bytes=context.scenario.target.max_answer_kib * 1024,
        max_event_bytes=context.scenario.target.max_event_kib * 1024,
        live=context.live,
    )


class LambdaSessionUser(SessionUser):
    """One shopper at a time, each turn a ``lambda:Invoke`` of the agent function."""

    abstract = False
    request_type = "lambda:Invoke"

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.agent = lambda_agent_client(self.loadlab)
