"""POST /v1/responses/batch: many responses in one call, reported item by item."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.api import count_responses, id_set, list_responses, put_account, put_stakeholder
from tests.support.harness import Tenant
from tests.support.problems import PROBLEM_JSON, VALIDATION, assert_refused_item

BATCH = "/v1/responses/batch"


async def _setup(client: httpx.AsyncClient, *stakeholders: str) -> None:
    await put_account(client, "acme", name="Acme")
    for stakeholder_id in stakeholders or ("dana",):
        await put_stakeholder(client, stakeholder_id, role="decision_maker", department="IT")


def _stored(index: int, response_id: str) -> dict[str, Any]:
    return {"index": index, "status": 201, "id": response_id, "duplicate": False, "problem": None}


def _duplicate(index: int, response_id: str) -> dict[str, Any]:
    return {"index": index, "status": 200, "id": response_id, "duplicate": True, "problem": None}


class TestRecordBatch:
    async def test_all_stored_is_200_with_every_id(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        items = [
            {"stakeholder_id": "dana", "score": s, "submitted_at": f"2026-02-0{i + 1}T09:00:00Z"}
            for i, s in enumerate([10, 7, 2])
        ]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 200, r.text
        body = r.json()
        ids = [result["id"] for result in body["results"]]
        assert body == {
            "stored": 3,
            "duplicates": 0,
            "failed": 0,
            "results": [_stored(i, ids[i]) for i in range(3)],
        }
        assert len({uuid.UUID(i) for i in ids}) == 3
        for response_id, item in zip(ids, items, strict=True):
            stored = (await tenant.client.get(f"/v1/responses/{response_id}")).json()
            assert (stored["score"], stored["submitted_at"]) == (
                item["score"],
                item["submitted_at"],
            )
            assert (stored["account_id"], stored["role"], stored["department"]) == (
                "acme",
                "decision_maker",
                "IT",
            )
        assert await count_responses(tenant.client) == 3

    async def test_mixed_items_are_207_and_only_good_ones_stored(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        future = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
        items: list[Any] = [
            {"stakeholder_id": "dana", "score": 9, "external_id": "good-0"},
            {"stakeholder_id": "dana", "score": 6.5},
            {"stakeholder_id": "ghost", "score": 5},
            {"stakeholder_id": "dana", "score": 5, "submitted_at": future},
            {"stakeholder_id": "dana"},
            {"stakeholder_id": "dana", "score": True},
            {"stakeholder_id": "dana", "score": 0, "external_id": "good-6"},
            {"stakeholder_id": "dana", "score": 9, "submitted_at": "2026-01-15T10:30:00"},
            "not an object",
        ]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 207, r.text
        body = r.json()
        assert (body["stored"], body["duplicates"], body["failed"]) == (2, 0, 7)
        results = body["results"]
        assert [result["index"] for result in results] == list(range(len(items)))
        assert results[0] == _stored(0, results[0]["id"])
        assert results[6] == _stored(6, results[6]["id"])
        prefix: list[Any] = ["body", "responses"]
        assert_refused_item(results[1], 1, [[*prefix, 1, "score"]])
        assert_refused_item(results[2], 2, [[*prefix, 2, "stakeholder_id"]])
        assert_refused_item(results[3], 3, [[*prefix, 3, "submitted_at"]])
        assert_refused_item(results[4], 4, [[*prefix, 4, "score"]])
        assert_refused_item(results[5], 5, [[*prefix, 5, "score"]])
        assert_refused_item(results[7], 7, [[*prefix, 7, "submitted_at"]])
        assert_refused_item(results[8], 8, [[*prefix, 8]])

        rows = await list_responses(tenant.client)
        assert {(row["id"], row["external_id"], row["score"]) for row in rows} == {
            (results[0]["id"], "good-0", 9),
            (results[6]["id"], "good-6", 0),
        }

    async def test_nothing_valid_is_207_and_nothing_stored(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post(
            BATCH, json={"responses": [{"stakeholder_id": "dana", "score": 11}]}
        )
        assert r.status_code == 207, r.text
        assert (r.json()["stored"], r.json()["failed"]) == (0, 1)
        assert_refused_item(r.json()["results"][0], 0, [["body", "responses", 0, "score"]])
        assert await count_responses(tenant.client) == 0

    async def test_an_empty_batch_stores_nothing(self, tenant: Tenant) -> None:
        r = await tenant.client.post(BATCH, json={"responses": []})
        assert r.status_code == 200, r.text
        assert r.json() == {"stored": 0, "duplicates": 0, "failed": 0, "results": []}

    async def test_a_thousand_items_are_accepted(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        items = [{"stakeholder_id": "dana", "score": i % 11} for i in range(1000)]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 200, r.text
        assert (r.json()["stored"], r.json()["failed"]) == (1000, 0)
        assert await count_responses(tenant.client) == 1000

    async def test_over_a_thousand_items_is_413_and_nothing_stored(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        items = [{"stakeholder_id": "dana", "score": 9} for _ in range(1001)]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == PROBLEM_JSON
        assert (r.json()["type"], r.json()["status"]) == ("/problems/payload-too-large", 413)
        assert await count_responses(tenant.client) == 0

    async def test_a_body_over_two_megabytes_is_413_and_nothing_stored(
        self, tenant: Tenant
    ) -> None:
        await _setup(tenant.client)
        # 900 items, each valid on its own (comments may hold 10,000 characters): only size fails.
        items = [{"stakeholder_id": "dana", "score": 9, "comment": "x" * 2400}] * 900
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert len(r.request.content) > 2 * 1024 * 1024
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == PROBLEM_JSON
        assert (r.json()["type"], r.json()["status"]) == ("/problems/payload-too-large", 413)
        assert await count_responses(tenant.client) == 0

    async def test_a_streamed_body_over_two_megabytes_is_413(self, tenant: Tenant) -> None:
        # Chunked, with no Content-Length to refuse up front: the limit counts what arrives.
        await _setup(tenant.client)
        items = [{"stakeholder_id": "dana", "score": 9, "comment": "x" * 2400}] * 900
        data = json.dumps({"responses": items}).encode()

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), 64 * 1024):
                yield data[start : start + 64 * 1024]

        r = await tenant.client.post(
            BATCH, content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in r.request.headers
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == PROBLEM_JSON
        assert (r.json()["type"], r.json()["status"]) == ("/problems/payload-too-large", 413)
        assert await count_responses(tenant.client) == 0

    async def test_one_huge_comment_is_413_and_nothing_stored(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        items = [
            {"stakeholder_id": "dana", "score": 9},
            {"stakeholder_id": "dana", "score": 9, "comment": "x" * (2_100_000)},
        ]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == PROBLEM_JSON
        assert await count_responses(tenant.client) == 0

    async def test_a_repeated_external_id_in_one_batch_is_stored_once(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        items = [
            {"stakeholder_id": "dana", "score": 9, "external_id": "e-1"},
            {"stakeholder_id": "dana", "score": 8, "external_id": "e-2"},
            {"stakeholder_id": "dana", "score": 9, "external_id": "e-1"},
        ]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 200, r.text
        body = r.json()
        first, second = body["results"][0]["id"], body["results"][1]["id"]
        assert body == {
            "stored": 2,
            "duplicates": 1,
            "failed": 0,
            "results": [_stored(0, first), _stored(1, second), _duplicate(2, first)],
        }
        rows = await list_responses(tenant.client)
        assert {(row["external_id"], row["score"]) for row in rows} == {("e-1", 9), ("e-2", 8)}

    async def test_an_external_id_stored_before_is_a_duplicate(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post(
            "/v1/responses", json={"stakeholder_id": "dana", "score": 9, "external_id": "e-1"}
        )
        assert r.status_code == 201, r.text
        earlier = r.json()["id"]
        items = [
            {"stakeholder_id": "dana", "score": 9, "external_id": "e-1"},
            {"stakeholder_id": "dana", "score": 5, "external_id": "e-2"},
            {"stakeholder_id": "dana", "score": 9, "external_id": "e-1"},
        ]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 200, r.text
        body = r.json()
        new = body["results"][1]["id"]
        assert body == {
            "stored": 1,
            "duplicates": 2,
            "failed": 0,
            "results": [_duplicate(0, earlier), _stored(1, new), _duplicate(2, earlier)],
        }
        rows = await list_responses(tenant.client)
        assert {(row["id"], row["score"]) for row in rows} == {(earlier, 9), (new, 5)}

    async def test_replaying_a_batch_stores_nothing_new(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        items = [
            {"stakeholder_id": "dana", "score": s, "external_id": f"e-{i}"}
            for i, s in enumerate([9, 7, 1, 10])
        ]
        first = await tenant.client.post(BATCH, json={"responses": items})
        assert first.status_code == 200, first.text
        ids = [result["id"] for result in first.json()["results"]]
        again = await tenant.client.post(BATCH, json={"responses": items})
        assert again.status_code == 200, again.text
        assert again.json() == {
            "stored": 0,
            "duplicates": 4,
            "failed": 0,
            "results": [_duplicate(i, ids[i]) for i in range(4)],
        }
        assert "Idempotent-Replayed" not in again.headers
        assert id_set(await list_responses(tenant.client)) == set(ids)

    async def test_inline_stakeholders_are_registered(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        items = [
            {
                "stakeholder": {"id": "lee", "account_id": "acme", "role": "influencer"},
                "score": 8,
            },
            {
                "stakeholder": {
                    "id": "kim",
                    "account_id": "globex",
                    "role": "user",
                    "department": "Finance",
                    "account": {"name": "Globex"},
                },
                "score": 3,
            },
            {"stakeholder": {"id": "max", "account_id": "nowhere"}, "score": 9},
            {"stakeholder_id": "dana", "score": 10},
        ]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 207, r.text
        body = r.json()
        results = body["results"]
        assert (body["stored"], body["failed"]) == (3, 1)
        assert results[0] == _stored(0, results[0]["id"])
        assert results[1] == _stored(1, results[1]["id"])
        assert_refused_item(results[2], 2, [["body", "responses", 2, "stakeholder", "account_id"]])
        assert results[3] == _stored(3, results[3]["id"])

        lee = (await tenant.client.get(f"/v1/responses/{results[0]['id']}")).json()
        assert (lee["stakeholder_id"], lee["account_id"], lee["role"]) == (
            "lee",
            "acme",
            "influencer",
        )
        kim = (await tenant.client.get(f"/v1/responses/{results[1]['id']}")).json()
        assert (kim["stakeholder_id"], kim["account_id"], kim["department"]) == (
            "kim",
            "globex",
            "Finance",
        )
        assert (await tenant.client.get("/v1/stakeholders/lee")).status_code == 200
        assert (await tenant.client.get("/v1/stakeholders/kim")).status_code == 200
        assert (await tenant.client.get("/v1/accounts/globex")).json()["name"] == "Globex"
        assert (await tenant.client.get("/v1/stakeholders/max")).status_code == 404
        assert (await tenant.client.get("/v1/accounts/nowhere")).status_code == 404
        assert await count_responses(tenant.client) == 3

    async def test_each_item_keeps_the_stakeholder_it_described(self, tenant: Tenant) -> None:
        # The same person twice, moved to another account and role in between: as two single
        # POSTs would, each response keeps the stakeholder as its own item described them.
        await _setup(tenant.client)
        items = [
            {
                "stakeholder": {"id": "lee", "account_id": "acme", "role": "user"},
                "score": 8,
            },
            {
                "stakeholder": {
                    "id": "lee",
                    "account_id": "globex",
                    "role": "decision_maker",
                    "account": {"name": "Globex"},
                },
                "score": 3,
            },
        ]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 200, r.text
        seen = []
        for result in r.json()["results"]:
            stored = (await tenant.client.get(f"/v1/responses/{result['id']}")).json()
            seen.append((stored["score"], stored["account_id"], stored["role"]))
        assert seen == [(8, "acme", "user"), (3, "globex", "decision_maker")]
        person = (await tenant.client.get("/v1/stakeholders/lee")).json()
        assert (person["account_id"], person["role"]) == ("globex", "decision_maker")

    @pytest.mark.parametrize(
        ("payload", "loc"),
        [
            ([{"stakeholder_id": "dana", "score": 9}], ["body"]),
            ({"responses": {"stakeholder_id": "dana", "score": 9}}, ["body", "responses"]),
            ({"responses": "many"}, ["body", "responses"]),
            ({}, ["body", "responses"]),
        ],
        ids=["array", "responses-object", "responses-string", "no-responses"],
    )
    async def test_a_malformed_batch_is_refused(
        self, tenant: Tenant, payload: Any, loc: list[str]
    ) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post(BATCH, json=payload)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == PROBLEM_JSON
        assert r.json()["type"] == VALIDATION
        assert [e["loc"] for e in r.json()["errors"]] == [loc]
        assert await count_responses(tenant.client) == 0


class TestInlineStakeholders:
    """A person described inside a response: created when new, amended (never wiped) when known."""

    async def test_a_known_person_keeps_what_the_item_does_not_say(self, tenant: Tenant) -> None:
        await _setup(tenant.client, "dana")  # decision_maker in IT
        items = [
            {"stakeholder": {"id": "dana", "account_id": "acme"}, "score": 3},
            {
                "stakeholder": {"id": "dana", "account_id": "acme", "job_level": "executive"},
                "score": 9,
            },
        ]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 200, r.text
        seen = []
        for result in r.json()["results"]:
            stored = (await tenant.client.get(f"/v1/responses/{result['id']}")).json()
            seen.append((stored["role"], stored["job_level"], stored["department"]))
        assert seen == [("decision_maker", "other", "IT"), ("decision_maker", "executive", "IT")]
        person = (await tenant.client.get("/v1/stakeholders/dana")).json()
        assert (person["role"], person["job_level"], person["department"]) == (
            "decision_maker",
            "executive",
            "IT",
        )

    async def test_a_new_person_gets_defaults_for_what_is_not_said(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        items = [{"stakeholder": {"id": "new", "account_id": "acme"}, "score": 7}]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 200, r.text
        person = (await tenant.client.get("/v1/stakeholders/new")).json()
        assert (person["role"], person["job_level"], person["department"]) == (
            "other",
            "other",
            None,
        )

    async def test_an_item_naming_an_unknown_account_fails_alone(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        items = [
            {"stakeholder": {"id": "a", "account_id": "nowhere"}, "score": 7},
            {"stakeholder": {"id": "b", "account_id": "acme"}, "score": 8},
        ]
        r = await tenant.client.post(BATCH, json={"responses": items})
        assert r.status_code == 207, r.text
        first, second = r.json()["results"]
        assert first["status"] == 422
        assert first["problem"]["errors"] == [
            {"loc": ["body", "responses", 0, "stakeholder", "account_id"], "msg": "unknown account"}
        ]
        assert second["status"] == 201
        assert (await tenant.client.get("/v1/stakeholders/a")).status_code == 404


class TestConcurrentInlineBatches:
    async def test_batches_naming_the_same_people_in_opposite_orders_both_land(
        self, committed: Tenant
    ) -> None:
        client = committed.client
        await _setup(client)
        people = [f"p{i:03d}" for i in range(150)]

        def batch(order: list[str]) -> dict[str, Any]:
            return {
                "responses": [
                    {"stakeholder": {"id": p, "account_id": "acme", "role": "user"}, "score": 8}
                    for p in order
                ]
            }

        replies = await asyncio.gather(
            client.post(BATCH, json=batch(people)),
            client.post(BATCH, json=batch(people[::-1])),
        )
        assert [r.status_code for r in replies] == [200, 200], [r.text[:300] for r in replies]
        assert await count_responses(client) == 300
