"""The LLM simulator: an OpenAI-compatible chat-completions server on aiohttp.

It stands in for Bedrock/OpenAI in loadlab's embedded stack with a lognormal
latency model (time to first token, per-token interval), RPM/TPM quotas and a
concurrency limit answered with 429 + Retry-After, runtime faults set over an
admin API, and Prometheus metrics. It is written here rather than taken from PyPI
because the mock-LLM packages there (fakellm: canned rule-matched replies;
llmock: FastAPI, RPM/TPM buckets with Retry-After) model no latency distribution,
concurrency limit or Prometheus metrics.

Routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /healthz``,
``GET /metrics``, ``GET|POST|DELETE /admin/faults``. The admin routes need the
stack's token and refuse a fault without a lease of at most 15 minutes
(:mod:`loadlab.embedded.admin_auth`).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from loadlab.embedded.admin_auth import (
    LeaseRefused,
    admin_token_from_env,
    check_lease,
    require_token,
)
from loadlab.embedded.llm.config import SimulatorConfig
from loadlab.embedded.llm.faults import NO_FAULT, Fault, FaultValueError, updated_fault
from loadlab.embedded.llm.metrics import SimulatorMetrics
from loadlab.embedded.llm.protocol import (
    BadRequest,
    ChatRequest,
    chunk_body,
    completion_body,
    error_body,
    parse_chat_request,
    usage,
)
from loadlab.embedded.llm.quotas import (
    RateLimiter,
    Rejection,
    retry_after_ms,
    retry_after_seconds,
)

# Shopping-flavoured filler so streamed text looks like the agent's domain.
_WORDS = (
    "sure", "here", "are", "the", "best", "options", "for", "your", "cart", "this",
    "item", "is", "in", "stock", "and", "ships", "today", "price", "compare", "with",
    "similar", "products", "order", "status", "checkout", "discount", "size", "colour",
)  # fmt: skip


class Simulator:
    """One simulator's state: config, seeded randomness, quotas, faults, metrics."""

    def __init__(self, *, config: SimulatorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.limiter = RateLimiter(quotas=config.quotas, time_scale=config.time_scale)
        self.metrics = SimulatorMetrics()
        self.fault: Fault = NO_FAULT

    def current_fault(self) -> Fault:
        """The injected fault, or none once its lease has expired."""
        return self.fault if self.fault.active(time.time()) else NO_FAULT

    def _reject(self, rejection: Rejection) -> web.Response:
        self.metrics.rate_limited.labels(rejection.reason).inc()
        self.metrics.requests.labels("429").inc()
        return web.json_response(
            error_body(rejection.message, type_=rejection.error_type, code=rejection.reason),
            status=429,
            headers={
                "Retry-After": str(rejection.retry_after_s),
                "retry-after-ms": str(rejection.retry_after_ms),
            },
        )

    def _bad_request(self, error: BadRequest) -> web.Response:
        self.metrics.requests.labels("400").inc()
        body = error_body(
            error.message, type_="invalid_request_error", code=error.code, param=error.param
        )
        return web.json_response(body, status=400)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/chat/completions``."""
        try:
            chat = parse_chat_request(await request.json(), default_model=self.config.model)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            error = exc if isinstance(exc, BadRequest) else None
            return self._bad_request(
                error or BadRequest(f"the body is not valid JSON: {exc}", code="invalid_json")
            )
        fault = self.current_fault()
        latency, scale = self.config.latency, self.config.time_scale
        # Everything random is drawn now, in arrival order, so a seed replays a run.
        n_tokens = latency.output_tokens(self.rng, chat.max_tokens)
        if fault.reject_fraction and self.rng.random() < fault.reject_fraction:
            # An injected 429 asks for one simulated second, like a concurrency rejection.
            return self._reject(
                Rejection(
                    reason="fault",
                    retry_after_s=retry_after_seconds(scale),
                    retry_after_ms=retry_after_ms(scale),
                    message="Rate limit reached (injected fault).",
                )
            )
        reserved = chat.prompt_tokens + (chat.max_tokens or n_tokens)
        rejection = self.limiter.admit(tokens=reserved, rpm=fault.rpm, tpm=fault.tpm)
        if rejection is not None:
            return self._reject(rejection)
        ttft_s = (latency.ttft_ms(self.rng) + fault.extra_latency_ms) * scale / 1000
        gaps_s = [
            latency.token_interval_ms(self.rng) * fault.token_interval_factor * scale / 1000
            for _ in range(n_tokens - 1)
        ]
        words = [self.rng.choice(_WORDS) for _ in range(n_tokens)]
        pieces = [words[0], *(f" {w}" for w in words[1:])]
        finish = "length" if chat.max_tokens is not None and n_tokens == chat.max_tokens else "stop"
        id_ = f"chatcmpl-{self.rng.getrandbits(64):016x}"

        started = time.monotonic()
        status = "499"  # until the completion is fully sent: the client went away
        self.metrics.in_flight.inc()
        self.metrics.prompt_tokens.inc(chat.prompt_tokens)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            if chat.stream:
                await self._stream(
                    request,
                    response,
                    chat,
                    id_=id_,
                    ttft_s=ttft_s,
                    gaps_s=gaps_s,
                    pieces=pieces,
                    finish=finish,
                    started=started,
                )
            else:
                await asyncio.sleep(ttft_s + sum(gaps_s))
                self.metrics.ttft.observe(time.monotonic() - started)
                response = web.json_response(
                    completion_body(
                        id_=id_,
                        created=int(time.time()),
                        model=chat.model,
                        content="".join(pieces),
                        finish_reason=finish,
                        usage_=usage(chat.prompt_tokens, n_tokens),
                    )
                )
                self.metrics.completion_tokens.inc(n_tokens)
            status = "200"
            self.metrics.duration.observe(time.monotonic() - started)
            return response
        except ConnectionResetError:
            return response  # the client went away mid-stream; only the metric matters
        finally:
            self.limiter.release()
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(status).inc()

    async def _stream(
        self,
        request: web.Request,
        response: web.StreamResponse,
        chat: ChatRequest,
        *,
        id_: str,
        ttft_s: float,
        gaps_s: list[float],
        pieces: list[str],
        finish: str,
        started: float,
    ) -> None:
        await response.prepare(request)
        created = int(time.time())
        # With include_usage every chunk carries "usage": null except the last one.
        extra: dict[str, Any] = {"usage": None} if chat.include_usage else {}

        def chunk(delta: dict[str, str], finish_reason: str | None) -> dict[str, Any]:
            body = chunk_body(
                id_=id_, created=created, model=chat.model, delta=delta, finish_reason=finish_reason
            )
            return {**body, **extra}

        async def send(payload: dict[str, Any] | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            await response.write(f"data: {data}\n\n".encode())

        await asyncio.sleep(ttft_s)
        for index, piece in enumerate(pieces):
            if index:
                await asyncio.sleep(gaps_s[index - 1])
            delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
            await send(chunk(delta, None))
            self.metrics.completion_tokens.inc()
            if index == 0:
                self.metrics.ttft.observe(time.monotonic() - started)
        await send(chunk({}, finish))
        if chat.include_usage:
            last = chunk({}, None)
            await send({**last, "choices": [], "usage": usage(chat.prompt_tokens, len(pieces))})
        await send("[DONE]")
        await response.write_eof()

    async def models(self, _request: web.Request) -> web.Response:
        """``GET /v1/models``."""
        model = {"id": self.config.model, "object": "model", "created": 0, "owned_by": "loadlab"}
        return web.json_response({"object": "list", "data": [model]})

    async def healthz(self, _request: web.Request) -> web.Response:
        """``GET /healthz``: always ready once listening."""
        return web.json_response({"status": "ok"})

    async def metrics_text(self, _request: web.Request) -> web.Response:
        """``GET /metrics`` in Prometheus text format."""
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    def _fault_view(self) -> web.Response:
        active = self.fault != NO_FAULT and self.fault.active(time.time())
        return web.json_response({"fault": self.fault.to_json(), "active": active})

    async def get_faults(self, _request: web.Request) -> web.Response:
        """``GET /admin/faults``: the stored fault and whether it applies now."""
        return self._fault_view()

    async def post_faults(self, request: web.Request) -> web.Response:
        """``POST /admin/faults``: partial update; an expired fault is replaced, not extended."""
        try:
            fault = updated_fault(self.current_fault(), await request.json())
            if fault != NO_FAULT:
                check_lease(fault.expires_at, now=time.time())
        except ValueError as exc:  # FaultValueError, LeaseRefused or malformed JSON
            known = isinstance(exc, FaultValueError | LeaseRefused)
            detail = str(exc) if known else f"invalid JSON: {exc}"
            body = error_body(detail, type_="invalid_request_error", code="invalid_fault")
            return web.json_response(body, status=400)
        self.fault = fault
        return self._fault_view()

    async def delete_faults(self, _request: web.Request) -> web.Response:
        """``DELETE /admin/faults``: inject nothing."""
        self.fault = NO_FAULT
        return self._fault_view()


SIMULATOR_KEY = web.AppKey("loadlab_llm_simulator", Simulator)


def _unauthorized(_request: web.Request, message: str) -> web.Response:
    body = error_body(message, type_="authentication_error", code="invalid_admin_token")
    return web.json_response(body, status=401)


def create_app(config: SimulatorConfig, *, admin_token: str | None = None) -> web.Application:
    """Build the simulator's aiohttp application (``app[SIMULATOR_KEY]`` is its state).

    ``admin_token`` guards ``/admin/``; default: ``LOADLAB_ADMIN_TOKEN`` (see
    :func:`~loadlab.embedded.admin_auth.admin_token_from_env`).
    """
    simulator = Simulator(config=config)
    token = admin_token_from_env() if admin_token is None else admin_token
    app = web.Application(
        middlewares=[require_token(token, prefixes=("/admin/",), refuse=_unauthorized)]
    )
    app[SIMULATOR_KEY] = simulator
    app.router.add_post("/v1/chat/completions", simulator.chat_completions)
    app.router.add_get("/v1/models", simulator.models)
    app.router.add_get("/healthz", simulator.healthz)
    app.router.add_get("/metrics", simulator.metrics_text)
    app.router.add_get("/admin/faults", simulator.get_faults)
    app.router.add_post("/admin/faults", simulator.post_faults)
    app.router.add_delete("/admin/faults", simulator.delete_faults)
    return app
