"""The hosted survey page over HTTP (no browser): what it shows, that a GET records nothing, the
form POST through the public answer path, its HTML errors and security headers on every answer.

Browser behaviour (keyboard, focus, the widget) is tests/browser."""

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import session_scope
from app.models import Unsubscribe
from app.pages.view import known_invitation
from tests.support.api import count_responses, list_responses
from tests.support.clock import ago
from tests.support.harness import MakeTenant, Tenant, build_app
from tests.support.invitations import answer, get_row, invite, set_row
from tests.support.pages import assert_secured, form, read

SCALE = [str(n) for n in range(11)]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def invited(tenant: Tenant, sid: str = "p1", **extra: Any) -> dict[str, Any]:
    """Ada Lovelace, a decision maker of acme, invited to `relationship`."""
    await tenant.db.account("acme")
    await tenant.db.stakeholder(sid, "acme", role="decision_maker", name="Ada Lovelace")
    return await invite(tenant.client, sid, **extra)


async def rated(tenant: Tenant) -> None:
    """`relationship` asks decision makers their own question and rates support 1-5."""
    body = {
        "questions_by_role": {"decision_maker": "Would you renew with {company}?"},
        "attributes": [{"key": "support", "label": "Support", "scale": 5}],
        "thank_you": "Thanks, {company} will read it.",
    }
    r = await tenant.client.put("/v1/surveys/relationship", json=body)
    assert r.status_code == 201, r.text


def path(made: dict[str, Any], rest: str = "") -> str:
    return f"/s/{made['token']}{rest}"


async def page(tenant: Tenant, made: dict[str, Any], rest: str = "", **params: str) -> Any:
    return await tenant.client.get(path(made, rest), params=params)


async def submit(tenant: Tenant, made: dict[str, Any], rest: str = "", **fields: Any) -> Any:
    return await tenant.client.post(path(made, rest), data=form(**fields))


async def nothing_recorded(tenant: Tenant, made: dict[str, Any]) -> None:
    row = await get_row(tenant, made["id"])
    assert (row.status, row.opened_at, row.response_id) == ("issued", None, None)
    assert await count_responses(tenant.client) == 0


