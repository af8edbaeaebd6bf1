"""Locust's web UI in real headless Chromium (Debian's ``chromium``) through Playwright.

Run as a script by ``test_browser_tab.py``, in a process of its own: Playwright's
sync API must not share a process with gevent's monkey-patching, which importing
locust (as other test modules do) applies to the whole pytest process.

    python browser.py start BASE_URL
        press Start (the scenario's shape sets users and spawn rate)
    python browser.py read BASE_URL SCREENSHOT [FAULT_TEXT]
        open the loadlab tab, wait until it shows FAULT_TEXT, print its table as
        JSON, take a screenshot of the tab, then press Stop
    python browser.py report BASE_URL
        after Stop: wait until the loadlab tab links to the report, follow the
        report link of the Download Data tab, print the page it leads to

Playwright's own browser download does not work here and is never used: the
browser is the system's (``CHROMIUM``).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable

from playwright.sync_api import Locator, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 30_000


def _table(page: Page) -> list[list[str]]:
    return [
        [cell.inner_text() for cell in row.locator("td").all()]
        for row in page.locator("table tbody tr").all()
    ]


def start(page: Page) -> None:
    """Press Start on the start form."""
    page.get_by_role("button", name="Start").click()
    page.get_by_role("button", name="Stop").wait_for(timeout=TIMEOUT_MS)


def _click_until(page: Page, locator: Locator, done: Callable[[], bool] | None = None) -> None:
    """Click ``locator`` until ``done()`` (or until one click goes through, without it):
    Locust's UI re-renders every second, and on a busy machine a re-render can detach the
    element in the middle of a click."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        clicked = False
        with contextlib.suppress(PlaywrightTimeoutError):
            locator.click(timeout=5_000, force=True)
            clicked = True
        if done() if done is not None else clicked:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"clicking {locator} did not take within {TIMEOUT_MS} ms")
        page.wait_for_timeout(250)


def _open_tab(page: Page, name: str) -> Locator:
    """Select the tab ``name`` of a running test's UI, reloading a page that shows none.

    Press Start with a load shape and, until the shape's first tick, the runner
    still says "ready": a page loaded then shows the start form, and Locust's UI
    stops polling a "ready" runner, so it shows that form for good. A reload
    reads the state anew.
    """
    tab = page.get_by_role("tab", name=name)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        with contextlib.suppress(PlaywrightTimeoutError):
            tab.wait_for(timeout=5_000)
            break
        if time.monotonic() > deadline:
            shown = page.inner_text("body")[:300]
            raise AssertionError(f"no {name!r} tab within {TIMEOUT_MS} ms; the page: {shown!r}")
        page.reload()
    _click_until(page, tab, lambda: tab.get_attribute("aria-selected") == "true")
    return tab


def read(page: Page, screenshot: str, fault_text: str) -> list[list[str]]:
    """The loadlab tab's table once it shows ``fault_text``; a screenshot; then Stop."""
    _open_tab(page, "loadlab")
    page.locator("table tbody tr", has_text=fault_text).first.wait_for(timeout=TIMEOUT_MS)
    # sessions have ended by now: the verdict rows carry counts, not zeros only
    page.wait_for_function(
        """() => [...document.querySelectorAll('table tbody tr')].some(
            r => r.cells[1]?.innerText === 'clean' && r.cells[2]?.innerText !== '0')""",
        timeout=TIMEOUT_MS,
    )
    rows = _table(page)
    page.screenshot(path=screenshot, full_page=True)
    _click_until(page, page.get_by_role("button", name="Stop"))
    return rows


def report(page: Page, base: str) -> str:
    """The report, reached as a user does once the run has stopped (see the docstring)."""
    tab = page.get_by_role("tab", name="loadlab")
    deadline = time.monotonic() + 2 * TIMEOUT_MS / 1000  # the audit and the report take a while
    while True:
        _click_until(page, tab, lambda: tab.get_attribute("aria-selected") == "true")
        with contextlib.suppress(PlaywrightTimeoutError):
            page.locator("table tbody tr").first.wait_for(timeout=5_000)
            if ["run", "report", "./loadlab/report"] in _table(page):
                break
        if time.monotonic() > deadline:
            raise AssertionError(f"the loadlab tab never linked to the report: {_table(page)}")
        page.reload()  # a stopped run's UI no longer polls; a reload reads the figures anew
    downloads = page.get_by_role("tab", name="Download Data")
    _click_until(page, downloads, lambda: downloads.get_attribute("aria-selected") == "true")
    href = page.get_by_role("link", name="loadlab report").get_attribute("href")
    assert href is not None
    page.goto(base + "/" + href.removeprefix("./"))
    return page.content()


def main(argv: list[str]) -> int:
    """``start``, ``read`` or ``report`` (see the module's docstring)."""
    command, base = argv[0], argv[1]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox"],  # root in a container
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base + "/")
        if command == "start":
            start(page)
        elif command == "report":
            print(report(page, base))
        else:
            rows = read(page, argv[2], argv[3] if len(argv) > 3 else "")
            print(json.dumps(rows))
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
