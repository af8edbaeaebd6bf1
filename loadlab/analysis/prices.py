"""The price table the cost model charges: one YAML file, every price a plain number.

The shipped table is ``loadlab/analysis/prices/aws-us-east-1.yaml`` (region, the
date the prices were read, and a source URL per price). A user's table has the
same shape; :func:`load_prices` reads either, and :meth:`PriceTable.with_overrides`
changes single values (``loadlab cost --set KEY=VALUE``).

Nothing here is allowed to fall back to zero: a price that is missing, not a
number or negative is a :class:`~loadlab.errors.ConfigError` naming the key and
the file, so no cost is ever silently $0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from loadlab.errors import ConfigError
from loadlab.scenario.yaml_text import load_yaml

__all__ = [
    "ASSUMPTIONS",
    "DEFAULT_PRICES",
    "REQUIRED_PRICES",
    "Price",
    "PriceTable",
    "load_prices",
]

DEFAULT_PRICES = "aws-us-east-1.yaml"
"""The table shipped in ``loadlab/analysis/prices/``."""

REQUIRED_PRICES: tuple[str, ...] = (
    "lambda_request",
    "lambda_gb_second",
    "lambda_pc_gb_second",
    "lambda_pc_duration_gb_second",
    "eks_cluster_hour",
    "fargate_vcpu_hour",
    "fargate_gb_hour",
    "active_cpu_vcpu_hour",
    "active_cpu_gb_hour",
    "dynamodb_read_request_unit",
    "dynamodb_write_request_unit",
    "llm_input_token",
    "llm_output_token",
)
"""Every table must hold these (node prices are checked for the chosen ``node_type``)."""

ASSUMPTIONS: dict[str, float | str] = {
    "node_type": "m5_large",
    "pods_per_node": 2.0,
    "pods": 0.0,
    "pod_vcpu": 1.0,
    "pod_memory_gb": 2.0,
    "lambda_memory_mb": 0.0,
    "provisioned_concurrency": 0.0,
    "active_cpu_fraction": 1.5 / 9.5,
    "active_memory_gb": 0.5,
}
"""The deployment inputs that are not prices, and their defaults.

``pods`` 0 means the run's own (a pods run counts its pods); ``lambda_memory_mb``
0 means the run's own (the function's configuration or REPORT line);
``provisioned_concurrency`` 0 means the run's own (what the run recorded).
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    """One price: USD per ``unit``, as read on ``source``."""

    key: str
    value: float
    unit: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceTable:
    """A region's prices and the deployment assumptions, from one file."""

    path: str
    region: str
    date: str
    currency: str
    prices: Mapping[str, Price]
    assumptions: Mapping[str, float | str]
    overridden: tuple[str, ...] = ()

    def price(self, key: str) -> float:
        """The price ``key`` (USD); :class:`ConfigError` when the table lacks it."""
        found = self.prices.get(key)
        if found is None:
            raise ConfigError(
                f"the price table {self.path} has no price '{key}'",
                hint=f"add '{key}: {{value: ..., unit: ..., source: ...}}' under 'prices', "
                f"or pass --set {key}=VALUE",
            )
        return found.value

    def number(self, key: str) -> float:
        """The numeric assumption ``key``."""
        value = self.assumptions.get(key, ASSUMPTIONS.get(key))
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(
                f"the assumption '{key}' of {self.path} must be a number, not {value!r}",
                hint=f"pass --set {key}=NUMBER",
            )
        return float(value)

    def text(self, key: str) -> str:
        """The textual assumption ``key`` (e.g. ``node_type``)."""
        return str(self.assumptions.get(key, ASSUMPTIONS.get(key, "")))

    def with_overrides(self, overrides: Mapping[str, str]) -> PriceTable:
        """A copy with ``overrides`` (``KEY -> VALUE`` text) applied to prices or assumptions."""
        prices = dict(self.prices)
        assumptions = dict(self.assumptions)
        for key, text in overrides.items():
            if key in prices or key in REQUIRED_PRICES or key.startswith("node_hour_"):
                value = _price_value(text, key=key, where="--set")
                old = prices.get(key)
                prices[key] = Price(
                    key=key,
                    value=value,
                    unit=old.unit if old else "USD",
                    source="--set on the command line",
                )
            elif key in ASSUMPTIONS:
                default = ASSUMPTIONS[key]
                assumptions[key] = (
                    text
                    if isinstance(default, str)
                    else _price_value(text, key=key, where="--set", kind="assumption")
                )
            else:
                known = ", ".join(sorted([*prices, *ASSUMPTIONS]))
                raise ConfigError(
                    f"--set {key}: no price or assumption of that name",
                    hint=f"one of: {known}",
                )
        return replace(
            self,
            prices=prices,
            assumptions=assumptions,
            overridden=(*self.overridden, *overrides),
        )


