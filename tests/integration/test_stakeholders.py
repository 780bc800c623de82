"""Stakeholders: PUT (create or replace, with an inline account), GET, list with filters, DELETE."""

from typing import Any

import httpx

from tests.support.api import ids, put_account, respond, without_stamps
from tests.support.harness import Tenant
from tests.support.problems import error_locs, problem

DANA: dict[str, Any] = {
    "account_id": "acme",
    "name": "Dana Smith",
    "email": "dana@acme.example",
    "role": "decision_maker",
    "job_level": "executive",
    "department": "Engineering",
    "attributes": {"region": "emea", "since": 2019},
}
DEFAULTS: dict[str, Any] = {
    "name": None,
    "email": None,
    "role": "other",
    "job_level": "other",
    "department": None,
    "attributes": {},
}


async def put_accounts(client: httpx.AsyncClient, *account_ids: str) -> None:
    for account_id in account_ids:
        await put_account(client, account_id, name=account_id.title())


class TestPutStakeholder:
    async def test_new_id_is_created_with_201(self, tenant: Tenant) -> None:
        await put_accounts(tenant.client, "acme")

        r = await tenant.client.put("/v1/stakeholders/dana", json=DANA)
        assert r.status_code == 201, r.text
        assert without_stamps(r.json()) == {"id": "dana", **DANA}
        r = await tenant.client.get("/v1/stakeholders/dana")
        assert r.status_code == 200
        assert without_stamps(r.json()) == {"id": "dana", **DANA}

    async def test_only_account_id_is_required(self, tenant: Tenant) -> None:
        await put_accounts(tenant.client, "acme")
        r = await tenant.client.put("/v1/stakeholders/sam", json={"account_id": "acme"})
        assert r.status_code == 201, r.text
        assert without_stamps(r.json()) == {"id": "sam", "account_id": "acme", **DEFAULTS}

    async def test_known_id_is_replaced_with_200(self, tenant: Tenant) -> None:
        await put_accounts(tenant.client, "acme", "globex")
        await tenant.client.put("/v1/stakeholders/dana", json=DANA)

        r = await tenant.client.put(
            "/v1/stakeholders/dana", json={"account_id": "globex", "role": "user"}
        )
        assert r.status_code == 200, r.text
        # PUT replaces: fields the body leaves out go back to their defaults.
        expected = {"id": "dana", **DEFAULTS, "account_id": "globex", "role": "user"}
        assert without_stamps(r.json()) == expected
        assert without_stamps((await tenant.client.get("/v1/stakeholders/dana")).json()) == expected
        by_account = {"account_id": "globex"}
        assert ids(await tenant.client.get("/v1/stakeholders", params=by_account)) == ["dana"]

    async def test_an_email_is_a_valid_id(self, tenant: Tenant) -> None:
        await put_accounts(tenant.client, "acme")

        r = await tenant.client.put("/v1/stakeholders/dana@acme.example", json=DANA)
        assert r.status_code == 201, r.text
        assert r.json()["id"] == "dana@acme.example"
        r = await tenant.client.get("/v1/stakeholders/dana@acme.example")
        assert without_stamps(r.json()) == {"id": "dana@acme.example", **DANA}
        r = await tenant.client.put("/v1/stakeholders/dana@acme.example", json=DANA)
        assert r.status_code == 200
        response_id = await respond(tenant.client, "dana@acme.example", 10)
        assert (await tenant.client.get(f"/v1/responses/{response_id}")).json()[
            "stakeholder_id"
        ] == "dana@acme.example"

    async def test_unknown_account_is_422_and_nothing_is_stored(self, tenant: Tenant) -> None:
        r = await tenant.client.put("/v1/stakeholders/dana", json={**DANA, "account_id": "ghost"})
        body = problem(r, 422)
        assert body["type"] == "/problems/validation-error"
        assert body["title"] == "Request validation failed"
        assert body["errors"] == [{"loc": ["body", "account_id"], "msg": "unknown account"}]
        assert isinstance(body["detail"], str)
        problem(await tenant.client.get("/v1/stakeholders/dana"), 404)
        problem(await tenant.client.get("/v1/accounts/ghost"), 404)

    async def test_moving_to_an_unknown_account_keeps_the_stored_stakeholder(
        self, tenant: Tenant
    ) -> None:
        await put_accounts(tenant.client, "acme")
        stored = (await tenant.client.put("/v1/stakeholders/dana", json=DANA)).json()
        r = await tenant.client.put("/v1/stakeholders/dana", json={**DANA, "account_id": "ghost"})
        problem(r, 422)
        assert (await tenant.client.get("/v1/stakeholders/dana")).json() == stored

    async def test_inline_account_is_created_in_the_same_call(self, tenant: Tenant) -> None:
        initech = {
            "name": "Initech",
            "industry": "software",
            "segment": "smb",
            "annual_revenue": "5000000.00",
            "currency": "USD",
            "attributes": {"crm": "hubspot"},
        }
        r = await tenant.client.put(
            "/v1/stakeholders/peter",
            json={"account_id": "initech", "role": "user", "account": initech},
        )
        assert r.status_code == 201, r.text
        assert without_stamps(r.json()) == {
            "id": "peter",
            **DEFAULTS,
            "account_id": "initech",
            "role": "user",
        }
        r = await tenant.client.get("/v1/accounts/initech")
        assert r.status_code == 200
        assert without_stamps(r.json()) == {"id": "initech", **initech}

    async def test_inline_account_leaves_an_existing_account_unchanged(
        self, tenant: Tenant
    ) -> None:
        acme = {"name": "Acme Corp", "industry": "technology", "segment": "enterprise"}
        stored = (await tenant.client.put("/v1/accounts/acme", json=acme)).json()

        r = await tenant.client.put(
            "/v1/stakeholders/dana",
            json={**DANA, "account": {"name": "Renamed", "segment": "smb", "currency": "GBP"}},
        )
        assert r.status_code == 201, r.text
        assert without_stamps(r.json()) == {"id": "dana", **DANA}
        assert (await tenant.client.get("/v1/accounts/acme")).json() == stored

    async def test_invalid_inline_account_is_422_naming_its_field(self, tenant: Tenant) -> None:
        r = await tenant.client.put(
            "/v1/stakeholders/peter",
            json={"account_id": "initech", "account": {"name": "Initech", "currency": "usd"}},
        )
        assert error_locs(problem(r, 422)) == [["body", "account", "currency"]]
        problem(await tenant.client.get("/v1/accounts/initech"), 404)
        problem(await tenant.client.get("/v1/stakeholders/peter"), 404)

    async def test_invalid_field_is_422_naming_it(self, tenant: Tenant) -> None:
        await put_accounts(tenant.client, "acme")
        cases: list[tuple[str, object]] = [
            ("role", "boss"),
            ("role", "Decision_Maker"),
            ("role", None),
            ("job_level", "intern"),
            ("email", "not-an-email"),
            ("department", ""),
            ("account_id", "a b"),
            ("account_id", None),
            ("attributes", "flat"),
            ("title", "CTO"),
        ]
        for field, value in cases:
            r = await tenant.client.put("/v1/stakeholders/dana", json={**DANA, field: value})
            body = problem(r, 422)
            assert body["type"] == "/problems/validation-error"
            assert error_locs(body) == [["body", field]], (field, value)
        problem(await tenant.client.get("/v1/stakeholders/dana"), 404)

    async def test_missing_account_id_is_422(self, tenant: Tenant) -> None:
        r = await tenant.client.put("/v1/stakeholders/dana", json={"role": "user"})
        assert error_locs(problem(r, 422)) == [["body", "account_id"]]

    async def test_invalid_id_is_422(self, tenant: Tenant) -> None:
        await put_accounts(tenant.client, "acme")
        for stakeholder_id in ["dana smith", "x" * 129, "dané", "<dana>"]:
            r = await tenant.client.put(f"/v1/stakeholders/{stakeholder_id}", json=DANA)
            assert error_locs(problem(r, 422)) == [["path", "stakeholder_id"]], stakeholder_id
        assert ids(await tenant.client.get("/v1/stakeholders")) == []


