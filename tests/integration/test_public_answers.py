"""POST and PATCH /v1/public/answers: answering with the token, editing the answer for 30
minutes; only ever the token's own invitation."""

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from app.api.auth import InvitationSubject
from app.api.deps import utcnow
from app.db import session_scope
from app.errors import AlreadyAnswered, Gone, rfc3339
from app.models import Event, InvitationChannel, InvitationStatus
from app.schemas.invitations import PublicAnswer
from app.services import answers
from app.services.invitations import token_holder
from tests.support.api import count_responses, get_json, list_responses
from tests.support.clock import ago
from tests.support.harness import MakeTenant, Tenant
from tests.support.invitations import (
    EDIT_WINDOW,
    answer,
    define_support_catalog,
    expected_answer,
    get_row,
    invite,
    invite_decision_maker,
    public_call,
    read_invitation,
    set_row,
    suppressed,
)
from tests.support.problems import (
    REPLAYED,
    assert_forbidden,
    assert_invalid,
    assert_reused,
    assert_unauthorized,
    problem,
)


class TestCreatePublicAnswer:
    async def test_the_answer_is_an_ordinary_response_every_score_sees(
        self, tenant: Tenant
    ) -> None:
        made = await invite_decision_maker(tenant)
        await define_support_catalog(tenant)

        body = {"score": 9, "comment": "Quick support", "attributes": {"support": 5}}
        given = await answer(tenant.client, made["token"], body)

        assert given == expected_answer(
            made, given, comment="Quick support", attributes={"support": 5}
        )
        (stored,) = await list_responses(tenant.client)
        assert stored["id"] == given["id"]
        assert {k: stored[k] for k in ("stakeholder_id", "account_id", "score", "survey")} == {
            "stakeholder_id": "p1",
            "account_id": "acme",
            "score": 9,
            "survey": "relationship",
        }
        assert (stored["channel"], stored["external_id"]) == ("email", f"invitation:{made['id']}")
        assert (stored["role"], stored["job_level"], stored["department"]) == (
            "decision_maker",
            "executive",
            "Finance",
        )
        assert stored["submitted_at"] == given["answered_at"]
        score = (await get_json(tenant.client, "/v1/accounts/acme/nps"))["score"]
        assert (score["n"], score["promoters"], score["nps"]) == (1, 1, 100.0)
        shown = await read_invitation(tenant, made["id"])
        assert (shown["status"], shown["answered_at"], shown["response_id"]) == (
            "answered",
            given["answered_at"],
            given["id"],
        )

    @pytest.mark.parametrize("channel", ["link", "widget"])
    async def test_the_channel_is_the_invitations(self, tenant: Tenant, channel: str) -> None:
        made = await invite_decision_maker(tenant, channel=channel)

        await answer(tenant.client, made["token"], {"score": 3})

        (stored,) = await list_responses(tenant.client)
        assert (stored["channel"], stored["score"]) == (channel, 3)

    async def test_the_role_is_a_snapshot_of_when_they_answered(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        given = await answer(tenant.client, made["token"], {"score": 9})
        r = await tenant.client.put(
            "/v1/stakeholders/p1", json={"account_id": "acme", "role": "user"}
        )
        assert r.status_code == 200, r.text

        stored = await get_json(tenant.client, f"/v1/responses/{given['id']}")

        assert stored["role"] == "decision_maker"

    async def test_a_second_answer_is_409_naming_when_it_was_answered(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        given = await answer(tenant.client, made["token"], {"score": 9})

        r = await public_call(tenant.client, "POST", "answers", made["token"], json={"score": 2})

        body = problem(r, 409)
        assert body == {
            "type": "/problems/already-answered",
            "title": "Already answered",
            "status": 409,
            "detail": f"this invitation was answered at {given['answered_at']}; it takes one "
            "answer (PATCH /v1/public/answers edits its comment and attributes for 30 minutes)",
            "answered_at": given["answered_at"],
            "response_id": given["id"],
        }
        assert await count_responses(tenant.client) == 1

    async def test_the_external_id_holds_one_response_per_invitation(self, tenant: Tenant) -> None:
        # Even with the row reset to open, the unique external_id refuses a second response.
        made = await invite_decision_maker(tenant)
        given = await answer(tenant.client, made["token"], {"score": 9})
        reset = {"status": "issued", "answered_at": None, "response_id": None}
        await set_row(tenant, made["id"], **reset)

        again = await answer(tenant.client, made["token"], {"score": 9})

        assert again["id"] == given["id"]
        assert (await read_invitation(tenant, made["id"]))["response_id"] == given["id"]
        await set_row(tenant, made["id"], **reset)
        r = await public_call(tenant.client, "POST", "answers", made["token"], json={"score": 2})
        body = problem(r, 409)
        assert (body["type"], body["response_id"]) == ("/problems/already-answered", given["id"])
        assert await count_responses(tenant.client) == 1

    async def test_a_retry_with_the_idempotency_key_replays_the_201(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        key = {"Idempotency-Key": "answer-1"}
        first = await public_call(
            tenant.client, "POST", "answers", made["token"], json={"score": 9}, headers=key
        )
        assert first.status_code == 201, first.text

        again = await public_call(
            tenant.client, "POST", "answers", made["token"], json={"score": 9}, headers=key
        )

        assert again.status_code == 201, again.text
        assert again.headers[REPLAYED] == "true"
        assert again.json() == first.json()
        assert await count_responses(tenant.client) == 1
        other = await public_call(
            tenant.client, "POST", "answers", made["token"], json={"score": 8}, headers=key
        )
        assert_reused(other)

    async def test_one_persons_idempotency_key_never_replays_anothers(self, tenant: Tenant) -> None:
        ada = await invite_decision_maker(tenant, "ada")
        bob = await invite_decision_maker(tenant, "bob", new_account=False)
        key = {"Idempotency-Key": "same"}
        for made in (ada, bob):
            r = await public_call(
                tenant.client, "POST", "answers", made["token"], json={"score": 9}, headers=key
            )
            assert r.status_code == 201, r.text
            assert REPLAYED not in r.headers

        assert await count_responses(tenant.client) == 2

    async def test_a_dismissed_invitation_can_still_be_answered(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        r = await public_call(tenant.client, "POST", "dismissals", made["token"])
        assert r.status_code == 204, r.text

        await answer(tenant.client, made["token"], {"score": 7})

        shown = await read_invitation(tenant, made["id"])
        assert shown["status"] == "answered"
        assert shown["dismissed_at"] is not None

    @pytest.mark.parametrize("survey", ["x" * 100, "team@acme.example"])
    async def test_every_definable_survey_id_can_be_answered(
        self, tenant: Tenant, survey: str
    ) -> None:
        await define_support_catalog(tenant, survey)
        made = await invite_decision_maker(tenant, survey=survey)

        await answer(tenant.client, made["token"], {"score": 9, "attributes": {"support": 2}})

        (stored,) = await list_responses(tenant.client, survey=survey)
        assert (stored["survey"], stored["attributes"]) == (survey, {"support": 2})

    @pytest.mark.parametrize("score", [11, -1, "9", 9.0, 9.5, True, None])
    async def test_a_bad_score_is_422_and_nothing_is_stored(
        self, tenant: Tenant, score: Any
    ) -> None:
        made = await invite_decision_maker(tenant)

        r = await public_call(
            tenant.client, "POST", "answers", made["token"], json={"score": score}
        )

        assert_invalid(r, ["body", "score"])
        assert await count_responses(tenant.client) == 0
        assert (await get_row(tenant, made["id"])).status == "issued"

    async def test_unknown_fields_and_a_missing_score_are_422(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        for body, loc in (
            ({"score": 9, "survey": "other"}, ["body", "survey"]),
            ({"score": 9, "stakeholder_id": "p2"}, ["body", "stakeholder_id"]),
            ({"comment": "no score"}, ["body", "score"]),
        ):
            r = await public_call(tenant.client, "POST", "answers", made["token"], json=body)
            assert_invalid(r, loc)
        assert await count_responses(tenant.client) == 0

    async def test_a_rating_out_of_the_catalogs_scale_is_422(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        await define_support_catalog(tenant)

        r = await public_call(
            tenant.client,
            "POST",
            "answers",
            made["token"],
            json={"score": 9, "attributes": {"support": 6}},
        )

        assert_invalid(r, ["body", "attributes", "support"])
        assert await count_responses(tenant.client) == 0
        assert (await get_row(tenant, made["id"])).status == "issued"

    async def test_expired_or_revoked_is_410_and_nothing_is_stored(self, tenant: Tenant) -> None:
        lapsed = await invite_decision_maker(tenant, "ada")
        await set_row(tenant, lapsed["id"], expires_at=ago(seconds=1))
        revoked = await invite_decision_maker(tenant, "bob", new_account=False)
        assert (await tenant.client.delete(f"/v1/invitations/{revoked['id']}")).status_code == 204

        for made, status in ((lapsed, "expired"), (revoked, "revoked")):
            r = await public_call(
                tenant.client, "POST", "answers", made["token"], json={"score": 9}
            )
            body = problem(r, 410)
            assert body["type"] == "/problems/gone"
            assert status in body["detail"]
        assert await count_responses(tenant.client) == 0

    async def test_an_unknown_or_malformed_token_is_401(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        for token in ("npsi_" + "A" * 43, "npsi_", made["token"] + "x", "nonsense"):
            r = await public_call(tenant.client, "POST", "answers", token, json={"score": 9})
            assert_unauthorized(r)
        assert await count_responses(tenant.client) == 0

    async def test_an_api_key_is_403(self, tenant: Tenant) -> None:
        await invite_decision_maker(tenant)

        assert_forbidden(await tenant.client.post("/v1/public/answers", json={"score": 9}))
        assert await count_responses(tenant.client) == 0


class TestConcurrency:
    async def test_concurrent_answers_with_one_token_store_one_response(
        self, committed: Tenant
    ) -> None:
        client = committed.client
        assert (await client.put("/v1/accounts/a", json={})).status_code == 201
        assert (await client.put("/v1/stakeholders/p", json={"account_id": "a"})).is_success
        made = await invite(client, "p")

        answers = await asyncio.gather(
            *(
                public_call(client, "POST", "answers", made["token"], json={"score": s})
                for s in (9, 8, 7, 6)
            )
        )

        assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]
        (stored,) = await list_responses(client)
        (first,) = [a.json() for a in answers if a.status_code == 201]
        assert (stored["id"], stored["score"]) == (first["id"], first["score"])


class TestChangedSinceAuthentication:
    """The token is read when the request begins; the invitation is marked answered in the
    statement that stores the response, only if it is still answerable then. A revoke, an
    expiry or another answer in between rolls the answer back whole, with the error saying
    why."""

    @staticmethod
    async def _subject_as_read(tenant: Tenant, made: dict[str, Any]) -> InvitationSubject:
        async with session_scope(tenant.db.sessionmaker) as session:
            holder = await token_holder(session, made["token"])
        assert holder is not None
        return InvitationSubject(
            holder.workspace_id,
            holder.id,
            holder.stakeholder_id,
            holder.survey,
            InvitationChannel(holder.channel),
            InvitationStatus(holder.status),
        )

    @pytest.mark.parametrize("change", ["revoked", "expired"])
    async def test_a_revoke_or_expiry_after_authentication_is_410_and_nothing_is_stored(
        self, tenant: Tenant, change: str
    ) -> None:
        made = await invite_decision_maker(tenant)
        subject = await self._subject_as_read(tenant, made)
        if change == "revoked":
            assert (await tenant.client.delete(f"/v1/invitations/{made['id']}")).is_success
        else:
            await set_row(tenant, made["id"], expires_at=ago(seconds=1))

        with pytest.raises(Gone, match=change):
            async with session_scope(tenant.db.sessionmaker) as session:
                await answers.answer(session, subject, PublicAnswer(score=9), now=utcnow())

        assert await count_responses(tenant.client) == 0
        assert (await read_invitation(tenant, made["id"]))["status"] == change
        async with session_scope(tenant.db.sessionmaker) as session:
            kinds = (await session.scalars(select(Event.type))).all()
        assert "response.created" not in kinds

    async def test_an_answer_after_authentication_makes_the_second_one_409(
        self, tenant: Tenant
    ) -> None:
        made = await invite_decision_maker(tenant)
        subject = await self._subject_as_read(tenant, made)
        first = await answer(tenant.client, made["token"], {"score": 9})

        for score in (9, 4):  # the same answer again, and another one
            with pytest.raises(AlreadyAnswered):
                async with session_scope(tenant.db.sessionmaker) as session:
                    await answers.answer(session, subject, PublicAnswer(score=score), now=utcnow())

        (stored,) = await list_responses(tenant.client)
        assert (stored["id"], stored["score"]) == (first["id"], 9)


class TestTenancy:
    async def test_another_workspaces_token_answers_only_in_its_own_workspace(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        mine = await invite_decision_maker(tenant)
        other = await make_tenant("other")
        theirs = await invite_decision_maker(other)

        given = await answer(tenant.client, theirs["token"], {"score": 9})

        assert given["invitation_id"] == theirs["id"]
        assert await count_responses(tenant.client) == 0
        assert [r["id"] for r in await list_responses(other.client)] == [given["id"]]
        assert (await get_row(tenant, mine["id"])).status == "issued"
        # Every call of their token acts on their invitation, never on this workspace's.
        r = await public_call(
            tenant.client, "PATCH", "answers", theirs["token"], json={"comment": "x"}
        )
        assert (r.status_code, r.json()["id"]) == (200, given["id"])
        r = await public_call(tenant.client, "POST", "dismissals", theirs["token"])
        assert problem(r, 409)["response_id"] == given["id"]
        r = await public_call(tenant.client, "POST", "unsubscribe", theirs["token"])
        assert r.status_code == 204, r.text
        assert (await get_row(tenant, mine["id"])).status == "issued"
        # p1 is unsubscribed in their workspace only: here only the open invitation suppresses.
        assert suppressed(await invite(tenant.client, "p1", status=200))[0] == "open_invitation"
        assert suppressed(await invite(other.client, "p1", status=200))[0] == "unsubscribed"


class TestUpdatePublicAnswer:
    async def test_within_30_minutes_it_changes_the_same_response(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        await define_support_catalog(tenant)
        given = await answer(tenant.client, made["token"], {"score": 9, "comment": "Good"})

        r = await public_call(
            tenant.client,
            "PATCH",
            "answers",
            made["token"],
            json={"comment": "Good support", "attributes": {"support": 4}},
        )

        assert r.status_code == 200, r.text
        assert r.json() == expected_answer(
            made, given, comment="Good support", attributes={"support": 4}
        )
        (stored,) = await list_responses(tenant.client)
        assert (stored["id"], stored["comment"], stored["attributes"]) == (
            given["id"],
            "Good support",
            {"support": 4},
        )
        page = await get_json(tenant.client, f"/v1/responses/{given['id']}/revisions")
        assert [(v["revision"], v["changed_by"]) for v in page["data"]] == [
            (1, None),
            (2, f"invitation:{made['id']}"),
        ]
        assert page["data"][1]["changes"] == {
            "comment": {"from": "Good", "to": "Good support"},
            "attributes": {"from": {}, "to": {"support": 4}},
        }

    async def test_the_public_invitation_shows_the_edited_answer(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        given = await answer(tenant.client, made["token"], {"score": 9})
        r = await public_call(
            tenant.client, "PATCH", "answers", made["token"], json={"comment": "Hi"}
        )
        assert r.status_code == 200, r.text

        shown = await public_call(tenant.client, "GET", "invitation", made["token"])

        assert shown.json()["status"] == "answered"
        assert shown.json()["answer"] == expected_answer(made, given, comment="Hi")

    async def test_a_null_comment_clears_it(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        await answer(tenant.client, made["token"], {"score": 9, "comment": "Good"})

        r = await public_call(
            tenant.client, "PATCH", "answers", made["token"], json={"comment": None}
        )

        assert r.json()["comment"] is None
        assert (await list_responses(tenant.client))[0]["comment"] is None

    async def test_after_30_minutes_it_is_409_naming_when_it_closed(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        await answer(tenant.client, made["token"], {"score": 9, "comment": "Good"})
        answered_at = ago(minutes=30, seconds=1)
        await set_row(tenant, made["id"], answered_at=answered_at)

        r = await public_call(
            tenant.client, "PATCH", "answers", made["token"], json={"comment": "x"}
        )

        closed = rfc3339(answered_at + EDIT_WINDOW)
        assert problem(r, 409) == {
            "type": "/problems/edit-window-closed",
            "title": "Edit window closed",
            "status": 409,
            "detail": "an answer can be edited for 30 minutes after it was given; this one "
            f"could be edited until {closed}",
            "editable_until": closed,
        }
        assert (await list_responses(tenant.client))[0]["comment"] == "Good"

    async def test_before_any_answer_it_is_409_not_answered(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)

        r = await public_call(
            tenant.client, "PATCH", "answers", made["token"], json={"comment": "x"}
        )

        body = problem(r, 409)
        assert (body["type"], body["title"]) == ("/problems/not-answered", "Not answered yet")
        assert await count_responses(tenant.client) == 0

    async def test_an_empty_or_invalid_patch_is_422(self, tenant: Tenant) -> None:
        made = await invite_decision_maker(tenant)
        await define_support_catalog(tenant)
        await answer(tenant.client, made["token"], {"score": 9})

        for body, loc in (
            ({}, ["body"]),
            ({"attributes": None}, ["body", "attributes"]),
            ({"score": 3}, ["body", "score"]),
            ({"attributes": {"support": 0}}, ["body", "attributes", "support"]),
        ):
            r = await public_call(tenant.client, "PATCH", "answers", made["token"], json=body)
            assert_invalid(r, loc)
        page = await get_json(tenant.client, "/v1/responses")
        assert page["data"][0]["score"] == 9
        assert page["data"][0]["attributes"] == {}
