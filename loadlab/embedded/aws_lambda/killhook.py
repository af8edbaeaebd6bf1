"""Kill orders: let a chaos experiment end a share of a function's environments mid-invocation.

Lambda offers no API to kill one execution environment, so the environment
does it itself: a chaos action (``loadlab.chaos.aws_lambda.actions.kill_environments``)
writes a *kill order* to SSM Parameter Store, and this hook, running inside the
function, reads it and ends its own process (``os._exit``) at the requested
moment. The invocation in flight then fails as it would if the machine under
the environment died (``Runtime.ExitError`` on AWS, ``Worker process died`` on
ministack), and the next invocation gets a new, cold environment. The same code
path runs on AWS and on ministack.

The order (``<prefix>/<function name>``, default prefix :data:`DEFAULT_PREFIX`) is
JSON::

    {"format": 1, "order_id": "3f2a...", "function_name": "loadlab-agent",
     "fraction": 0.5, "moment": "llm_call", "issued_at": 1767225600.0,
     "expires_at": 1767225660.0}

How an environment decides
    Each environment draws a number in [0, 1) from the SHA-256 of the order id
    and its own environment id (:func:`kill_share`), and dies if it is below
    ``fraction``: the same environment always decides the same way for the same
    order, and about ``fraction`` of the environments die. Only environments
    that were already running when the order was issued are candidates: the
    new environments that replace the dead ones (and any started later) are
    spared, so an order strikes once and the function then recovers. An order
    past its ``expires_at`` is ignored, whatever happened to the harness that
    wrote it; so is a malformed one (both logged once, never raised).
Moments
    ``llm_call``: right after the turn's ``meta`` event: the agent has applied
    the turn and written its checkpoint, and is calling the LLM, so the turn is
    in flight. ``any``: at the first check point the invocation reaches (for a
    handler wrapped with :meth:`KillOrders.guard`, its very start).
Cost
    The order is read at most every ``refresh_s`` seconds (default
    :data:`DEFAULT_REFRESH_S`, env ``LOADLAB_KILL_ORDERS_REFRESH_S``) with one
    ``ssm:GetParameter`` (the function's role needs it on ``<prefix>/*``); a check
    in between is a clock read and a comparison (~0.2-0.4 µs), the decision being
    made once per read. The SSM client (~60 ms: botocore loads SSM's model) is
    built by :meth:`KillOrders.prime` on a background thread during Init. SSM's
    default throughput is 40 GetParameter/s per account and region: 1,000
    environments at 5 s is 200/s, so raise the interval (or SSM's throughput
    setting) for big fleets. A throttled or refused read counts as "no order".

Use it in your own function (only botocore is needed, which every AWS Python
runtime has)::

    from loadlab.embedded.aws_lambda.killhook import KillOrders

    orders = KillOrders.from_environment()
    orders.prime()                       # first read in the background, during Init

    @orders.guard                        # moment "any": the start of an invocation
    def handler(event, context):
        state = apply_and_checkpoint(event)
        orders.reached("llm_call")       # moment "llm_call": here, before the LLM call
        return answer_with_llm(state)

or just ``@kill_orders`` on the handler. ``LOADLAB_KILL_ORDERS=off`` turns the
hook off; outside Lambda (no ``AWS_LAMBDA_FUNCTION_NAME``) it does nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

if TYPE_CHECKING:
    from types_boto3_ssm.client import SSMClient

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_REFRESH_S",
    "KillOrder",
    "KillOrders",
    "kill_orders",
    "kill_share",
    "order_parameter",
]

log = logging.getLogger(__name__)

Moment = Literal["llm_call", "any"]
MOMENTS: tuple[str, ...] = get_args(Moment)
CheckPoint = Literal["invocation", "llm_call"]

DEFAULT_PREFIX = "/loadlab/kill-orders"
DEFAULT_REFRESH_S = 5.0
ORDER_FORMAT = 1
KILL_EXIT_CODE = 137
"""What a SIGKILLed process reports: the environment's end reads like a kill from outside."""
SWITCH_ENV = "LOADLAB_KILL_ORDERS"
PREFIX_ENV = "LOADLAB_KILL_ORDERS_PREFIX"
REFRESH_ENV = "LOADLAB_KILL_ORDERS_REFRESH_S"
FUNCTION_ENV = "AWS_LAMBDA_FUNCTION_NAME"
_MAX_ID = 64

Handler = TypeVar("Handler", bound=Callable[..., Any])


