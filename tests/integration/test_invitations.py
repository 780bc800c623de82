"""Invitations: issuing with single-use tokens, the fatigue rules, batches, lists, revoking."""

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import session_scope
from app.models import Invitation, Scope, Stakeholder
from app.schemas.invitations import InvitationCreate
from app.schemas.settings import SurveyRules
from app.services.issuing import issue_invitation
from tests.support.api import Answer, put_settings
from tests.support.harness import MakeTenant, Tenant
from tests.support.invitations import invite, parse, people, set_row, suppressed, unsubscribe
from tests.support.problems import REPLAYED, assert_invalid, assert_not_found, problem
from tests.support.processes import eventually

DAY = timedelta(days=1)
READ_FIELDS = {
    "id",
    "stakeholder_id",
    "account_id",
    "survey",
    "channel",
    "locale",
    "status",
    "suppression",
    "expires_at",
    "opened_at",
    "answered_at",
    "dismissed_at",
    "revoked_at",
    "response_id",
    "created_at",
    "updated_at",
}


def now() -> datetime:
    return datetime.now(UTC)


async def rows(tenant: Tenant) -> list[Invitation]:
    async with session_scope(tenant.db.sessionmaker) as session:
        found = await session.scalars(
            select(Invitation)
            .where(Invitation.workspace_id == tenant.id)
            .order_by(Invitation.created_at, Invitation.id)
        )
        return list(found)


