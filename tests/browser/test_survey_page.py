"""The hosted survey page in real headless Chromium: a preselected score records nothing until
the person submits, a second submit is "already answered", a tampered value is refused, the
keyboard works with a visible focus, it fits a phone, and its CSP holds."""

from playwright.async_api import Browser, Page, expect

from tests.support.browser import LiveServer, NetworkGuard
from tests.support.live import Invited, invitation_of, invite, responses_of

SEND = "Send"


def radio(page: Page, score: int) -> object:
    return page.get_by_role("radio", name=str(score), exact=True)


async def nothing_recorded(live_server: LiveServer, invited: Invited) -> None:
    assert await responses_of(live_server, invited.stakeholder_id) == []
    shown = await invitation_of(live_server, invited)
    assert (shown["status"], shown["opened_at"]) == ("issued", None)


class TestHostedPage:
    async def test_a_preselected_score_records_nothing_until_the_person_submits(
        self, page: Page, live_server: LiveServer
    ) -> None:
        invited = await invite(live_server)

        await page.goto(f"/s/{invited.token}?score=9", wait_until="networkidle")

        group = page.get_by_role("radiogroup", name="How likely are you to recommend default")
        await expect(group).to_be_visible()
        await expect(group.get_by_role("radio", name="9", exact=True)).to_be_checked()
        await nothing_recorded(live_server, invited)

        await page.get_by_role("button", name=SEND).click()

        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "Thank you for your feedback!"
        )
        [stored] = await responses_of(live_server, invited.stakeholder_id)
        assert (stored["score"], stored["role"], stored["channel"]) == (
            9,
            "decision_maker",
            "email",
        )
        assert (await invitation_of(live_server, invited))["status"] == "answered"

    async def test_a_second_submit_shows_already_answered(
        self, page: Page, browser: Browser, live_server: LiveServer
    ) -> None:
        invited = await invite(live_server)
        await page.goto(f"/s/{invited.token}")
        other = await page.context.new_page()
        await other.goto(f"/s/{invited.token}")
        await other.get_by_role("radio", name="10", exact=True).check()
        await other.get_by_role("button", name=SEND).click()
        await expect(other.get_by_role("heading", level=1)).to_have_text(
            "Thank you for your feedback!"
        )

        await page.get_by_role("radio", name="3", exact=True).check()
        await page.get_by_role("button", name=SEND).click()

        await expect(page.get_by_role("heading", level=1)).to_have_text("Already answered")
        [stored] = await responses_of(live_server, invited.stakeholder_id)
        assert stored["score"] == 10

    async def test_a_tampered_score_is_refused_and_nothing_is_stored(
        self, page: Page, live_server: LiveServer
    ) -> None:
        invited = await invite(live_server)
        await page.goto(f"/s/{invited.token}")
        nine = page.get_by_role("radio", name="9", exact=True)
        await nine.evaluate("radio => { radio.value = '11' }")
        await nine.check()

        await page.get_by_role("button", name=SEND).click()

        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text("Choose a score from 0 to 10.")
        await expect(alert).to_be_focused()
        assert await responses_of(live_server, invited.stakeholder_id) == []

    async def test_the_keyboard_answers_with_a_visible_focus_and_marks_it_opened(
        self, page: Page, live_server: LiveServer
    ) -> None:
        invited = await invite(live_server)
        await page.goto(f"/s/{invited.token}")

        await page.keyboard.press("Tab")  # into the form: the first radio of the scale
        zero = page.get_by_role("radio", name="0", exact=True)
        await expect(zero).to_be_focused()
        for _ in range(8):
            await page.keyboard.press("ArrowRight")
        eight = page.get_by_role("radio", name="8", exact=True)
        await expect(eight).to_be_checked()
        assert await eight.evaluate("radio => radio.matches(':focus-visible')")
        outline = await eight.evaluate(
            "radio => getComputedStyle(radio.nextElementSibling).outlineStyle"
        )
        assert outline == "solid"
        await page.keyboard.press("Tab")
        await expect(page.get_by_role("textbox")).to_be_focused()
        await page.keyboard.type("Typed without a mouse")
        await page.keyboard.press("Tab")
        await page.keyboard.press("Enter")

        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "Thank you for your feedback!"
        )
        [stored] = await responses_of(live_server, invited.stakeholder_id)
        assert (stored["score"], stored["comment"]) == (8, "Typed without a mouse")
        assert (await invitation_of(live_server, invited))["opened_at"] is not None

    async def test_it_fits_a_phone_with_thumb_sized_targets(
        self, browser: Browser, live_server: LiveServer, guard: NetworkGuard
    ) -> None:
        invited = await invite(live_server)
        context = await browser.new_context(
            base_url=live_server.base_url, viewport={"width": 360, "height": 740}, is_mobile=True
        )
        await guard.install(context)
        phone = await context.new_page()
        await phone.goto(f"/s/{invited.token}")

        boxes = await phone.locator(".scale .choice").evaluate_all(
            "labels => labels.map(l => [l.offsetWidth, l.offsetHeight])"
        )
        overflow = await phone.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth"
        )
        await context.close()
        guard.check()

        assert len(boxes) == 11
        assert all(w >= 44 and h >= 44 for w, h in boxes), boxes
        assert overflow <= 0


class TestContentSecurityPolicy:
    async def test_the_policy_is_sent_and_an_injected_script_does_not_run(
        self, page: Page, live_server: LiveServer
    ) -> None:
        invited = await invite(live_server)
        response = await page.goto(f"/s/{invited.token}")
        assert response is not None
        headers = await response.all_headers()

        ran = await page.evaluate(
            """() => new Promise(resolve => {
                document.addEventListener('securitypolicyviolation', e =>
                    resolve(['blocked', e.violatedDirective]));
                const script = document.createElement('script');
                script.textContent = 'window.injected = true';
                document.head.append(script);
                setTimeout(() => resolve(window.injected ? ['ran'] : ['silent']), 2000);
            })"""
        )

        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert headers["referrer-policy"] == "no-referrer"
        assert ran == ["blocked", "script-src-elem"]

    async def test_the_page_loads_its_own_files_only_and_breaks_no_rule(
        self, page: Page, live_server: LiveServer, guard: NetworkGuard
    ) -> None:
        invited = await invite(live_server)
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if "Content" in m.text else None)

        await page.goto(f"/s/{invited.token}", wait_until="networkidle")

        guard.check()
        asked = {url.removeprefix(live_server.base_url) for url in guard.requested}
        assert asked == {f"/s/{invited.token}", "/s/assets/page.css", "/s/assets/page.js"}
        assert violations == []
