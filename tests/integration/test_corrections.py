"""Corrections: a repeated external_id with other content is a 409; PATCH /v1/responses/{id}
corrects a response, keeping each revision (GET .../revisions), and every score follows."""

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import session_scope
from app.models import Scope, SurveyResponse
from app.scoring import Tally
from app.services.chain import chain_defects
from app.services.keys import PREFIX_LENGTH
from tests.support.api import (
    get_json,
    id_set,
    list_responses,
    post_response,
    put_account,
    put_stakeholder,
    report,
    set_excluded,
)
from tests.support.clock import at, iso_at, stamp_at
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_invalid, assert_not_found, error_locs, problem

ONE = "/v1/responses"
BATCH = "/v1/responses/batch"
CONFLICT = "/problems/external-id-conflict"

register = partial(put_stakeholder, role="user", job_level="manager", status=(200, 201))

# A response with every field a client can send.
FULL: dict[str, Any] = {
    "stakeholder_id": "dana",
    "score": 9,
    "comment": "Support is quick",
    "submitted_at": "2026-01-15T08:30:00Z",
    "survey": "relationship-2026-q4",
    "channel": "email",
    "attributes": {"support": 5, "product": 4.5, "onboarding": True},
    "external_id": "crm-1",
}


async def _setup(client: httpx.AsyncClient, *people: str) -> None:
    await put_account(client, "acme")
    for person in people or ("dana",):
        await register(client, person)


def _url(response_id: str, tail: str = "") -> str:
    return f"/v1/responses/{response_id}{tail}"


async def _patch(client: httpx.AsyncClient, response_id: str, **body: Any) -> dict[str, Any]:
    r = await client.patch(_url(response_id), json=body)
    assert r.status_code == 200, r.text
    patched: dict[str, Any] = r.json()
    return patched


async def _revisions(client: httpx.AsyncClient, response_id: str) -> list[dict[str, Any]]:
    page = await get_json(client, _url(response_id, "/revisions"))
    assert page["next_cursor"] is None
    data: list[dict[str, Any]] = page["data"]
    return data


def _changed_by(tenant: Tenant) -> str:
    return tenant.changed_by


def _assert_conflict(body: dict[str, Any], response_id: str, locs: list[list[Any]]) -> None:
    assert (body["type"], body["title"], body["status"]) == (
        CONFLICT,
        "External id already used",
        409,
    )
    assert body["response_id"] == response_id
    assert response_id in body["detail"]
    assert error_locs(body) == locs