async def listed(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    r = await tenant.client.get("/v1/invitations", params=params)
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


@pytest.fixture
async def acme(tenant: Tenant) -> Tenant:
    await people(tenant, "p1", "p2", "p3")
    return tenant


class TestCreateInvitation:
    async def test_issued_with_token_url_and_default_expiry(self, acme: Tenant) -> None:
        before = now()
        body = await invite(acme.client, "p1", locale="de-CH")

        assert set(body) == READ_FIELDS | {"token", "url"}
        assert body["status"] == "issued"
        assert body["token"].startswith("npsi_")
        assert body["url"] == f"http://127.0.0.1:8000/s/{body['token']}"
        assert (body["stakeholder_id"], body["account_id"], body["survey"]) == (
            "p1",
            "acme",
            "relationship",
        )
        assert (body["channel"], body["locale"], body["suppression"]) == ("email", "de-CH", None)
        expires = parse(body["expires_at"])
        assert expires is not None
        assert before + 30 * DAY <= expires <= now() + 30 * DAY

    async def test_the_token_is_stored_only_as_its_hash(self, acme: Tenant) -> None:
        body = await invite(acme.client, "p1")

        (row,) = await rows(acme)
        assert row.token_hash == hashlib.sha256(body["token"].encode()).digest()
        r = await acme.client.get(f"/v1/invitations/{body['id']}")
        assert set(r.json()) == READ_FIELDS
        assert body["token"] not in r.text

    async def test_each_token_is_new(self, acme: Tenant) -> None:
        tokens = {(await invite(acme.client, p))["token"] for p in ("p1", "p2", "p3")}

        assert len(tokens) == 3

    async def test_explicit_expiry_is_kept(self, acme: Tenant) -> None:
        expires = (now() + 10 * DAY).replace(microsecond=0)

        body = await invite(acme.client, "p1", expires_at=expires.isoformat())

        assert parse(body["expires_at"]) == expires

    async def test_unknown_stakeholder_is_422_and_nothing_is_stored(self, acme: Tenant) -> None:
        r = await acme.client.post(
            "/v1/invitations",
            json={"stakeholder_id": "nobody", "survey": "s", "channel": "email"},
        )

        assert_invalid(r, ["body", "stakeholder_id"])
        assert await rows(acme) == []

    @pytest.mark.parametrize(
        ("fields", "loc"),
        [
            ({"channel": "sms"}, ["body", "channel"]),
            ({"channel": None}, ["body", "channel"]),
            ({"survey": "a/b"}, ["body", "survey"]),
            ({"survey": ""}, ["body", "survey"]),
            ({"locale": "german!"}, ["body", "locale"]),
            ({"expires_at": "2030-01-01T00:00:00"}, ["body", "expires_at"]),  # naive
            ({"expires_at": 1893456000}, ["body", "expires_at"]),
            ({"token": "npsi_mine"}, ["body", "token"]),
        ],
    )
    async def test_invalid_field_is_422(
        self, acme: Tenant, fields: dict[str, Any], loc: list[str]
    ) -> None:
        body = {"stakeholder_id": "p1", "survey": "s", "channel": "email", **fields}

        assert_invalid(await acme.client.post("/v1/invitations", json=body), loc)
        assert await rows(acme) == []

    @pytest.mark.parametrize("offset", [-DAY, timedelta(0), 181 * DAY])
    async def test_expiry_in_the_past_or_over_180_days_is_422(
        self, acme: Tenant, offset: timedelta
    ) -> None:
        when = (now() + offset).isoformat()

        r = await acme.client.post(
            "/v1/invitations",
            json={"stakeholder_id": "p1", "survey": "s", "channel": "link", "expires_at": when},
        )

        assert_invalid(r, ["body", "expires_at"])
        assert await rows(acme) == []

    async def test_expiry_179_days_ahead_is_fine(self, acme: Tenant) -> None:
        await invite(acme.client, "p1", expires_at=(now() + 179 * DAY).isoformat())

    async def test_a_read_key_cannot_invite(self, acme: Tenant) -> None:
        key = await acme.make_key(Scope.READ)

        r = await acme.client.post(
            "/v1/invitations",
            json={"stakeholder_id": "p1", "survey": "s", "channel": "link"},
            headers={"Authorization": f"Bearer {key}"},
        )

        assert problem(r, 403)["type"] == "/problems/forbidden"
        assert await rows(acme) == []


class TestFatigueRules:
    async def test_an_open_invitation_suppresses_until_it_expires(self, acme: Tenant) -> None:
        first = await invite(acme.client, "p1", channel="email")

        # Across channels and surveys.
        second = await invite(acme.client, "p1", channel="widget", survey="other", status=200)

        assert suppressed(second) == ("open_invitation", parse(first["expires_at"]))
        assert second["id"] != first["id"]

    async def test_suppressed_invitations_are_stored_and_listed(self, acme: Tenant) -> None:
        await invite(acme.client, "p1")
        second = await invite(acme.client, "p1", status=200)

        assert sorted(row.status for row in await rows(acme)) == ["issued", "suppressed"]
        (shown,) = await listed(acme, status="suppressed")
        assert shown["id"] == second["id"]
        assert shown["suppression"] == second["suppression"]
        assert (await acme.client.get(f"/v1/invitations/{second['id']}")).json() == shown

    async def test_an_answer_suppresses_for_resurvey_after_days(self, acme: Tenant) -> None:
        answered = (now() - 10 * DAY).replace(microsecond=0)
        await acme.db.answers([Answer("p1", "acme", 9, answered)])

        body = await invite(acme.client, "p1", status=200)

        assert suppressed(body) == ("answered_recently", answered + 90 * DAY)

    async def test_an_older_answer_does_not(self, acme: Tenant) -> None:
        await acme.db.answers([Answer("p1", "acme", 9, now() - 91 * DAY)])

        await invite(acme.client, "p1", status=201)

    async def test_resurvey_after_days_zero_turns_it_off(self, acme: Tenant) -> None:
        await acme.db.answers([Answer("p1", "acme", 9, now() - DAY)])
        await put_settings(acme.client, {"survey_rules": {"resurvey_after_days": 0}})

        await invite(acme.client, "p1", status=201)

    async def test_a_dismissal_suppresses_for_after_dismissal_days(self, acme: Tenant) -> None:
        first = await invite(acme.client, "p1")
        dismissed = (now() - 2 * DAY).replace(microsecond=0)
        await set_row(acme, first["id"], status="dismissed", dismissed_at=dismissed)

        body = await invite(acme.client, "p1", status=200)

        assert suppressed(body) == ("dismissed_recently", dismissed + 30 * DAY)

    async def test_an_unanswered_expired_one_suppresses(self, acme: Tenant) -> None:
        first = await invite(acme.client, "p1")
        expired = (now() - 3 * DAY).replace(microsecond=0)
        await set_row(acme, first["id"], expires_at=expired)

        body = await invite(acme.client, "p1", status=200)

        assert suppressed(body) == ("unanswered_recently", expired + 30 * DAY)

    async def test_unsubscribed_suppresses_indefinitely(self, acme: Tenant) -> None:
        await unsubscribe(acme, "p1")

        body = await invite(acme.client, "p1", status=200)

        assert suppressed(body) == ("unsubscribed", None)

    async def test_max_per_account_counts_open_ones_per_survey(self, acme: Tenant) -> None:
        await put_settings(acme.client, {"survey_rules": {"max_per_account": 2}})
        first = await invite(acme.client, "p1", expires_at=(now() + 5 * DAY).isoformat())
        await invite(acme.client, "p2", expires_at=(now() + 9 * DAY).isoformat())

        third = await invite(acme.client, "p3", status=200)

        # A place frees when the first expires.
        assert suppressed(third) == ("max_per_account", parse(first["expires_at"]))
        await invite(acme.client, "p3", survey="another", status=201)

    async def test_a_revoked_invitation_no_longer_suppresses(self, acme: Tenant) -> None:
        first = await invite(acme.client, "p1")
        assert (await acme.client.delete(f"/v1/invitations/{first['id']}")).status_code == 204

        await invite(acme.client, "p1", status=201)

    async def test_an_answered_invitation_counts_as_an_answer(self, acme: Tenant) -> None:
        first = await invite(acme.client, "p1")
        answered = (now() - DAY).replace(microsecond=0)
        await set_row(acme, first["id"], status="answered", answered_at=answered)

        body = await invite(acme.client, "p1", status=200)

        assert suppressed(body) == ("answered_recently", answered + 90 * DAY)


def item(stakeholder_id: str, **extra: Any) -> dict[str, Any]:
    return {"stakeholder_id": stakeholder_id, "survey": "relationship", "channel": "email", **extra}


class TestBatch:
    async def test_every_item_issued_is_200(self, acme: Tenant) -> None:
        r = await acme.client.post(
            "/v1/invitations/batch", json={"invitations": [item("p1"), item("p2")]}
        )

        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["issued"], body["suppressed"], body["failed"]) == (2, 0, 0)
        assert [x["status"] for x in body["results"]] == [201, 201]
        assert all(x["invitation"]["token"].startswith("npsi_") for x in body["results"])
        assert [x["id"] for x in body["results"]] == [
            x["invitation"]["id"] for x in body["results"]
        ]

    async def test_rules_apply_between_items_and_failures_are_207(self, acme: Tenant) -> None:
        items = [item("p1"), item("p1", channel="widget"), item("nobody"), item("p2", channel="x")]

        r = await acme.client.post("/v1/invitations/batch", json={"invitations": items})

        assert r.status_code == 207, r.text
        body = r.json()
        assert (body["issued"], body["suppressed"], body["failed"]) == (1, 1, 2)
        first, second, unknown, invalid = body["results"]
        assert (first["status"], second["status"]) == (201, 200)
        assert suppressed(second["invitation"]) == (
            "open_invitation",
            parse(first["invitation"]["expires_at"]),
        )
        assert (unknown["status"], unknown["id"], unknown["invitation"]) == (422, None, None)
        assert unknown["problem"]["errors"][0]["loc"] == [
            "body",
            "invitations",
            2,
            "stakeholder_id",
        ]
        assert invalid["status"] == 422
        assert invalid["problem"]["errors"][0]["loc"] == ["body", "invitations", 3, "channel"]
        assert sorted(row.status for row in await rows(acme)) == ["issued", "suppressed"]

    async def test_max_per_account_applies_between_items(self, acme: Tenant) -> None:
        await put_settings(acme.client, {"survey_rules": {"max_per_account": 1}})

        r = await acme.client.post(
            "/v1/invitations/batch", json={"invitations": [item("p1"), item("p2")]}
        )

        first, second = r.json()["results"]
        assert suppressed(second["invitation"]) == (
            "max_per_account",
            parse(first["invitation"]["expires_at"]),
        )

    async def test_over_1000_items_is_413_and_nothing_is_stored(self, acme: Tenant) -> None:
        r = await acme.client.post(
            "/v1/invitations/batch", json={"invitations": [item("p1")] * 1001}
        )

        problem(r, 413)
        assert await rows(acme) == []

    async def test_1000_people_in_one_batch(self, tenant: Tenant) -> None:
        await tenant.db.account("big")
        async with session_scope(tenant.db.sessionmaker) as session:
            session.add_all(
                Stakeholder(workspace_id=tenant.id, id=f"s{j}", account_id="big")
                for j in range(1000)
            )

        r = await tenant.client.post(
            "/v1/invitations/batch", json={"invitations": [item(f"s{j}") for j in range(1000)]}
        )

        assert r.status_code == 200, r.text
        assert r.json()["issued"] == 1000


