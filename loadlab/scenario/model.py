"""What a load test is: the scenario, as frozen values.

A :class:`Scenario` says who the shoppers are (personas, intent mixes, think
time), how many of them arrive and when (the load shape), which agent they talk
to and how they retry. It is parsed from YAML by :mod:`loadlab.scenario.files`,
which validates every value; these classes only hold them.

``time_scale`` compresses a whole scenario in time: think times, shape durations,
retry backoff are multiplied by it (and spawn rates divided by it), so a
two-hour flash sale runs in a few seconds in a test with ``time_scale: 0.001``
and keeps its shape.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, get_args

from loadlab.errors import ScenarioError
from loadlab.scenario.gates import DEFAULT_LIMITS, GATE_CATALOG, Gate

TargetProtocol = Literal["reference", "openai", "lambda"]
PROTOCOLS: tuple[str, ...] = get_args(TargetProtocol)

Intent = Literal[
    "browse",
    "search",
    "compare",
    "add_to_cart",
    "remove_from_cart",
    "order_status",
    "checkout_question",
]
INTENTS: tuple[str, ...] = get_args(Intent)

ShapeKind = Literal["flash_sale", "step", "spike", "soak"]
SHAPE_KINDS: tuple[str, ...] = get_args(ShapeKind)

ThinkDistribution = Literal["constant", "uniform", "lognormal"]
THINK_DISTRIBUTIONS: tuple[str, ...] = get_args(ThinkDistribution)


DEADLINE_TIMEOUTS = 3.0
"""A turn's default deadline, in idle timeouts (``target.timeout_s``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """The agent endpoint under test.

    With ``protocol: lambda`` the turns go through the Lambda ``Invoke`` API to
    ``function`` (a name or ARN), and ``url`` is the Lambda API endpoint
    (ministack's URL, or ``https://lambda.<region>.amazonaws.com``).

    What the client keeps of an answer is bounded, so its memory does not grow
    with the size of a response: ``max_answer_kib`` of each turn's answer text
    (the rest is counted, not kept; the turn row says it was truncated), and
    ``max_event_kib`` for one event of the stream (a larger event, or a line
    that never ends, makes the turn ``malformed``).
    """

    url: str | None = None
    protocol: TargetProtocol = "reference"
    timeout_s: float = 30.0
    model: str | None = None
    function: str | None = None
    turn_deadline_s: float | None = None
    max_answer_kib: int = 64
    max_event_kib: int = 1024

    @property
    def deadline_s(self) -> float:
        """The longest one attempt of a turn may take, first byte sent to ``done``.

        ``timeout_s`` bounds each silence; this bounds the whole attempt, so a
        stream that trickles a byte now and then is still cut. Without
        ``turn_deadline_s`` it is three idle timeouts.
        """
        if self.turn_deadline_s is not None:
            return self.turn_deadline_s
        return DEADLINE_TIMEOUTS * self.timeout_s


@dataclass(frozen=True, slots=True, kw_only=True)
class FlashSaleShape:
    """Baseline traffic, a rush to the peak, a hold at the peak, a decay back.

    ``baseline_s`` of baseline traffic, then a linear ramp to ``peak_users``
    over ``ramp_s`` (a ramp of 0 is "everyone at once", limited only by
    ``max_spawn_rate``), ``hold_s`` at the peak and a linear decay back to
    baseline over ``decay_s``; then the test ends.
    """

    kind: Literal["flash_sale"] = dataclasses.field(default="flash_sale", init=False)
    baseline_users: int = 50
    peak_users: int = 5000
    baseline_s: float = 0.0
    ramp_s: float = 60.0
    hold_s: float = 300.0
    decay_s: float = 120.0
    max_spawn_rate: float = 500.0

    @property
    def peak(self) -> int:
        """The highest number of concurrent sessions this shape asks for."""
        return self.peak_users

    @property
    def duration_s(self) -> float:
        """Unscaled length of the shape, in seconds."""
        return self.baseline_s + self.ramp_s + self.hold_s + self.decay_s

    def with_peak(self, users: int) -> FlashSaleShape:
        """Return this shape with ``users`` at the peak (the baseline is capped by it)."""
        return dataclasses.replace(
            self, peak_users=users, baseline_users=min(self.baseline_users, users)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StepShape:
    """``steps`` levels of ``step_s`` each, from ``start_users`` up by ``step_users``."""

    kind: Literal["step"] = dataclasses.field(default="step", init=False)
    start_users: int = 10
    step_users: int = 10
    step_s: float = 60.0
    steps: int = 5
    spawn_rate: float | None = None

    @property
    def peak(self) -> int:
        """The highest number of concurrent sessions this shape asks for."""
        return self.start_users + (self.steps - 1) * self.step_users

    @property
    def duration_s(self) -> float:
        """Unscaled length of the shape, in seconds."""
        return self.step_s * self.steps

    def with_peak(self, users: int) -> StepShape:
        """Return this shape re-stepped so that its last level is ``users``."""
        start = min(self.start_users, users)
        step = 0 if self.steps == 1 else (users - start) // (self.steps - 1)
        return dataclasses.replace(self, start_users=start, step_users=step)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpikeShape:
    """``base_users`` throughout, ``spike_users`` from ``at_s`` for ``spike_s``."""

    kind: Literal["spike"] = dataclasses.field(default="spike", init=False)
    base_users: int = 20
    spike_users: int = 500
    at_s: float = 60.0
    spike_s: float = 60.0
    total_s: float = 300.0
    spawn_rate: float | None = None

    @property
    def peak(self) -> int:
        """The highest number of concurrent sessions this shape asks for."""
        return max(self.base_users, self.spike_users)

    @property
    def duration_s(self) -> float:
        """Unscaled length of the shape, in seconds."""
        return self.total_s

    def with_peak(self, users: int) -> SpikeShape:
        """Return this shape spiking to ``users`` (the base is capped by it)."""
        return dataclasses.replace(self, spike_users=users, base_users=min(self.base_users, users))


@dataclass(frozen=True, slots=True, kw_only=True)
class SoakShape:
    """A linear ramp to ``users`` over ``ramp_s``, held until ``duration_s`` (ramp included)."""

    kind: Literal["soak"] = dataclasses.field(default="soak", init=False)
    users: int = 100
    ramp_s: float = 60.0
    duration_s: float = 3600.0

    @property
    def peak(self) -> int:
        """The highest number of concurrent sessions this shape asks for."""
        return self.users

    def with_peak(self, users: int) -> SoakShape:
        """Return this shape holding ``users``."""
        return dataclasses.replace(self, users=users)


Shape = FlashSaleShape | StepShape | SpikeShape | SoakShape
SHAPE_TYPES: dict[str, type[Shape]] = {
    "flash_sale": FlashSaleShape,
    "step": StepShape,
    "spike": SpikeShape,
    "soak": SoakShape,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnCount:
    """How many turns a session has: uniform between ``min`` and ``max`` inclusive."""

    min: int = 4
    max: int = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class ThinkTime:
    """How long a shopper reads and types before the next turn, in (unscaled) seconds.

    ``constant`` waits ``median_s``; ``uniform`` draws from [``min_s``, ``max_s``];
    ``lognormal`` draws around ``median_s`` with shape ``sigma`` (the long tail of
    real think times) and clamps to [``min_s``, ``max_s``].
    """

    distribution: ThinkDistribution = "uniform"
    min_s: float = 5.0
    max_s: float = 15.0
    median_s: float | None = None
    sigma: float = 0.5

    @property
    def center_s(self) -> float:
        """The typical think time: the median, or the middle of the range."""
        if self.median_s is not None:
            return self.median_s
        if self.distribution == "lognormal":
            return math.sqrt(self.min_s * self.max_s) if self.min_s > 0 else self.max_s / 2
        return (self.min_s + self.max_s) / 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Persona:
    """A kind of shopper: how often it appears and what it tends to ask."""

    name: str
    weight: float = 1.0
    intents: tuple[tuple[Intent, float], ...] = (
        ("browse", 2.0),
        ("search", 2.0),
        ("compare", 1.0),
        ("add_to_cart", 2.0),
        ("remove_from_cart", 0.5),
        ("order_status", 0.5),
        ("checkout_question", 1.0),
    )


DEFAULT_PERSONAS: tuple[Persona, ...] = (Persona(name="shopper"),)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionModel:
    """What one shopper's session looks like."""

    turns: TurnCount = TurnCount()
    think_time: ThinkTime = ThinkTime()
    personas: tuple[Persona, ...] = DEFAULT_PERSONAS


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How an interrupted turn is retried (with the same idempotency key).

    Attempt ``n`` (n >= 2) waits ``backoff_s * 2 ** (n - 2)``, capped at
    ``backoff_max_s``, with full jitter; a ``Retry-After`` header waits at least
    that long.
    """

    max_attempts: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0


def _default_gates() -> tuple[Gate, ...]:
    return tuple(
        Gate(key=spec.key, limit=DEFAULT_LIMITS[spec.key], default=True)
        for spec in GATE_CATALOG
        if spec.key in DEFAULT_LIMITS
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SLO:
    """The gates a run is judged by (see :mod:`loadlab.scenario.gates`).

    Built by :func:`loadlab.scenario.files.parse_slo`, which adds the default
    gates the scenario did not set; ``SLO()`` holds the defaults alone. In a
    run's manifest it is ``dataclasses.asdict`` of this, read back by
    :func:`loadlab.scenario.files.slo_from_manifest`.
    """

    gates: tuple[Gate, ...] = dataclasses.field(default_factory=_default_gates)

    def gate(self, key: str, intent: str | None = None) -> Gate | None:
        """The gate on ``key`` (for ``intent``, or for all turns), or None."""
        return next((g for g in self.gates if g.key == key and g.intent == intent), None)

    def live_gates(self) -> tuple[Gate, ...]:
        """Gates that can be judged during the run, from a rolling window of turns and
        session verdicts (whether or not they abort)."""
        return tuple(g for g in self.gates if g.spec.live)

    def abort_gates(self) -> tuple[Gate, ...]:
        """Gates that stop the run as soon as a live window breaks them (``abort: true``).

        Each is live; its window is ``window_s`` (None: the run so far).
        """
        return tuple(g for g in self.gates if g.abort)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A complete load test: who, how many, against what, and what is acceptable."""

    name: str
    seed: int = 1
    time_scale: float = 1.0
    description: str = ""
    target: Target = Target()
    shape: Shape = FlashSaleShape()
    session: SessionModel = SessionModel()
    retry: RetryPolicy = RetryPolicy()
    slo: SLO = SLO()
    source: str | None = dataclasses.field(default=None, compare=False)

    def with_overrides(
        self,
        *,
        users: int | None = None,
        target_url: str | None = None,
        protocol: TargetProtocol | None = None,
        timeout_s: float | None = None,
        model: str | None = None,
        time_scale: float | None = None,
        seed: int | None = None,
    ) -> Scenario:
        """Return a copy with command-line overrides applied (``None`` keeps a value).

        ``users`` sets the shape's peak concurrency (``peak_users`` of a flash
        sale, ``spike_users`` of a spike, ``users`` of a soak, the last level of
        a step). Values are validated as if they came from the file.
        """
        _check_overrides(
            self,
            users=users,
            target_url=target_url,
            protocol=protocol,
            timeout_s=timeout_s,
            time_scale=time_scale,
        )
        target = dataclasses.replace(
            self.target,
            url=self.target.url if target_url is None else target_url,
            protocol=self.target.protocol if protocol is None else protocol,
            timeout_s=self.target.timeout_s if timeout_s is None else timeout_s,
            model=self.target.model if model is None else model,
        )
        return dataclasses.replace(
            self,
            target=target,
            shape=self.shape if users is None else self.shape.with_peak(users),
            time_scale=self.time_scale if time_scale is None else time_scale,
            seed=self.seed if seed is None else seed,
        )


def _check_overrides(
    scenario: Scenario,
    *,
    users: int | None,
    target_url: str | None,
    protocol: str | None,
    timeout_s: float | None,
    time_scale: float | None,
) -> None:
    where = "override" if scenario.source is None else f"{scenario.source} (override)"
    if users is not None and (isinstance(users, bool) or not isinstance(users, int) or users < 1):
        raise ScenarioError(
            f"{where}: users must be a whole number >= 1, got {users!r}",
            hint="pass the peak number of concurrent sessions, e.g. --users 150",
        )
    if target_url is not None and not target_url.startswith(("http://", "https://")):
        raise ScenarioError(
            f"{where}: target url must start with http:// or https://, got {target_url!r}",
            hint="pass the agent's base URL, e.g. http://127.0.0.1:8080",
        )
    if protocol is not None and protocol not in PROTOCOLS:
        raise ScenarioError(
            f"{where}: unknown protocol {protocol!r}",
            hint=f"use one of: {', '.join(PROTOCOLS)}",
        )
    if protocol == "lambda" and scenario.target.function is None:
        raise ScenarioError(
            f"{where}: protocol 'lambda' needs target.function",
            hint="set target.function (the Lambda function's name or ARN) in the scenario",
        )
    for key, value in (("timeout_s", timeout_s), ("time_scale", time_scale)):
        if value is not None and (
            isinstance(value, bool) or not (isinstance(value, int | float) and value > 0)
        ):
            raise ScenarioError(
                f"{where}: {key} must be a number > 0, got {value!r}",
                hint=f"pass a positive {key}, e.g. 1.0",
            )
