"""Real servers for the pressure tests: an LLM simulator on its own thread, and ministack."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from aiohttp import web
from pressure_support import FAST, MINISTACK, ServedSimulator, free_port

from loadlab.target.llm.server import SIMULATOR_KEY, create_app


@pytest.fixture
def llm_simulator() -> Iterator[ServedSimulator]:
    """The real LLM simulator app on 127.0.0.1:0, served by a thread's event loop."""
    loop = asyncio.new_event_loop()
    app = create_app(FAST)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    thread = threading.Thread(target=loop.run_forever, name="llm-simulator", daemon=True)
    thread.start()

    async def start() -> int:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return int(runner.addresses[0][1])

    try:
        port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        yield ServedSimulator(url=f"http://127.0.0.1:{port}", simulator=app[SIMULATOR_KEY])
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def ministack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ministack on a free loopback port for this module; yields its endpoint URL."""
    if not MINISTACK.exists():
        pytest.skip(f"ministack is not installed at {MINISTACK}; run scripts/bootstrap")
    workdir = tmp_path_factory.mktemp("ministack")
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "BIND_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
    }
    endpoint = f"http://127.0.0.1:{port}"
    with (workdir / "ministack.log").open("wb") as log:
        process = subprocess.Popen(
            [str(MINISTACK)], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"ministack exited with {process.returncode}")
            try:
                with urllib.request.urlopen(f"{endpoint}/_ministack/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("ministack did not answer within 30 s")
                time.sleep(0.1)  # no readiness event to await: poll the health endpoint
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
