"""Keep-alive with more than a thousand descriptors open, over the geventhttpclient transport.

Run in its own process (it patches gevent in); see tests/load/test_load_locust.py.
Opens 1,100 sockets first, as a Locust process holding 5,000 sessions' connections
does, so the transport's connection gets a descriptor above 1023; then sends three
requests in a row over one pool and prints the local port each one used.
Usage: python many_connections.py AGENT_URL
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

from geventhttpclient.client import HTTPClientPool  # noqa: E402

from loadlab.load.fasthttp import FastHttpTransport  # noqa: E402


def main() -> None:
    url = sys.argv[1]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(2048, hard), hard))
    held = [socket.socket() for _ in range(1100)]
    pool = HTTPClientPool(concurrency=2)
    transport = FastHttpTransport(pool)
    ports, fds = [], []
    for _ in range(3):
        response = transport.open("GET", f"{url}/healthz", {}, b"", 5.0)
        b"".join(response.chunks)
        response.close()
        client = pool.get_client(url)
        (sock,) = list(client._connection_pool._socket_queue.queue)
        ports.append(sock.getsockname()[1])
        fds.append(sock.fileno())
    print(json.dumps({"ports": ports, "fds": fds, "held": len(held)}))


if __name__ == "__main__":
    main()
