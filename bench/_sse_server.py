"""A canned, fast server that speaks docs/protocol.md, for loadlab's benchmarks.

``POST /v1/sessions/{id}/turns`` answers ``meta``, a few ``token`` events and
``done`` after exactly ``--latency-ms`` (0: at once), as one chunked HTTP/1.1
response on a keep-alive connection. It mirrors the reference agent's cart
rules (using the agent's own intent rules) so that load users see consistent
session state and their sessions end ``clean``. ``GET /healthz`` answers 200.

It is a raw asyncio protocol rather than aiohttp so that the server costs far
less CPU per turn than any load generator: the benchmarks measure the
generator, not the server. ``--procs N`` runs N processes on one port with
SO_REUSEPORT (the kernel spreads connections across them).

It prints ``LISTENING <port> <pid> <pid> ...`` once every process listens. On
SIGTERM each process writes ``<stats-dir>/server-<pid>.json`` (requests, the
most connections it held at once, and ``lateness``: for each delayed answer,
[epoch seconds, ms it left after its schedule]) and exits. Each process dies with its parent
(PR_SET_PDEATHSIG), so a benchmark that crashes leaves no server behind.
Binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from loadlab.embedded.agent.catalog import extract_skus
from loadlab.embedded.agent.intent import detect_intent

HOST = "127.0.0.1"
MAX_SESSIONS = 500_000
MAX_DELAY_SAMPLES = 1_000_000
MAX_HEADER_BYTES = 64 * 1024
_PR_SET_PDEATHSIG = 1
_TOKEN_WORDS = ("Here ", "are ", "today's ", "best ", "deals ", "on ", "that, ", "enjoy! ")


class ServerStats:
    """What one server process saw (written as JSON on SIGTERM)."""

    def __init__(self) -> None:
        self.requests = 0
        self.connections = 0
        self.max_connections = 0
        self.accepted = 0
        self.lateness: list[tuple[float, float]] = []

    def to_json(self) -> dict[str, Any]:
        """The stats as a JSON-serialisable dict."""
        return {
            "pid": os.getpid(),
            "requests": self.requests,
            "max_connections": self.max_connections,
            "accepted": self.accepted,
            "lateness": self.lateness,
        }


class Sessions:
    """Per-session state mirrored from the reference agent's rules (bounded)."""

    def __init__(self) -> None:
        self._state: dict[str, tuple[int, dict[str, int], int]] = {}

    def apply(self, session_id: str, turn: int, message: str) -> tuple[str, bool, dict[str, Any]]:
        """Apply one turn; return (intent, replayed, state object)."""
        if len(self._state) >= MAX_SESSIONS:
            self._state.clear()  # a benchmark never revisits sessions this old
        applied, cart, version = self._state.get(session_id, (0, {}, 0))
        intent = detect_intent(message)
        replayed = turn <= applied
        if not replayed:
            cart = dict(cart)
            if intent == "add_to_cart":
                for sku in extract_skus(message):
                    cart[sku] = cart.get(sku, 0) + 1
            elif intent == "remove_from_cart":
                for sku in extract_skus(message):
                    if sku in cart:
                        cart[sku] -= 1
                        if cart[sku] <= 0:
                            del cart[sku]
            applied += 1
            version += 1
            self._state[session_id] = (applied, cart, version)
        state = {"session_id": session_id, "turn": applied, "cart": cart, "version": version}
        return intent, replayed, state


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(name: str, data: dict[str, Any]) -> bytes:
    return _chunk(f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode())


class TurnServer:
    """What every connection of one process shares."""

    def __init__(self, *, latency_s: float, tokens: int, stats: ServerStats) -> None:
        self.latency_s = latency_s
        self.stats = stats
        self.sessions = Sessions()
        self.instance_id = f"bench-{os.getpid()}"
        self.cold = True
        words = [_TOKEN_WORDS[i % len(_TOKEN_WORDS)] for i in range(tokens)]
        self.token_chunks = b"".join(_event("token", {"text": w}) for w in words)
        self.downstream = {
            "ddb_calls": 0,
            "ddb_rcu": 0.0,
            "ddb_wcu": 0.0,
            "llm_calls": 0,
            "llm_retries": 0,
            "llm_throttles": 0,
            "tokens_in": 0,
            "tokens_out": tokens,
        }

    def turn_response(self, path: str, body: bytes, keep_alive: bool) -> bytes:
        """The whole HTTP response for one turn."""
        session_id = path.split("/")[3]
        try:
            request = json.loads(body)
            turn, message = int(request["turn"]), str(request["message"])
        except (ValueError, KeyError, TypeError):
            return _plain(400, b'{"error":{"kind":"bad_request","message":"bad body"}}', keep_alive)
        intent, replayed, state = self.sessions.apply(session_id, turn, message)
        meta = {
            "instance_id": self.instance_id,
            "cold": self.cold,
            "init_ms": 0.0,
            "state_source": "memory",
            "intent": intent,
            "replayed": replayed,
        }
        self.cold = False
        done = {"state": state, "replayed": replayed, "downstream": self.downstream}
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n"
        )
        head += b"Connection: keep-alive\r\n\r\n" if keep_alive else b"Connection: close\r\n\r\n"
        return b"".join(
            (head, _event("meta", meta), self.token_chunks, _event("done", done), b"0\r\n\r\n")
        )


