"""The kill order as the chaos side writes and reads it.

The function side (``loadlab.embedded.aws_lambda.killhook``, which the harness
does not import) reads the same JSON; a test checks that what is written here is
what the hook accepts.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal, get_args

from botocore.exceptions import ClientError

from loadlab.chaos.aws_lambda.aws_clients import Clients, error_code

DEFAULT_PREFIX = "/loadlab/kill-orders"
ORDER_FORMAT = 1
Moment = Literal["llm_call", "any"]
MOMENTS: tuple[str, ...] = get_args(Moment)


def order_parameter(function_name: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The SSM parameter holding ``function_name``'s kill order."""
    cleaned = prefix.strip().rstrip("/")
    return f"{cleaned}/{function_name}"


def order_json(
    *,
    order_id: str,
    function_name: str,
    fraction: float,
    moment: Moment,
    issued_at: float,
    expires_at: float,
) -> str:
    """The order's JSON (format 1)."""
    return json.dumps(
        {
            "format": ORDER_FORMAT,
            "order_id": order_id,
            "function_name": function_name,
            "fraction": fraction,
            "moment": moment,
            "issued_at": issued_at,
            "expires_at": expires_at,
        },
        separators=(",", ":"),
    )


def read_order(clients: Clients, parameter: str, *, now: float | None = None) -> dict[str, Any]:
    """``{"parameter", "order", "active", "problem"}``: the stored order and whether it applies.

    ``order`` is the parsed JSON (None when there is none or it is not JSON);
    ``active`` is true when it is well formed and not expired; ``problem`` says
    why an order that is there does not apply.
    """
    moment = time.time() if now is None else now
    try:
        raw = clients.ssm.get_parameter(Name=parameter)["Parameter"].get("Value", "")
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return {"parameter": parameter, "order": None, "active": False, "problem": None}
        raise
    try:
        order = json.loads(raw)
    except ValueError:
        return {"parameter": parameter, "order": None, "active": False, "problem": "not JSON"}
    problem = _problem(order, moment)
    return {"parameter": parameter, "order": order, "active": problem is None, "problem": problem}


def _problem(order: Any, now: float) -> str | None:
    if not isinstance(order, dict) or order.get("format") != ORDER_FORMAT:
        return f"not a format-{ORDER_FORMAT} kill order"
    if order.get("moment") not in MOMENTS:
        return f"moment {order.get('moment')!r} is unknown"
    expires = order.get("expires_at")
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        return "no expires_at"
    if expires <= now:
        return "expired"
    return None
