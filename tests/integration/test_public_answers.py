"""The public answer calls: answering with the token, editing the answer for 30 minutes,
dismissing, unsubscribing; each only on the token's own invitation."""

from datetime import timedelta
from typing import Any

import pytest

from app.errors import rfc3339
from tests.support.api import count_responses, get_json, list_responses, put_settings
from tests.support.clock import ago
from tests.support.harness import MakeTenant, Tenant
from tests.support.invitations import (
    answer,
    get_row,
    invite,
    parse,
    public_call,
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

WINDOW = timedelta(minutes=30)


async def invited(
    tenant: Tenant, sid: str = "p1", *, new_account: bool = True, **extra: Any
) -> dict[str, Any]:
    """A decision maker of acme (registered with it unless it exists), invited; the invitation
    as issued (with its token)."""
    if new_account:
        await tenant.db.account("acme")
    await tenant.db.stakeholder(
        sid, "acme", role="decision_maker", job_level="executive", department="Finance"
    )
    return await invite(tenant.client, sid, **extra)


async def catalog(tenant: Tenant, survey: str = "relationship") -> None:
    """A definition of `survey` whose catalog rates support 1-5."""
    body = {"attributes": [{"key": "support", "label": "Support", "scale": 5}]}
    r = await tenant.client.put(f"/v1/surveys/{survey}", json=body)
    assert r.status_code == 201, r.text


async def invitation(tenant: Tenant, invitation_id: str) -> dict[str, Any]:
    return await get_json(tenant.client, f"/v1/invitations/{invitation_id}")


def expected(made: dict[str, Any], given: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The answer body: the response's id and content, when it was given, until when editable."""
    answered_at = parse(given["answered_at"])
    assert answered_at is not None
    return {
        "id": given["id"],
        "invitation_id": made["id"],
        "score": 9,
        "comment": None,
        "attributes": {},
        "answered_at": given["answered_at"],
        "editable_until": rfc3339(answered_at + WINDOW),
        **fields,
    }


class TestCreatePublicAnswer:
    async def test_the_answer_is_an_ordinary_response_every_score_sees(
        self, tenant: Tenant
    ) -> None:
        made = await invited(tenant)
        await catalog(tenant)

        body = {"score": 9, "comment": "Quick support", "attributes": {"support": 5}}
        given = await answer(tenant.client, made["token"], body)

        assert given == expected(made, given, comment="Quick support", attributes={"support": 5})
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
        shown = await invitation(tenant, made["id"])
        assert (shown["status"], shown["answered_at"], shown["response_id"]) == (
            "answered",
            given["answered_at"],
            given["id"],
        )

    @pytest.mark.parametrize("channel", ["link", "widget"])
    async def test_the_channel_is_the_invitations(self, tenant: Tenant, channel: str) -> None:
        made = await invited(tenant, channel=channel)

        await answer(tenant.client, made["token"], {"score": 3})

        (stored,) = await list_responses(tenant.client)
        assert (stored["channel"], stored["score"]) == (channel, 3)

    async def test_the_role_is_a_snapshot_of_when_they_answered(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        given = await answer(tenant.client, made["token"], {"score": 9})
        r = await tenant.client.put(
            "/v1/stakeholders/p1", json={"account_id": "acme", "role": "user"}
        )
        assert r.status_code == 200, r.text

        stored = await get_json(tenant.client, f"/v1/responses/{given['id']}")

        assert stored["role"] == "decision_maker"

    async def test_a_second_answer_is_409_naming_when_it_was_answered(self, tenant: Tenant) -> None:
        made = await invited(tenant)
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

    async def test_a_retry_with_the_idempotency_key_replays_the_201(self, tenant: Tenant) -> None:
        made = await invited(tenant)
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
        ada = await invited(tenant, "ada")
        bob = await invited(tenant, "bob", new_account=False)
        key = {"Idempotency-Key": "same"}
        for made in (ada, bob):
            r = await public_call(
                tenant.client, "POST", "answers", made["token"], json={"score": 9}, headers=key
            )
            assert r.status_code == 201, r.text
            assert REPLAYED not in r.headers

        assert await count_responses(tenant.client) == 2

    async def test_a_dismissed_invitation_can_still_be_answered(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        r = await public_call(tenant.client, "POST", "dismissals", made["token"])
        assert r.status_code == 204, r.text

        await answer(tenant.client, made["token"], {"score": 7})

        shown = await invitation(tenant, made["id"])
        assert shown["status"] == "answered"
        assert shown["dismissed_at"] is not None

    @pytest.mark.parametrize("survey", ["x" * 100, "team@acme.example"])
    async def test_every_definable_survey_id_can_be_answered(
        self, tenant: Tenant, survey: str
    ) -> None:
        await catalog(tenant, survey)
        made = await invited(tenant, survey=survey)

        await answer(tenant.client, made["token"], {"score": 9, "attributes": {"support": 2}})

        (stored,) = await list_responses(tenant.client, survey=survey)
        assert (stored["survey"], stored["attributes"]) == (survey, {"support": 2})

    @pytest.mark.parametrize("score", [11, -1, "9", 9.0, 9.5, True, None])
    async def test_a_bad_score_is_422_and_nothing_is_stored(
        self, tenant: Tenant, score: Any
    ) -> None:
        made = await invited(tenant)

        r = await public_call(
            tenant.client, "POST", "answers", made["token"], json={"score": score}
        )

        assert_invalid(r, ["body", "score"])
        assert await count_responses(tenant.client) == 0
        assert (await get_row(tenant, made["id"])).status == "issued"

    async def test_unknown_fields_and_a_missing_score_are_422(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        for body, loc in (
            ({"score": 9, "survey": "other"}, ["body", "survey"]),
            ({"score": 9, "stakeholder_id": "p2"}, ["body", "stakeholder_id"]),
            ({"comment": "no score"}, ["body", "score"]),
        ):
            r = await public_call(tenant.client, "POST", "answers", made["token"], json=body)
            assert_invalid(r, loc)
        assert await count_responses(tenant.client) == 0

    async def test_a_rating_out_of_the_catalogs_scale_is_422(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        await catalog(tenant)

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
        lapsed = await invited(tenant, "ada")
        await set_row(tenant, lapsed["id"], expires_at=ago(seconds=1))
        revoked = await invited(tenant, "bob", new_account=False)
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
        made = await invited(tenant)
        for token in ("npsi_" + "A" * 43, "npsi_", made["token"] + "x", "nonsense"):
            r = await public_call(tenant.client, "POST", "answers", token, json={"score": 9})
            assert_unauthorized(r)
        assert await count_responses(tenant.client) == 0

    async def test_an_api_key_is_403(self, tenant: Tenant) -> None:
        await invited(tenant)

        assert_forbidden(await tenant.client.post("/v1/public/answers", json={"score": 9}))
        assert await count_responses(tenant.client) == 0


class TestTenancy:
    async def test_another_workspaces_token_answers_only_in_its_own_workspace(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        mine = await invited(tenant)
        other = await make_tenant("other")
        theirs = await invited(other)

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
        made = await invited(tenant)
        await catalog(tenant)
        given = await answer(tenant.client, made["token"], {"score": 9, "comment": "Good"})

        r = await public_call(
            tenant.client,
            "PATCH",
            "answers",
            made["token"],
            json={"comment": "Good support", "attributes": {"support": 4}},
        )

        assert r.status_code == 200, r.text
        assert r.json() == expected(made, given, comment="Good support", attributes={"support": 4})
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
        made = await invited(tenant)
        given = await answer(tenant.client, made["token"], {"score": 9})
        r = await public_call(
            tenant.client, "PATCH", "answers", made["token"], json={"comment": "Hi"}
        )
        assert r.status_code == 200, r.text

        shown = await public_call(tenant.client, "GET", "invitation", made["token"])

        assert shown.json()["status"] == "answered"
        assert shown.json()["answer"] == expected(made, given, comment="Hi")

    async def test_a_null_comment_clears_it(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        await answer(tenant.client, made["token"], {"score": 9, "comment": "Good"})

        r = await public_call(
            tenant.client, "PATCH", "answers", made["token"], json={"comment": None}
        )

        assert r.json()["comment"] is None
        assert (await list_responses(tenant.client))[0]["comment"] is None

    async def test_after_30_minutes_it_is_409_naming_when_it_closed(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        await answer(tenant.client, made["token"], {"score": 9, "comment": "Good"})
        answered_at = ago(minutes=30, seconds=1)
        await set_row(tenant, made["id"], answered_at=answered_at)

        r = await public_call(
            tenant.client, "PATCH", "answers", made["token"], json={"comment": "x"}
        )

        closed = rfc3339(answered_at + WINDOW)
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
        made = await invited(tenant)

        r = await public_call(
            tenant.client, "PATCH", "answers", made["token"], json={"comment": "x"}
        )

        body = problem(r, 409)
        assert (body["type"], body["title"]) == ("/problems/not-answered", "Not answered yet")
        assert await count_responses(tenant.client) == 0

    async def test_an_empty_or_invalid_patch_is_422(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        await catalog(tenant)
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


class TestCreatePublicDismissal:
    async def test_dismissing_suppresses_the_next_invitation_for_after_dismissal_days(
        self, tenant: Tenant
    ) -> None:
        made = await invited(tenant)

        r = await public_call(tenant.client, "POST", "dismissals", made["token"])

        assert (r.status_code, r.content) == (204, b"")
        shown = await invitation(tenant, made["id"])
        assert shown["status"] == "dismissed"
        dismissed_at = parse(shown["dismissed_at"])
        assert dismissed_at is not None
        again = await invite(tenant.client, "p1", status=200)
        assert suppressed(again) == ("dismissed_recently", dismissed_at + timedelta(days=30))

    async def test_dismissing_again_keeps_the_first_dismissal(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        await public_call(tenant.client, "POST", "dismissals", made["token"])
        first = (await get_row(tenant, made["id"])).dismissed_at

        r = await public_call(tenant.client, "POST", "dismissals", made["token"])

        assert r.status_code == 204, r.text
        assert (await get_row(tenant, made["id"])).dismissed_at == first

    async def test_an_answered_invitation_cannot_be_dismissed(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        given = await answer(tenant.client, made["token"], {"score": 9})

        r = await public_call(tenant.client, "POST", "dismissals", made["token"])

        body = problem(r, 409)
        assert (body["type"], body["answered_at"]) == (
            "/problems/already-answered",
            given["answered_at"],
        )
        assert (await get_row(tenant, made["id"])).dismissed_at is None

    async def test_expired_is_410(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        await set_row(tenant, made["id"], expires_at=ago(seconds=1))

        r = await public_call(tenant.client, "POST", "dismissals", made["token"])

        assert problem(r, 410)["type"] == "/problems/gone"
        assert (await get_row(tenant, made["id"])).dismissed_at is None


class TestCreatePublicUnsubscribe:
    async def test_an_expired_invitation_unsubscribes_and_later_ones_are_suppressed(
        self, tenant: Tenant
    ) -> None:
        made = await invited(tenant)
        await set_row(tenant, made["id"], expires_at=ago(days=1))

        r = await public_call(tenant.client, "POST", "unsubscribe", made["token"])

        assert (r.status_code, r.content) == (204, b"")
        later = await invite(tenant.client, "p1", survey="another", channel="widget", status=200)
        assert suppressed(later) == ("unsubscribed", None)
        assert (await invitation(tenant, made["id"]))["status"] == "expired"

    @pytest.mark.parametrize("state", ["answered", "revoked"])
    async def test_an_answered_or_revoked_invitation_unsubscribes(
        self, tenant: Tenant, state: str
    ) -> None:
        made = await invited(tenant)
        if state == "answered":
            await answer(tenant.client, made["token"], {"score": 9})
        else:
            assert (await tenant.client.delete(f"/v1/invitations/{made['id']}")).status_code == 204
        await put_settings(tenant.client, {"survey_rules": {"resurvey_after_days": 0}})

        r = await public_call(tenant.client, "POST", "unsubscribe", made["token"])

        assert r.status_code == 204, r.text
        assert suppressed(await invite(tenant.client, "p1", status=200)) == ("unsubscribed", None)
        assert (await invitation(tenant, made["id"]))["status"] == state

    async def test_unsubscribing_twice_is_204(self, tenant: Tenant) -> None:
        made = await invited(tenant)
        for _ in range(2):
            r = await public_call(tenant.client, "POST", "unsubscribe", made["token"])
            assert r.status_code == 204, r.text

    async def test_their_other_open_invitations_are_revoked(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, {"survey_rules": {"after_unanswered_days": 0}})
        old = await invited(tenant)
        await set_row(tenant, old["id"], expires_at=ago(days=1))
        live = await invite(tenant.client, "p1", survey="other")
        await tenant.db.stakeholder("p2", "acme")
        colleague = await invite(tenant.client, "p2")

        r = await public_call(tenant.client, "POST", "unsubscribe", old["token"])

        assert r.status_code == 204, r.text
        shown = await invitation(tenant, live["id"])
        assert shown["status"] == "revoked"
        assert shown["revoked_at"] is not None
        gone = await public_call(tenant.client, "GET", "invitation", live["token"])
        assert problem(gone, 410)["type"] == "/problems/gone"
        assert (await invitation(tenant, colleague["id"]))["status"] == "issued"

    async def test_the_invitation_used_stays_answerable(self, tenant: Tenant) -> None:
        made = await invited(tenant)

        r = await public_call(tenant.client, "POST", "unsubscribe", made["token"])

        assert r.status_code == 204, r.text
        await answer(tenant.client, made["token"], {"score": 9})

    async def test_an_unknown_token_or_an_api_key_is_refused(self, tenant: Tenant) -> None:
        await invited(tenant)

        r = await public_call(tenant.client, "POST", "unsubscribe", "npsi_" + "A" * 43)

        assert_unauthorized(r)
        assert_forbidden(await tenant.client.post("/v1/public/unsubscribe"))
        assert (await invite(tenant.client, "p1", survey="x", status=200))["suppression"][
            "rule"
        ] == "open_invitation"
