"""Access control: API keys, scopes, and the wall between workspaces."""

import asyncio
import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import Scope
from tests.support.api import post_response, put_account, put_stakeholder
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_forbidden, assert_not_found, assert_unauthorized, problem

KEY_FIELDS = {"id", "prefix", "scopes", "label", "created_at", "last_used_at", "revoked_at"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def tally(report: dict[str, Any]) -> tuple[int, int, int, int, float | None]:
    s = report["score"]
    return s["n"], s["promoters"], s["passives"], s["detractors"], s["nps"]


@dataclass
class Seeded:
    """One account, one stakeholder and one response of score 9 in a workspace."""

    account: dict[str, Any]
    stakeholder: dict[str, Any]
    response: dict[str, Any]


async def seed(
    client: httpx.AsyncClient, *, account_id: str = "acme", person: str = "dana", score: int = 9
) -> Seeded:
    return Seeded(
        await put_account(client, account_id, name=f"{account_id} of A"),
        await put_stakeholder(client, person, account_id, role="decision_maker"),
        await post_response(client, {"stakeholder_id": person, "score": score}),
    )


async def send_without_key(
    client: httpx.AsyncClient, method: str, url: str, body: Any = None
) -> httpx.Response:
    request = client.build_request(method, url, json=body)
    del request.headers["Authorization"]
    return await client.send(request)


# Endpoints of every scope, each with a valid body so only authentication can refuse them.
EVERY_ENDPOINT: list[tuple[str, str, Any]] = [
    ("GET", "/v1/accounts", None),
    ("GET", "/v1/accounts/acme", None),
    ("PUT", "/v1/accounts/acme", {"name": "Acme"}),
    ("DELETE", "/v1/accounts/acme", None),
    ("GET", "/v1/accounts/acme/nps", None),
    ("PUT", "/v1/stakeholders/dana", {"account_id": "acme"}),
    ("GET", "/v1/stakeholders/dana", None),
    ("POST", "/v1/responses", {"stakeholder_id": "dana", "score": 9}),
    ("GET", "/v1/responses", None),
    ("GET", "/v1/nps", None),
    ("GET", "/v1/api-keys", None),
    ("POST", "/v1/api-keys", {"scopes": ["admin"]}),
]


class TestAuthentication:
    async def test_no_key_is_401_everywhere(self, tenant: Tenant) -> None:
        seeded = await seed(tenant.client)
        for method, url, body in EVERY_ENDPOINT:
            r = await send_without_key(tenant.client, method, url, body)
            assert r.status_code == 401, (method, url)
            assert_unauthorized(r)
        # Nothing was done: the seeded rows are as they were and no key was added.
        assert (await tenant.client.get("/v1/accounts/acme")).json() == seeded.account
        assert (await tenant.client.get("/v1/responses")).json()["data"] == [seeded.response]
        assert len((await tenant.client.get("/v1/api-keys")).json()) == 1

    async def test_invalid_body_without_a_key_is_401_not_422(self, tenant: Tenant) -> None:
        r = await send_without_key(tenant.client, "PUT", "/v1/accounts/acme", {"nmae": 1})
        assert_unauthorized(r)

    async def test_malformed_header_is_401(self, tenant: Tenant) -> None:
        headers = ["Basic x", "Basic dXNlcjpwYXNz", "Bearer", "Token nps_abc", "nps_abc", ""]
        for authorization in headers:
            r = await tenant.client.get("/v1/accounts", headers={"Authorization": authorization})
            assert r.status_code == 401, authorization
            assert_unauthorized(r)

    async def test_admin_key_sent_as_basic_is_401(self, tenant: Tenant) -> None:
        r = await tenant.client.get(
            "/v1/accounts", headers={"Authorization": f"Basic {tenant.admin_key}"}
        )
        assert_unauthorized(r)

    async def test_unknown_key_is_401(self, tenant: Tenant) -> None:
        key = tenant.admin_key
        # Made up; the right prefix with the wrong secret; near misses of the real key.
        for unknown in ["nps_" + "x" * 43, key[:-1], key + "x", key.upper(), key[:12]]:
            r = await tenant.client.get("/v1/accounts", headers=bearer(unknown))
            assert r.status_code == 401, unknown
            assert_unauthorized(r)

    async def test_scheme_is_case_insensitive(self, tenant: Tenant) -> None:
        r = await tenant.client.get(
            "/v1/accounts", headers={"Authorization": f"bearer {tenant.admin_key}"}
        )
        assert r.status_code == 200

    async def test_revoked_key_is_401(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/v1/api-keys", json={"scopes": ["write"]})
        created = r.json()
        assert (await tenant.client.get("/v1/accounts", headers=bearer(created["key"]))).is_success

        r = await tenant.client.delete(f"/v1/api-keys/{created['prefix']}")
        assert r.status_code == 204

        for method, url, body in EVERY_ENDPOINT[:4]:
            r = await tenant.client.request(method, url, json=body, headers=bearer(created["key"]))
            assert_unauthorized(r)

    async def test_healthz_needs_no_key(self, tenant: Tenant) -> None:
        r = await send_without_key(tenant.client, "GET", "/healthz")
        assert r.status_code == 200


class TestScopes:
    async def test_read_key_gets_403_on_writes_and_nothing_changes(self, tenant: Tenant) -> None:
        seeded = await seed(tenant.client)
        keys_before = (await tenant.client.get("/v1/api-keys")).json()
        read = await tenant.make_key(Scope.READ)
        refused: list[tuple[str, str, Any]] = [
            ("PUT", "/v1/accounts/acme", {"name": "Changed"}),
            ("PUT", "/v1/accounts/new", {"name": "New"}),
            ("DELETE", "/v1/accounts/acme", None),
            ("PUT", "/v1/stakeholders/dana", {"account_id": "acme", "role": "user"}),
            ("DELETE", "/v1/stakeholders/dana", None),
            ("POST", "/v1/responses", {"stakeholder_id": "dana", "score": 0}),
            (
                "POST",
                "/v1/responses/batch",
                {"responses": [{"stakeholder_id": "dana", "score": 0}]},
            ),
            ("PATCH", f"/v1/responses/{seeded.response['id']}", {"excluded": True, "reason": "x"}),
            ("GET", "/v1/api-keys", None),
            ("POST", "/v1/api-keys", {"scopes": ["admin"]}),
            ("DELETE", f"/v1/api-keys/{tenant.admin_key[:12]}", None),
        ]
        for method, path, body in refused:
            r = await tenant.client.request(method, path, json=body, headers=bearer(read))
            assert r.status_code == 403, (method, path)
            assert_forbidden(r)
            needed = "admin" if path.startswith("/v1/api-keys") else "write"
            assert r.json()["detail"] == f"this API key does not have the {needed!r} scope"

        assert (await tenant.client.get("/v1/accounts/acme")).json() == seeded.account
        assert_not_found(await tenant.client.get("/v1/accounts/new"))
        assert (await tenant.client.get("/v1/stakeholders/dana")).json() == seeded.stakeholder
        rows = (await tenant.client.get("/v1/responses")).json()["data"]
        assert rows == [seeded.response]
        keys_after = (await tenant.client.get("/v1/api-keys")).json()
        # Keys made in one test share a created_at, so their order is not defined: compare sets.
        assert {k["prefix"] for k in keys_after} == {k["prefix"] for k in keys_before} | {read[:12]}
        assert all(k["revoked_at"] is None for k in keys_after)

    async def test_read_key_can_query(self, tenant: Tenant) -> None:
        seeded = await seed(tenant.client)
        read = await tenant.make_key(Scope.READ)
        paths = [
            "/v1/accounts",
            "/v1/accounts/acme",
            "/v1/accounts/acme/nps",
            "/v1/stakeholders",
            "/v1/stakeholders/dana",
            "/v1/responses",
            f"/v1/responses/{seeded.response['id']}",
            "/v1/nps",
        ]
        # An explicit window so both answers of a score cover the same instants.
        window = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
        for path in paths:
            params = window if path.endswith("nps") else {}
            r = await tenant.client.get(path, params=params, headers=bearer(read))
            assert r.status_code == 200, (path, r.text)
            assert r.json() == (await tenant.client.get(path, params=params)).json(), path

    async def test_write_key_registers_records_and_reads(self, tenant: Tenant) -> None:
        write = bearer(await tenant.make_key(Scope.WRITE))
        c = tenant.client

        assert (await c.put("/v1/accounts/acme", json={}, headers=write)).status_code == 201
        r = await c.put("/v1/stakeholders/dana", json={"account_id": "acme"}, headers=write)
        assert r.status_code == 201
        r = await c.post(
            "/v1/responses", json={"stakeholder_id": "dana", "score": 9}, headers=write
        )
        assert r.status_code == 201
        response_id = r.json()["id"]
        r = await c.patch(
            f"/v1/responses/{response_id}",
            json={"excluded": True, "reason": "duplicate"},
            headers=write,
        )
        assert r.status_code == 200
        assert r.json()["excluded"] is True
        assert (await c.get("/v1/accounts/acme", headers=write)).status_code == 200
        assert (await c.get("/v1/nps", headers=write)).status_code == 200
        assert (await c.delete("/v1/stakeholders/dana", headers=write)).status_code == 204
        assert (await c.delete("/v1/accounts/acme", headers=write)).status_code == 204

    async def test_write_key_gets_403_on_api_keys(self, tenant: Tenant) -> None:
        write = await tenant.make_key(Scope.WRITE)
        refused: list[tuple[str, str, Any]] = [
            ("GET", "/v1/api-keys", None),
            ("POST", "/v1/api-keys", {"scopes": ["read"]}),
            ("POST", "/v1/api-keys", {"scopes": ["admin"]}),
            ("DELETE", f"/v1/api-keys/{tenant.admin_key[:12]}", None),
            ("DELETE", f"/v1/api-keys/{write[:12]}", None),
        ]
        for method, path, body in refused:
            r = await tenant.client.request(method, path, json=body, headers=bearer(write))
            assert r.status_code == 403, (method, path, body)
            assert_forbidden(r)
            assert r.json()["detail"] == "this API key does not have the 'admin' scope"
        keys = (await tenant.client.get("/v1/api-keys")).json()
        assert len(keys) == 2
        assert all(k["revoked_at"] is None for k in keys)

    async def test_forbidden_is_decided_before_the_body_is_validated(self, tenant: Tenant) -> None:
        read = await tenant.make_key(Scope.READ)
        r = await tenant.client.put("/v1/accounts/acme", json={"nmae": 1}, headers=bearer(read))
        assert_forbidden(r)


class TestApiKeys:
    async def test_admin_creates_a_key_shown_once(self, tenant: Tenant) -> None:
        r = await tenant.client.post(
            "/v1/api-keys", json={"scopes": ["read"], "label": "dashboard"}
        )
        assert r.status_code == 201, r.text
        created = r.json()
        assert set(created) == KEY_FIELDS | {"key"}
        assert created["scopes"] == ["read"]
        assert created["label"] == "dashboard"
        assert created["revoked_at"] is None
        assert created["last_used_at"] is None
        assert created["key"].startswith(created["prefix"])
        assert len(created["key"]) >= 32
        assert tenant.admin_key not in r.text

        listed = (await tenant.client.get("/v1/api-keys")).json()
        mine = [k for k in listed if k["prefix"] == created["prefix"]]
        assert mine == [{k: v for k, v in created.items() if k != "key"}]

    async def test_created_key_has_exactly_its_scopes(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/v1/api-keys", json={"scopes": ["read"]})
        read = bearer(r.json()["key"])
        assert (await tenant.client.get("/v1/accounts", headers=read)).status_code == 200
        assert_forbidden(await tenant.client.put("/v1/accounts/acme", json={}, headers=read))

        r = await tenant.client.post("/v1/api-keys", json={"scopes": ["write", "read"]})
        assert sorted(r.json()["scopes"]) == ["read", "write"]
        write = bearer(r.json()["key"])
        r = await tenant.client.put("/v1/accounts/acme", json={}, headers=write)
        assert r.status_code == 201
        assert_forbidden(await tenant.client.get("/v1/api-keys", headers=write))

        r = await tenant.client.post("/v1/api-keys", json={"scopes": ["admin"]})
        admin = bearer(r.json()["key"])
        assert (await tenant.client.get("/v1/api-keys", headers=admin)).status_code == 200
        assert (await tenant.client.delete("/v1/accounts/acme", headers=admin)).status_code == 204

    async def test_invalid_request_is_422(self, tenant: Tenant) -> None:
        cases: list[tuple[dict[str, Any], list[str | int]]] = [
            ({"scopes": []}, ["body", "scopes"]),
            ({"scopes": ["root"]}, ["body", "scopes", 0]),
            ({}, ["body", "scopes"]),
            ({"scopes": ["read"], "label": ""}, ["body", "label"]),
            ({"scopes": ["read"], "key": "nps_chosen-by-the-caller"}, ["body", "key"]),
        ]
        for body, loc in cases:
            r = await tenant.client.post("/v1/api-keys", json=body)
            assert [e["loc"] for e in problem(r, 422)["errors"]] == [loc], body
        assert len((await tenant.client.get("/v1/api-keys")).json()) == 1

    async def test_list_never_holds_a_secret_or_its_hash(self, tenant: Tenant) -> None:
        secrets = [tenant.admin_key]
        for scopes in (["read"], ["write"], ["admin"]):
            r = await tenant.client.post("/v1/api-keys", json={"scopes": scopes})
            secrets.append(r.json()["key"])

        r = await tenant.client.get("/v1/api-keys")
        assert r.status_code == 200
        listed = r.json()
        assert sorted(k["prefix"] for k in listed) == sorted(s[:12] for s in secrets)
        assert all(set(k) == KEY_FIELDS for k in listed)
        for secret in secrets:
            digest = hashlib.sha256(secret.encode()).digest()
            forms = [
                secret,
                secret[12:],
                digest.hex(),
                base64.b64encode(digest).decode(),
                base64.urlsafe_b64encode(digest).decode().rstrip("="),
            ]
            for form in forms:
                assert form not in r.text

    async def test_revoke_is_204_and_the_key_stops_working(self, tenant: Tenant) -> None:
        created = (await tenant.client.post("/v1/api-keys", json={"scopes": ["admin"]})).json()
        other = (await tenant.client.post("/v1/api-keys", json={"scopes": ["read"]})).json()

        r = await tenant.client.delete(f"/v1/api-keys/{created['prefix']}")
        assert r.status_code == 204
        assert r.content == b""

        assert_unauthorized(await tenant.client.get("/v1/api-keys", headers=bearer(created["key"])))
        listed = {k["prefix"]: k for k in (await tenant.client.get("/v1/api-keys")).json()}
        assert listed[created["prefix"]]["revoked_at"] is not None
        # Only that key is revoked.
        assert listed[other["prefix"]]["revoked_at"] is None
        assert (await tenant.client.get("/v1/accounts", headers=bearer(other["key"]))).is_success

    async def test_unknown_prefix_is_404(self, tenant: Tenant) -> None:
        assert_not_found(await tenant.client.delete("/v1/api-keys/nps_nothere"))

    async def test_using_a_key_sets_last_used_at(self, tenant: Tenant) -> None:
        created = (await tenant.client.post("/v1/api-keys", json={"scopes": ["read"]})).json()
        await tenant.client.get("/v1/accounts", headers=bearer(created["key"]))
        listed = {k["prefix"]: k for k in (await tenant.client.get("/v1/api-keys")).json()}
        assert listed[created["prefix"]]["last_used_at"] is not None


class TestTenancy:
    async def test_b_cannot_read_or_delete_a_account(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        a = await seed(tenant.client)
        b = await make_tenant("b")

        assert_not_found(await b.client.get("/v1/accounts/acme"))
        assert_not_found(await b.client.delete("/v1/accounts/acme"))
        assert_not_found(await b.client.get("/v1/accounts/acme/nps"))
        assert (await tenant.client.get("/v1/accounts/acme")).json() == a.account
        assert (await tenant.client.get("/v1/stakeholders/dana")).json() == a.stakeholder

    async def test_b_gets_the_same_404_as_for_an_id_nobody_has(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        await seed(tenant.client)
        b = await make_tenant("b")
        # The existence of A's row must not show through: B's 404 is word for word the
        # answer for an id that exists nowhere.
        theirs = (await b.client.get("/v1/accounts/acme")).json()
        await tenant.client.delete("/v1/accounts/acme")
        nowhere = (await b.client.get("/v1/accounts/acme")).json()
        assert theirs == nowhere

    async def test_b_cannot_read_or_erase_a_stakeholder(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        a = await seed(tenant.client)
        b = await make_tenant("b")

        assert_not_found(await b.client.get("/v1/stakeholders/dana"))
        assert_not_found(await b.client.delete("/v1/stakeholders/dana"))
        assert (await tenant.client.get("/v1/stakeholders/dana")).json() == a.stakeholder
        rows = (await tenant.client.get("/v1/responses")).json()["data"]
        assert rows == [a.response]

    async def test_b_cannot_read_or_exclude_a_response(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        a = await seed(tenant.client)
        b = await make_tenant("b")
        url = f"/v1/responses/{a.response['id']}"

        assert_not_found(await b.client.get(url))
        assert_not_found(await b.client.patch(url, json={"excluded": True, "reason": "spam"}))
        assert (await tenant.client.get(url)).json() == a.response
        assert a.response["excluded"] is False

    async def test_a_lists_are_empty_for_b(self, tenant: Tenant, make_tenant: MakeTenant) -> None:
        await tenant.client.put("/v1/accounts/acme", json={"segment": "enterprise"})
        await tenant.client.put(
            "/v1/stakeholders/dana", json={"account_id": "acme", "role": "decision_maker"}
        )
        await tenant.client.post("/v1/responses", json={"stakeholder_id": "dana", "score": 9})
        b = await make_tenant("b")
        queries: list[tuple[str, dict[str, str]]] = [
            ("/v1/accounts", {}),
            ("/v1/accounts", {"segment": "enterprise"}),
            ("/v1/stakeholders", {}),
            ("/v1/stakeholders", {"account_id": "acme"}),
            ("/v1/stakeholders", {"role": "decision_maker"}),
            ("/v1/responses", {}),
            ("/v1/responses", {"account_id": "acme"}),
            ("/v1/responses", {"stakeholder_id": "dana"}),
        ]
        for url, params in queries:
            r = await b.client.get(url, params=params)
            assert r.status_code == 200
            assert r.json() == {"data": [], "next_cursor": None}, (url, params)
            # A sees its own row through the same query.
            assert len((await tenant.client.get(url, params=params)).json()["data"]) == 1

    async def test_b_scores_count_none_of_a_responses(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        await seed(tenant.client, person="dana", score=9)
        await tenant.client.put("/v1/stakeholders/eli", json={"account_id": "acme"})
        await tenant.client.post("/v1/responses", json={"stakeholder_id": "eli", "score": 10})
        b = await make_tenant("b")
        await seed(b.client, account_id="b-co", person="bo", score=3)

        # B's own: one detractor of one, so NPS = 100 * (0 - 1) / 1.
        r = await b.client.get("/v1/nps")
        assert r.status_code == 200
        assert tally(r.json()) == (1, 0, 0, 1, -100.0)
        r = await b.client.get("/v1/nps", params={"group_by": "account"})
        assert [g["key"] for g in r.json()["groups"]] == [{"account_id": "b-co"}]
        r = await b.client.get("/v1/nps", params={"account_id": "acme"})
        assert tally(r.json()) == (0, 0, 0, 0, None)
        # A's own: two promoters of two.
        assert tally((await tenant.client.get("/v1/nps")).json()) == (2, 2, 0, 0, 100.0)

    async def test_same_account_id_in_b_is_an_independent_row(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        a = await seed(tenant.client)
        b = await make_tenant("b")

        r = await b.client.put("/v1/accounts/acme", json={"name": "Acme of B", "segment": "smb"})
        assert r.status_code == 201, r.text  # created in B, not an update of A's row
        assert r.json()["name"] == "Acme of B"
        r = await b.client.put("/v1/stakeholders/dana", json={"account_id": "acme"})
        assert r.status_code == 201, r.text
        assert r.json()["role"] == "other"

        assert (await tenant.client.get("/v1/accounts/acme")).json() == a.account
        assert (await tenant.client.get("/v1/stakeholders/dana")).json() == a.stakeholder
        assert (await b.client.get("/v1/accounts/acme")).json()["name"] == "Acme of B"

        # Deleting B's acme leaves A's acme and everything under it.
        assert (await b.client.delete("/v1/accounts/acme")).status_code == 204
        assert (await tenant.client.get("/v1/accounts/acme")).json() == a.account
        assert (await tenant.client.get("/v1/stakeholders/dana")).json() == a.stakeholder
        r = await tenant.client.get(f"/v1/responses/{a.response['id']}")
        assert r.json() == a.response

    async def test_b_cannot_attach_to_a_account_or_answer_as_a_stakeholder(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        await seed(tenant.client)
        b = await make_tenant("b")

        r = await b.client.put("/v1/stakeholders/mole", json={"account_id": "acme"})
        assert problem(r, 422)["errors"] == [
            {"loc": ["body", "account_id"], "msg": "unknown account"}
        ]
        r = await b.client.post("/v1/responses", json={"stakeholder_id": "dana", "score": 0})
        assert problem(r, 422)["errors"] == [
            {"loc": ["body", "stakeholder_id"], "msg": "unknown stakeholder"}
        ]
        assert_not_found(await tenant.client.get("/v1/stakeholders/mole"))
        assert tally((await tenant.client.get("/v1/nps")).json()) == (1, 1, 0, 0, 100.0)

    async def test_b_cannot_revoke_or_list_a_keys(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        created = (await tenant.client.post("/v1/api-keys", json={"scopes": ["read"]})).json()
        b = await make_tenant("b")

        for prefix in (created["prefix"], tenant.admin_key[:12]):
            assert_not_found(await b.client.delete(f"/v1/api-keys/{prefix}"))
        listed = (await b.client.get("/v1/api-keys")).json()
        assert [k["prefix"] for k in listed] == [b.admin_key[:12]]

        assert (await tenant.client.get("/v1/accounts", headers=bearer(created["key"]))).is_success
        assert (await tenant.client.get("/v1/api-keys")).is_success
        listed = (await tenant.client.get("/v1/api-keys")).json()
        assert all(k["revoked_at"] is None for k in listed)

    async def test_a_key_only_ever_sees_its_own_workspace(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        b = await make_tenant("b")
        await seed(tenant.client, account_id="a-co")
        await seed(b.client, account_id="b-co", person="bo")
        a_read = bearer(await tenant.make_key(Scope.READ))
        b_read = bearer(await b.make_key(Scope.READ))

        r = await tenant.client.get("/v1/accounts", headers=a_read)
        assert [row["id"] for row in r.json()["data"]] == ["a-co"]
        r = await tenant.client.get("/v1/accounts", headers=b_read)
        assert [row["id"] for row in r.json()["data"]] == ["b-co"]


class TestErrorBodies:
    async def test_errors_reveal_nothing_internal(self, tenant: Tenant) -> None:
        await tenant.client.put("/v1/accounts/acme", json={})
        await tenant.client.put("/v1/stakeholders/dana", json={"account_id": "acme"})
        cases: list[tuple[str, str, Any, int]] = [
            ("GET", "/v1/accounts/nobody", None, 404),
            ("GET", "/v1/accounts/a'%3B%20DROP%20TABLE%20accounts%3B--", None, 422),
            ("GET", "/v1/accounts?limit=99999999999999999999999", None, 422),
            ("GET", "/v1/accounts?cursor=eyJ4Ijp7fX0", None, 422),
            ("GET", "/v1/accounts?cursor=WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzA1OjAwIiwiYSJd", None, 422),
            ("GET", "/v1/accounts?updated_since=0001-01-01T00:00:00%2B05:00", None, 422),
            ("GET", "/v1/responses?cursor=WyIyMDI2LTAxLTAxVDAwOjAwOjAwWiIsIngiXQ", None, 422),
            ("GET", "/v1/responses/not-a-uuid", None, 422),
            ("GET", "/v1/responses/00000000-0000-0000-0000-000000000000", None, 404),
            ("PUT", "/v1/accounts/acme", {"name": "nul \u0000 byte"}, 422),
            ("PUT", "/v1/accounts/acme", {"attributes": {"k": "\u0000"}}, 422),
            ("PUT", "/v1/accounts/acme", {"annual_revenue": "1e400"}, 422),
            ("PUT", "/v1/stakeholders/dana", {"account_id": "ghost"}, 422),
            ("PUT", "/v1/stakeholders/dana", {"account_id": "acme", "name": "\u0000"}, 422),
            ("POST", "/v1/responses", {"stakeholder_id": "ghost", "score": 9}, 422),
            ("POST", "/v1/responses", {"stakeholder_id": "dana", "score": 9.5}, 422),
            ("PATCH", "/v1/responses/00000000-0000-0000-0000-000000000000", {"x": 1}, 422),
            ("DELETE", "/v1/api-keys/" + "p" * 33, None, 422),
            ("GET", "/v1/nowhere", None, 404),
            ("POST", "/v1/accounts/acme", {}, 405),
        ]
        for method, url, body, status in cases:
            r = await tenant.client.request(method, url, json=body)
            assert r.status_code == status, (method, url, body, r.text)
            problem(r, status)

    async def test_malformed_json_reveals_nothing_internal(self, tenant: Tenant) -> None:
        r = await tenant.client.put(
            "/v1/accounts/acme", content=b'{"name": ', headers={"content-type": "application/json"}
        )
        problem(r, 422)

    async def test_auth_errors_reveal_nothing_internal(self, tenant: Tenant) -> None:
        read = await tenant.make_key(Scope.READ)
        problem(await tenant.client.get("/v1/accounts", headers=bearer("' OR 1=1 --")), 401)
        problem(await tenant.client.put("/v1/accounts/x", json={}, headers=bearer(read)), 403)


class TestKeyUseIsRecordedWithoutQueueing:
    async def test_a_request_does_not_wait_for_another_holding_the_key_row(
        self, committed: Tenant, engine: AsyncEngine
    ) -> None:
        """last_used_at is a hint: a request never queues behind another of the same key."""
        async with engine.connect() as other:
            await other.execute(
                text(
                    "UPDATE api_keys SET last_used_at = now() - interval '1 hour'"
                    " WHERE workspace_id = :w"
                ),
                {"w": committed.id},
            )
            await other.commit()
            await other.execute(
                text("SELECT id FROM api_keys WHERE workspace_id = :w FOR UPDATE"),
                {"w": committed.id},
            )
            # Without SKIP LOCKED this request would wait until `other` ends, i.e. forever here.
            r = await asyncio.wait_for(committed.client.get("/v1/accounts"), timeout=10)
            assert r.status_code == 200, r.text
            await other.rollback()
