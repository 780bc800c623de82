"""Accounts: PUT (create or replace), GET one, list with paging and filters, DELETE with cascade."""

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import session_scope
from tests.support.api import ids, put_stakeholder, respond, without_stamps
from tests.support.harness import Tenant
from tests.support.problems import error_locs, problem

ACME: dict[str, Any] = {
    "name": "Acme Corp",
    "industry": "technology",
    "segment": "enterprise",
    "annual_revenue": "1200000.00",
    "currency": "EUR",
    "attributes": {"tier": "gold", "owner": {"name": "Kim", "team": ["emea"]}},
}
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
EMPTY: dict[str, Any] = {
    "name": None,
    "industry": None,
    "segment": None,
    "annual_revenue": None,
    "currency": None,
    "attributes": {},
}


async def backdate(
    sessionmaker: async_sessionmaker[AsyncSession],
    workspace_id: uuid.UUID,
    account_id: str,
    at: datetime,
) -> None:
    """Every request of a test shares one transaction, so now() is one instant: move a row back."""
    async with session_scope(sessionmaker) as session:
        await session.execute(
            text(
                "UPDATE accounts SET created_at = :at, updated_at = :at "
                "WHERE workspace_id = :w AND id = :id"
            ),
            {"at": at, "w": workspace_id, "id": account_id},
        )


async def record_response(client: httpx.AsyncClient, account_id: str, person: str) -> str:
    await put_stakeholder(client, person, account_id, status=(200, 201))
    return await respond(client, person, 9)


