"""POST/GET/PATCH /v1/responses: recording one response, reading, listing and excluding."""

import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest

from app.models import Scope
from app.scoring import Tally
from tests.support.api import id_set, list_responses, post_response, put_account, put_stakeholder
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import PROBLEM_JSON, assert_invalid

# Stakeholders of these tests, unless they say otherwise.
register = partial(
    put_stakeholder,
    role="decision_maker",
    job_level="executive",
    department="Engineering",
    status=(200, 201),
)


async def _setup(client: httpx.AsyncClient) -> None:
    await put_account(client, "acme", name="Acme")
    await register(client, "dana")


async def _post(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("stakeholder_id", "dana")
    return await post_response(client, {k: v for k, v in body.items() if v is not None})


class TestRecordResponse:
    async def test_created_returns_the_full_response(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post(
            "/v1/responses",
            json={
                "stakeholder_id": "dana",
                "score": 9,
                "comment": "Support is quick",
                "submitted_at": "2026-03-01T12:00:00Z",
                "survey": "relationship-2026-q1",
                "channel": "email",
                "attributes": {"support": 5, "product": 4},
                "external_id": "crm-1",
            },
        )
        assert r.status_code == 201, r.text
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        uuid.UUID(body.pop("id"))
        assert body.pop("created_at")
        assert body.pop("updated_at")
        assert body == {
            "external_id": "crm-1",
            "stakeholder_id": "dana",
            "account_id": "acme",
            "role": "decision_maker",
            "job_level": "executive",
            "department": "Engineering",
            "score": 9,
            "category": "promoter",
            "comment": "Support is quick",
            "submitted_at": "2026-03-01T12:00:00Z",
            "survey": "relationship-2026-q1",
            "channel": "email",
            "attributes": {"support": 5, "product": 4},
            "excluded": False,
            "excluded_reason": None,
        }

    async def test_defaults_are_applied(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        before = datetime.now(UTC)
        body = await _post(tenant.client, score=0)
        after = datetime.now(UTC)
        assert before <= datetime.fromisoformat(body["submitted_at"]) <= after
        assert body["channel"] == "api"
        assert body["category"] == "detractor"
        assert (body["comment"], body["survey"], body["external_id"]) == (None, None, None)
        assert body["attributes"] == {}

    @pytest.mark.parametrize("score", [0, 10])
    async def test_bounds_of_the_scale_are_accepted(self, tenant: Tenant, score: int) -> None:
        await _setup(tenant.client)
        body = await _post(tenant.client, score=score)
        assert body["score"] == score

    @pytest.mark.parametrize(
        "score",
        [True, False, 6.5, "9", -1, 11, None],
        ids=["true", "false", "6.5", "string-9", "-1", "11", "null"],
    )
    async def test_a_non_score_is_refused_and_nothing_stored(
        self, tenant: Tenant, score: Any
    ) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post(
            "/v1/responses", json={"stakeholder_id": "dana", "score": score}
        )
        assert_invalid(r, ["body", "score"])
        assert await list_responses(tenant.client, stakeholder_id="dana") == []

    async def test_a_float_score_is_refused_even_when_whole(self, tenant: Tenant) -> None:
        # The JSON text `9.0`, sent as written (not re-serialised by the client library).
        await _setup(tenant.client)
        r = await tenant.client.post(
            "/v1/responses",
            content=b'{"stakeholder_id": "dana", "score": 9.0}',
            headers={"Content-Type": "application/json"},
        )
        assert_invalid(r, ["body", "score"])
        assert await list_responses(tenant.client, stakeholder_id="dana") == []

    async def test_a_missing_score_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post("/v1/responses", json={"stakeholder_id": "dana"})
        assert_invalid(r, ["body", "score"])
        assert await list_responses(tenant.client, stakeholder_id="dana") == []

    async def test_an_unknown_field_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post(
            "/v1/responses", json={"stakeholder_id": "dana", "score": 9, "scroe": 9}
        )
        assert_invalid(r, ["body", "scroe"])
        assert await list_responses(tenant.client, stakeholder_id="dana") == []

    async def test_an_unknown_stakeholder_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post("/v1/responses", json={"stakeholder_id": "ghost", "score": 9})
        assert_invalid(r, ["body", "stakeholder_id"])
        assert await list_responses(tenant.client) == []

    async def test_both_stakeholder_id_and_stakeholder_are_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post(
            "/v1/responses",
            json={
                "stakeholder_id": "dana",
                "stakeholder": {"id": "dana", "account_id": "acme"},
                "score": 9,
            },
        )
        assert_invalid(r, ["body"])
        assert await list_responses(tenant.client) == []

    async def test_neither_stakeholder_id_nor_stakeholder_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post("/v1/responses", json={"score": 9})
        assert_invalid(r, ["body"])
        assert await list_responses(tenant.client) == []

    async def test_an_inline_stakeholder_is_registered(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme", name="Acme")
        body = await _post(
            tenant.client,
            stakeholder_id=None,
            stakeholder={
                "id": "lee@acme.example",
                "account_id": "acme",
                "name": "Lee",
                "role": "influencer",
                "job_level": "manager",
                "department": "Finance",
            },
            score=7,
        )
        assert (body["stakeholder_id"], body["account_id"]) == ("lee@acme.example", "acme")
        assert (body["role"], body["job_level"], body["department"]) == (
            "influencer",
            "manager",
            "Finance",
        )
        r = await tenant.client.get("/v1/stakeholders/lee@acme.example")
        assert r.status_code == 200, r.text
        person = r.json()
        assert (person["account_id"], person["name"], person["role"]) == (
            "acme",
            "Lee",
            "influencer",
        )

    async def test_an_inline_stakeholder_with_an_inline_account_creates_both(
        self, tenant: Tenant
    ) -> None:
        body = await _post(
            tenant.client,
            stakeholder_id=None,
            stakeholder={
                "id": "kim",
                "account_id": "globex",
                "role": "user",
                "account": {"name": "Globex", "segment": "enterprise"},
            },
            score=8,
        )
        assert (body["stakeholder_id"], body["account_id"], body["role"]) == (
            "kim",
            "globex",
            "user",
        )
        r = await tenant.client.get("/v1/accounts/globex")
        assert r.status_code == 200, r.text
        assert (r.json()["name"], r.json()["segment"]) == ("Globex", "enterprise")
        r = await tenant.client.get("/v1/stakeholders/kim")
        assert r.status_code == 200, r.text
        assert r.json()["account_id"] == "globex"

    async def test_an_inline_stakeholder_of_an_unknown_account_stores_nothing(
        self, tenant: Tenant
    ) -> None:
        r = await tenant.client.post(
            "/v1/responses",
            json={"stakeholder": {"id": "kim", "account_id": "nowhere"}, "score": 8},
        )
        assert_invalid(r, ["body", "stakeholder", "account_id"])
        assert (await tenant.client.get("/v1/stakeholders/kim")).status_code == 404
        assert (await tenant.client.get("/v1/accounts/nowhere")).status_code == 404
        assert await list_responses(tenant.client) == []

    async def test_submitted_at_over_five_minutes_ahead_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        ahead = datetime.now(UTC) + timedelta(minutes=5, seconds=30)
        r = await tenant.client.post(
            "/v1/responses",
            json={"stakeholder_id": "dana", "score": 9, "submitted_at": ahead.isoformat()},
        )
        assert_invalid(r, ["body", "submitted_at"])
        assert await list_responses(tenant.client) == []

    async def test_submitted_at_four_minutes_ahead_is_accepted(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        ahead = (datetime.now(UTC) + timedelta(minutes=4)).replace(microsecond=0)
        body = await _post(tenant.client, score=9, submitted_at=ahead.isoformat())
        assert datetime.fromisoformat(body["submitted_at"]) == ahead

    async def test_a_timestamp_without_offset_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post(
            "/v1/responses",
            json={"stakeholder_id": "dana", "score": 9, "submitted_at": "2026-01-15T10:30:00"},
        )
        assert_invalid(r, ["body", "submitted_at"])
        assert await list_responses(tenant.client) == []

    async def test_an_offset_timestamp_is_returned_in_utc(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        body = await _post(tenant.client, score=9, submitted_at="2026-01-15T10:30:00+02:00")
        assert body["submitted_at"] == "2026-01-15T08:30:00Z"
        r = await tenant.client.get(f"/v1/responses/{body['id']}")
        assert r.json()["submitted_at"] == "2026-01-15T08:30:00Z"

    async def test_a_known_external_id_returns_the_stored_response(self, tenant: Tenant) -> None:
        # The same content again; other content is a 409 (test_corrections).
        await _setup(tenant.client)
        first = await _post(tenant.client, score=9, external_id="crm-7")
        r = await tenant.client.post(
            "/v1/responses",
            json={"stakeholder_id": "dana", "score": 9, "external_id": "crm-7"},
        )
        assert r.status_code == 200, r.text
        assert r.json() == first
        assert id_set(await list_responses(tenant.client, stakeholder_id="dana")) == {first["id"]}

    async def test_responses_without_external_id_are_all_stored(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        first = await _post(tenant.client, score=9)
        second = await _post(tenant.client, score=9)
        assert id_set(await list_responses(tenant.client)) == {first["id"], second["id"]}

    async def test_a_response_keeps_the_stakeholder_as_they_were(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        await put_account(tenant.client, "globex", name="Globex")
        old = await _post(tenant.client, score=9)
        await register(
            tenant.client,
            "dana",
            account_id="globex",
            role="user",
            job_level="manager",
            department="Procurement",
        )
        new = await _post(tenant.client, score=4)

        r = await tenant.client.get(f"/v1/responses/{old['id']}")
        assert r.status_code == 200, r.text
        stored = r.json()
        assert stored == old
        assert (
            stored["account_id"],
            stored["role"],
            stored["job_level"],
            stored["department"],
        ) == ("acme", "decision_maker", "executive", "Engineering")
        assert (new["account_id"], new["role"], new["job_level"], new["department"]) == (
            "globex",
            "user",
            "manager",
            "Procurement",
        )
        assert id_set(await list_responses(tenant.client, account_id="acme")) == {old["id"]}
        assert id_set(await list_responses(tenant.client, account_id="globex")) == {new["id"]}

    async def test_a_read_key_cannot_record(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        key = await tenant.make_key(Scope.READ)
        r = await tenant.client.post(
            "/v1/responses",
            json={"stakeholder_id": "dana", "score": 9},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 403, r.text
        assert await list_responses(tenant.client) == []


class TestInlineStakeholder:
    async def test_a_widget_naming_a_known_person_does_not_wipe_their_profile(
        self, tenant: Tenant
    ) -> None:
        await _setup(tenant.client)  # dana: decision_maker, executive, Engineering
        r = await tenant.client.post(
            "/v1/responses",
            json={"stakeholder": {"id": "dana", "account_id": "acme"}, "score": 3},
        )
        assert r.status_code == 201, r.text
        assert (r.json()["role"], r.json()["job_level"], r.json()["department"]) == (
            "decision_maker",
            "executive",
            "Engineering",
        )
        person = (await tenant.client.get("/v1/stakeholders/dana")).json()
        assert (person["role"], person["job_level"], person["department"]) == (
            "decision_maker",
            "executive",
            "Engineering",
        )

    async def test_fields_sent_inline_update_the_person(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post(
            "/v1/responses",
            json={
                "stakeholder": {"id": "dana", "account_id": "acme", "department": "Finance"},
                "score": 9,
            },
        )
        assert r.status_code == 201, r.text
        assert (r.json()["role"], r.json()["department"]) == ("decision_maker", "Finance")
        person = (await tenant.client.get("/v1/stakeholders/dana")).json()
        assert (person["role"], person["department"]) == ("decision_maker", "Finance")


class TestGetResponse:
    async def test_reads_a_stored_response(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = await _post(tenant.client, score=8, comment="fine")
        r = await tenant.client.get(f"/v1/responses/{created['id']}")
        assert r.status_code == 200, r.text
        assert r.json() == created

    async def test_an_unknown_id_is_not_found(self, tenant: Tenant) -> None:
        r = await tenant.client.get(f"/v1/responses/{uuid.uuid4()}")
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == PROBLEM_JSON
        assert r.json()["type"] == "/problems/not-found"

    async def test_a_non_uuid_is_refused(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/responses/not-a-uuid")
        assert_invalid(r, ["path", "response_id"])

    async def test_another_workspace_cannot_read_it(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        await _setup(tenant.client)
        created = await _post(tenant.client, score=8)
        other = await make_tenant("b")
        r = await other.client.get(f"/v1/responses/{created['id']}")
        assert r.status_code == 404, r.text


class TestListResponses:
    async def test_filters_by_account_stakeholder_and_role(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        await put_account(tenant.client, "globex", name="Globex")
        await register(tenant.client, "lee", role="user")
        await register(tenant.client, "kim", account_id="globex", role="user")
        dana = await _post(tenant.client, stakeholder_id="dana", score=9)
        lee = await _post(tenant.client, stakeholder_id="lee", score=5)
        kim = await _post(tenant.client, stakeholder_id="kim", score=7)

        assert id_set(await list_responses(tenant.client)) == {dana["id"], lee["id"], kim["id"]}
        assert id_set(await list_responses(tenant.client, account_id="acme")) == {
            dana["id"],
            lee["id"],
        }
        assert id_set(await list_responses(tenant.client, account_id="globex")) == {kim["id"]}
        assert id_set(await list_responses(tenant.client, stakeholder_id="lee")) == {lee["id"]}
        assert id_set(await list_responses(tenant.client, role="user")) == {lee["id"], kim["id"]}
        assert id_set(await list_responses(tenant.client, role="decision_maker")) == {dana["id"]}
        assert id_set(await list_responses(tenant.client, role="influencer")) == set()
        assert id_set(await list_responses(tenant.client, account_id="acme", role="user")) == {
            lee["id"]
        }

    async def test_filters_by_category_at_the_boundaries(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        by_score = {s: (await _post(tenant.client, score=s))["id"] for s in (0, 6, 7, 8, 9, 10)}

        def scores(rows: list[dict[str, Any]]) -> set[int]:
            assert {r["id"] for r in rows} == {by_score[r["score"]] for r in rows}
            return {r["score"] for r in rows}

        assert scores(await list_responses(tenant.client, category="promoter")) == {9, 10}
        assert scores(await list_responses(tenant.client, category="passive")) == {7, 8}
        assert scores(await list_responses(tenant.client, category="detractor")) == {0, 6}

    async def test_an_unknown_category_is_refused(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/responses", params={"category": "neutral"})
        assert_invalid(r, ["query", "category"])

    async def test_filters_by_window_from_inclusive_to_exclusive(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        jan1, jan2, jan3 = [
            (await _post(tenant.client, score=9, submitted_at=f"2026-01-0{d}T00:00:00Z"))["id"]
            for d in (1, 2, 3)
        ]
        start, end = "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"
        assert id_set(await list_responses(tenant.client, **{"from": start})) == {jan2, jan3}
        assert id_set(await list_responses(tenant.client, to=end)) == {jan1, jan2}
        assert id_set(await list_responses(tenant.client, **{"from": start, "to": end})) == {jan2}
        # The same instant written with an offset is the same boundary.
        assert id_set(
            await list_responses(tenant.client, **{"from": "2026-01-02T01:00:00+01:00"})
        ) == {
            jan2,
            jan3,
        }

    async def test_pages_with_a_cursor(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = {(await _post(tenant.client, score=s))["id"] for s in range(5)}
        seen: list[str] = []
        sizes: list[int] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2}
            if cursor is not None:
                params["cursor"] = cursor
            r = await tenant.client.get("/v1/responses", params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            sizes.append(len(page["data"]))
            seen.extend(row["id"] for row in page["data"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sizes == [2, 2, 1]
        assert len(seen) == len(set(seen))
        assert set(seen) == created

    async def test_a_forged_cursor_is_refused(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/responses", params={"cursor": "garbage"})
        assert_invalid(r, ["query", "cursor"])

    async def test_lists_only_the_callers_workspace(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        await _setup(tenant.client)
        await _post(tenant.client, score=9)
        other = await make_tenant("b")
        assert await list_responses(other.client) == []


class TestExcludeResponse:
    async def test_excluding_needs_a_reason_and_keeps_it(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = await _post(tenant.client, score=2)
        r = await tenant.client.patch(
            f"/v1/responses/{created['id']}", json={"excluded": True, "reason": "test entry"}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["excluded"], body["excluded_reason"]) == (True, "test entry")
        # Nothing else about the response changes.
        changing = ("excluded", "excluded_reason", "updated_at")
        assert {k: v for k, v in body.items() if k not in changing} == {
            k: v for k, v in created.items() if k not in changing
        }
        r = await tenant.client.get(f"/v1/responses/{created['id']}")
        assert (r.json()["excluded"], r.json()["excluded_reason"]) == (True, "test entry")

    @pytest.mark.parametrize(
        "patch",
        [
            {"excluded": True},
            {"excluded": True, "reason": None},
            {"excluded": True, "reason": "  "},
        ],
        ids=["missing", "null", "blank"],
    )
    async def test_excluding_without_a_reason_is_refused(
        self, tenant: Tenant, patch: dict[str, Any]
    ) -> None:
        await _setup(tenant.client)
        created = await _post(tenant.client, score=2)
        r = await tenant.client.patch(f"/v1/responses/{created['id']}", json=patch)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == PROBLEM_JSON
        r = await tenant.client.get(f"/v1/responses/{created['id']}")
        assert (r.json()["excluded"], r.json()["excluded_reason"]) == (False, None)

    async def test_a_non_boolean_excluded_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = await _post(tenant.client, score=2)
        r = await tenant.client.patch(
            f"/v1/responses/{created['id']}", json={"excluded": "true", "reason": "x"}
        )
        assert_invalid(r, ["body", "excluded"])

    async def test_including_again_clears_the_reason(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        created = await _post(tenant.client, score=2)
        url = f"/v1/responses/{created['id']}"
        r = await tenant.client.patch(url, json={"excluded": True, "reason": "test entry"})
        assert r.status_code == 200, r.text
        r = await tenant.client.patch(url, json={"excluded": False})
        assert r.status_code == 200, r.text
        assert (r.json()["excluded"], r.json()["excluded_reason"]) == (False, None)
        r = await tenant.client.get(url)
        assert (r.json()["excluded"], r.json()["excluded_reason"]) == (False, None)

    async def test_an_unknown_id_is_not_found(self, tenant: Tenant) -> None:
        r = await tenant.client.patch(
            f"/v1/responses/{uuid.uuid4()}", json={"excluded": True, "reason": "test entry"}
        )
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == PROBLEM_JSON

    async def test_an_excluded_response_does_not_count(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme", name="Acme")
        scores = {"ann": 10, "bob": 9, "cat": 3}
        ids: dict[str, str] = {}
        for person, score in scores.items():
            await register(tenant.client, person)
            ids[person] = (await _post(tenant.client, stakeholder_id=person, score=score))["id"]

        async def counted() -> tuple[int, int, int, float | None]:
            r = await tenant.client.get("/v1/nps", params={"account_id": "acme"})
            assert r.status_code == 200, r.text
            s = r.json()["score"]
            return s["n"], s["promoters"], s["detractors"], s["nps"]

        def expected(tally: Tally) -> tuple[int, int, int, float | None]:
            return tally.n, tally.promoters, tally.detractors, tally.nps

        everyone = Tally.from_scores(scores.values())
        without_cat = Tally.from_scores([scores["ann"], scores["bob"]])
        assert await counted() == expected(everyone)

        url = f"/v1/responses/{ids['cat']}"
        r = await tenant.client.patch(url, json={"excluded": True, "reason": "test entry"})
        assert r.status_code == 200, r.text
        assert await counted() == expected(without_cat)
        assert without_cat.n == everyone.n - 1

        r = await tenant.client.patch(url, json={"excluded": False})
        assert r.status_code == 200, r.text
        assert await counted() == expected(everyone)
