"""How much cyclic garbage each kind of failed request leaves, over the geventhttpclient transport.

Run in its own process (it patches gevent in); see tests/load/test_load_locust.py.
The collector is off while a load runs (loadlab.load.gc_pause), so whatever a
failure leaves in a reference cycle stays until the load stops. Starts local
servers that reset, answer garbage, stall or cut the stream, and a port nobody
listens on; plays ``N`` failed turns against each with the collector off, then
prints JSON: per kind, the error kinds seen and the objects a collection found.
Usage: python failure_cycles.py N
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import gc  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

from loadlab.load.adapters import ReferenceAdapter, TurnRequest  # noqa: E402
from loadlab.load.client import AgentClient  # noqa: E402
from loadlab.load.fasthttp import FastHttpTransport  # noqa: E402


def _reset(sock: Any, _addr: Any) -> None:
    sock.recv(4096)
    sock.close()


def _garbage(sock: Any, _addr: Any) -> None:
    sock.recv(4096)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: zz\r\n\r\nxx")
    sock.close()


def _stall(sock: Any, _addr: Any) -> None:
    sock.recv(4096)
    gevent.sleep(0.5)
    sock.close()


def _cut(sock: Any, _addr: Any) -> None:
    sock.recv(4096)
    sock.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n10\r\nevent: meta\ndata:"
    )
    sock.close()


def main() -> None:
    n = int(sys.argv[1])
    ports: dict[str, int] = {}
    for name, handler in [
        ("reset", _reset),
        ("garbage", _garbage),
        ("stall", _stall),
        ("cut", _cut),
    ]:
        server = StreamServer(("127.0.0.1", 0), handler)
        server.start()
        ports[name] = server.server_port
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    ports["refused"] = probe.getsockname()[1]
    probe.close()
    transport = FastHttpTransport(connection_timeout=1.0, network_timeout=None)
    out: dict[str, dict[str, object]] = {}
    for name, port in ports.items():
        client = AgentClient(
            transport=transport,
            adapter=ReferenceAdapter(),
            base_url=f"http://127.0.0.1:{port}",
            timeout_s=0.05 if name == "stall" else 5.0,
        )
        kinds: set[str | None] = set()
        gc.collect()
        gc.disable()
        for i in range(n):
            request = TurnRequest(
                session_id=f"{name}-{i}",
                turn_index=1,
                message="Show me what's on sale today",
                idempotency_key=f"{name}-{i}-t1",
                token="token",
            )
            kinds.add(client.send_turn(request).error_kind)
        del client
        out[name] = {"kinds": sorted(str(k) for k in kinds), "garbage": gc.collect()}
        gc.enable()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