class TestIdempotency:
    async def test_a_replay_is_409_naming_the_invitation_never_the_token(
        self, acme: Tenant
    ) -> None:
        headers = {"Idempotency-Key": "k1"}
        body = {"stakeholder_id": "p1", "survey": "s", "channel": "email"}
        first = await acme.client.post("/v1/invitations", json=body, headers=headers)
        assert first.status_code == 201

        again = await acme.client.post("/v1/invitations", json=body, headers=headers)

        detail = problem(again, 409)["detail"]
        assert again.headers[REPLAYED] == "true"
        assert first.json()["id"] in detail
        assert first.json()["token"] not in again.text
        assert len(await rows(acme)) == 1

    async def test_a_replayed_suppression_is_the_same_answer(self, acme: Tenant) -> None:
        await invite(acme.client, "p1")
        headers = {"Idempotency-Key": "k2"}
        body = {"stakeholder_id": "p1", "survey": "s", "channel": "email"}
        first = await acme.client.post("/v1/invitations", json=body, headers=headers)

        again = await acme.client.post("/v1/invitations", json=body, headers=headers)

        assert (first.status_code, again.status_code) == (200, 200)
        assert again.json() == first.json()
        assert again.headers[REPLAYED] == "true"
        assert len(await rows(acme)) == 2

    async def test_a_replayed_batch_never_shows_its_tokens(self, acme: Tenant) -> None:
        headers = {"Idempotency-Key": "k3"}
        body = {"invitations": [item("p1"), item("p2")]}
        first = await acme.client.post("/v1/invitations/batch", json=body, headers=headers)

        again = await acme.client.post("/v1/invitations/batch", json=body, headers=headers)

        detail = problem(again, 409)["detail"]
        for result in first.json()["results"]:
            assert result["id"] in detail
            assert result["invitation"]["token"] not in again.text
        assert len(await rows(acme)) == 2