class TestGetStakeholder:
    async def test_unknown_id_is_404_problem(self, tenant: Tenant) -> None:
        assert problem(await tenant.client.get("/v1/stakeholders/nobody"), 404) == {
            "type": "/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "stakeholder 'nobody' does not exist",
        }


PEOPLE = {
    "dana": ("acme", "decision_maker"),
    "eli": ("acme", "user"),
    "fay": ("acme", "user"),
    "gus": ("globex", "user"),
    "hal": ("globex", "decision_maker"),
}


class TestListStakeholders:
    async def register(self, client: httpx.AsyncClient) -> None:
        await put_accounts(client, "acme", "globex")
        for person, (account_id, role) in PEOPLE.items():
            r = await client.put(
                f"/v1/stakeholders/{person}", json={"account_id": account_id, "role": role}
            )
            assert r.status_code == 201, r.text

    async def test_filters_by_account_and_role(self, tenant: Tenant) -> None:
        await self.register(tenant.client)
        cases: list[tuple[dict[str, str], list[str]]] = [
            ({}, ["dana", "eli", "fay", "gus", "hal"]),
            ({"account_id": "acme"}, ["dana", "eli", "fay"]),
            ({"account_id": "globex"}, ["gus", "hal"]),
            ({"role": "user"}, ["eli", "fay", "gus"]),
            ({"role": "decision_maker"}, ["dana", "hal"]),
            ({"role": "influencer"}, []),
            ({"account_id": "acme", "role": "user"}, ["eli", "fay"]),
            ({"account_id": "initech"}, []),
        ]
        for params, expected in cases:
            assert ids(await tenant.client.get("/v1/stakeholders", params=params)) == expected, (
                params
            )

    async def test_rows_are_the_stakeholders_as_read_one_by_one(self, tenant: Tenant) -> None:
        await self.register(tenant.client)
        r = await tenant.client.get("/v1/stakeholders", params={"account_id": "globex"})
        one_by_one = [(await tenant.client.get(f"/v1/stakeholders/{p}")).json() for p in ids(r)]
        assert r.json() == {"data": one_by_one, "next_cursor": None}

    async def test_filtered_list_is_paginated(self, tenant: Tenant) -> None:
        await self.register(tenant.client)

        params: dict[str, str | int] = {"account_id": "acme", "limit": 2}
        first = await tenant.client.get("/v1/stakeholders", params=params)
        assert ids(first) == ["dana", "eli"]
        cursor = first.json()["next_cursor"]
        assert isinstance(cursor, str)
        second = await tenant.client.get("/v1/stakeholders", params={**params, "cursor": cursor})
        assert ids(second) == ["fay"]
        assert second.json()["next_cursor"] is None

    async def test_role_filter_is_paginated(self, tenant: Tenant) -> None:
        await self.register(tenant.client)
        pages: list[list[str]] = []
        params: dict[str, str | int] = {"role": "user", "limit": 1}
        while True:
            r = await tenant.client.get("/v1/stakeholders", params=params)
            pages.append(ids(r))
            if r.json()["next_cursor"] is None:
                break
            params["cursor"] = r.json()["next_cursor"]
        assert pages == [["eli"], ["fay"], ["gus"]]

    async def test_invalid_query_is_422(self, tenant: Tenant) -> None:
        cases: list[tuple[dict[str, str], list[str]]] = [
            ({"role": "boss"}, ["query", "role"]),
            ({"account_id": "a b"}, ["query", "account_id"]),
            ({"limit": "0"}, ["query", "limit"]),
            ({"limit": "201"}, ["query", "limit"]),
            ({"cursor": "garbage"}, ["query", "cursor"]),
        ]
        for params, loc in cases:
            r = await tenant.client.get("/v1/stakeholders", params=params)
            assert error_locs(problem(r, 422)) == [loc], params


