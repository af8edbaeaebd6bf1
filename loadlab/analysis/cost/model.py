"""The shapes of a bill: a run's :class:`Usage`, a :class:`CostLine`, one platform's
:class:`PlatformCost`, and the :class:`CostEstimate` of a run on every platform."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from loadlab.analysis.prices import PriceTable

__all__ = [
    "HOURS_PER_MONTH",
    "NOT_SERVED",
    "PLATFORMS",
    "CostEstimate",
    "CostLine",
    "Platform",
    "PlatformCost",
    "Usage",
]

Platform = Literal["lambda", "pods"]
PLATFORMS: tuple[Platform, ...] = ("lambda", "pods")
HOURS_PER_MONTH = 730.0
"""AWS's billing month (8,760 h / 12)."""

NOT_SERVED = frozenset({"connect", "throttled"})
"""Request error kinds that never reached the target (not billed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """The billable figures of one run (seconds, MB, counts), and where each came from.

    ``compute_s`` is the sum over invocations of their duration rounded up to
    the millisecond, INIT excluded; ``init_s`` the sum of the cold starts'
    INIT. ``pods`` is the most pods alive at once (a pods run; None on Lambda).
    ``provisioned`` is the provisioned concurrency the run recorded (0: none),
    ``prewarmed`` the environments whose first invocation was warm.
    ``snapstart``: the environments were restored from a snapshot (``init_s``
    is then their restore time); ``init_in_handler``: the agent initialised in
    every invocation (its initialisation is in ``compute_s``).
    """

    platform: Platform
    run_s: float
    sessions: int
    turns: int
    invocations: int
    compute_s: float
    compute_source: str
    cold_starts: int
    init_s: float
    init_source: str
    environments: int
    peak_concurrency: int
    pods: int | None
    memory_mb: float | None
    memory_source: str
    provisioned: int
    prewarmed: int
    snapstart: bool
    init_in_handler: bool
    ddb_rcu: float
    ddb_wcu: float
    tokens_in: float
    tokens_out: float

    @property
    def mean_init_s(self) -> float | None:
        """The mean INIT of a cold start, None without one."""
        return self.init_s / self.cold_starts if self.cold_starts else None


@dataclass(frozen=True, slots=True, kw_only=True)
class CostLine:
    """One line of a bill: ``quantity`` ``unit`` x ``price`` (the table's ``price_key``)."""

    item: str
    quantity: float
    unit: str
    price_key: str
    price: float

    @classmethod
    def at(cls, prices: PriceTable, key: str, *, item: str, quantity: float, unit: str) -> CostLine:
        """A line priced at the table's ``key`` (its value and its name, from one place)."""
        return cls(item=item, quantity=quantity, unit=unit, price_key=key, price=prices.price(key))

    @property
    def usd(self) -> float:
        """The line's amount."""
        return self.quantity * self.price


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformCost:
    """One platform's bill for the run (``compute`` lines + the ``shared`` ones).

    ``basis`` is ``measured`` (the run's own platform), ``projected`` or
    ``missing`` (then ``missing`` says which figure, and there are no amounts).
    """

    model: str
    title: str
    basis: Literal["measured", "projected", "missing"]
    compute: tuple[CostLine, ...] = ()
    shared: tuple[CostLine, ...] = ()
    cold_starts: int | None = None
    notes: tuple[str, ...] = ()
    missing: str | None = None
    sessions: int = 0

    @property
    def compute_usd(self) -> float | None:
        """The platform's own charges (None when missing)."""
        return None if self.missing else math.fsum(line.usd for line in self.compute)

    @property
    def total_usd(self) -> float | None:
        """Compute plus shared charges (None when missing)."""
        compute = self.compute_usd
        return None if compute is None else compute + math.fsum(x.usd for x in self.shared)

    @property
    def per_1000_sessions_usd(self) -> float | None:
        """``total_usd`` per 1,000 sessions (None without sessions)."""
        total = self.total_usd
        return None if total is None or not self.sessions else total / self.sessions * 1000

    def to_json(self) -> dict[str, Any]:
        """The model as JSON (amounts in USD)."""
        return {
            "model": self.model,
            "title": self.title,
            "basis": self.basis,
            "missing": self.missing,
            "compute_usd": self.compute_usd,
            "total_usd": self.total_usd,
            "per_1000_sessions_usd": self.per_1000_sessions_usd,
            "cold_starts": self.cold_starts,
            "lines": [asdict(x) | {"usd": x.usd} for x in (*self.compute, *self.shared)],
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CostEstimate:
    """A run's usage priced on every platform, and the Lambda/pods break-even."""

    usage: Usage
    prices_path: str
    region: str
    prices_date: str
    overridden: tuple[str, ...]
    platforms: tuple[PlatformCost, ...]
    break_even_requests_per_day: float | None
    break_even_note: str
    notes: tuple[str, ...] = field(default=())

    def model(self, name: str) -> PlatformCost:
        """The platform cost named ``name`` (``lambda``, ``lambda_pc``, ``eks`` ...)."""
        for platform in self.platforms:
            if platform.model == name:
                return platform
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """The estimate as JSON."""
        return {
            "prices": {
                "path": self.prices_path,
                "region": self.region,
                "date": self.prices_date,
                "overridden": list(self.overridden),
            },
            "usage": asdict(self.usage),
            "platforms": [p.to_json() for p in self.platforms],
            "break_even_requests_per_day": self.break_even_requests_per_day,
            "break_even_note": self.break_even_note,
            "notes": list(self.notes),
        }
