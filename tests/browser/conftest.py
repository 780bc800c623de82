"""Browser fixtures: one headless Chromium and one live `nps serve` for the session, a fresh
context and page per test with the network guard on.

A missing Chromium fails these tests (with how to install it); it never skips them."""

import os
import secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from app.config import async_database_url
from app.embedded import scratch_database
from tests.support.browser import (
    BrowserMissing,
    LiveServer,
    NetworkGuard,
    chromium_executable,
    launch_args,
    running_as_root,
)
from tests.support.processes import free_port, started_nps, until_ready

# Long enough for a loaded 2-core machine, short enough that a broken page fails fast.
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)


def chromium() -> str:
    try:
        return chromium_executable()
    except BrowserMissing as missing:
        message = str(missing)
    pytest.fail(message, pytrace=False)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=launch_args(root=running_as_root())
        )
        yield browser
        await browser.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def live_server(server_url: str) -> AsyncIterator[LiveServer]:
    """`nps serve` on a scratch database of its own and a free port, as a user would run it."""
    async with scratch_database(server_url, "nps_browser") as plain:
        port, key = free_port(), "nps_" + secrets.token_urlsafe(32)
        with started_nps(
            async_database_url(plain),
            "serve",
            NPS_PORT=str(port),
            NPS_BOOTSTRAP_API_KEY=key,
            # No access log: nobody reads the process's output pipe until the session ends.
            NPS_LOG_LEVEL="warning",
        ):
            await until_ready(port)
            yield LiveServer(base_url=f"http://127.0.0.1:{port}", admin_key=key)


@pytest_asyncio.fixture(loop_scope="session")
async def guard(live_server: LiveServer) -> NetworkGuard:
    return NetworkGuard(live_server.base_url)


@pytest_asyncio.fixture(loop_scope="session")
async def page(
    browser: Browser, live_server: LiveServer, guard: NetworkGuard
) -> AsyncIterator[Page]:
    """A page in a context of its own, relative URLs on the live server; the test fails when the
    page asked any other host."""
    context = await browser.new_context(base_url=live_server.base_url, service_workers="block")
    context.set_default_timeout(TIMEOUT_MS)
    await guard.install(context)
    page = await context.new_page()
    yield page
    await context.unroute_all(behavior="ignoreErrors")
    await context.close()
    guard.check()