class TestRepeatedExternalId:
    async def test_the_same_content_again_is_the_stored_response(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        first = await post_response(tenant.client, FULL)
        # The same JSON, spelled in another key order.
        r = await tenant.client.post(ONE, json=dict(reversed(FULL.items())))
        assert r.status_code == 200, r.text
        assert r.json() == first
        assert id_set(await list_responses(tenant.client)) == {first["id"]}

    async def test_a_retry_without_submitted_at_matches_the_stored_one(
        self, tenant: Tenant
    ) -> None:
        await _setup(tenant.client)
        sent = {"stakeholder_id": "dana", "score": 9, "external_id": "crm-1"}
        first = await post_response(tenant.client, sent)
        r = await tenant.client.post(ONE, json=sent)
        assert (r.status_code, r.json()) == (200, first)
        # The stored submitted_at was "now"; a retry naming it is the same as well.
        r = await tenant.client.post(ONE, json=sent | {"submitted_at": first["submitted_at"]})
        assert (r.status_code, r.json()) == (200, first)
        # A body that sent submitted_at, retried without it.
        second = await post_response(tenant.client, FULL | {"external_id": "crm-2"})
        retry = {k: v for k, v in FULL.items() if k != "submitted_at"} | {"external_id": "crm-2"}
        r = await tenant.client.post(ONE, json=retry)
        assert (r.status_code, r.json()) == (200, second)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("score", 3),
            ("comment", "Support is slow"),
            ("comment", None),
            ("survey", "support-ticket"),
            ("channel", "api"),
            ("attributes", {"support": 5, "product": 4.5}),
            ("attributes", {"support": 5, "product": 4.5, "onboarding": 1}),
            ("submitted_at", "2026-01-15T08:30:01Z"),
            ("stakeholder_id", "lee"),
        ],
        ids=[
            "score",
            "comment",
            "comment-dropped",
            "survey",
            "channel",
            "attributes",
            "attributes-true-vs-1",
            "submitted_at",
            "stakeholder",
        ],
    )
    async def test_other_content_is_409_naming_the_stored_response(
        self, tenant: Tenant, field: str, value: Any
    ) -> None:
        await _setup(tenant.client, "dana", "lee")
        first = await post_response(tenant.client, FULL)
        changed = {k: v for k, v in (FULL | {field: value}).items() if v is not None}
        r = await tenant.client.post(ONE, json=changed)
        body = problem(r, 409)
        _assert_conflict(body, first["id"], [["body", field]])
        assert f"({field})" in body["detail"]
        assert (await tenant.client.get(_url(first["id"]))).json() == first
        assert id_set(await list_responses(tenant.client)) == {first["id"]}

    async def test_every_differing_field_is_named(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        first = await post_response(tenant.client, FULL)
        r = await tenant.client.post(ONE, json=FULL | {"score": 2, "survey": "other"})
        _assert_conflict(problem(r, 409), first["id"], [["body", "score"], ["body", "survey"]])

    async def test_a_refused_repeat_registers_no_inline_stakeholder(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        first = await post_response(tenant.client, FULL)
        repeat = {k: v for k, v in FULL.items() if k != "stakeholder_id"} | {
            "stakeholder": {"id": "kim", "account_id": "acme", "role": "influencer"}
        }
        r = await tenant.client.post(ONE, json=repeat)
        _assert_conflict(problem(r, 409), first["id"], [["body", "stakeholder", "id"]])
        assert_not_found(await tenant.client.get("/v1/stakeholders/kim"))

    async def test_a_conflict_is_not_kept_under_an_idempotency_key(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        first = await post_response(tenant.client, FULL)
        key = {"Idempotency-Key": "k-1"}
        r = await tenant.client.post(ONE, json=FULL | {"score": 3}, headers=key)
        _assert_conflict(problem(r, 409), first["id"], [["body", "score"]])
        assert "Idempotent-Replayed" not in r.headers
        # The same content under the key afterwards is the duplicate, then replayed as such.
        r = await tenant.client.post(ONE, json=FULL, headers={"Idempotency-Key": "k-2"})
        assert (r.status_code, r.json()) == (200, first)
        again = await tenant.client.post(ONE, json=FULL, headers={"Idempotency-Key": "k-2"})
        assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
        assert again.content == r.content

    async def test_after_a_correction_the_original_and_the_corrected_content_both_match(
        self, tenant: Tenant
    ) -> None:
        await _setup(tenant.client)
        first = await post_response(tenant.client, FULL)
        corrected = await _patch(tenant.client, first["id"], score=6, comment=None)
        # A late retry of the request as first sent.
        r = await tenant.client.post(ONE, json=FULL)
        assert (r.status_code, r.json()) == (200, corrected)
        # The content as it stands now.
        now = {k: v for k, v in FULL.items() if k != "comment"} | {"score": 6}
        r = await tenant.client.post(ONE, json=now)
        assert (r.status_code, r.json()) == (200, corrected)
        # A mix of the two is neither; the fields named are those that differ from it now.
        r = await tenant.client.post(ONE, json=FULL | {"score": 6})
        _assert_conflict(problem(r, 409), first["id"], [["body", "comment"]])


def _item(index: int, status: int, response_id: str | None, **extra: Any) -> dict[str, Any]:
    return {"index": index, "status": status, "id": response_id, "duplicate": False} | extra


class TestBatchRepeats:
    async def test_a_stored_external_id_is_a_duplicate_or_a_409_per_item(
        self, tenant: Tenant
    ) -> None:
        await _setup(tenant.client)
        stored = await post_response(tenant.client, FULL)
        items = [
            FULL,
            FULL | {"score": 4},
            {"stakeholder_id": "dana", "score": 5, "external_id": "crm-2"},
        ]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 207, r.text
        body = r.json()
        new = body["results"][2]["id"]
        conflict = body["results"][1].pop("problem")
        assert body == {
            "stored": 1,
            "duplicates": 1,
            "failed": 1,
            "results": [
                _item(0, 200, stored["id"], duplicate=True, problem=None),
                _item(1, 409, None),
                _item(2, 201, new, problem=None),
            ],
        }
        _assert_conflict(conflict, stored["id"], [["body", "responses", 1, "score"]])
        rows = await list_responses(tenant.client)
        assert {(row["id"], row["score"]) for row in rows} == {(stored["id"], 9), (new, 5)}

    async def test_a_repeat_inside_one_batch_is_compared_with_the_first(
        self, tenant: Tenant
    ) -> None:
        await _setup(tenant.client)
        first = {"stakeholder_id": "dana", "score": 9, "external_id": "e-1"}
        items = [first, first, first | {"comment": "changed my mind"}]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 207, r.text
        body = r.json()
        stored = body["results"][0]["id"]
        conflict = body["results"][2].pop("problem")
        assert body == {
            "stored": 1,
            "duplicates": 1,
            "failed": 1,
            "results": [
                _item(0, 201, stored, problem=None),
                _item(1, 200, stored, duplicate=True, problem=None),
                _item(2, 409, None),
            ],
        }
        _assert_conflict(conflict, stored, [["body", "responses", 2, "comment"]])
        assert id_set(await list_responses(tenant.client)) == {stored}

    async def test_a_refused_item_registers_no_inline_stakeholder(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        stored = await post_response(tenant.client, FULL)
        item = {k: v for k, v in FULL.items() if k != "stakeholder_id"} | {
            "stakeholder": {"id": "kim", "account_id": "acme", "role": "influencer"}
        }
        r = await tenant.client.post(BATCH, json={"responses": [item]})
        assert r.status_code == 207, r.text
        result = r.json()["results"][0]
        assert (result["status"], result["problem"]["response_id"]) == (409, stored["id"])
        assert_not_found(await tenant.client.get("/v1/stakeholders/kim"))

    async def test_a_refused_repeat_inside_one_batch_changes_no_stakeholder(
        self, tenant: Tenant
    ) -> None:
        # The second item repeats the first's external_id with other content: it is refused, so
        # its inline profile (dana as an influencer) must not reach dana (a user), nor the first
        # item's snapshot.
        await _setup(tenant.client)
        repeat = {
            "stakeholder": {"id": "dana", "account_id": "acme", "role": "influencer"},
            "score": 0,
            "external_id": "e-1",
        }
        items = [{"stakeholder_id": "dana", "score": 10, "external_id": "e-1"}, repeat]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 207, r.text
        first, second = r.json()["results"]
        assert (first["status"], second["status"]) == (201, 409)
        dana = (await tenant.client.get("/v1/stakeholders/dana")).json()
        assert dana["role"] == "user"
        stored = (await tenant.client.get(f"/v1/responses/{first['id']}")).json()
        assert (stored["role"], stored["score"]) == ("user", 10)

    async def test_a_repeat_stands_in_for_a_refused_first_item(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        items = [
            {"stakeholder_id": "nobody", "score": 3, "external_id": "e-1"},
            {
                "stakeholder": {"id": "kim", "account_id": "acme", "role": "influencer"},
                "score": 8,
                "external_id": "e-1",
            },
        ]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 207, r.text
        first, second = r.json()["results"]
        assert (first["status"], second["status"]) == (422, 201)
        stored = (await tenant.client.get(f"/v1/responses/{second['id']}")).json()
        assert (stored["stakeholder_id"], stored["role"]) == ("kim", "influencer")


class TestCorrectResponse:
    async def test_each_field_is_corrected(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = await post_response(tenant.client, FULL)
        patched = await _patch(
            tenant.client,
            created["id"],
            score=4,
            comment="Support was slow after all",
            attributes={"support": 2},
            submitted_at="2026-01-10T12:00:00+02:00",
        )
        assert patched == created | {
            "score": 4,
            "category": "detractor",
            "comment": "Support was slow after all",
            "attributes": {"support": 2},
            "submitted_at": "2026-01-10T10:00:00Z",
        }
        assert (await tenant.client.get(_url(created["id"]))).json() == patched

    async def test_a_null_comment_clears_it(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = await post_response(tenant.client, FULL)
        patched = await _patch(tenant.client, created["id"], comment=None)
        assert (patched["comment"], patched["score"]) == (None, 9)

    async def test_a_patch_that_changes_nothing_stores_no_revision(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = await post_response(tenant.client, FULL)
        patched = await _patch(
            tenant.client,
            created["id"],
            score=9,
            comment="Support is quick",
            attributes={"onboarding": True, "product": 4.5, "support": 5},
            submitted_at="2026-01-15T09:30:00+01:00",
            excluded=False,
        )
        assert patched == created
        assert [r["revision"] for r in await _revisions(tenant.client, created["id"])] == [1]

    async def test_a_correction_moves_updated_at_for_updated_since_syncs(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await _setup(tenant.client, "dana", "lee")
        created = await post_response(tenant.client, FULL)
        await post_response(tenant.client, {"stakeholder_id": "lee", "score": 7})
        # Every request of a test shares one transaction (one now()): record them an hour ago.
        async with session_scope(sessionmaker) as session:
            await session.execute(
                update(SurveyResponse)
                .where(SurveyResponse.workspace_id == tenant.id)
                .values(updated_at=func.now() - timedelta(hours=1))
            )
        synced_until = datetime.now(UTC) - timedelta(minutes=30)
        assert await list_responses(tenant.client, updated_since=synced_until.isoformat()) == []

        patched = await _patch(tenant.client, created["id"], score=10)
        assert datetime.fromisoformat(patched["updated_at"]) > synced_until
        synced = await list_responses(tenant.client, updated_since=synced_until.isoformat())
        assert [row["id"] for row in synced] == [created["id"]]

        # A patch that changes nothing leaves it where it is.
        assert (await _patch(tenant.client, created["id"], score=10)) == patched

    async def test_excluding_still_needs_a_reason_and_is_a_revision(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = await post_response(tenant.client, FULL)
        assert_invalid(
            await tenant.client.patch(_url(created["id"]), json={"excluded": True}), ["body"]
        )
        patched = await _patch(tenant.client, created["id"], excluded=True, reason="test entry")
        assert (patched["excluded"], patched["excluded_reason"]) == (True, "test entry")
        patched = await _patch(tenant.client, created["id"], excluded=False)
        assert (patched["excluded"], patched["excluded_reason"]) == (False, None)
        revisions = await _revisions(tenant.client, created["id"])
        assert [r["changes"] for r in revisions] == [
            {},
            {
                "excluded": {"from": False, "to": True},
                "excluded_reason": {"from": None, "to": "test entry"},
            },
            {
                "excluded": {"from": True, "to": False},
                "excluded_reason": {"from": "test entry", "to": None},
            },
        ]

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({}, ["body"]),
            ({"score": "9"}, ["body", "score"]),
            ({"score": 9.0}, ["body", "score"]),
            ({"score": True}, ["body", "score"]),
            ({"score": 11}, ["body", "score"]),
            ({"score": -1}, ["body", "score"]),
            ({"score": None}, ["body", "score"]),
            ({"attributes": None}, ["body", "attributes"]),
            ({"attributes": {"support": {"nested": 1}}}, ["body", "attributes", "support", "int"]),
            ({"submitted_at": None}, ["body", "submitted_at"]),
            ({"submitted_at": "2026-01-15T08:30:00"}, ["body", "submitted_at"]),
            ({"submitted_at": 1767225600}, ["body", "submitted_at"]),
            ({"excluded": None}, ["body", "excluded"]),
            ({"reason": "why"}, ["body"]),
            ({"comment": 5}, ["body", "comment"]),
            ({"stakeholder_id": "lee"}, ["body", "stakeholder_id"]),
            ({"external_id": "crm-9"}, ["body", "external_id"]),
        ],
        ids=lambda v: str(v) if isinstance(v, dict) else "",
    )
    async def test_invalid_patches_are_refused_and_change_nothing(
        self, tenant: Tenant, body: dict[str, Any], loc: list[Any]
    ) -> None:
        await _setup(tenant.client)
        created = await post_response(tenant.client, FULL)
        r = await tenant.client.patch(_url(created["id"]), json=body)
        found = assert_invalid(r)
        assert loc in error_locs(found), found
        assert (await tenant.client.get(_url(created["id"]))).json() == created
        assert len(await _revisions(tenant.client, created["id"])) == 1

    async def test_submitted_at_over_five_minutes_ahead_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = await post_response(tenant.client, FULL)
        ahead = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
        r = await tenant.client.patch(_url(created["id"]), json={"submitted_at": ahead})
        assert_invalid(r, ["body", "submitted_at"])
        soon = (datetime.now(UTC) + timedelta(minutes=4)).isoformat()
        assert (await _patch(tenant.client, created["id"], submitted_at=soon))["submitted_at"]

    async def test_an_unknown_id_is_not_found(self, tenant: Tenant) -> None:
        assert_not_found(await tenant.client.patch(_url(str(uuid.uuid4())), json={"score": 3}))

    async def test_a_read_key_cannot_correct(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = await post_response(tenant.client, FULL)
        reader = {"Authorization": f"Bearer {await tenant.make_key(Scope.READ)}"}
        r = await tenant.client.patch(_url(created["id"]), json={"score": 3}, headers=reader)
        assert problem(r, 403)["type"] == "/problems/forbidden"
        assert (await tenant.client.get(_url(created["id"]))).json() == created
        # Reading the revisions is enough for a read key.
        r = await tenant.client.get(_url(created["id"], "/revisions"), headers=reader)
        assert r.status_code == 200, r.text


class TestRevisions:
    async def test_the_recorded_response_then_each_correction(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = await post_response(tenant.client, FULL)
        await _patch(tenant.client, created["id"], score=6)
        await _patch(
            tenant.client, created["id"], comment=None, submitted_at="2026-01-20T00:00:00Z"
        )
        await set_excluded(tenant.client, created["id"], True, "duplicate survey")
        revisions = await _revisions(tenant.client, created["id"])
        recorded = {
            "score": 9,
            "comment": "Support is quick",
            "attributes": FULL["attributes"],
            "submitted_at": "2026-01-15T08:30:00Z",
            "excluded": False,
            "excluded_reason": None,
        }
        second = recorded | {"score": 6}
        third = second | {"comment": None, "submitted_at": "2026-01-20T00:00:00Z"}
        fourth = third | {"excluded": True, "excluded_reason": "duplicate survey"}
        stamps = [r.pop("changed_at") for r in revisions]
        who = _changed_by(tenant)
        assert revisions == [
            {"revision": 1, "changed_by": None, "changes": {}, "values": recorded},
            {
                "revision": 2,
                "changed_by": who,
                "changes": {"score": {"from": 9, "to": 6}},
                "values": second,
            },
            {
                "revision": 3,
                "changed_by": who,
                "changes": {
                    "comment": {"from": "Support is quick", "to": None},
                    "submitted_at": {
                        "from": "2026-01-15T08:30:00Z",
                        "to": "2026-01-20T00:00:00Z",
                    },
                },
                "values": third,
            },
            {
                "revision": 4,
                "changed_by": who,
                "changes": {
                    "excluded": {"from": False, "to": True},
                    "excluded_reason": {"from": None, "to": "duplicate survey"},
                },
                "values": fourth,
            },
        ]
        assert stamps[0] == created["created_at"]
        current = (await tenant.client.get(_url(created["id"]))).json()
        assert stamps[-1] == current["updated_at"]
        assert all(datetime.fromisoformat(s).tzinfo is not None for s in stamps)

    async def test_changed_by_names_the_key_that_corrected(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = await post_response(tenant.client, FULL)
        writer_key = await tenant.make_key(Scope.WRITE)
        r = await tenant.client.patch(
            _url(created["id"]),
            json={"score": 1},
            headers={"Authorization": f"Bearer {writer_key}"},
        )
        assert r.status_code == 200, r.text
        [_, revision] = await _revisions(tenant.client, created["id"])
        assert revision["changed_by"] == f"api_key:{writer_key[:PREFIX_LENGTH]}"

    async def test_pages_with_a_cursor(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = await post_response(tenant.client, FULL)
        for score in (1, 2, 3, 4):
            await _patch(tenant.client, created["id"], score=score)
        seen: list[int] = []
        params: dict[str, Any] = {"limit": 2}
        while True:
            page = await get_json(tenant.client, _url(created["id"], "/revisions"), **params)
            seen += [r["revision"] for r in page["data"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == [1, 2, 3, 4, 5]
        r = await tenant.client.get(_url(created["id"], "/revisions"), params={"cursor": "x"})
        assert_invalid(r, ["query", "cursor"])

    async def test_an_unknown_id_is_not_found(self, tenant: Tenant) -> None:
        assert_not_found(await tenant.client.get(_url(str(uuid.uuid4()), "/revisions")))


class TestTenancy:
    async def test_another_workspace_can_neither_correct_nor_read_revisions(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        await _setup(tenant.client)
        created = await post_response(tenant.client, FULL)
        other = await make_tenant("b")
        assert_not_found(await other.client.patch(_url(created["id"]), json={"score": 0}))
        assert_not_found(
            await other.client.patch(_url(created["id"]), json={"excluded": True, "reason": "spam"})
        )
        assert_not_found(await other.client.get(_url(created["id"], "/revisions")))
        assert await list_responses(other.client, external_id="crm-1") == []
        assert await list_responses(other.client, survey=FULL["survey"]) == []
        assert (await tenant.client.get(_url(created["id"]))).json() == created
        assert len(await _revisions(tenant.client, created["id"])) == 1

    async def test_the_same_external_id_in_another_workspace_is_its_own(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        await _setup(tenant.client)
        mine = await post_response(tenant.client, FULL)
        other = await make_tenant("b")
        await _setup(other.client)
        theirs = await post_response(other.client, FULL | {"score": 2})
        assert theirs["id"] != mine["id"]


class TestListFilters:
    async def test_filters_by_external_id_and_survey(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        a = await post_response(tenant.client, FULL)
        b = await post_response(
            tenant.client,
            {"stakeholder_id": "dana", "score": 3, "survey": "q1", "external_id": "crm-2"},
        )
        c = await post_response(tenant.client, {"stakeholder_id": "dana", "score": 7})
        assert id_set(await list_responses(tenant.client, external_id="crm-2")) == {b["id"]}
        assert id_set(await list_responses(tenant.client, external_id="crm-x")) == set()
        assert id_set(await list_responses(tenant.client, survey=FULL["survey"])) == {a["id"]}
        assert id_set(await list_responses(tenant.client, survey="q1")) == {b["id"]}
        assert id_set(await list_responses(tenant.client)) == {a["id"], b["id"], c["id"]}
        both = await list_responses(tenant.client, survey="q1", external_id="crm-1")
        assert both == []

    @pytest.mark.parametrize(
        ("param", "value"),
        [("external_id", "has space"), ("external_id", ""), ("survey", "a b"), ("survey", "")],
    )
    async def test_an_invalid_filter_is_refused(
        self, tenant: Tenant, param: str, value: str
    ) -> None:
        assert_invalid(await tenant.client.get(ONE, params={param: value}), ["query", param])


async def _defects(sessionmaker: async_sessionmaker[AsyncSession], tenant: Tenant) -> int:
    async with sessionmaker() as session:
        return await chain_defects(session, tenant.id)


async def _score(client: httpx.AsyncClient, **params: Any) -> tuple[int, float | None]:
    score = (await report(client, **params))["score"]
    return score["n"], score["nps"]


def _tally(*scores: int) -> tuple[int, float | None]:
    tally = Tally.from_scores(scores)
    return tally.n, tally.nps


async def _moves(client: httpx.AsyncClient) -> list[tuple[str, int, int]]:
    page = await report(client, "/v1/movements")
    return [(m["direction"], m["from"]["score"], m["to"]["score"]) for m in page["data"]]


class TestScoresFollow:
    async def test_a_score_correction_moves_the_score_and_the_movements(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        client = tenant.client
        await _setup(client, "ann", "bob")
        body = {"stakeholder_id": "ann"}
        await post_response(client, body | {"score": 10, "submitted_at": iso_at(5)})
        later = await post_response(client, body | {"score": 3, "submitted_at": iso_at(10)})
        await post_response(
            client, {"stakeholder_id": "bob", "score": 9, "submitted_at": iso_at(6)}
        )
        assert await _score(client) == _tally(3, 9)
        assert await _moves(client) == [("down", 10, 3)]

        await _patch(client, later["id"], score=8)
        assert await _score(client) == _tally(8, 9)
        assert await _moves(client) == [("down", 10, 8)]
        await _patch(client, later["id"], score=9)
        assert await _score(client) == _tally(9, 9)
        assert await _moves(client) == []
        account = (await report(client, "/v1/accounts/acme/nps"))["score"]
        assert (account["n"], account["nps"]) == _tally(9, 9)
        assert await _defects(sessionmaker, tenant) == 0

    async def test_moving_submitted_at_before_and_after_the_other_answers(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        client = tenant.client
        await _setup(client, "ann")
        body = {"stakeholder_id": "ann"}
        first = await post_response(client, body | {"score": 10, "submitted_at": iso_at(10)})
        second = await post_response(client, body | {"score": 8, "submitted_at": iso_at(20)})
        third = await post_response(client, body | {"score": 2, "submitted_at": iso_at(30)})
        assert await _score(client) == _tally(2)
        assert await _moves(client) == [("down", 8, 2), ("down", 10, 8)]

        # The latest answer moved before every other: the one of day 20 is now the latest.
        await _patch(client, third["id"], submitted_at=iso_at(5))
        assert await _score(client) == _tally(8)
        assert await _moves(client) == [("down", 10, 8), ("up", 2, 10)]
        assert await _defects(sessionmaker, tenant) == 0
        # ...and a window ending on day 8 sees only it.
        assert await _score(client, to=stamp_at(8)) == _tally(2)

        # The first answer moved after every other: now the latest.
        await _patch(client, first["id"], submitted_at=iso_at(40))
        assert await _score(client) == _tally(10)
        assert await _moves(client) == [("up", 8, 10), ("up", 2, 8)]
        assert await _defects(sessionmaker, tenant) == 0

        # Moved while excluded, then included again.
        await set_excluded(client, second["id"], True)
        await _patch(client, second["id"], submitted_at=iso_at(50))
        assert await _defects(sessionmaker, tenant) == 0
        assert await _score(client) == _tally(10)
        await set_excluded(client, second["id"], False)
        assert await _score(client) == _tally(8)
        assert await _moves(client) == [("down", 10, 8), ("up", 2, 10)]
        assert await _defects(sessionmaker, tenant) == 0

    async def test_a_correction_moves_the_trend_and_at_risk(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        client = tenant.client
        await put_account(client, "acme")
        await register(client, "dm", role="decision_maker")
        answer = await post_response(
            client, {"stakeholder_id": "dm", "score": 2, "submitted_at": iso_at(40)}
        )
        risky = await report(client, "/v1/accounts/at-risk")
        reasons = {r["code"] for a in risky["data"] for r in a["reasons"]}
        assert "decision_maker_detractor" in reasons

        await _patch(client, answer["id"], score=10)
        risky = await report(client, "/v1/accounts/at-risk")
        reasons = {r["code"] for a in risky["data"] for r in a["reasons"]}
        assert "decision_maker_detractor" not in reasons

        trend = await report(client, "/v1/nps/trend", interval="month")
        february = [p for p in trend["points"] if p["start"] == stamp_at(31)]
        assert [(p["score"]["n"], p["score"]["nps"]) for p in february] == [_tally(10)]
        await _patch(client, answer["id"], submitted_at=at(70).isoformat())
        trend = await report(client, "/v1/nps/trend", interval="month")
        by_start = {p["start"]: p["score"]["n"] for p in trend["points"]}
        assert (by_start[stamp_at(31)], by_start[stamp_at(59)]) == (0, 1)
        assert await _defects(sessionmaker, tenant) == 0


class TestConcurrency:
    async def test_concurrent_corrections_each_get_their_revision_and_keep_the_chain(
        self, committed: Tenant, engine: AsyncEngine
    ) -> None:
        client = committed.client
        await _setup(client, "ann")
        body = {"stakeholder_id": "ann"}
        target = await post_response(client, body | {"score": 5, "submitted_at": iso_at(10)})
        await post_response(client, body | {"score": 9, "submitted_at": iso_at(20)})
        patches = [{"score": s} for s in (0, 1, 2, 3)] + [
            {"submitted_at": iso_at(d)} for d in (5, 25, 30)
        ]
        posts = [body | {"score": 7, "submitted_at": iso_at(d)} for d in (8, 15, 28)]
        replies = await asyncio.gather(
            *(client.patch(_url(target["id"]), json=p) for p in patches),
            *(client.post(ONE, json=p) for p in posts),
        )
        assert [r.status_code for r in replies] == [200] * len(patches) + [201] * len(posts)
        revisions = await _revisions(client, target["id"])
        assert [r["revision"] for r in revisions] == list(range(1, len(patches) + 2))
        # Serialised: each correction started from what the one before it left.
        for before, after in itertools.pairwise(revisions):
            for field, change in after["changes"].items():
                assert change["from"] == before["values"][field]
        # Replaying the changes in revision order ends at the response as it stands.
        current = (await client.get(_url(target["id"]))).json()
        final = revisions[-1]["values"]
        assert (final["score"], final["submitted_at"]) == (
            current["score"],
            current["submitted_at"],
        )
        async with async_sessionmaker(engine)() as session:
            assert await chain_defects(session, committed.id) == 0
