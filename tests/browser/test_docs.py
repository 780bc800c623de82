"""/docs (Swagger UI) and /redoc (ReDoc) in real headless Chromium: they render from the
service's own assets, work with an API key, and make no request to any other host."""

from playwright.async_api import Locator, Page, expect

from tests.support.browser import LiveServer, NetworkGuard

TITLE = "B2B NPS service"


async def authorize(page: Page, key: str) -> None:
    await page.locator("button.authorize").first.click()
    dialog = page.locator(".dialog-ux")
    await dialog.get_by_role("textbox", name="auth-bearer-value").fill(key)
    await dialog.get_by_role("button", name="Apply credentials").click()
    await dialog.get_by_role("button", name="Close").first.click()
    await expect(dialog).to_have_count(0)


async def try_get_workspace(page: Page) -> Locator:
    """GET /v1/workspace expanded, in "Try it out" mode."""
    operation = page.locator("#operations-workspace-get_workspace")
    await operation.locator(".opblock-summary").first.click()
    await operation.get_by_role("button", name="Try it out").click()
    return operation


def status_of(operation: Locator) -> Locator:
    return operation.locator(".live-responses-table tbody .response-col_status").first


class TestSwaggerUI:
    async def test_it_renders_the_operations_offline(self, page: Page) -> None:
        await page.goto("/docs")
        await expect(page.locator(".info .title")).to_contain_text(TITLE)
        await expect(page.locator("#operations-scores-get_nps")).to_be_visible()
        await expect(page.locator("#operations-workspace-get_workspace")).to_be_visible()

    async def test_try_it_out_is_refused_without_a_key_and_works_with_the_admin_key(
        self, page: Page, live_server: LiveServer
    ) -> None:
        await page.goto("/docs")
        operation = await try_get_workspace(page)
        execute = operation.get_by_role("button", name="Execute")
        await execute.click()
        await expect(status_of(operation)).to_have_text("401")

        await authorize(page, live_server.admin_key)
        await execute.click()
        await expect(status_of(operation)).to_have_text("200")
        body = operation.locator(".live-responses-table .microlight").first
        await expect(body).to_contain_text('"id"')

    async def test_tab_reaches_the_authorize_button_with_a_visible_focus(self, page: Page) -> None:
        await page.goto("/docs")
        authorize_button = page.locator("button.authorize").first
        await expect(authorize_button).to_be_visible()
        for _ in range(30):
            await page.keyboard.press("Tab")
            if await authorize_button.evaluate("button => button === document.activeElement"):
                break
        else:
            raise AssertionError("30 presses of Tab never reached the Authorize button")
        assert await authorize_button.evaluate("button => button.matches(':focus-visible')")
        await page.keyboard.press("Enter")
        await expect(page.locator(".dialog-ux")).to_contain_text("Available authorizations")


class TestReDoc:
    async def test_it_renders_the_title_and_an_operation(self, page: Page) -> None:
        await page.goto("/redoc")
        await expect(page.get_by_role("heading", level=1)).to_contain_text(TITLE)
        operation = page.get_by_role("heading", name="tag/scores/operation/get_nps Get Nps")
        await expect(operation).to_be_visible()


class TestNetwork:
    async def test_the_docs_pages_ask_only_the_server(
        self, page: Page, guard: NetworkGuard, live_server: LiveServer
    ) -> None:
        for path in ("/docs", "/redoc"):
            await page.goto(path, wait_until="networkidle")
        guard.check()
        asked = {url.removeprefix(live_server.base_url) for url in guard.requested}
        assert {
            "/docs",
            "/docs/assets/swagger-ui-bundle.js",
            "/redoc",
            "/docs/assets/redoc.standalone.js",
            "/openapi.json",
        } <= asked

    async def test_the_guard_refuses_and_records_another_host(
        self, page: Page, guard: NetworkGuard
    ) -> None:
        # A blank page: the service's own answers forbid a fetch elsewhere (CSP) before any
        # request is made, and this proves the guard, not the policy.
        await page.goto("about:blank")
        outcome = await page.evaluate(
            "() => fetch('http://192.0.2.1/probe').then(() => 'reached', () => 'refused')"
        )
        assert outcome == "refused"
        assert guard.refused == ["http://192.0.2.1/probe"]
        guard.refused.clear()  # seen and proven: the page fixture must not fail this test