def _plain(status: int, body: bytes, keep_alive: bool) -> bytes:
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}.get(status, b"Error")
    conn = b"keep-alive" if keep_alive else b"close"
    return b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
        status,
        reason,
        len(body),
    ) + b"Connection: %s\r\n\r\n%s" % (conn, body)


class TurnProtocol(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection; requests are answered in order."""

    def __init__(self, server: TurnServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False  # an answer is scheduled; pipelined requests wait for it
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count the connection."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        stats = self.server.stats
        stats.connections += 1
        stats.accepted += 1
        stats.max_connections = max(stats.max_connections, stats.connections)

    def connection_lost(self, exc: Exception | None) -> None:
        """Uncount the connection."""
        self.server.stats.connections -= 1
        self.transport = None

    def data_received(self, data: bytes) -> None:
        """Buffer, and answer what is complete."""
        self.buffer += data
        self._serve_next()

    def _serve_next(self) -> None:
        while not self.busy and self.transport is not None and not self.closing:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER_BYTES:
                    self.transport.close()
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            method, path, _ = ([*head[0].split(" ", 2), "", ""])[:3]
            length, keep_alive = 0, True
            for line in head[1:]:
                name, _, value = line.partition(":")
                lowered = name.strip().lower()
                if lowered == "content-length":
                    length = int(value.strip() or 0)
                elif lowered == "connection" and value.strip().lower() == "close":
                    keep_alive = False
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = self.buffer[end + 4 : total]
            self.buffer = self.buffer[total:]
            self.server.stats.requests += 1
            if method == "POST" and path.startswith("/v1/sessions/") and path.endswith("/turns"):
                response = self.server.turn_response(path, body, keep_alive)
            elif path == "/healthz":
                response = _plain(200, b'{"status":"ok"}', keep_alive)
            else:
                response = _plain(404, b'{"error":{"kind":"not_found","message":"?"}}', keep_alive)
            if self.server.latency_s > 0:
                self.busy = True
                due = time.monotonic() + self.server.latency_s
                asyncio.get_running_loop().call_later(
                    self.server.latency_s, self._send_later, response, keep_alive, due
                )
                return
            self._send(response, keep_alive)

    def _send_later(self, response: bytes, keep_alive: bool, due: float) -> None:
        stats = self.server.stats
        if len(stats.lateness) < MAX_DELAY_SAMPLES:
            late_ms = (time.monotonic() - due) * 1000.0
            stats.lateness.append((round(time.time(), 3), round(late_ms, 3)))
        self.busy = False
        self._send(response, keep_alive)
        self._serve_next()

    def _send(self, response: bytes, keep_alive: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(response)
        if not keep_alive:
            self.closing = True
            self.transport.close()


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the parent's own cleanup has to do


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((HOST, port))
    sock.listen(8192)
    sock.setblocking(False)
    return sock


async def _freeze_every_second() -> None:
    """Keep the collector to the last second's objects (the server's own stalls off the figures).

    Without it, a collection of the oldest generation (the connections, the
    lateness samples piling up) stopped a server process for 25-30 ms a few
    times a run: every turn it held was that much later, in the load
    generator's P99.9 (bench/RESULTS.md, "2. Concurrency").
    """
    while True:
        gc.freeze()
        await asyncio.sleep(1.0)


async def _serve(sock: socket.socket, args: argparse.Namespace, ready: int | None) -> None:
    stats = ServerStats()
    server = TurnServer(latency_s=args.latency_ms / 1000.0, tokens=args.tokens, stats=stats)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    listener = await loop.create_server(lambda: TurnProtocol(server), sock=sock, backlog=8192)
    if ready is not None:
        os.write(ready, b"x")
        os.close(ready)
    freezer = asyncio.create_task(_freeze_every_second())
    try:
        await stop.wait()
    finally:
        freezer.cancel()
        listener.close()
        path = Path(args.stats_dir) / f"server-{os.getpid()}.json"
        if args.stats_dir:
            path.write_text(json.dumps(stats.to_json()))


def main(argv: list[str] | None = None) -> int:
    """Start ``--procs`` processes on one port; print the LISTENING line; serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--stats-dir", default="")
    args = parser.parse_args(argv)
    _die_with_parent()
    first = _listen(args.port)
    port = first.getsockname()[1]
    children: list[int] = []
    for _ in range(max(0, args.procs - 1)):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            first.close()
            _die_with_parent()
            try:
                asyncio.run(_serve(_listen(port), args, write_end))
            finally:
                os._exit(0)
        os.close(write_end)
        os.read(read_end, 1)  # the child listens (or died: then read returns b"")
        os.close(read_end)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    pids = " ".join(str(p) for p in [os.getpid(), *children])
    sys.stdout.write(f"LISTENING {port} {pids}\n")
    sys.stdout.flush()
    try:
        asyncio.run(_serve(first, args, None))
    finally:
        forward(signal.SIGTERM, None)
        for child in children:
            os.waitpid(child, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
