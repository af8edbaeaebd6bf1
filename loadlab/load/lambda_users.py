"""The Locust user for an agent deployed as a Lambda function (``target.protocol: lambda``).

:class:`LambdaSessionUser` is a :class:`~loadlab.load.users.ShoppingSessionUser`
whose turns go through :class:`~loadlab.load.lambda_invoke.LambdaTransport`
instead of HTTP: the same seeded sessions, think times, retries, ledger,
verdicts and Locust statistics. The scenario names the function
(``target.function``) and the Lambda API endpoint (``target.url`` or
``--host``: ministack's URL, or ``https://lambda.<region>.amazonaws.com``);
credentials and region come from the usual AWS variables.

Every invocation also adds ``pressure`` rows (source ``lambda``: ``invoke_ms``,
``cold_start``, ``init_ms``, ``throttled``, and ``duration_ms``,
``billed_duration_ms``, ``max_memory_used_mb`` when Lambda's ``REPORT`` line is
available), whose ``figures`` dimension says where the cold-start figures come
from. All users of a Locust process share one boto3 client (thread-safe, and
cooperative under gevent), kept on the Locust environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loadlab.errors import ConfigError
from loadlab.load.adapters import ReferenceAdapter
from loadlab.load.client import AgentClient
from loadlab.load.lambda_invoke import LambdaInvocation, LambdaTransport, invoke_client
from loadlab.load.users import ShoppingSessionUser

if TYPE_CHECKING:
    from types_boto3_lambda.client import LambdaClient

_CLIENTS_ATTRIBUTE = "loadlab_lambda_clients"
_SPARE_CONNECTIONS = 10


def shared_invoke_client(
    environment: Any, *, endpoint_url: str, timeout_s: float, max_connections: int
) -> LambdaClient:
    """The Lambda client of this Locust process for ``endpoint_url`` (made on first use)."""
    clients: dict[tuple[str, float], LambdaClient] = environment.__dict__.setdefault(
        _CLIENTS_ATTRIBUTE, {}
    )
    key = (endpoint_url, timeout_s)
    client = clients.get(key)
    if client is None:
        client = invoke_client(
            endpoint_url=endpoint_url, timeout_s=timeout_s, max_connections=max_connections
        )
        clients[key] = client
    return client


def attach_lambda_client(user: ShoppingSessionUser, environment: Any) -> None:
    """Give ``user`` an agent client that plays each turn as a ``lambda:Invoke``."""
    context = user.loadlab
    target = context.scenario.target
    if target.protocol != "lambda" or target.function is None:
        raise ConfigError(
            f"the Lambda user needs target.protocol 'lambda' and target.function, got "
            f"protocol {target.protocol!r} and function {target.function!r}",
            hint="set target: {protocol: lambda, function: <name or ARN>} in the scenario",
        )
    client = shared_invoke_client(
        environment,
        endpoint_url=context.target_url,
        timeout_s=target.timeout_s,
        max_connections=context.scenario.shape.peak + _SPARE_CONNECTIONS,
    )

    def invoked(invocation: LambdaInvocation) -> None:
        for row in invocation.pressure_samples():
            context.sink.emit(row)

    transport = LambdaTransport(client=client, function=target.function, on_invocation=invoked)
    user.request_type = "lambda:Invoke"
    user.agent = AgentClient(
        transport=transport,
        adapter=ReferenceAdapter(),
        base_url=context.target_url,
        timeout_s=target.timeout_s,
        live=context.live,
    )


class LambdaSessionUser(ShoppingSessionUser):
    """One shopper at a time, each turn a ``lambda:Invoke`` of the agent function.

    ``ShoppingSessionUser`` does the same when the scenario says
    ``target.protocol: lambda``; this class makes the choice explicit.
    """

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if self.request_type != "lambda:Invoke":
            attach_lambda_client(self, environment)
