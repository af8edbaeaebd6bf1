"""What a DynamoDB JSON request touches and what it consumed, in capacity units.

:func:`classify` tells a data-plane operation's kind (read or write) and the
tables it names, from the request alone (the gate decides to throttle before
forwarding). :func:`consumed` reads the ``ConsumedCapacity`` of the response, and
when the caller did not ask for it, estimates it from item sizes as DynamoDB
bills: a write 1 WCU per started KB, a read 1 RCU per started 4 KB strongly
consistent (half that eventually consistent), transactions twice.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Classified", "Kind", "classify", "consumed", "item_size", "read_units", "write_units"]

Kind = Literal["read", "write"]

_SINGLE_TABLE: dict[str, Kind] = {
    "GetItem": "read",
    "Query": "read",
    "Scan": "read",
    "PutItem": "write",
    "UpdateItem": "write",
    "DeleteItem": "write",
}
_PARTIQL_OPS = ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction")
_PARTIQL_TABLE = re.compile(
    r'\b(?:FROM|INTO|UPDATE)\s+(?:"([^"]+)"|([A-Za-z0-9_.-]+))', re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Classified:
    """A data-plane request: its operation, kind and the tables it names."""

    operation: str
    kind: Kind
    tables: tuple[str, ...]


def table_name(name: object) -> str:
    """A table name as ministack reports it (a table ARN becomes its name)."""
    text = str(name)
    if text.startswith("arn:") and ":table/" in text:
        return text.split(":table/", 1)[1].split("/", 1)[0]
    return text


def _statements(request: Mapping[str, Any]) -> list[str]:
    if "Statement" in request:
        return [str(request["Statement"])]
    members = request.get("Statements") or request.get("TransactStatements") or []
    return [str(m.get("Statement", "")) for m in members if isinstance(m, dict)]


def _transact_tables(request: Mapping[str, Any]) -> list[str]:
    names = []
    for member in request.get("TransactItems") or []:
        if isinstance(member, dict):
            for action in member.values():
                if isinstance(action, dict) and "TableName" in action:
                    names.append(table_name(action["TableName"]))
    return names


def classify(operation: str, request: Mapping[str, Any]) -> Classified | None:
    """The kind and tables of a data-plane request; ``None`` for the control plane."""
    names: list[str]
    kind: Kind
    if operation in _SINGLE_TABLE:
        kind = _SINGLE_TABLE[operation]
        names = [table_name(request.get("TableName", ""))]
    elif operation in ("BatchGetItem", "BatchWriteItem"):
        kind = "read" if operation == "BatchGetItem" else "write"
        names = [table_name(t) for t in request.get("RequestItems") or {}]
    elif operation in ("TransactGetItems", "TransactWriteItems"):
        kind = "read" if operation == "TransactGetItems" else "write"
        names = _transact_tables(request)
    elif operation in _PARTIQL_OPS:
        statements = _statements(request)
        selects = all(s.lstrip().upper().startswith("SELECT") for s in statements)
        kind = "read" if selects else "write"
        names = []
        for statement in statements:
            match = _PARTIQL_TABLE.search(statement)
            if match:
                names.append(table_name(match.group(1) or match.group(2)))
    else:
        return None
    return Classified(operation, kind, tuple(dict.fromkeys(n for n in names if n)))


# -- item sizes (DynamoDB's rules, closely enough to bill by) ---------------------------


def _number_size(text: str) -> int:
    digits = text.lstrip("+-").lower().split("e", 1)[0].replace(".", "").strip("0")
    return 1 + math.ceil(max(len(digits), 1) / 2)


def _binary_size(text: str) -> int:
    try:
        return len(base64.b64decode(text, validate=False))
    except (binascii.Error, ValueError):
        return len(text)


def _value_size(value: object) -> int:
    if not isinstance(value, dict) or len(value) != 1:
        return 0
    ((tag, inner),) = value.items()
    if tag == "S":
        return len(str(inner).encode())
    if tag == "N":
        return _number_size(str(inner))
    if tag == "B":
        return _binary_size(str(inner))
    if tag in ("BOOL", "NULL"):
        return 1
    if tag == "SS":
        return sum(len(str(s).encode()) for s in inner)
    if tag == "NS":
        return sum(_number_size(str(n)) for n in inner)
    if tag == "BS":
        return sum(_binary_size(str(b)) for b in inner)
    if tag == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if tag == "M":
        return 3 + sum(1 + len(str(k).encode()) + _value_size(v) for k, v in inner.items())
    return 0


def item_size(item: object) -> int:
    """The size in bytes DynamoDB bills for an item in attribute-value form."""
    if not isinstance(item, dict):
        return 0
    return sum(len(str(name).encode()) + _value_size(value) for name, value in item.items())


def write_units(size: int) -> float:
    """WCU of writing an item of ``size`` bytes: 1 per started KB, at least 1."""
    return float(max(1, math.ceil(size / 1024)))


def read_units(size: int, *, consistent: bool) -> float:
    """RCU of reading ``size`` bytes: 1 per started 4 KB (half eventually consistent)."""
    units = float(max(1, math.ceil(size / 4096)))
    return units if consistent else units / 2


# -- consumed capacity --------------------------------------------------------------------


def _from_consumed_capacity(kind: Kind, entries: object) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for entry in entries if isinstance(entries, list) else [entries]:
        if not isinstance(entry, dict) or "TableName" not in entry:
            continue
        total = float(entry.get("CapacityUnits", 0.0) or 0.0)
        if "ReadCapacityUnits" in entry or "WriteCapacityUnits" in entry:
            rcu = float(entry.get("ReadCapacityUnits", 0.0) or 0.0)
            wcu = float(entry.get("WriteCapacityUnits", 0.0) or 0.0)
        else:
            rcu, wcu = (total, 0.0) if kind == "read" else (0.0, total)
        name = table_name(entry["TableName"])
        old = out.get(name, (0.0, 0.0))
        out[name] = (old[0] + rcu, old[1] + wcu)
    return out


def _add(out: dict[str, tuple[float, float]], table: str, kind: Kind, units: float) -> None:
    rcu, wcu = out.get(table, (0.0, 0.0))
    out[table] = (rcu + units, wcu) if kind == "read" else (rcu, wcu + units)


def _items_read(items: Iterable[object], *, consistent: bool) -> float:
    return read_units(sum(item_size(i) for i in items), consistent=consistent)


def _estimate(
    request: Classified, body: Mapping[str, Any], response: Mapping[str, Any]
) -> dict[str, tuple[float, float]]:
    op, kind = request.operation, request.kind
    out: dict[str, tuple[float, float]] = {}
    consistent = bool(body.get("ConsistentRead", False))
    first = request.tables[0] if request.tables else ""
    if op == "GetItem":
        _add(out, first, kind, read_units(item_size(response.get("Item")), consistent=consistent))
    elif op in ("Query", "Scan"):
        _add(out, first, kind, _items_read(response.get("Items") or [], consistent=consistent))
    elif op in ("PutItem", "UpdateItem", "DeleteItem"):
        # The old item's size is unknown unless it came back; the request's is a floor.
        sizes = [
            item_size(body.get("Item") or body.get("Key")),
            item_size(response.get("Attributes")),
        ]
        _add(out, first, kind, write_units(max(sizes)))
    elif op == "BatchGetItem":
        for table, items in (response.get("Responses") or {}).items():
            spec = (body.get("RequestItems") or {}).get(table) or {}
            strong = bool(spec.get("ConsistentRead", False))
            for item in items:
                _add(out, table_name(table), kind, read_units(item_size(item), consistent=strong))
    elif op == "BatchWriteItem":
        for table, writes in (body.get("RequestItems") or {}).items():
            for write in writes:
                put = (write.get("PutRequest") or {}).get("Item")
                _add(out, table_name(table), kind, write_units(item_size(put)))
    elif op in ("TransactGetItems", "TransactWriteItems"):
        answers = response.get("Responses") or []
        for index, member in enumerate(body.get("TransactItems") or []):
            action: dict[str, Any] = next(iter(member.values()), {}) if member else {}
            table = table_name(action.get("TableName", ""))
            if op == "TransactGetItems":
                got = answers[index].get("Item") if index < len(answers) else None
                _add(out, table, kind, 2 * read_units(item_size(got), consistent=True))
            else:
                _add(out, table, kind, 2 * write_units(item_size(action.get("Item"))))
    else:  # PartiQL: one unit per statement, or the items a SELECT returned
        items = response.get("Items")
        units = _items_read(items, consistent=consistent) if items else 1.0
        for table in request.tables:
            _add(out, table, kind, units)
    return out


def consumed(
    request: Classified,
    body: Mapping[str, Any],
    response: Mapping[str, Any] | None,
    *,
    error_code: str | None = None,
) -> dict[str, tuple[float, float]]:
    """``{table: (rcu, wcu)}`` a forwarded request consumed.

    ``response`` is the parsed body of a 2xx answer. A write refused by its
    condition (``error_code`` ``ConditionalCheckFailedException``) still costs
    its WCU, as in DynamoDB; other errors cost nothing.
    """
    if response is None:
        if error_code == "ConditionalCheckFailedException" and request.tables:
            size = item_size(body.get("Item") or body.get("Key"))
            return {request.tables[0]: (0.0, write_units(size))}
        return {}
    if "ConsumedCapacity" in response:
        return _from_consumed_capacity(request.kind, response["ConsumedCapacity"])
    return _estimate(request, body, response)