class TestSurveyPage:
    async def test_shows_the_question_for_the_persons_role_as_a_radio_group(
        self, tenant: Tenant
    ) -> None:
        await rated(tenant)
        made = await invited(tenant)

        seen = read(await page(tenant, made), 200)

        assert seen.title == seen.h1[0] == "Would you renew with tenant-a?"
        assert seen.paragraphs[:2] == ["tenant-a", "Hi Ada,"]
        assert seen.radios == {"score": SCALE, "attributes.support": ["1", "2", "3", "4", "5"]}
        assert seen.checked == {}
        assert seen.radiogroups[0] == {
            "class": "scale",
            "role": "radiogroup",
            "aria-labelledby": "question",
            "aria-required": "true",
        }
        assert "0: Not at all likely" in seen.text
        assert "10: Extremely likely" in seen.text
        assert "What is the most important reason for your score?" in seen.text
        assert seen.forms == [path(made)]
        assert seen.links == [path(made, "/unsubscribe")]
        assert seen.scripts == ["/s/assets/page.js"]
        assert seen.styles == ["/s/assets/page.css"]

    async def test_a_preselected_score_is_checked_and_nothing_is_recorded(
        self, tenant: Tenant
    ) -> None:
        made = await invited(tenant)

        seen = read(await page(tenant, made, score="9"), 200)
        head = await tenant.client.head(path(made), params={"score": "9"})

        assert seen.checked == {"score": "9"}
        assert head.status_code == 200
        await nothing_recorded(tenant, made)

    async def test_a_preselect_that_is_no_score_is_ignored(self, tenant: Tenant) -> None:
        made = await invited(tenant)

        for value in ("11", "9.0", "-1", "nine", ""):
            assert read(await page(tenant, made, score=value), 200).checked == {}

    async def test_speaks_the_invitations_locale(self, tenant: Tenant) -> None:
        made = await invited(tenant, locale="de-CH")

        r = await page(tenant, made)
        seen = read(r, 200)

        assert '<html lang="de">' in r.text
        assert seen.h1[0].startswith("Wie wahrscheinlich ist es, dass Sie tenant-a ")
        assert seen.paragraphs[1] == "Hallo Ada,"

    async def test_an_answered_invitation_says_so(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        given = await answer(tenant.client, made["token"], {"score": 8})

        seen = read(await page(tenant, made), 200)

        assert seen.h1 == ["Already answered"]
        assert f"You answered this survey on {given['answered_at'][:10]}. Thank you!" in seen.text
        assert seen.radios == {}

    async def test_expired_and_revoked_links_are_410_pages(self, tenant: Tenant) -> None:
        lapsed = await invited(tenant)
        await set_row(tenant, lapsed["id"], expires_at=ago(seconds=1))
        await tenant.db.stakeholder("p2", "acme")
        revoked = await invite(tenant.client, "p2")
        assert (await tenant.client.delete(f"/v1/invitations/{revoked['id']}")).status_code == 204

        assert read(await page(tenant, lapsed), 410).paragraphs == ["This survey link has expired."]
        assert read(await page(tenant, revoked), 410).paragraphs == [
            "This survey link is no longer valid."
        ]

    async def test_an_unknown_or_malformed_token_is_a_404_page(self, tenant: Tenant) -> None:
        made = await invited(tenant)

        tokens = ("npsi_" + "A" * 43, "npsi_" + "A" * 2000, "garbage", made["token"] + "x")
        for token in (*tokens, made["token"].upper()):
            seen = read(await tenant.client.get(f"/s/{token}"), 404)
            assert seen.h1 == ["Survey link not found"]

    async def test_an_error_page_speaks_the_browsers_language(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/s/nothing", headers={"Accept-Language": "fr, de;q=0.8"})

        assert read(r, 404).h1 == ["Umfrage-Link nicht gefunden"]


class TestSubmitAnswer:
    async def test_records_the_answer_with_its_role_snapshot_and_redirects_to_thanks(
        self, tenant: Tenant
    ) -> None:
        await rated(tenant)
        made = await invited(tenant)

        r = await submit(tenant, made, score=9, comment="Quick support", attributes__support=4)

        assert r.status_code == 303, r.text
        assert r.headers["location"] == path(made, "/thanks")
        assert_secured(r)
        [stored] = await list_responses(tenant.client)
        assert {k: stored[k] for k in ("score", "comment", "attributes", "role", "channel")} == {
            "score": 9,
            "comment": "Quick support",
            "attributes": {"support": 4},
            "role": "decision_maker",
            "channel": "email",
        }
        assert (stored["stakeholder_id"], stored["survey"]) == ("p1", "relationship")
        row = await get_row(tenant, made["id"])
        assert (row.status, str(row.response_id)) == ("answered", stored["id"])

    async def test_no_score_is_refused_and_the_form_keeps_what_was_written(
        self, tenant: Tenant
    ) -> None:
        made = await invited(tenant)

        seen = read(await submit(tenant, made, comment="Hello <b>"), 422)

        assert seen.errors == ["Choose a score from 0 to 10."]
        assert seen.field_errors == {"score": "Choose a score from 0 to 10."}
        assert seen.textarea == {"comment": "Hello <b>"}
        await nothing_recorded(tenant, made)

    async def test_a_tampered_score_is_refused(self, tenant: Tenant) -> None:
        made = await invited(tenant)

        for score in ("11", "-1", "9.5", "true", " 9", "1e1", "010"):
            seen = read(await submit(tenant, made, score=score), 422)
            assert seen.errors == ["Choose a score from 0 to 10."], score
        await nothing_recorded(tenant, made)

    async def test_a_too_long_comment_is_refused(self, tenant: Tenant) -> None:
        made = await invited(tenant)

        seen = read(await submit(tenant, made, score=7, comment="x" * 10_001), 422)

        assert seen.errors == ["The comment is too long: at most 10000 characters."]
        assert seen.checked == {"score": "7"}
        await nothing_recorded(tenant, made)

    async def test_a_rating_outside_the_attributes_scale_is_refused(self, tenant: Tenant) -> None:
        await rated(tenant)
        made = await invited(tenant)

        for rating in ("6", "0", "x"):
            seen = read(await submit(tenant, made, score=9, attributes__support=rating), 422)
            assert seen.field_errors == {"attributes.support": "Choose a rating from 1 to 5."}
        await nothing_recorded(tenant, made)

    async def test_a_field_the_form_does_not_have_is_refused(self, tenant: Tenant) -> None:
        made = await invited(tenant)

        seen = read(await submit(tenant, made, score=9, attributes__support=3), 422)
        twice = await tenant.client.post(path(made), content=b"score=9&score=3", headers=FORM)

        assert seen.errors == ["The form sent a field it does not have; reload the page."]
        assert read(twice, 422).errors == seen.errors
        await nothing_recorded(tenant, made)

    async def test_a_second_submit_is_the_already_answered_page(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        assert (await submit(tenant, made, score=9)).status_code == 303

        seen = read(await submit(tenant, made, score=3), 409)

        assert seen.h1 == ["Already answered"]
        [stored] = await list_responses(tenant.client)
        assert stored["score"] == 9

    async def test_an_expired_link_records_nothing(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        await set_row(tenant, made["id"], expires_at=ago(seconds=1))

        read(await submit(tenant, made, score=9), 410)

        assert await count_responses(tenant.client) == 0

    async def test_another_workspaces_token_answers_only_its_own_invitation(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        mine = await invited(tenant)
        other = await make_tenant("other")
        theirs = await invited(other)

        assert (await submit(tenant, theirs, score=2)).status_code == 303

        assert await count_responses(tenant.client) == 0
        assert (await get_row(tenant, mine["id"])).status == "issued"
        [stored] = await list_responses(other.client)
        assert (stored["score"], stored["stakeholder_id"]) == (2, "p1")


class TestThanksPage:
    async def test_thanks_and_offers_to_change_the_comment(self, tenant: Tenant) -> None:
        await rated(tenant)
        made = await invited(tenant)
        await submit(tenant, made, score=9, comment="Fine")

        seen = read(await page(tenant, made, "/thanks"), 200)

        assert seen.h1 == ["Thanks, tenant-a will read it."]
        assert seen.forms == [path(made, "/comment")]
        assert seen.textarea == {"comment": "Fine"}

    async def test_before_an_answer_it_sends_the_person_to_the_survey(self, tenant: Tenant) -> None:
        made = await invited(tenant)

        r = await page(tenant, made, "/thanks")

        assert (r.status_code, r.headers["location"]) == (303, path(made))


class TestEditComment:
    async def test_changes_the_comment_of_the_same_response(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        await submit(tenant, made, score=9)

        seen = read(await submit(tenant, made, "/comment", comment="Onboarding was slow"), 200)

        assert "Your comment was saved." in seen.paragraphs
        [stored] = await list_responses(tenant.client)
        assert (stored["score"], stored["comment"]) == (9, "Onboarding was slow")

    async def test_after_30_minutes_it_is_refused(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        await submit(tenant, made, score=9, comment="Fine")
        await set_row(tenant, made["id"], answered_at=ago(minutes=31))

        seen = read(await submit(tenant, made, "/comment", comment="Changed"), 409)

        assert "The comment can no longer be changed: 30 minutes have passed." in seen.paragraphs
        assert seen.forms == []
        [stored] = await list_responses(tenant.client)
        assert stored["comment"] == "Fine"


class TestOpenedBeacon:
    async def test_the_persons_first_interaction_marks_it_opened(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        read(await page(tenant, made), 200)
        assert (await get_row(tenant, made["id"])).opened_at is None

        r = await tenant.client.post(path(made, "/opened"))

        assert (r.status_code, r.content) == (204, b"")
        assert_secured(r)
        row = await get_row(tenant, made["id"])
        assert (row.status, row.opened_at is not None) == ("opened", True)


class TestUnsubscribe:
    async def test_the_link_asks_first_and_records_nothing(self, tenant: Tenant) -> None:
        made = await invited(tenant)

        seen = read(await page(tenant, made, "/unsubscribe"), 200)

        assert seen.forms == [path(made, "/unsubscribe")]
        assert seen.paragraphs[-1] == "Stop receiving surveys from tenant-a?"
        assert await unsubscribed(tenant) == []

    async def test_the_form_unsubscribes_even_from_an_expired_link(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        await set_row(tenant, made["id"], expires_at=ago(days=1))

        seen = read(await submit(tenant, made, "/unsubscribe"), 200)

        assert seen.h1 == ["Unsubscribed"]
        assert await unsubscribed(tenant) == ["p1"]


async def unsubscribed(tenant: Tenant) -> list[str]:
    async with session_scope(tenant.db.sessionmaker) as session:
        rows = await session.scalars(
            select(Unsubscribe.stakeholder_id).where(Unsubscribe.workspace_id == tenant.id)
        )
        return list(rows)


class TestPageErrors:
    async def test_a_method_the_page_lacks_is_a_405_page(self, tenant: Tenant) -> None:
        made = await invited(tenant)

        r = await tenant.client.put(path(made))

        read(r, 405)
        assert r.headers["allow"] == "GET, HEAD, POST"

    async def test_a_path_under_s_that_does_not_exist_is_a_404_page(self, tenant: Tenant) -> None:
        assert read(await tenant.client.get("/s/a/b/c"), 404).h1 == ["Survey link not found"]

    async def test_an_unexpected_error_is_a_500_page_with_nothing_internal(
        self, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
    ) -> None:
        app = build_app(sessionmaker, engine)

        async def boom() -> None:
            raise RuntimeError('SELECT secret FROM table; File "x.py"')

        app.dependency_overrides[known_invitation] = boom
        # The server sees the error too (to log it); the browser gets the page.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            seen = read(await client.get("/s/npsi_anything"), 500)

        assert seen.h1 == ["Something went wrong"]


class TestAssets:
    async def test_the_stylesheet_and_script_are_served_with_a_cache_policy(
        self, tenant: Tenant
    ) -> None:
        for name, media_type in (
            ("page.css", "text/css; charset=utf-8"),
            ("page.js", "text/javascript; charset=utf-8"),
        ):
            r = await tenant.client.get(f"/s/assets/{name}")
            assert r.status_code == 200
            assert r.headers["content-type"] == media_type
            assert r.headers["cache-control"] == "public, max-age=3600"
            again = await tenant.client.get(
                f"/s/assets/{name}", headers={"If-None-Match": r.headers["etag"]}
            )
            assert (again.status_code, again.content) == (304, b"")

    async def test_nothing_else_is_served(self, tenant: Tenant) -> None:
        for name in ("missing.css", "..%2F__init__.py", "widget.html", ".hidden.js"):
            read(await tenant.client.get(f"/s/assets/{name}"), 404)


class TestWidgetScript:
    async def test_is_javascript_any_site_may_load_with_a_cache_policy(
        self, tenant: Tenant
    ) -> None:
        r = await tenant.client.get("/widget.js")

        assert r.status_code == 200
        assert r.headers["content-type"] == "text/javascript; charset=utf-8"
        assert r.headers["cache-control"] == "public, max-age=3600"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cross-origin-resource-policy"] == "cross-origin"
        assert "window.NPSWidget" in r.text
        again = await tenant.client.get("/widget.js", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304

    async def test_is_not_part_of_the_api_document(self, tenant: Tenant) -> None:
        spec = (await tenant.client.get("/openapi.json")).json()

        assert not [p for p in spec["paths"] if p.startswith("/s/") or p == "/widget.js"]