def order_parameter(function_name: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The SSM parameter holding ``function_name``'s kill order."""
    return f"{prefix.rstrip('/')}/{function_name}"


def kill_share(order_id: str, environment_id: str) -> float:
    """The environment's draw in [0, 1) for an order: it dies if the draw is below ``fraction``."""
    digest = hashlib.sha256(f"{order_id}\0{environment_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True, slots=True, kw_only=True)
class KillOrder:
    """One kill order as the chaos action wrote it."""

    order_id: str
    function_name: str
    fraction: float
    moment: Moment
    issued_at: float
    expires_at: float

    @classmethod
    def parse(cls, raw: str) -> KillOrder:
        """Read an order's JSON; raises ``ValueError`` naming what is wrong."""
        try:
            data = json.loads(raw)
        except ValueError:
            raise ValueError("not JSON") from None
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        if data.get("format") != ORDER_FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {ORDER_FORMAT}")
        order_id, function_name = data.get("order_id"), data.get("function_name")
        for name, value in (("order_id", order_id), ("function_name", function_name)):
            if not isinstance(value, str) or not 0 < len(value) <= _MAX_ID:
                raise ValueError(f"{name}={value!r} is not a string of 1-{_MAX_ID} characters")
        moment = data.get("moment")
        if moment not in MOMENTS:
            raise ValueError(f"moment={moment!r} is not one of {', '.join(MOMENTS)}")
        numbers = {k: _finite(data.get(k)) for k in ("fraction", "issued_at", "expires_at")}
        for name, value in numbers.items():
            if value is None:
                raise ValueError(f"{name}={data.get(name)!r} is not a number")
        fraction = numbers["fraction"]
        assert fraction is not None and numbers["issued_at"] is not None
        assert numbers["expires_at"] is not None
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction={fraction!r} is not in [0, 1]")
        return cls(
            order_id=str(order_id),
            function_name=str(function_name),
            fraction=fraction,
            moment=moment,
            issued_at=numbers["issued_at"],
            expires_at=numbers["expires_at"],
        )

    def to_json(self) -> str:
        """The order's JSON, as stored in the parameter."""
        return json.dumps(
            {
                "format": ORDER_FORMAT,
                "order_id": self.order_id,
                "function_name": self.function_name,
                "fraction": self.fraction,
                "moment": self.moment,
                "issued_at": self.issued_at,
                "expires_at": self.expires_at,
            },
            separators=(",", ":"),
        )


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class KillOrders:
    """The hook of one execution environment: reads the function's kill order, obeys it.

    Build it once per environment (at module level, or in the Init phase), with
    :meth:`from_environment` inside Lambda. ``ssm_client`` defaults to a botocore
    client built at the first read, with short timeouts and no retries so that
    a broken SSM never holds an invocation up for long. ``exit`` ends the
    process (``os._exit``); ``clock`` (monotonic) paces the reads and ``wall``
    (epoch) judges expiry and the environment's start.
    """

    def __init__(
        self,
        *,
        function_name: str | None,
        environment_id: str,
        parameter_prefix: str = DEFAULT_PREFIX,
        refresh_s: float = DEFAULT_REFRESH_S,
        ssm_client: SSMClient | None = None,
        started_at: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        exit: Callable[[int], object] = os._exit,
    ) -> None:
        if not math.isfinite(refresh_s) or refresh_s < 0:
            raise ValueError(f"refresh_s={refresh_s!r} must be a number >= 0")
        self.function_name = function_name
        self.environment_id = environment_id
        self.parameter = (
            None if function_name is None else order_parameter(function_name, parameter_prefix)
        )
        self.refresh_s = refresh_s
        self.started_at = wall() if started_at is None else started_at
        self.reads = 0
        self._ssm = ssm_client
        self._clock = clock
        self._wall = wall
        self._exit = exit
        self._order: KillOrder | None = None
        self._chosen = False  # whether this environment dies for ``_order``
        self._read_at: float | None = None
        self._primer: threading.Thread | None = None
        self._struck: set[str] = set()
        self._noted: set[str] = set()

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        environment_id: str | None = None,
        parameter_prefix: str | None = None,
        refresh_s: float | None = None,
    ) -> KillOrders:
        """The hook as Lambda's environment configures it (inert outside Lambda or when off).

        Reads ``AWS_LAMBDA_FUNCTION_NAME``, ``LOADLAB_KILL_ORDERS`` (``off`` disables),
        ``LOADLAB_KILL_ORDERS_PREFIX`` and ``LOADLAB_KILL_ORDERS_REFRESH_S``;
        arguments win over variables. ``environment_id`` defaults to the pid and the
        environment's log stream name (unique per environment).
        """
        env = os.environ if environ is None else environ
        enabled = env.get(SWITCH_ENV, "on").strip().lower() not in ("off", "0", "false", "no")
        function_name = env.get(FUNCTION_ENV) if enabled else None
        if environment_id is None:
            environment_id = f"{os.getpid()}-{env.get('AWS_LAMBDA_LOG_STREAM_NAME', 'local')}"
        prefix = parameter_prefix or env.get(PREFIX_ENV) or DEFAULT_PREFIX
        if refresh_s is None:
            try:
                refresh_s = float(env.get(REFRESH_ENV, DEFAULT_REFRESH_S))
            except ValueError:
                log.warning("%s=%r is not a number; using %s s", REFRESH_ENV,
                            env.get(REFRESH_ENV), DEFAULT_REFRESH_S)  # fmt: skip
                refresh_s = DEFAULT_REFRESH_S
            if not math.isfinite(refresh_s) or refresh_s < 0:
                refresh_s = DEFAULT_REFRESH_S
        return cls(
            function_name=function_name or None,
            environment_id=environment_id,
            parameter_prefix=prefix,
            refresh_s=refresh_s,
        )

    @property
    def enabled(self) -> bool:
        """False outside Lambda or when switched off: every check is then a no-op."""
        return self.parameter is not None

    def prime(self) -> None:
        """Build the SSM client and read the order on a background thread (call it at Init).

        The client costs tens of milliseconds (botocore loads SSM's model); done
        beside the function's own initialisation it does not lengthen the cold
        start. Until it is done, checks see no order.
        """
        if self.parameter is None or self._primer is not None:
            return
        self._primer = threading.Thread(target=self.refresh, name="loadlab-kill-orders")
        self._primer.daemon = True
        self._primer.start()

    def refresh(self) -> KillOrder | None:
        """Read the order now (never raises): the order, or None if there is none to obey."""
        if self.parameter is None:
            return None
        self._read_at = self._clock()
        self.reads += 1
        raw = self._read()
        order = None if raw is None else self._valid(raw)
        # Decided once per read, not per check: the draw costs a SHA-256.
        self._chosen = (
            order is not None
            and self.started_at <= order.issued_at
            and kill_share(order.order_id, self.environment_id) < order.fraction
        )
        self._order = order
        return order

    def current(self) -> KillOrder | None:
        """The order to obey, read again only if the last read is ``refresh_s`` old."""
        if self.parameter is None:
            return None
        if self._primer is not None:
            if self._primer.is_alive():
                return None  # the first read is under way: never wait for it
            self._primer = None
        if self._read_at is None or self._clock() - self._read_at >= self.refresh_s:
            return self.refresh()
        return self._order

    def reached(self, point: CheckPoint) -> None:
        """Call at a check point: ends the process here if the order says so (never raises)."""
        if self.parameter is None:
            return
        try:
            order = self.current()
            if order is None or order.moment not in ("any", point):
                return
            if order.expires_at <= self._wall():
                self._note(f"expired:{order.order_id}", "kill order %s expired; ignored",
                           order.order_id)  # fmt: skip
                return
            # Not drawn, started after the order (a replacement), or already struck.
            if not self._chosen or order.order_id in self._struck:
                return
            self._struck.add(order.order_id)
            # One line on stderr (the function's log) before the process ends.
            print(
                f"loadlab kill order {order.order_id}: environment {self.environment_id} "
                f"exits at {point}",
                file=sys.stderr,
                flush=True,
            )
            self._exit(KILL_EXIT_CODE)
        except Exception as exc:  # the hook must never break the function it runs in
            self._note(f"bug:{type(exc).__name__}", "kill order check failed: %r", exc)

    def on_event(self, event: object) -> None:
        """``LambdaAgent(on_event=...)``: the ``llm_call`` check point after a ``meta`` event."""
        if getattr(event, "name", None) == "meta":
            self.reached("llm_call")

    def guard(self, handler: Handler) -> Handler:
        """Wrap a Lambda handler so each invocation starts at the ``invocation`` check point."""

        @functools.wraps(handler)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self.reached("invocation")
            return handler(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    def _read(self) -> str | None:
        assert self.parameter is not None
        try:
            if self._ssm is None:
                self._ssm = _ssm_client()
            answer = self._ssm.get_parameter(Name=self.parameter)
            return str(answer["Parameter"]["Value"])
        except Exception as exc:
            code = _error_code(exc)
            if code != "ParameterNotFound":
                self._note(f"read:{code}", "cannot read kill order %s (%s); none obeyed",
                           self.parameter, code)  # fmt: skip
            return None

    def _valid(self, raw: str) -> KillOrder | None:
        try:
            order = KillOrder.parse(raw)
        except ValueError as exc:
            digest = hashlib.sha256(raw.encode()).hexdigest()[:12]
            self._note(f"malformed:{digest}", "kill order %s is malformed (%s); ignored",
                       self.parameter, exc)  # fmt: skip
            return None
        if order.function_name != self.function_name:
            self._note(
                f"other:{order.order_id}",
                "kill order %s names function %s, not %s; ignored",
                order.order_id,
                order.function_name,
                self.function_name,
            )
            return None
        return order

    def _note(self, key: str, message: str, *args: object) -> None:
        if key not in self._noted:
            self._noted.add(key)
            log.warning(message, *args)


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


def _ssm_client() -> SSMClient:
    # botocore, not boto3: every Python runtime (AWS's, ministack's) has it.
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    config = Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1})
    client: SSMClient = session.create_client("ssm", config=config)  # type: ignore[assignment]
    return client


def kill_orders(handler: Handler) -> Handler:
    """Decorate a Lambda handler with the environment's kill-order hook (moment ``any``).

    For the ``llm_call`` moment, keep a :class:`KillOrders` and call
    ``reached("llm_call")`` where your function calls its LLM.
    """
    orders = KillOrders.from_environment()
    orders.prime()
    return orders.guard(handler)
