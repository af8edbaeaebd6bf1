"""What a load run's users share: the :class:`LoadContext` and where rows go.

The run's context is built once per Locust process (by loadlab's plugin at
Locust's ``init`` event, or by a test) and hung on the Locust environment as
``environment.loadlab``. Users and :class:`~loadlab.load.shapes.ScenarioShape`
read it from there; nothing in the load layer keeps module-level state.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from loadlab.errors import ConfigError
from loadlab.load.in_flight import InFlightCounters
from loadlab.rows import (
    PressureSample,
    RequestSample,
    SessionRecord,
    TimelineEvent,
    TurnRecord,
)
from loadlab.scenario.model import Scenario

Row = RequestSample | TurnRecord | SessionRecord | TimelineEvent | PressureSample


class RowSink(Protocol):
    """Where the load layer's rows go (the recorder, or a list in tests).

    ``emit`` is called from Locust's greenlets and must not block for long.
    """

    def emit(self, row: Row) -> None:
        """Accept one row for the run timeline."""
        ...


class ListSink:
    """A sink that keeps every row in memory, for tests and small tools."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def emit(self, row: Row) -> None:
        """Append the row."""
        self.rows.append(row)

    @property
    def requests(self) -> list[RequestSample]:
        """The request rows, in order."""
        return [r for r in self.rows if isinstance(r, RequestSample)]

    @property
    def turns(self) -> list[TurnRecord]:
        """The turn rows, in order."""
        return [r for r in self.rows if isinstance(r, TurnRecord)]

    @property
    def sessions(self) -> list[SessionRecord]:
        """The session rows, in order."""
        return [r for r in self.rows if isinstance(r, SessionRecord)]

    @property
    def events(self) -> list[TimelineEvent]:
        """The timeline events, in order."""
        return [r for r in self.rows if isinstance(r, TimelineEvent)]


def derive_seed(scenario_seed: int, worker_id: str, number: int) -> int:
    """The seed of a worker's ``number``-th session: stable across runs, distinct per worker."""
    digest = hashlib.blake2b(f"{scenario_seed}/{worker_id}/{number}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") >> 1


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadContext:
    """Everything a run's users need, shared by all users of one Locust process.

    ``target_url`` is the agent's base URL (already resolved from ``--host``, the
    scenario or the embedded stack), or the Lambda API endpoint when
    ``lambda_function`` names the function each turn invokes: the transport is
    chosen once, when the context is built (see :func:`lambda_function_of`).
    ``run_id`` goes into every session id so a run never picks up checkpoints
    an earlier run left in the same table.
    ``worker_id`` names this load generator in rows (``local`` when not
    distributed). Secrets are kept out of the repr.
    """

    scenario: Scenario
    target_url: str
    sink: RowSink
    jwt_secret: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    worker_id: str = "local"
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    session_numbers: Iterator[int] = field(
        default_factory=itertools.count, repr=False, compare=False
    )
    live: InFlightCounters = field(default_factory=InFlightCounters, repr=False, compare=False)
    lambda_function: str | None = None
    # boto3 Lambda clients of this process, one per (endpoint, timeout), made on first use
    lambda_clients: dict[tuple[str, float], Any] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # The one place the transport is chosen: an explicit function, else the scenario's.
        object.__setattr__(
            self, "lambda_function", lambda_function_of(self.scenario, self.lambda_function)
        )
        if not self.target_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"target url must start with http:// or https://, got {self.target_url!r}",
                hint="pass the agent's base URL with --host, e.g. http://127.0.0.1:8080",
            )

    @property
    def transport(self) -> Literal["http", "lambda"]:
        """How turns reach the agent: HTTP (SSE or OpenAI chat) or the Lambda Invoke API."""
        return "lambda" if self.lambda_function else "http"

    def next_session(self) -> tuple[str, int]:
        """Allocate the next session: its run-unique id and its script seed."""
        number = next(self.session_numbers)
        seed = derive_seed(self.scenario.seed, self.worker_id, number)
        return f"{self.run_id}-{self.worker_id}-{number:06d}", seed

    @staticmethod
    def of(environment: Any) -> LoadContext:
        """Return ``environment.loadlab``, or explain how to get it set."""
        context = getattr(environment, "loadlab", None)
        if not isinstance(context, LoadContext):
            raise ConfigError(
                "the Locust environment has no loadlab context (environment.loadlab)",
                hint="run through `loadlab run`, or use loadlab's locustfile "
                "(locust -f loadlab/app/locustfile.py --scenario FILE)",
            )
        return context


def lambda_function_of(scenario: Scenario, override: str | None = None) -> str | None:
    """The Lambda function a run's turns invoke, or None when they go over HTTP.

    ``override`` (``--lambda-function``: the same sessions against a function,
    so runs compare) wins over the scenario's ``target.function``, which counts
    only when ``target.protocol`` is ``lambda``.
    """
    if override:
        return override
    if scenario.target.protocol == "lambda":
        return scenario.target.function
    return None