class TestDeleteStakeholder:
    async def test_erases_the_stakeholder_and_their_responses(self, tenant: Tenant) -> None:
        await put_accounts(tenant.client, "acme")
        for person in ("dana", "eli"):
            await tenant.client.put(f"/v1/stakeholders/{person}", json={"account_id": "acme"})
        hers = [await respond(tenant.client, "dana", score) for score in (9, 3)]
        his = await respond(tenant.client, "eli", 7)

        r = await tenant.client.delete("/v1/stakeholders/dana")
        assert r.status_code == 204
        assert r.content == b""

        problem(await tenant.client.get("/v1/stakeholders/dana"), 404)
        for response_id in hers:
            problem(await tenant.client.get(f"/v1/responses/{response_id}"), 404)
        assert ids(await tenant.client.get("/v1/responses")) == [his]
        assert ids(await tenant.client.get("/v1/stakeholders")) == ["eli"]
        assert (await tenant.client.get("/v1/accounts/acme")).status_code == 200

    async def test_erased_stakeholder_no_longer_counts_in_scores(self, tenant: Tenant) -> None:
        await put_accounts(tenant.client, "acme")
        for person in ("dana", "eli"):
            await tenant.client.put(f"/v1/stakeholders/{person}", json={"account_id": "acme"})
        await respond(tenant.client, "dana", 0)
        await respond(tenant.client, "eli", 10)

        await tenant.client.delete("/v1/stakeholders/dana")
        score = (await tenant.client.get("/v1/nps")).json()["score"]
        # Only eli's 10 is left: one promoter of one.
        assert (score["n"], score["promoters"], score["detractors"], score["nps"]) == (
            1,
            1,
            0,
            100.0,
        )

    async def test_second_delete_is_404(self, tenant: Tenant) -> None:
        await put_accounts(tenant.client, "acme")
        await tenant.client.put("/v1/stakeholders/dana", json={"account_id": "acme"})
        assert (await tenant.client.delete("/v1/stakeholders/dana")).status_code == 204
        assert problem(await tenant.client.delete("/v1/stakeholders/dana"), 404) == {
            "type": "/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "stakeholder 'dana' does not exist",
        }

    async def test_a_re_registered_stakeholder_starts_without_responses(
        self, tenant: Tenant
    ) -> None:
        await put_accounts(tenant.client, "acme")
        await tenant.client.put("/v1/stakeholders/dana", json={"account_id": "acme"})
        await respond(tenant.client, "dana", 9)
        await tenant.client.delete("/v1/stakeholders/dana")

        r = await tenant.client.put("/v1/stakeholders/dana", json={"account_id": "acme"})
        assert r.status_code == 201
        r = await tenant.client.get("/v1/responses", params={"stakeholder_id": "dana"})
        assert ids(r) == []
