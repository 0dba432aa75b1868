"""The operator console in a real headless browser: Debian's chromium driven by Playwright
(`make browser` installs it; Playwright never downloads one), against `talkdesk-bridge serve`
on a loopback port with the SQL demo database, one contact of which is an XSS attempt.

Screenshots of the main pages are kept in the test's temporary directory (the path is printed
with `-s`); docs/console.png is one of them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests._support import TOKEN, free_port, seed, wait_healthy
from tests.test_console import CONSOLE_TOKEN, HOSTILE, hostile_database

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason="no chromium found (`make browser` installs Debian's package as root)",
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, a caller's phone): the bridge serving the demo database, console on."""
    folder = tmp_path_factory.mktemp("console-bridge")
    database = folder / "demo.db"
    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(seed(f"sqlite:///{database}", contacts=40))).result()
    phone = hostile_database(database)
    port = free_port()
    env = {
        **os.environ,
        "TALKDESK_BRIDGE_SQL_URL": f"sqlite:///{database}",
        "TALKDESK_BRIDGE_SQL_API_TOKENS": TOKEN,
        "TALKDESK_BRIDGE_CONNECTORS": "sql",
        "TALKDESK_BRIDGE_CONSOLE_TOKEN": CONSOLE_TOKEN,
        "TALKDESK_BRIDGE_CONSOLE_SAMPLE_SECONDS": "0.5",
    }
    log = (folder / "bridge.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "talkdesk_bridge", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            wait_healthy(client, proc)
        yield base, phone
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("console-screenshots")
    print(f"console screenshots: {folder}")
    return folder


class Watched:
    """A page, and everything it must not do: dialogs, script errors, CSP violations."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []

        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", self._console)

    def _console(self, message: Any) -> None:
        # A 401 for a wrong token is the page's answer; a refused script or style is a bug.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def clean(self) -> None:
        assert self.dialogs == [], "a dialog fired: a script ran"
        assert self.errors == []


@pytest.fixture
def page(bridge: tuple[str, str], browser: Any) -> Iterator[Watched]:
    base, _ = bridge
    context = browser.new_context(
        base_url=base,
        viewport={"width": 1280, "height": 860},
        permissions=["clipboard-read", "clipboard-write"],
    )
    try:
        watched = Watched(context.new_page())
        watched.page.set_default_timeout(10_000)
        yield watched
        watched.clean()
    finally:
        context.close()


def log_in(page: Any, token: str = CONSOLE_TOKEN) -> None:
    page.goto("/console")
    assert page.url.endswith("/console/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")


def test_log_in_see_sql_ready_and_copy_its_configuration(page: Watched, screenshots: Path) -> None:
    p = page.page
    log_in(p, "not-the-token-0123456789")
    assert "wrong console token" in p.inner_text("[role=alert]")
    assert p.context.cookies() == [] or all(c["name"] != "td_console" for c in p.context.cookies())
    log_in(p)
    p.wait_for_url("**/console")
    card = p.locator('[data-connector="sql"]')
    assert card.locator(".badge").inner_text() == "ready"
    session = next(c for c in p.context.cookies() if c["name"] == "td_console")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert p.evaluate("document.cookie") == ""  # no script can read the session

    card.locator("button[data-copy]").click()
    card.locator(".status", has_text="Copied").wait_for()
    copied = p.evaluate("navigator.clipboard.readText()")
    document = orjson.loads(copied)
    assert document["integration"]["name"] == "sql_demo_crm"
    assert document["integration"]["auth_validation_endpoint"].endswith("/sql/auth_validation")
    p.screenshot(path=str(screenshots / "overview.png"), full_page=True)


def test_try_a_connection_good_and_bad_token_and_a_full_check(
    page: Watched, screenshots: Path
) -> None:
    p = page.page
    log_in(p)
    p.goto("/console/try?connector=sql")
    p.fill("input[name='auth.api_token']", "wrong-token-0123456789")
    p.click("#try-form button[type=submit]")
    result = p.locator("#result")
    assert result.get_attribute("data-ok") == "false"
    assert "401" in result.locator("tr.bad").first.inner_text()
    assert "unauthorized" in result.inner_text()
    assert p.input_value("input[name='auth.api_token']") == ""  # never echoed back

    p.fill("input[name='auth.api_token']", TOKEN)
    p.click("#try-form button[type=submit]")
    result = p.locator("#result")
    assert result.get_attribute("data-ok") == "true"
    # The stored-XSS attempt is shown as text, and nothing ran (Watched.clean checks).
    assert p.locator("td.name", has_text=HOSTILE).count() == 1
    assert p.locator("img[src=x]").count() == 0
    assert TOKEN not in p.content()
    p.screenshot(path=str(screenshots / "try.png"), full_page=True)

    p.fill("input[name='auth.api_token']", TOKEN)
    p.click("#full-check")
    p.locator("#check-report [data-outcome]").wait_for(timeout=30_000)
    assert p.locator("#check-report [data-outcome]").get_attribute("data-outcome") == "pass"
    assert "contact sync (full)" in p.inner_text("#check-steps")
    p.screenshot(path=str(screenshots / "check.png"), full_page=True)


def test_look_up_a_demo_caller_by_phone(
    page: Watched, bridge: tuple[str, str], screenshots: Path
) -> None:
    _, phone = bridge
    p = page.page
    log_in(p)
    p.goto("/console/lookup?connector=sql")
    p.fill("input[name=caller]", f"{phone[:-7]} {phone[-7:-4]} {phone[-4:]}")
    p.fill("input[name='auth.api_token']", TOKEN)
    p.click("form.credentials button[type=submit]")
    result = p.locator("#lookup-result")
    assert phone in result.locator("h2").inner_text()
    assert result.locator("td.name", has_text=HOSTILE).count() == 1
    assert result.locator("table.interactions tbody tr").count() >= 1
    assert "no interactions" not in result.inner_text()
    p.screenshot(path=str(screenshots / "lookup.png"), full_page=True)


def test_health_charts_move_after_some_requests(
    page: Watched, bridge: tuple[str, str], screenshots: Path
) -> None:
    base, _ = bridge
    p = page.page
    log_in(p)
    p.goto("/console/health")
    chart = "figure[data-title='Requests']"
    before = p.get_attribute(chart, "data-total")
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(30):
            client.post("/sql/contact_sync", json={"auth": {"api_token": TOKEN}, "meta": {}})
        client.post("/sql/contact_sync", json={"auth": {"api_token": "wrong"}})
    # The page's script redraws the charts from the server every two seconds.
    p.wait_for_function(
        "([selector, before]) => document.querySelector(selector).dataset.total !== before",
        arg=[chart, before],
        timeout=10_000,
    )
    assert "/sql/contact_sync" in p.inner_text("table.recent")
    assert "contact_sync" in p.inner_text("table.series")
    points = p.get_attribute(f"{chart} polyline", "points") or ""
    assert len(points.split()) >= 2
    p.screenshot(path=str(screenshots / "health.png"), full_page=True)