class TestListInvitations:
    async def test_filters(self, acme: Tenant) -> None:
        await people(acme, "q1", account_id="globex")
        a = await invite(acme.client, "p1", survey="s1")
        b = await invite(acme.client, "p2", survey="s2")
        c = await invite(acme.client, "q1", survey="s1")
        d = await invite(acme.client, "p1", survey="s1", status=200)
        await set_row(acme, b["id"], expires_at=now() - DAY)
        assert (await acme.client.delete(f"/v1/invitations/{c['id']}")).status_code == 204

        def ids(found: list[dict[str, Any]]) -> set[str]:
            return {x["id"] for x in found}

        assert ids(await listed(acme)) == {a["id"], b["id"], c["id"], d["id"]}
        assert ids(await listed(acme, status="issued")) == {a["id"]}
        assert ids(await listed(acme, status="expired")) == {b["id"]}
        assert ids(await listed(acme, status="revoked")) == {c["id"]}
        assert ids(await listed(acme, status="suppressed")) == {d["id"]}
        assert ids(await listed(acme, survey="s1")) == {a["id"], c["id"], d["id"]}
        assert ids(await listed(acme, account_id="globex")) == {c["id"]}
        assert ids(await listed(acme, stakeholder_id="p1")) == {a["id"], d["id"]}
        assert ids(await listed(acme, to=(now() - DAY).isoformat())) == set()
        assert ids(await listed(acme, updated_since=(now() + DAY).isoformat())) == set()
        assert len(await listed(acme, updated_since=(now() - DAY).isoformat())) == 4
        assert len(await listed(acme, **{"from": (now() - DAY).isoformat()})) == 4
        for found in await listed(acme):
            assert set(found) == READ_FIELDS
        (expired,) = await listed(acme, status="expired")
        assert expired == (await acme.client.get(f"/v1/invitations/{b['id']}")).json()
        assert expired["status"] == "expired"

    async def test_cursor_pages(self, acme: Tenant) -> None:
        made = [(await invite(acme.client, p))["id"] for p in ("p1", "p2", "p3")]

        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            r = await acme.client.get("/v1/invitations", params=params)
            seen += [x["id"] for x in r.json()["data"]]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break

        assert sorted(seen) == sorted(made)

    async def test_bad_status_is_422(self, acme: Tenant) -> None:
        assert_invalid(await acme.client.get("/v1/invitations", params={"status": "sent"}))


