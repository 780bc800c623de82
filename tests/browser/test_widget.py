"""/widget.js in real headless Chromium, embedded by a test page of a front end: answered with the
keyboard only, Esc dismisses, a tampered score shows the API's refusal, focus stays in the
dialog, and the host page's styles stay out while its CSS variables theme it."""

from playwright.async_api import Locator, Page, Route, expect

from tests.support.browser import LiveServer
from tests.support.live import Invited, define_survey, invitation_of, invite, responses_of
from tests.support.processes import eventually

SURVEY = "widget-survey"
HOST_PAGE = """<!doctype html>
<html lang="en"><head><title>Host app</title>
<link rel="stylesheet" href="/host-app.css"></head>
<body><h1>Host app</h1><button id="host-button">A button of the host</button>
<script src="/widget.js" data-token="{token}" async></script>
</body></html>"""
# The host's own styles, which must not reach into the widget, and its theme, which must.
HOST_CSS = """
:root { --nps-accent: rgb(1, 2, 3); }
span, h2 { color: rgb(255, 0, 0) !important; font-family: serif; }
"""
# A strict policy of the host's own: the widget needs no inline script or style.
HOST_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'"


async def embed(page: Page, live_server: LiveServer, invited: Invited) -> Locator:
    """The front end's page (served at the live server's origin by the test) embedding the
    widget with the token its backend obtained; the widget's dialog, once open."""

    async def host(route: Route) -> None:
        await route.fulfill(
            content_type="text/html",
            headers={"Content-Security-Policy": HOST_CSP},
            body=HOST_PAGE.format(token=invited.token),
        )

    async def host_css(route: Route) -> None:
        await route.fulfill(content_type="text/css", body=HOST_CSS)

    await page.route(f"{live_server.base_url}/host-app", host)
    await page.route(f"{live_server.base_url}/host-app.css", host_css)
    await page.goto("/host-app")
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    return dialog


async def widget_invitation(live_server: LiveServer) -> Invited:
    await define_survey(
        live_server,
        SURVEY,
        {
            "attributes": [{"key": "support", "label": "Support", "scale": 5}],
            "thank_you": "Thanks from {company}!",
        },
    )
    return await invite(live_server, survey=SURVEY, channel="widget", role="influencer")


class TestWidget:
    async def test_answered_with_the_keyboard_only_is_stored_with_its_role_snapshot(
        self, page: Page, live_server: LiveServer
    ) -> None:
        invited = await widget_invitation(live_server)
        dialog = await embed(page, live_server, invited)
        await expect(dialog.get_by_role("radio", name="0", exact=True)).to_be_focused()

        for _ in range(9):
            await page.keyboard.press("ArrowRight")
        await page.keyboard.press("Tab")  # the support rating
        await page.keyboard.press("Space")
        for _ in range(3):
            await page.keyboard.press("ArrowRight")
        await page.keyboard.press("Tab")
        await page.keyboard.type("Keyboard only")
        await page.keyboard.press("Tab")
        await page.keyboard.press("Enter")

        await expect(dialog.get_by_role("heading")).to_have_text("Thanks from default!")
        [stored] = await responses_of(live_server, invited.stakeholder_id)
        assert {k: stored[k] for k in ("score", "comment", "attributes", "role", "channel")} == {
            "score": 9,
            "comment": "Keyboard only",
            "attributes": {"support": 4},
            "role": "influencer",
            "channel": "widget",
        }
        assert stored["survey"] == SURVEY
        await page.keyboard.press("Escape")
        await expect(dialog).to_have_count(0)
        assert (await invitation_of(live_server, invited))["status"] == "answered"

    async def test_escape_dismisses_and_records_a_dismissal(
        self, page: Page, live_server: LiveServer
    ) -> None:
        invited = await widget_invitation(live_server)
        await embed(page, live_server, invited)

        await page.keyboard.press("Escape")

        await expect(page.get_by_role("dialog")).to_have_count(0)

        async def dismissed() -> bool:
            shown = await invitation_of(live_server, invited)
            return bool(shown["status"] == "dismissed")

        await eventually(dismissed, "the dismissal to be recorded", seconds=15, every=0.1)
        assert await responses_of(live_server, invited.stakeholder_id) == []

    async def test_a_tampered_score_shows_the_apis_refusal_and_stores_nothing(
        self, page: Page, live_server: LiveServer
    ) -> None:
        invited = await widget_invitation(live_server)
        dialog = await embed(page, live_server, invited)
        nine = dialog.get_by_role("radio", name="9", exact=True)
        await nine.evaluate("radio => { radio.value = '11' }")
        await nine.check()

        await dialog.get_by_role("button", name="Send").click()

        await expect(dialog.get_by_role("alert")).to_contain_text("body.score")
        await expect(dialog.get_by_role("alert")).to_contain_text("less than or equal to 10")
        assert await responses_of(live_server, invited.stakeholder_id) == []

    async def test_an_answered_invitation_shows_already_answered(
        self, page: Page, live_server: LiveServer
    ) -> None:
        invited = await widget_invitation(live_server)
        dialog = await embed(page, live_server, invited)
        await dialog.get_by_role("radio", name="7", exact=True).check()
        # Answered meanwhile elsewhere (another tab, the email link).
        other = await page.context.new_page()
        await other.goto(f"/s/{invited.token}")
        await other.get_by_role("radio", name="10", exact=True).check()
        await other.get_by_role("button", name="Send").click()
        await expect(other.get_by_role("heading", level=1)).to_contain_text("Thanks")

        await dialog.get_by_role("button", name="Send").click()

        await expect(dialog.get_by_role("heading")).to_have_text(
            "You have already answered this survey. Thank you!"
        )
        [stored] = await responses_of(live_server, invited.stakeholder_id)
        assert stored["score"] == 10

    async def test_focus_stays_in_the_dialog(self, page: Page, live_server: LiveServer) -> None:
        invited = await widget_invitation(live_server)
        await embed(page, live_server, invited)

        for key in ["Tab"] * 6 + ["Shift+Tab"] * 6:
            await page.keyboard.press(key)
            inside = await page.evaluate(
                "() => document.activeElement.hasAttribute('data-nps-widget')"
            )
            assert inside, key

    async def test_host_styles_stay_out_and_its_css_variables_theme_it(
        self, page: Page, live_server: LiveServer
    ) -> None:
        invited = await widget_invitation(live_server)
        dialog = await embed(page, live_server, invited)
        three = dialog.get_by_role("radiogroup").first.get_by_role("radio", name="3", exact=True)
        await three.check()

        colors = await three.evaluate(
            """radio => {
                const box = getComputedStyle(radio.nextElementSibling);
                const heading = getComputedStyle(radio.getRootNode().querySelector('h2'));
                return [box.backgroundColor, heading.color, heading.fontFamily];
            }"""
        )

        assert colors[0] == "rgb(1, 2, 3)"
        assert colors[1] != "rgb(255, 0, 0)"
        assert colors[2] != "serif"
