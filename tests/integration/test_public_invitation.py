"""The invitation token as a credential: GET /v1/public/invitation, and where a token is refused."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.db import session_scope
from app.models import Invitation
from tests.support.harness import MakeTenant, Tenant
from tests.support.invitations import answer, bearer, invite, people, set_row
from tests.support.problems import assert_forbidden, assert_unauthorized, problem

PUBLIC = "/v1/public/invitation"


async def public(tenant: Tenant, token: str) -> Any:
    # The tenant's client sends its API key; the token replaces it.
    return await tenant.client.get(PUBLIC, headers=bearer(token))


async def invited(tenant: Tenant, **extra: Any) -> dict[str, Any]:
    await tenant.db.account("acme")
    await tenant.db.stakeholder("p1", "acme", name="Ada  Lovelace")
    return await invite(tenant.client, "p1", **extra)


async def stored(tenant: Tenant) -> Invitation:
    async with session_scope(tenant.db.sessionmaker) as session:
        row = await session.scalar(select(Invitation).where(Invitation.workspace_id == tenant.id))
        assert row is not None
        return row


class TestGetPublicInvitation:
    async def test_shows_the_invitation_and_marks_it_opened(self, tenant: Tenant) -> None:
        made = await invited(tenant, channel="widget", locale="de")

        r = await public(tenant, made["token"])

        assert r.status_code == 200, r.text
        body = r.json()
        texts = body.pop("texts")
        assert body == {
            "id": made["id"],
            "survey": "relationship",
            "channel": "widget",
            "locale": "de",
            "status": "opened",
            "first_name": "Ada",
            "expires_at": made["expires_at"],
            "company": "tenant-a",
            "answer": None,
        }
        # No definition: the built-in German texts, the workspace's name as the company.
        assert texts["locale"] == "de"
        assert texts["question"].startswith("Wie wahrscheinlich ist es, dass Sie tenant-a ")
        assert texts["follow_up"] == "Was ist der wichtigste Grund für Ihre Bewertung?"
        assert texts["attributes"] == []
        row = await stored(tenant)
        assert row.status == "opened"
        assert row.opened_at is not None
        listed = (await tenant.client.get(f"/v1/invitations/{made['id']}")).json()
        assert listed["status"] == "opened"

    async def test_shows_the_surveys_texts_for_the_persons_role_and_locale(
        self, tenant: Tenant
    ) -> None:
        await tenant.db.account("acme")
        await tenant.db.stakeholder("dm", "acme", role="decision_maker")
        survey = {
            "question": "Would you recommend {company}?",
            "questions_by_role": {"decision_maker": "Would you renew with {company}?"},
            "attributes": [{"key": "support", "label": "Support", "scale": 5}],
            "texts": {"fr": {"question": "Recommanderiez-vous {company} ?"}},
        }
        r = await tenant.client.put("/v1/surveys/relationship", json=survey)
        assert r.status_code == 201, r.text
        r = await tenant.client.patch(
            "/v1/settings",
            json={"company": "Initrode"},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert r.status_code == 200, r.text
        made = await invite(tenant.client, "dm", locale="en-GB")

        body = (await public(tenant, made["token"])).json()

        assert body["company"] == "Initrode"
        texts = body["texts"]
        assert (texts["locale"], texts["question"]) == ("en", "Would you renew with Initrode?")
        assert texts["attributes"] == [{"key": "support", "label": "Support", "scale": 5}]

    async def test_a_head_does_not_open_it(self, tenant: Tenant) -> None:
        made = await invited(tenant)

        r = await tenant.client.head(PUBLIC, headers=bearer(made["token"]))

        assert (r.status_code, r.content) == (200, b"")
        row = await stored(tenant)
        assert (row.status, row.opened_at) == ("issued", None)
        assert (await public(tenant, made["token"])).json()["status"] == "opened"

    async def test_an_answered_one_shows_its_answer(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        given = await answer(tenant.client, made["token"], {"score": 4, "comment": "Slow"})

        body = (await public(tenant, made["token"])).json()

        assert body["status"] == "answered"
        assert body["answer"] == given
        assert given["comment"] == "Slow"

    async def test_opening_again_keeps_the_first_opened_at(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        await public(tenant, made["token"])
        first = (await stored(tenant)).opened_at

        r = await public(tenant, made["token"])

        assert r.json()["status"] == "opened"
        assert (await stored(tenant)).opened_at == first

    async def test_no_name_is_a_null_first_name(self, tenant: Tenant) -> None:
        await people(tenant, "p2")
        made = await invite(tenant.client, "p2")

        assert (await public(tenant, made["token"])).json()["first_name"] is None

    async def test_an_answered_one_reads_answered_and_is_not_reopened(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        await set_row(tenant, made["id"], status="answered", answered_at=datetime.now(UTC))

        r = await public(tenant, made["token"])

        assert r.json()["status"] == "answered"
        row = await stored(tenant)
        assert (row.status, row.opened_at) == ("answered", None)


class TestTokenRefused:
    async def test_revoked_is_410(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        assert (await tenant.client.delete(f"/v1/invitations/{made['id']}")).status_code == 204

        body = problem(await public(tenant, made["token"]), 410)

        assert body["type"] == "/problems/gone"
        assert "revoked" in body["detail"]
        assert (await stored(tenant)).opened_at is None

    async def test_expired_is_410(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        await set_row(tenant, made["id"], expires_at=datetime.now(UTC) - timedelta(seconds=1))

        body = problem(await public(tenant, made["token"]), 410)

        assert "expired" in body["detail"]
        assert (await stored(tenant)).status == "issued"

    async def test_unknown_or_malformed_token_is_401(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        for token in ("npsi_" + "A" * 43, "npsi_", made["token"] + "x", made["token"].upper()):
            assert_unauthorized(await public(tenant, token))

    async def test_no_credentials_is_401(self, tenant: Tenant) -> None:
        r = await tenant.client.get(PUBLIC, headers={"Authorization": ""})

        assert_unauthorized(r)
        assert r.json()["detail"] == ("send an invitation token as `Authorization: Bearer <token>`")

    async def test_an_api_key_is_refused_on_the_public_call(self, tenant: Tenant) -> None:
        await invited(tenant)

        assert_forbidden(await tenant.client.get(PUBLIC))
        assert (await stored(tenant)).opened_at is None

    async def test_a_token_cannot_call_the_api(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        headers = bearer(made["token"])

        for method, path in (
            ("GET", "/v1/invitations"),
            ("GET", f"/v1/invitations/{made['id']}"),
            ("DELETE", f"/v1/invitations/{made['id']}"),
            ("GET", "/v1/workspace"),
            ("GET", "/v1/settings"),
        ):
            r = await tenant.client.request(method, path, headers=headers)
            body = problem(r, 403)
            assert "invitation token cannot call" in body["detail"], (path, body)
        r = await tenant.client.post(
            "/v1/invitations",
            json={"stakeholder_id": "p1", "survey": "s", "channel": "email"},
            headers=headers,
        )
        assert_forbidden(r)
        assert (await stored(tenant)).revoked_at is None

    async def test_another_workspaces_token_acts_only_on_its_own_invitation(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        mine = await invited(tenant)
        other = await make_tenant("other")
        theirs = await invited(other)

        r = await public(tenant, theirs["token"])

        assert r.json()["id"] == theirs["id"]
        assert (await stored(tenant)).opened_at is None
        r = await tenant.client.get(
            f"/v1/invitations/{mine['id']}", headers=bearer(theirs["token"])
        )
        assert_forbidden(r)
