"""The Locust users: one virtual user is one shopper's session after another.

:class:`SessionUser` (transport-neutral) plans a session from the run's scenario, plays one
turn per Locust task with the shopper's think time as Locust's wait time, and
starts a new shopper when a session ends, so the number of concurrent sessions
is the number of users the shape asks for. Each attempt is reported to Locust's
``request`` event (type ``SSE``, name ``turn:<intent>``, the full streaming
time), so Locust's statistics, web UI and CSV work unchanged; loadlab's own
rows go to the run's sink.

Everything a user needs comes from ``environment.loadlab``
(:class:`~loadlab.load.context.LoadContext`). :class:`ShoppingSessionUser` plays
the turns over HTTP; :class:`~loadlab.load.aws_lambda.users.LambdaSessionUser`
through the Lambda Invoke API.
"""

from __future__ import annotations

import time
from typing import Any

import gevent
from locust import FastHttpUser, User, task

from loadlab.errors import ConfigError
from loadlab.load.adapters import adapter_for
from loadlab.load.auth import SessionCredentials
from loadlab.load.client import AgentClient
from loadlab.load.context import LoadContext
from loadlab.load.fasthttp import FastHttpTransport
from loadlab.load.player import Attempt, SessionPlayer
from loadlab.scenario.script import plan_session

SESSION_TOKEN_TTL_S = 3600.0


class TurnFailed(Exception):
    """How a failed attempt appears in Locust's failure statistics.

    The message is the error kind (and HTTP status) only, so Locust groups
    failures into a handful of rows instead of one per distinct error text.
    """


class SessionUser(User):
    """One shopper at a time over any transport; subclasses give it ``self.agent``.

    Plays the next turn of the current session as its one Locust task, waits
    the shopper's think time between turns, starts a new shopper after the last
    turn, and reports each attempt to Locust's ``request`` event.
    """

    abstract = True
    # How turns appear in Locust's statistics.
    request_type = "SSE"

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.loadlab = LoadContext.of(environment)
        self.agent: AgentClient
        self.player: SessionPlayer | None = None
        # When the next turn is due (perf_counter); None before the user's first wait.
        self._due: float | None = None

    def wait_time(self) -> float:
        """The shopper's think time before the next turn (scaled by the scenario).

        Locust sleeps this long right after asking, so the next turn is due at
        now + the think time: how much later it is sent is its ``lateness_ms``.
        """
        think = 0.0 if self.player is None else self.player.next_think_time_s
        self._due = time.perf_counter() + think
        return think

    @task
    def play_turn(self) -> None:
        """Play the next turn of the current session; start a new shopper after the last."""
        due, self._due = self._due, None
        if self.player is None or self.player.done:
            self.player = self._new_player()
        try:
            self.player.play_next_turn(due=due)
        except Exception as exc:
            # A bug in the harness must not look like a healthy session: the session is
            # failed (with the error in its reason), Locust logs the traceback, and the
            # user starts a new shopper.
            self.player.fail(f"{type(exc).__name__}: {exc}")
            self.player = None
            raise
        if self.player.done:
            self.player.finish()
            self.player = self._new_player()

    def on_stop(self) -> None:
        """Emit the row of the session in progress (verdict per ledger, reason "stopped")."""
        if self.player is not None:
            self.player.finish(stopped=True)
            self.player = None

    def _new_player(self) -> SessionPlayer:
        context = self.loadlab
        session_id, seed = context.next_session()
        spec = plan_session(context.scenario, seed, session_id=session_id)
        return SessionPlayer(
            spec=spec,
            client=self.agent,
            retry=context.scenario.retry,
            sink=context.sink,
            credentials=SessionCredentials(
                secret=context.jwt_secret, session_id=session_id, ttl_s=SESSION_TOKEN_TTL_S
            ),
            sleep=gevent.sleep,
            time_scale=context.scenario.time_scale,
            worker_id=context.worker_id,
            on_attempt=self._report,
        )

    def _report(self, attempt: Attempt) -> None:
        sample = attempt.sample
        exception: Exception | None = None
        if sample.error_kind is not None:
            status = f" (HTTP {sample.status})" if sample.status else ""
            exception = TurnFailed(f"{sample.error_kind}{status}")
        self.environment.events.request.fire(
            request_type=self.request_type,
            name=sample.name,
            response_time=sample.latency_ms,
            response_length=sample.bytes,
            exception=exception,
            context=self.context(),
            response=None,
            start_time=sample.t_start,
            url=self.loadlab.target_url,
        )


class ShoppingSessionUser(SessionUser, FastHttpUser):
    """A shopper whose turns go over HTTP (SSE, or OpenAI chat completions).

    A run whose context names a Lambda function uses
    :class:`~loadlab.load.aws_lambda.users.LambdaSessionUser` instead (loadlab's
    Lambda locustfile); this user refuses such a context rather than send HTTP
    to the Lambda API.
    """

    abstract = False
    # One request at a time per shopper; a second pooled connection lets a
    # retry start while a broken one is still being torn down.
    concurrency = 2

    def __init__(self, environment: Any) -> None:
        context = LoadContext.of(environment)
        if context.transport != "http":
            raise ConfigError(
                f"this run plays its turns through the Lambda function "
                f"{context.lambda_function!r}, which ShoppingSessionUser (HTTP) cannot do",
                hint="use loadlab's Lambda locustfile: "
                "locust -f loadlab/app/lambda_locustfile.py --lambda-function NAME ...",
            )
        timeout_s = context.scenario.target.timeout_s
        if self.host is None:
            self.host = context.target_url
        # The transport bounds every wait itself (the request and its headers, then
        # each read of the body: loadlab.load.fasthttp), so the sockets carry no
        # timeout of their own: with one, gevent armed a second timer around every
        # read, a few per cent of the load's CPU at 5,000 sessions. The connect
        # keeps a socket-level bound above the client's own, which decides.
        self.network_timeout = None  # type: ignore[assignment]
        self.connection_timeout = timeout_s + 5.0
        super().__init__(environment)
        target = context.scenario.target
        self.agent = AgentClient(
            transport=FastHttpTransport.for_user(self),
            adapter=adapter_for(target.protocol, model=target.model, api_key=context.api_key),
            base_url=context.target_url,
            timeout_s=timeout_s,
            turn_deadline_s=target.deadline_s,
            max_answer_bytes=target.max_answer_kib * 1024,
            max_event_bytes=target.max_event_kib * 1024,
            live=context.live,
        )