class TestRevokeInvitation:
    async def test_revoke_then_revoke_again(self, acme: Tenant) -> None:
        made = await invite(acme.client, "p1")

        first = await acme.client.delete(f"/v1/invitations/{made['id']}")
        body = (await acme.client.get(f"/v1/invitations/{made['id']}")).json()
        again = await acme.client.delete(f"/v1/invitations/{made['id']}")

        assert (first.status_code, again.status_code) == (204, 204)
        assert body["status"] == "revoked"
        assert body["revoked_at"] is not None
        assert (await acme.client.get(f"/v1/invitations/{made['id']}")).json() == body

    async def test_an_answered_invitation_is_409(self, acme: Tenant) -> None:
        made = await invite(acme.client, "p1")
        await set_row(acme, made["id"], status="answered", answered_at=now())

        r = await acme.client.delete(f"/v1/invitations/{made['id']}")

        assert "was answered" in problem(r, 409)["detail"]
        (row,) = await rows(acme)
        assert (row.status, row.revoked_at) == ("answered", None)

    async def test_unknown_is_404(self, acme: Tenant) -> None:
        assert_not_found(await acme.client.delete(f"/v1/invitations/{uuid.uuid4()}"))
        assert_not_found(await acme.client.get(f"/v1/invitations/{uuid.uuid4()}"))


class TestTenancy:
    async def test_another_workspace_sees_and_changes_nothing(
        self, acme: Tenant, make_tenant: MakeTenant
    ) -> None:
        made = await invite(acme.client, "p1")
        other = await make_tenant("other")

        assert_not_found(await other.client.get(f"/v1/invitations/{made['id']}"))
        assert_not_found(await other.client.delete(f"/v1/invitations/{made['id']}"))
        assert (await other.client.get("/v1/invitations")).json()["data"] == []
        # Its stakeholder ids are unknown there.
        r = await other.client.post(
            "/v1/invitations", json={"stakeholder_id": "p1", "survey": "s", "channel": "email"}
        )
        assert_invalid(r, ["body", "stakeholder_id"])
        (row,) = await rows(acme)
        assert (row.status, row.revoked_at) == ("issued", None)


async def blocked_on_advisory_lock(engine: AsyncEngine) -> bool:
    async with engine.connect() as connection:
        waiting = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
            )
        )
    return bool(waiting)


class TestConcurrency:
    async def test_two_concurrent_invitations_of_one_person_issue_one(
        self, committed: Tenant
    ) -> None:
        client = committed.client
        assert (await client.put("/v1/accounts/a", json={})).status_code in (200, 201)
        r = await client.put("/v1/stakeholders/p", json={"account_id": "a"})
        assert r.status_code in (200, 201), r.text
        body = {"stakeholder_id": "p", "survey": "s", "channel": "email"}

        answers = await asyncio.gather(
            *(client.post("/v1/invitations", json=body) for _ in range(4))
        )

        assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
        statuses = [a.json()["status"] for a in answers]
        assert sorted(statuses) == ["issued", "suppressed", "suppressed", "suppressed"]

    async def test_a_second_waits_for_the_first_to_commit_and_is_suppressed(
        self, committed: Tenant, engine: AsyncEngine
    ) -> None:
        # Deterministic: the second transaction starts while the first is still open. Without
        # the per-stakeholder lock it would not see the first's row and would issue as well.
        client = committed.client
        assert (await client.put("/v1/accounts/a", json={})).status_code in (200, 201)
        assert (await client.put("/v1/stakeholders/p", json={"account_id": "a"})).is_success
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        body = InvitationCreate.model_validate(
            {"stakeholder_id": "p", "survey": "s", "channel": "email"}
        )

        async def issue(session: AsyncSession) -> str:
            made = await issue_invitation(
                session, committed.id, body, rules=SurveyRules(), now=now()
            )
            return str(made.invitation["status"])

        async with sessions() as first:
            assert await issue(first) == "issued"

            async def second() -> str:
                async with sessions() as session:
                    status = await issue(session)
                    await session.commit()
                    return status

            waiting = asyncio.create_task(second())

            async def done_or_blocked() -> bool:
                return waiting.done() or await blocked_on_advisory_lock(engine)

            # Until it is done (it took no lock) or waits for the first's advisory lock.
            await eventually(done_or_blocked, "the second to finish or wait for the lock")
            await first.commit()

        assert await waiting == "suppressed"