def load_prices(path: Path | str | None = None) -> PriceTable:
    """Read and validate a price table (the shipped one when ``path`` is None).

    Raises :class:`ConfigError` naming the file and the key for a missing,
    non-numeric or negative price, or a file that is not such a table.
    """
    if path is None:
        ref = resources.files("loadlab.analysis").joinpath("prices", DEFAULT_PRICES)
        text, where = ref.read_text(encoding="utf-8"), f"loadlab/analysis/prices/{DEFAULT_PRICES}"
    else:
        where = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read the price table {where}: {exc.strerror or exc}",
                hint="pass --prices with an existing YAML file, or leave it out for the "
                "shipped us-east-1 table",
            ) from None
    try:
        data = load_yaml(text)  # duplicate keys and alias bombs refused, as in scenarios
    except yaml.YAMLError as exc:
        raise ConfigError(f"the price table {where} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("prices"), dict):
        raise ConfigError(
            f"the price table {where} has no 'prices' mapping",
            hint=f"copy loadlab/analysis/prices/{DEFAULT_PRICES} and change its values",
        )
    prices = {str(k): _price(str(k), v, where) for k, v in data["prices"].items()}
    missing = [k for k in REQUIRED_PRICES if k not in prices]
    if missing:
        raise ConfigError(
            f"the price table {where} lacks {len(missing)} price(s): {', '.join(missing)}",
            hint="every price must be given (a missing price is never taken as $0)",
        )
    raw_assumptions = data.get("assumptions") or {}
    if not isinstance(raw_assumptions, dict):
        raise ConfigError(f"'assumptions' in the price table {where} must be a mapping")
    assumptions = dict(ASSUMPTIONS)
    for key, value in raw_assumptions.items():
        if key not in ASSUMPTIONS:
            continue  # documentation-only entries (e.g. free_tier) are allowed
        default = ASSUMPTIONS[key]
        assumptions[str(key)] = (
            str(value)
            if isinstance(default, str)
            else _price_value(value, key=str(key), where=where, kind="assumption")
        )
    return PriceTable(
        path=where,
        region=str(data.get("region", "?")),
        date=str(data.get("date", "?")),
        currency=str(data.get("currency", "USD")),
        prices=prices,
        assumptions=assumptions,
    )


def _price(key: str, entry: Any, where: str) -> Price:
    if isinstance(entry, dict):
        if "value" not in entry:
            raise ConfigError(
                f"the price '{key}' in {where} has no 'value'",
                hint="write it as {value: NUMBER, unit: ..., source: URL}",
            )
        return Price(
            key=key,
            value=_price_value(entry["value"], key=key, where=where),
            unit=str(entry.get("unit", "USD")),
            source=str(entry.get("source", "")),
        )
    return Price(key=key, value=_price_value(entry, key=key, where=where), unit="USD", source="")


def _price_value(raw: Any, *, key: str, where: str, kind: str = "price") -> float:
    if isinstance(raw, bool) or raw is None:
        value = math.nan
    else:
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
    if not math.isfinite(value):
        raise ConfigError(
            f"the {kind} '{key}' in {where} is not a number: {raw!r}",
            hint=f"give '{key}' a plain number (USD)" if kind == "price" else None,
        )
    if value < 0:
        raise ConfigError(
            f"the {kind} '{key}' in {where} is negative: {raw!r}",
            hint=f"a {kind} must be >= 0",
        )
    return value
