"""POST /v1/accounts/batch and POST /v1/stakeholders/batch: many PUTs in one call, item by item."""

from typing import Any

import httpx
import pytest

from app.models import Scope
from tests.support.api import get_json, put_account, put_stakeholder, without_stamps
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import REPLAYED, VALIDATION, assert_forbidden, assert_invalid, problem

ACCOUNTS = "/v1/accounts/batch"
STAKEHOLDERS = "/v1/stakeholders/batch"
ACME: dict[str, Any] = {
    "name": "Acme Corp",
    "industry": "technology",
    "segment": "enterprise",
    "annual_revenue": "1200000.00",
    "currency": "EUR",
    "attributes": {"tier": 1},
}
ACCOUNT_DEFAULTS: dict[str, Any] = {
    "name": None,
    "industry": None,
    "segment": None,
    "annual_revenue": None,
    "currency": None,
    "attributes": {},
}
STAKEHOLDER_DEFAULTS: dict[str, Any] = {
    "name": None,
    "email": None,
    "role": "other",
    "job_level": "other",
    "department": None,
    "attributes": {},
}


def _ok(index: int, status: int, row_id: str) -> dict[str, Any]:
    return {"index": index, "status": status, "id": row_id, "problem": None}


def _refused(result: dict[str, Any], index: int, locs: list[list[Any]]) -> list[str]:
    """One refused item with exactly these field locations; its messages."""
    assert (result["index"], result["status"], result["id"]) == (index, 422, None), result
    assert (result["problem"]["type"], result["problem"]["status"]) == (VALIDATION, 422)
    assert result["problem"]["detail"]
    assert [e["loc"] for e in result["problem"]["errors"]] == locs, result
    return [e["msg"] for e in result["problem"]["errors"]]


async def _account(client: httpx.AsyncClient, account_id: str) -> dict[str, Any]:
    return without_stamps(await get_json(client, f"/v1/accounts/{account_id}"))


async def _stakeholder(client: httpx.AsyncClient, stakeholder_id: str) -> dict[str, Any]:
    return without_stamps(await get_json(client, f"/v1/stakeholders/{stakeholder_id}"))