class TestPutAccount:
    async def test_new_id_is_created_with_201(self, tenant: Tenant) -> None:
        r = await tenant.client.put("/v1/accounts/acme", json=ACME)
        assert r.status_code == 201, r.text
        assert r.headers["content-type"] == "application/json"
        assert without_stamps(r.json()) == {"id": "acme", **ACME}

        r = await tenant.client.get("/v1/accounts/acme")
        assert r.status_code == 200
        assert without_stamps(r.json()) == {"id": "acme", **ACME}

    async def test_known_id_is_replaced_with_200(self, tenant: Tenant) -> None:
        assert (await tenant.client.put("/v1/accounts/acme", json=ACME)).status_code == 201

        r = await tenant.client.put("/v1/accounts/acme", json={"name": "Acme Inc"})
        assert r.status_code == 200, r.text
        # PUT replaces: every field the body leaves out is reset, not kept from before.
        assert without_stamps(r.json()) == {"id": "acme", **EMPTY, "name": "Acme Inc"}
        r = await tenant.client.get("/v1/accounts/acme")
        assert without_stamps(r.json()) == {"id": "acme", **EMPTY, "name": "Acme Inc"}

    async def test_replace_moves_updated_at_and_keeps_created_at(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        assert (await tenant.client.put("/v1/accounts/acme", json=ACME)).status_code == 201
        await backdate(sessionmaker, tenant.id, "acme", LONG_AGO)

        r = await tenant.client.put("/v1/accounts/acme", json=ACME)
        assert r.status_code == 200
        body = r.json()
        assert datetime.fromisoformat(body["created_at"]) == LONG_AGO
        assert datetime.fromisoformat(body["updated_at"]) > datetime(2024, 1, 1, tzinfo=UTC)

    async def test_empty_body_creates_a_bare_account(self, tenant: Tenant) -> None:
        r = await tenant.client.put("/v1/accounts/bare", json={})
        assert r.status_code == 201, r.text
        assert without_stamps(r.json()) == {"id": "bare", **EMPTY}

    async def test_every_character_of_the_id_alphabet_is_accepted(self, tenant: Tenant) -> None:
        edge_ids = ["CRM:0001.a_b@x-y", "x" * 128, "0"]
        for account_id in edge_ids:
            r = await tenant.client.put(f"/v1/accounts/{account_id}", json={"name": "Edge"})
            assert r.status_code == 201, (account_id, r.text)
            assert r.json()["id"] == account_id
            r = await tenant.client.get(f"/v1/accounts/{account_id}")
            assert r.status_code == 200, account_id
            assert r.json()["id"] == account_id

    async def test_invalid_id_is_422(self, tenant: Tenant) -> None:
        for account_id in ["a b", "x" * 129, "é", "a'b", "a,b", "a+b"]:
            r = await tenant.client.put(f"/v1/accounts/{account_id}", json={"name": "Bad"})
            body = problem(r, 422)
            assert body["type"] == "/problems/validation-error"
            assert body["title"] == "Request validation failed"
            assert error_locs(body) == [["path", "account_id"]], account_id
        assert ids(await tenant.client.get("/v1/accounts")) == []

    async def test_an_id_another_endpoint_shadows_is_refused_everywhere(
        self, tenant: Tenant
    ) -> None:
        # GET /v1/accounts/at-risk is the at-risk list: such an account could never be read back.
        r = await tenant.client.put("/v1/accounts/at-risk", json={"name": "Shadowed"})
        assert error_locs(problem(r, 422)) == [["path", "account_id"]]
        r = await tenant.client.post("/v1/accounts/batch", json={"accounts": [{"id": "at-risk"}]})
        assert r.status_code == 207
        assert r.json()["results"][0]["status"] == 422
        r = await tenant.client.put(
            "/v1/stakeholders/kim",
            json={"account_id": "at-risk", "account": {"name": "Shadowed"}},
        )
        assert error_locs(problem(r, 422)) == [["body", "account_id"]]
        assert ids(await tenant.client.get("/v1/accounts")) == []

    async def test_invalid_field_is_422_naming_it(self, tenant: Tenant) -> None:
        cases: list[tuple[str, object]] = [
            ("annual_revenue", -1),
            ("annual_revenue", "-0.01"),
            ("annual_revenue", "12.345"),
            ("annual_revenue", "lots"),
            ("currency", "eur"),
            ("currency", "EURO"),
            ("name", ""),
            ("segment", "s" * 101),
            ("attributes", ["not", "an", "object"]),
            ("nmae", "typo of name"),
        ]
        for field, value in cases:
            r = await tenant.client.put("/v1/accounts/acme", json={**ACME, field: value})
            body = problem(r, 422)
            assert body["type"] == "/problems/validation-error"
            assert error_locs(body) == [["body", field]], (field, value)
        problem(await tenant.client.get("/v1/accounts/acme"), 404)

    async def test_revenue_is_answered_as_a_string_with_two_decimals(self, tenant: Tenant) -> None:
        for given, answered in [("1200000.5", "1200000.50"), ("7", "7.00"), ("0.05", "0.05")]:
            r = await tenant.client.put("/v1/accounts/acme", json={"annual_revenue": given})
            assert r.status_code in (200, 201), r.text
            assert r.json()["annual_revenue"] == answered, given
            r = await tenant.client.get("/v1/accounts/acme")
            assert r.json()["annual_revenue"] == answered, given

    async def test_a_json_number_for_revenue_is_still_accepted(self, tenant: Tenant) -> None:
        # Deprecated, kept so that v1 clients which send numbers keep working.
        for given, answered in [(1200000, "1200000.00"), (99.5, "99.50"), (0.1, "0.10")]:
            r = await tenant.client.put("/v1/accounts/acme", json={"annual_revenue": given})
            assert r.status_code in (200, 201), r.text
            assert r.json()["annual_revenue"] == answered, given

    async def test_revenue_that_is_not_plainly_money_is_422(self, tenant: Tenant) -> None:
        for value in [
            True,
            "1e3",
            " 12",
            "12.",
            ".5",
            "+5",
            "1" + "0" * 18,  # 19 digits: over NUMERIC(20, 2)
            1e19,
            1e30,  # too large to round to cents: a 422, not a 500
            0.1 + 0.2,  # 0.30000000000000004: not an amount in cents
            {"amount": "5"},
        ]:
            r = await tenant.client.put("/v1/accounts/acme", json={"annual_revenue": value})
            body = problem(r, 422)
            assert error_locs(body) == [["body", "annual_revenue"]], value
        problem(await tenant.client.get("/v1/accounts/acme"), 404)

    async def test_invalid_field_leaves_the_stored_account_unchanged(self, tenant: Tenant) -> None:
        stored = (await tenant.client.put("/v1/accounts/acme", json=ACME)).json()
        r = await tenant.client.put("/v1/accounts/acme", json={**ACME, "currency": "eur"})
        problem(r, 422)
        assert (await tenant.client.get("/v1/accounts/acme")).json() == stored

    async def test_text_postgresql_cannot_hold_is_422_not_503(self, tenant: Tenant) -> None:
        for fields in [{"name": "Ac\u0000me"}, {"attributes": {"note": "nul \u0000 inside"}}]:
            r = await tenant.client.put("/v1/accounts/acme", json=fields)
            body = problem(r, 422)
            assert body["type"] == "/problems/validation-error"
            assert "retry-after" not in r.headers
        problem(await tenant.client.get("/v1/accounts/acme"), 404)

    async def test_body_that_is_not_json_is_422(self, tenant: Tenant) -> None:
        r = await tenant.client.put(
            "/v1/accounts/acme", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert problem(r, 422)["type"] == "/problems/validation-error"


class TestGetAccount:
    async def test_unknown_id_is_404_problem(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/accounts/nobody")
        assert problem(r, 404) == {
            "type": "/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "account 'nobody' does not exist",
        }

    async def test_invalid_id_is_422(self, tenant: Tenant) -> None:
        body = problem(await tenant.client.get("/v1/accounts/a b"), 422)
        assert error_locs(body) == [["path", "account_id"]]


class TestListAccounts:
    async def test_empty_workspace_lists_nothing(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/accounts")
        assert r.status_code == 200
        assert r.json() == {"data": [], "next_cursor": None}

    async def test_pages_follow_the_cursor_to_the_end(self, tenant: Tenant) -> None:
        names = ["acc-1", "acc-2", "acc-3", "acc-4", "acc-5"]
        for account_id in names:
            r = await tenant.client.put(f"/v1/accounts/{account_id}", json={"name": account_id})
            assert r.status_code == 201

        first = await tenant.client.get("/v1/accounts", params={"limit": 2})
        assert ids(first) == ["acc-1", "acc-2"]
        assert first.json()["data"][0] == (await tenant.client.get("/v1/accounts/acc-1")).json()
        cursor = first.json()["next_cursor"]
        assert isinstance(cursor, str)

        second = await tenant.client.get("/v1/accounts", params={"limit": 2, "cursor": cursor})
        assert ids(second) == ["acc-3", "acc-4"]
        cursor = second.json()["next_cursor"]
        assert isinstance(cursor, str)

        third = await tenant.client.get("/v1/accounts", params={"limit": 2, "cursor": cursor})
        assert ids(third) == ["acc-5"]
        assert third.json()["next_cursor"] is None

    async def test_a_full_last_page_has_no_cursor(self, tenant: Tenant) -> None:
        for account_id in ("a1", "a2"):
            await tenant.client.put(f"/v1/accounts/{account_id}", json={})
        r = await tenant.client.get("/v1/accounts", params={"limit": 2})
        assert r.json()["next_cursor"] is None
        assert ids(r) == ["a1", "a2"]

    async def test_default_page_is_50(self, tenant: Tenant) -> None:
        for i in range(51):
            await tenant.client.put(f"/v1/accounts/acc-{i:02d}", json={})
        r = await tenant.client.get("/v1/accounts")
        assert ids(r) == [f"acc-{i:02d}" for i in range(50)]
        r = await tenant.client.get("/v1/accounts", params={"cursor": r.json()["next_cursor"]})
        assert ids(r) == ["acc-50"]

    async def test_updated_since_keeps_rows_changed_at_or_after_it(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        for account_id in ("new", "old"):
            await tenant.client.put(f"/v1/accounts/{account_id}", json={})
        await backdate(sessionmaker, tenant.id, "old", LONG_AGO)

        since = {"updated_since": "2021-06-01T00:00:00Z"}
        assert ids(await tenant.client.get("/v1/accounts", params=since)) == ["new"]
        at = {"updated_since": "2020-01-01T00:00:00Z"}  # inclusive
        assert ids(await tenant.client.get("/v1/accounts", params=at)) == ["old", "new"]
        offset = {"updated_since": "2020-01-01T01:00:00+01:00"}  # the same instant
        assert ids(await tenant.client.get("/v1/accounts", params=offset)) == ["old", "new"]
        after = {"updated_since": "2020-01-01T00:00:00.000001Z"}
        assert ids(await tenant.client.get("/v1/accounts", params=after)) == ["new"]

    async def test_a_replaced_account_shows_up_again_for_updated_since(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await tenant.client.put("/v1/accounts/acme", json={})
        await backdate(sessionmaker, tenant.id, "acme", LONG_AGO)
        since = {"updated_since": "2021-06-01T00:00:00Z"}
        assert ids(await tenant.client.get("/v1/accounts", params=since)) == []

        await tenant.client.put("/v1/accounts/acme", json={"name": "Acme"})
        assert ids(await tenant.client.get("/v1/accounts", params=since)) == ["acme"]

    async def test_segment_and_industry_filters(self, tenant: Tenant) -> None:
        rows = {
            "a": {"segment": "enterprise", "industry": "technology"},
            "b": {"segment": "smb", "industry": "technology"},
            "c": {"segment": "enterprise", "industry": "finance"},
            "d": {},
        }
        for account_id, fields in rows.items():
            assert (await tenant.client.put(f"/v1/accounts/{account_id}", json=fields)).is_success
        cases: list[tuple[dict[str, str], list[str]]] = [
            ({"segment": "enterprise"}, ["a", "c"]),
            ({"industry": "technology"}, ["a", "b"]),
            ({"segment": "enterprise", "industry": "technology"}, ["a"]),
            ({"segment": "Enterprise"}, []),
            ({"industry": "retail"}, []),
        ]
        for params, expected in cases:
            r = await tenant.client.get("/v1/accounts", params=params)
            assert ids(r) == expected, params

    async def test_filters_hold_across_pages(self, tenant: Tenant) -> None:
        for account_id, segment in [("a", "smb"), ("b", "enterprise"), ("c", "smb"), ("d", "smb")]:
            await tenant.client.put(f"/v1/accounts/{account_id}", json={"segment": segment})
        first = await tenant.client.get("/v1/accounts", params={"segment": "smb", "limit": 2})
        assert ids(first) == ["a", "c"]
        params = {"segment": "smb", "limit": 2, "cursor": first.json()["next_cursor"]}
        second = await tenant.client.get("/v1/accounts", params=params)
        assert ids(second) == ["d"]
        assert second.json()["next_cursor"] is None

    async def test_invalid_cursor_is_422(self, tenant: Tenant) -> None:
        cursors = [
            "not-a-cursor!!",
            # (an empty cursor is the first page: test_query_params)
            base64.urlsafe_b64encode(b'["2026-01-01T00:00:00","a"]').decode(),  # naive
            base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00",1]').decode(),
            base64.urlsafe_b64encode(b'{"after":"a"}').decode(),
        ]
        for cursor in cursors:
            r = await tenant.client.get("/v1/accounts", params={"cursor": cursor})
            body = problem(r, 422)
            assert body["type"] == "/problems/validation-error"
            assert body["errors"] == [{"loc": ["query", "cursor"], "msg": "invalid cursor"}], cursor

    async def test_cursor_postgresql_cannot_compare_is_422_not_503(self, tenant: Tenant) -> None:
        raws = [
            b'["0001-01-01T00:00:00+05:00","a"]',  # before year 1 once in UTC
            b'["2026-01-01T00:00:00+00:00","a\\u0000b"]',  # NUL: not valid PostgreSQL text
        ]
        for raw in raws:
            cursor = base64.urlsafe_b64encode(raw).decode()
            r = await tenant.client.get("/v1/accounts", params={"cursor": cursor})
            assert problem(r, 422)["type"] == "/problems/validation-error", raw

    async def test_limit_outside_1_to_200_is_422(self, tenant: Tenant) -> None:
        for limit in ["0", "201", "-1", "ten", "1.5"]:
            body = problem(await tenant.client.get("/v1/accounts", params={"limit": limit}), 422)
            assert error_locs(body) == [["query", "limit"]], limit

    async def test_limit_bounds_are_accepted(self, tenant: Tenant) -> None:
        for account_id in ("a", "b"):
            await tenant.client.put(f"/v1/accounts/{account_id}", json={})
        assert ids(await tenant.client.get("/v1/accounts", params={"limit": 1})) == ["a"]
        assert ids(await tenant.client.get("/v1/accounts", params={"limit": 200})) == ["a", "b"]

    async def test_invalid_updated_since_is_422(self, tenant: Tenant) -> None:
        for since in ["yesterday", "2026-13-01T00:00:00Z"]:
            r = await tenant.client.get("/v1/accounts", params={"updated_since": since})
            assert error_locs(problem(r, 422)) == [["query", "updated_since"]], since
        # Valid RFC 3339, but before year 1 once in UTC: PostgreSQL cannot compare it.
        r = await tenant.client.get(
            "/v1/accounts", params={"updated_since": "0001-01-01T00:00:00+05:00"}
        )
        assert problem(r, 422)["type"] == "/problems/validation-error"


class TestDeleteAccount:
    async def test_delete_is_204_then_404(self, tenant: Tenant) -> None:
        await tenant.client.put("/v1/accounts/acme", json=ACME)

        r = await tenant.client.delete("/v1/accounts/acme")
        assert r.status_code == 204
        assert r.content == b""
        problem(await tenant.client.get("/v1/accounts/acme"), 404)
        assert ids(await tenant.client.get("/v1/accounts")) == []
        assert problem(await tenant.client.delete("/v1/accounts/acme"), 404) == {
            "type": "/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "account 'acme' does not exist",
        }

    async def test_unknown_account_is_404(self, tenant: Tenant) -> None:
        problem(await tenant.client.delete("/v1/accounts/nobody"), 404)

    async def test_stakeholders_and_responses_go_with_the_account(self, tenant: Tenant) -> None:
        for account_id in ("acme", "globex"):
            await tenant.client.put(f"/v1/accounts/{account_id}", json={})
        gone = [await record_response(tenant.client, "acme", p) for p in ("dana", "eli")]
        kept = await record_response(tenant.client, "globex", "gus")

        assert (await tenant.client.delete("/v1/accounts/acme")).status_code == 204

        for person in ("dana", "eli"):
            problem(await tenant.client.get(f"/v1/stakeholders/{person}"), 404)
        for response_id in gone:
            problem(await tenant.client.get(f"/v1/responses/{response_id}"), 404)
        r = await tenant.client.get("/v1/responses", params={"account_id": "acme"})
        assert ids(r) == []
        # The other account keeps everything it had.
        assert (await tenant.client.get("/v1/accounts/globex")).status_code == 200
        assert (await tenant.client.get("/v1/stakeholders/gus")).status_code == 200
        assert (await tenant.client.get(f"/v1/responses/{kept}")).status_code == 200
        assert ids(await tenant.client.get("/v1/stakeholders")) == ["gus"]

    async def test_a_recreated_account_starts_empty(self, tenant: Tenant) -> None:
        await tenant.client.put("/v1/accounts/acme", json=ACME)
        await record_response(tenant.client, "acme", "dana")
        await tenant.client.delete("/v1/accounts/acme")

        r = await tenant.client.put("/v1/accounts/acme", json={})
        assert r.status_code == 201
        r = await tenant.client.get("/v1/stakeholders", params={"account_id": "acme"})
        assert ids(r) == []
        assert ids(await tenant.client.get("/v1/responses")) == []
