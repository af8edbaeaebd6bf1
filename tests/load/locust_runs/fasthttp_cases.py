"""Run AgentClient over FastHttpTransport against a live agent double; print JSON results.

Run in its own process (it imports gevent); see tests/load/test_load_locust.py.
Usage: python fasthttp_cases.py AGENT_URL JWT_SECRET REFUSED_URL
"""

from __future__ import annotations

import json
import sys

from gevent import monkey

monkey.patch_all()

from loadlab.load.adapters import ReferenceAdapter, TurnRequest  # noqa: E402
from loadlab.load.auth import mint_session_token  # noqa: E402
from loadlab.load.client import AgentClient  # noqa: E402
from loadlab.load.fasthttp import FastHttpTransport  # noqa: E402


def main() -> None:
    url, secret, refused = sys.argv[1:4]
    transport = FastHttpTransport(connection_timeout=2.0, network_timeout=5.0)
    results: dict[str, dict[str, object]] = {}
    cases = [
        ("healthy", url, "healthy-1", secret),
        ("garbage", url, "garbage-1", secret),
        ("slow", url, "slow-1", secret),
        ("drip", url, "drip-1", secret),
        ("cut", url, "cut-1", secret),
        ("throttle", url, "throttle-1", secret),
        ("status503", url, "status503-1", secret),
        ("auth", url, "healthy-2", "wrong-secret-wrong-secret-wrong-secret"),
        ("refused", refused, "healthy-3", secret),
    ]
    try:
        for name, base, sid, key in cases:
            client = AgentClient(
                transport=transport, adapter=ReferenceAdapter(), base_url=base, timeout_s=0.5
            )
            result = client.send_turn(
                TurnRequest(
                    session_id=sid,
                    turn_index=1,
                    message="Add P-0042 to my cart",
                    idempotency_key=f"{sid}-t1",
                    token=mint_session_token(secret=key, session_id=sid),
                )
            )
            results[name] = {
                "error_kind": result.error_kind,
                "status": result.status,
                "tokens": result.tokens,
                "ttft": result.ttft_ms is not None,
                "bytes": result.bytes,
                "retry_after_s": result.retry_after_s,
                "cart": None
                if result.done is None or result.done.state is None
                else result.done.state.cart_dict(),
            }
        # The connection pool must still work after all of that.
        again = AgentClient(transport=transport, adapter=ReferenceAdapter(), base_url=url)
        result = again.send_turn(
            TurnRequest(
                session_id="healthy-1",
                turn_index=2,
                message="Show me shoes",
                idempotency_key="healthy-1-t2",
                token=mint_session_token(secret=secret, session_id="healthy-1"),
            )
        )
        results["after"] = {"error_kind": result.error_kind, "status": result.status}
    finally:
        transport.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