class TestAccountsBatch:
    async def test_all_new_is_200_and_each_is_stored_as_a_put_would_store_it(
        self, tenant: Tenant
    ) -> None:
        items = [{"id": "acme", **ACME}, {"id": "globex", "name": "Globex"}]

        r = await tenant.client.post(ACCOUNTS, json={"accounts": items})

        assert r.status_code == 200, r.text
        assert r.json() == {
            "created": 2,
            "replaced": 0,
            "failed": 0,
            "results": [_ok(0, 201, "acme"), _ok(1, 201, "globex")],
        }
        assert await _account(tenant.client, "acme") == {"id": "acme", **ACME}
        assert await _account(tenant.client, "globex") == {
            **ACCOUNT_DEFAULTS,
            "id": "globex",
            "name": "Globex",
        }

    async def test_a_known_id_is_replaced_whole_and_reported_200(self, tenant: Tenant) -> None:
        r = await tenant.client.put("/v1/accounts/acme", json=ACME)
        assert r.status_code == 201, r.text

        r = await tenant.client.post(
            ACCOUNTS, json={"accounts": [{"id": "acme", "name": "Acme Inc"}, {"id": "new"}]}
        )

        assert r.status_code == 200, r.text
        assert r.json() == {
            "created": 1,
            "replaced": 1,
            "failed": 0,
            "results": [_ok(0, 200, "acme"), _ok(1, 201, "new")],
        }
        # Replace semantics, as PUT: the fields left out are back to their defaults.
        assert await _account(tenant.client, "acme") == {
            **ACCOUNT_DEFAULTS,
            "id": "acme",
            "name": "Acme Inc",
        }

    async def test_bad_items_fail_alone_with_207(self, tenant: Tenant) -> None:
        items: list[Any] = [
            {"id": "good-0", "name": "Good"},
            {"id": "a b", "name": "Bad id"},
            {"name": "No id"},
            {"id": "bad-3", "annual_revenue": "-5"},
            {"id": "bad-4", "colour": "red"},
            "not an object",
            {"id": "bad-6", "name": "nul\x00"},
            {"id": "good-7"},
        ]

        r = await tenant.client.post(ACCOUNTS, json={"accounts": items})

        assert r.status_code == 207, r.text
        body = r.json()
        assert (body["created"], body["replaced"], body["failed"]) == (2, 0, 6)
        results = body["results"]
        assert results[0] == _ok(0, 201, "good-0")
        assert results[7] == _ok(7, 201, "good-7")
        at = ["body", "accounts"]
        _refused(results[1], 1, [[*at, 1, "id"]])
        _refused(results[2], 2, [[*at, 2, "id"]])
        _refused(results[3], 3, [[*at, 3, "annual_revenue"]])
        _refused(results[4], 4, [[*at, 4, "colour"]])
        _refused(results[5], 5, [[*at, 5]])
        _refused(results[6], 6, [[*at, 6]])
        page = await get_json(tenant.client, "/v1/accounts")
        assert sorted(row["id"] for row in page["data"]) == ["good-0", "good-7"]

    @pytest.mark.parametrize(
        "fields",
        [
            {"currency": "eur"},
            {"annual_revenue": "1.234"},
            {"name": ""},
            {"attributes": {str(i): i for i in range(101)}},
            {"segment": 5},
        ],
    )
    async def test_an_item_is_validated_as_the_put_body_is(
        self, tenant: Tenant, fields: dict[str, Any]
    ) -> None:
        put = assert_invalid(await tenant.client.put("/v1/accounts/acme", json=fields))

        r = await tenant.client.post(ACCOUNTS, json={"accounts": [{"id": "acme", **fields}]})

        assert r.status_code == 207, r.text
        [result] = r.json()["results"]
        locs = [["body", "accounts", 0, *e["loc"][1:]] for e in put["errors"]]
        assert _refused(result, 0, locs) == [e["msg"] for e in put["errors"]]
        problem(await tenant.client.get("/v1/accounts/acme"), 404)

    async def test_a_repeated_id_applies_in_order_and_the_last_wins(self, tenant: Tenant) -> None:
        items = [
            {"id": "acme", "name": "First", "industry": "retail"},
            {"id": "acme", "name": "Second"},
            {"id": "acme", "name": "Third", "segment": "smb"},
        ]

        r = await tenant.client.post(ACCOUNTS, json={"accounts": items})

        assert r.status_code == 200, r.text
        assert r.json() == {
            "created": 1,
            "replaced": 2,
            "failed": 0,
            "results": [_ok(0, 201, "acme"), _ok(1, 200, "acme"), _ok(2, 200, "acme")],
        }
        assert await _account(tenant.client, "acme") == {
            **ACCOUNT_DEFAULTS,
            "id": "acme",
            "name": "Third",
            "segment": "smb",
        }

    async def test_a_refused_repeat_leaves_the_earlier_item_stored(self, tenant: Tenant) -> None:
        items = [{"id": "acme", "name": "Good"}, {"id": "acme", "currency": "euro"}]

        r = await tenant.client.post(ACCOUNTS, json={"accounts": items})

        assert r.status_code == 207, r.text
        results = r.json()["results"]
        assert results[0] == _ok(0, 201, "acme")
        _refused(results[1], 1, [["body", "accounts", 1, "currency"]])
        assert (await _account(tenant.client, "acme"))["name"] == "Good"

    async def test_1000_items_are_accepted(self, tenant: Tenant) -> None:
        items = [{"id": f"a{i:04d}"} for i in range(1000)]

        r = await tenant.client.post(ACCOUNTS, json={"accounts": items})

        assert r.status_code == 200, r.text
        assert r.json()["created"] == 1000

    async def test_over_1000_items_is_413_and_nothing_is_stored(self, tenant: Tenant) -> None:
        items = [{"id": f"a{i:04d}"} for i in range(1001)]

        r = await tenant.client.post(ACCOUNTS, json={"accounts": items})

        assert problem(r, 413)["type"] == "/problems/payload-too-large"
        assert (await get_json(tenant.client, "/v1/accounts"))["data"] == []

    @pytest.mark.parametrize(
        "body", [{"accounts": {"id": "acme"}}, {}, {"accounts": [], "extra": 1}, [{"id": "x"}]]
    )
    async def test_a_body_that_is_not_a_batch_is_422(self, tenant: Tenant, body: Any) -> None:
        assert_invalid(await tenant.client.post(ACCOUNTS, json=body))

    async def test_a_retry_with_the_same_key_is_replayed_not_reapplied(
        self, tenant: Tenant
    ) -> None:
        body = {"accounts": [{"id": "acme", "name": "Acme"}, {"id": "a b"}]}
        headers = {"Idempotency-Key": "sync-1"}
        first = await tenant.client.post(ACCOUNTS, json=body, headers=headers)
        assert first.status_code == 207, first.text
        await put_account(tenant.client, "acme", name="Renamed", status=200)

        again = await tenant.client.post(ACCOUNTS, json=body, headers=headers)

        assert again.status_code == 207, again.text
        assert again.headers[REPLAYED] == "true"
        assert again.content == first.content
        assert (await _account(tenant.client, "acme"))["name"] == "Renamed"
        other = await tenant.client.post(ACCOUNTS, json={"accounts": []}, headers=headers)
        assert problem(other, 422)["type"] == "/problems/idempotency-key-reused"

    async def test_the_same_id_in_another_workspace_is_another_account(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")
        await put_account(other.client, "acme", name="Theirs")

        r = await tenant.client.post(ACCOUNTS, json={"accounts": [{"id": "acme", "name": "Ours"}]})

        assert r.json()["results"] == [_ok(0, 201, "acme")]
        assert (await _account(other.client, "acme"))["name"] == "Theirs"
        assert (await _account(tenant.client, "acme"))["name"] == "Ours"
        assert [a["id"] for a in (await get_json(other.client, "/v1/accounts"))["data"]] == ["acme"]

    async def test_a_read_key_is_403_and_nothing_is_stored(self, tenant: Tenant) -> None:
        key = await tenant.make_key(Scope.READ)

        r = await tenant.client.post(
            ACCOUNTS,
            json={"accounts": [{"id": "acme"}]},
            headers={"Authorization": f"Bearer {key}"},
        )

        assert_forbidden(r)
        problem(await tenant.client.get("/v1/accounts/acme"), 404)

    async def test_a_write_key_may_register(self, tenant: Tenant) -> None:
        key = await tenant.make_key(Scope.WRITE)

        r = await tenant.client.post(
            ACCOUNTS,
            json={"accounts": [{"id": "acme"}]},
            headers={"Authorization": f"Bearer {key}"},
        )

        assert r.status_code == 200, r.text


class TestStakeholdersBatch:
    async def test_all_stored_is_200_and_each_as_a_put_would_store_it(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")
        dana = {
            "account_id": "acme",
            "name": "Dana",
            "email": "dana@acme.example",
            "role": "decision_maker",
            "job_level": "executive",
            "department": "Engineering",
            "attributes": {"crm": 7},
        }
        items = [{"id": "dana@acme.example", **dana}, {"id": "lee", "account_id": "acme"}]

        r = await tenant.client.post(STAKEHOLDERS, json={"stakeholders": items})

        assert r.status_code == 200, r.text
        assert r.json() == {
            "created": 2,
            "replaced": 0,
            "failed": 0,
            "results": [_ok(0, 201, "dana@acme.example"), _ok(1, 201, "lee")],
        }
        assert await _stakeholder(tenant.client, "dana@acme.example") == {
            "id": "dana@acme.example",
            **dana,
        }
        assert await _stakeholder(tenant.client, "lee") == {
            **STAKEHOLDER_DEFAULTS,
            "id": "lee",
            "account_id": "acme",
        }

    async def test_a_known_person_is_replaced_whole_and_reported_200(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")
        await put_account(tenant.client, "globex")
        await put_stakeholder(tenant.client, "dana", role="decision_maker", department="IT")

        r = await tenant.client.post(
            STAKEHOLDERS,
            json={"stakeholders": [{"id": "dana", "account_id": "globex", "role": "user"}]},
        )

        assert r.json()["results"] == [_ok(0, 200, "dana")]
        assert await _stakeholder(tenant.client, "dana") == {
            **STAKEHOLDER_DEFAULTS,
            "id": "dana",
            "account_id": "globex",
            "role": "user",
        }

    async def test_an_unknown_account_fails_that_item_alone(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")
        items = [
            {"id": "dana", "account_id": "acme"},
            {"id": "lee", "account_id": "ghost"},
            {"id": "kim", "account_id": "acme", "role": "boss"},
        ]

        r = await tenant.client.post(STAKEHOLDERS, json={"stakeholders": items})

        assert r.status_code == 207, r.text
        body = r.json()
        assert (body["created"], body["replaced"], body["failed"]) == (1, 0, 2)
        assert body["results"][0] == _ok(0, 201, "dana")
        assert _refused(body["results"][1], 1, [["body", "stakeholders", 1, "account_id"]]) == [
            "unknown account"
        ]
        _refused(body["results"][2], 2, [["body", "stakeholders", 2, "role"]])
        problem(await tenant.client.get("/v1/stakeholders/lee"), 404)
        problem(await tenant.client.get("/v1/stakeholders/kim"), 404)

    async def test_an_unknown_account_reads_as_it_does_on_put(self, tenant: Tenant) -> None:
        put = problem(
            await tenant.client.put("/v1/stakeholders/lee", json={"account_id": "x"}), 422
        )

        r = await tenant.client.post(
            STAKEHOLDERS, json={"stakeholders": [{"id": "lee", "account_id": "x"}]}
        )

        [result] = r.json()["results"]
        assert result["problem"]["detail"] == put["detail"]
        assert result["problem"]["errors"] == [
            {"loc": ["body", "stakeholders", 0, "account_id"], "msg": "unknown account"}
        ]

    async def test_an_account_object_creates_a_missing_account_as_on_put(
        self, tenant: Tenant
    ) -> None:
        await put_account(tenant.client, "acme", name="Acme")
        items = [
            {"id": "dana", "account_id": "new", "account": {"name": "New Co"}},
            {"id": "lee", "account_id": "new", "account": {"name": "Ignored"}},
            {"id": "kim", "account_id": "acme", "account": {"name": "Not renamed"}},
        ]

        r = await tenant.client.post(STAKEHOLDERS, json={"stakeholders": items})

        assert r.status_code == 200, r.text
        assert (await _account(tenant.client, "new"))["name"] == "New Co"
        assert (await _account(tenant.client, "acme"))["name"] == "Acme"
        assert (await _stakeholder(tenant.client, "lee"))["account_id"] == "new"

    async def test_a_repeated_id_applies_in_order_and_the_last_that_succeeds_wins(
        self, tenant: Tenant
    ) -> None:
        await put_account(tenant.client, "acme")
        items = [
            {"id": "dana", "account_id": "acme", "role": "user"},
            {"id": "dana", "account_id": "acme", "role": "decision_maker", "department": "IT"},
            {"id": "dana", "account_id": "ghost", "role": "influencer"},
        ]

        r = await tenant.client.post(STAKEHOLDERS, json={"stakeholders": items})

        assert r.status_code == 207, r.text
        results = r.json()["results"]
        assert results[:2] == [_ok(0, 201, "dana"), _ok(1, 200, "dana")]
        _refused(results[2], 2, [["body", "stakeholders", 2, "account_id"]])
        stored = await _stakeholder(tenant.client, "dana")
        assert (stored["role"], stored["department"]) == ("decision_maker", "IT")

    async def test_over_1000_items_is_413_and_nothing_is_stored(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")
        items = [{"id": f"p{i:04d}", "account_id": "acme"} for i in range(1001)]

        r = await tenant.client.post(STAKEHOLDERS, json={"stakeholders": items})

        assert problem(r, 413)["type"] == "/problems/payload-too-large"
        assert (await get_json(tenant.client, "/v1/stakeholders"))["data"] == []

    async def test_a_retry_with_the_same_key_is_replayed_not_reapplied(
        self, tenant: Tenant
    ) -> None:
        await put_account(tenant.client, "acme")
        body = {"stakeholders": [{"id": "dana", "account_id": "acme", "role": "user"}]}
        headers = {"Idempotency-Key": "sync-2"}
        first = await tenant.client.post(STAKEHOLDERS, json=body, headers=headers)
        assert first.status_code == 200, first.text
        await put_stakeholder(tenant.client, "dana", role="influencer", status=200)

        again = await tenant.client.post(STAKEHOLDERS, json=body, headers=headers)

        assert (again.status_code, again.headers[REPLAYED]) == (200, "true")
        assert again.content == first.content
        assert (await _stakeholder(tenant.client, "dana"))["role"] == "influencer"

    async def test_another_workspaces_account_and_people_are_out_of_reach(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")
        await put_account(other.client, "theirs")
        await put_stakeholder(other.client, "dana", "theirs", role="decision_maker")
        await put_account(tenant.client, "ours")
        items = [
            {"id": "lee", "account_id": "theirs"},
            {"id": "dana", "account_id": "ours", "role": "user"},
        ]

        r = await tenant.client.post(STAKEHOLDERS, json={"stakeholders": items})

        results = r.json()["results"]
        _refused(results[0], 0, [["body", "stakeholders", 0, "account_id"]])
        assert results[1] == _ok(1, 201, "dana")
        theirs = await _stakeholder(other.client, "dana")
        assert (theirs["account_id"], theirs["role"]) == ("theirs", "decision_maker")
        assert [s["id"] for s in (await get_json(other.client, "/v1/stakeholders"))["data"]] == [
            "dana"
        ]

    async def test_a_read_key_is_403(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")
        key = await tenant.make_key(Scope.READ)

        r = await tenant.client.post(
            STAKEHOLDERS,
            json={"stakeholders": [{"id": "dana", "account_id": "acme"}]},
            headers={"Authorization": f"Bearer {key}"},
        )

        assert_forbidden(r)
        problem(await tenant.client.get("/v1/stakeholders/dana"), 404)
