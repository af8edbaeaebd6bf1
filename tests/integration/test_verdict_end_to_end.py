"""``loadlab run`` exits by the verdict: an agent that fails every turn is never green."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from junitparser import JUnitXml

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@pytest.fixture
def failing_agent() -> Iterator[str]:
    """An agent that is healthy on /healthz and answers HTTP 500 to every turn."""
    import asyncio

    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, object] = {}

    async def fail(_: web.Request) -> web.Response:
        return web.Response(status=500, text="internal error")

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/healthz", health)
        app.router.add_route("*", "/{tail:.*}", fail)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop)
    assert started.wait(10)
    try:
        yield str(holder["url"])
    finally:
        runner = holder["runner"]
        assert isinstance(runner, web.AppRunner)
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_an_agent_failing_every_turn_with_no_slo_block_exits_6(
    failing_agent: str, tmp_path: Path
) -> None:
    scenario = tmp_path / "no_gates.yaml"
    text = (REPO / "scenarios" / "ci_smoke.yaml").read_text()
    scenario.write_text(text.split("\nslo:")[0] + "\n")  # no slo block at all
    proc = subprocess.run(
        [
            sys.executable, "-m", "loadlab", "run", str(scenario), "--target", failing_agent,
            "--time-scale", "0.01", "--run-dir", str(tmp_path / "run"),
            "--state-dir", str(tmp_path / "state"),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 6, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.startswith("loadlab: rendering") or "verdict: FAIL" in proc.stdout
    assert "error_rate" in proc.stdout and "default" in proc.stdout
    junit = JUnitXml.fromfile(str(tmp_path / "run" / "junit.xml"))
    failures = [
        (case.name, result.message)
        for suite in junit
        for case in suite
        for result in case.result
        if result._tag == "failure"
    ]
    assert any(name == "error_rate" for name, _ in failures), failures
    message = next(m for name, m in failures if name == "error_rate")
    assert "limit 0.01" in str(message), message
