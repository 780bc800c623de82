"""Strict input: ids in paths as strict as in bodies, and errors that never quote hostile input
verbatim."""

import json
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from app.bodies import StrictRoute
from app.config import Settings
from app.main import create_app
from app.schemas.attributes import (
    ATTRIBUTE_KEY_MAX_LENGTH,
    ATTRIBUTES_MAX_BYTES,
    ATTRIBUTES_MAX_DEPTH,
    ATTRIBUTES_MAX_KEYS,
)
from tests.support.api import count_responses, list_responses
from tests.support.harness import TEST_SETTINGS, Tenant
from tests.support.invitations import bearer, get_row, invite
from tests.support.problems import assert_invalid, problem

FORM = "application/x-www-form-urlencoded"

QUOTED_MAX = 64  # app.errors.QUOTED_MAX: how much of a name an error quotes


class TestDotIdsInPaths:
    @pytest.mark.parametrize("encoded", ["%2E", "%2E%2E"])
    @pytest.mark.parametrize("path", ["/v1/accounts/{}", "/v1/stakeholders/{}", "/v1/surveys/{}"])
    async def test_a_dot_id_is_refused_as_in_a_body(
        self, tenant: Tenant, path: str, encoded: str
    ) -> None:
        r = await tenant.client.put(path.format(encoded), json={"account_id": "acme"})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["msg"] == "an id cannot be '.' or '..'"
        listed = await tenant.client.get("/v1/accounts")
        assert listed.json()["data"] == []

    async def test_a_dot_in_a_longer_id_is_fine(self, tenant: Tenant) -> None:
        r = await tenant.client.put("/v1/accounts/acme.eu", json={"name": "Acme"})
        assert r.status_code == 201, r.text


class TestNoEcho:
    async def test_an_unknown_parameter_is_quoted_cut_and_escaped(self, tenant: Tenant) -> None:
        name = "<script>\x07" + "x" * 500
        r = await tenant.client.get("/v1/accounts", params={name: "1"})
        assert r.status_code == 422, r.text
        [error] = r.json()["errors"]
        assert len(error["loc"][1]) == QUOTED_MAX + len("\\x07") - 1
        assert error["loc"][1].startswith("<script>\\x07xxx")
        assert error["loc"][1].endswith("…")
        assert "x" * 100 not in r.text
        assert "\x07" not in r.text

    async def test_a_hostile_member_name_is_not_echoed(self, tenant: Tenant) -> None:
        key = "k" * 300 + "\x1b[31m"
        r = await tenant.client.put("/v1/accounts/acme", json={"name": "Acme", key: 1})
        assert r.status_code == 422, r.text
        assert "k" * 100 not in r.text
        assert "\x1b" not in r.text


JSON = {"Content-Type": "application/json"}


async def _person(tenant: Tenant) -> None:
    await tenant.db.account("acme")
    await tenant.db.stakeholder("dana", "acme", role="user")


class TestDuplicateMembers:
    async def test_a_score_given_twice_is_refused_and_nothing_is_stored(
        self, tenant: Tenant
    ) -> None:
        await _person(tenant)
        raw = b'{"stakeholder_id": "dana", "score": 1, "score": 9}'
        r = await tenant.client.post("/v1/responses", content=raw, headers=JSON)
        body = assert_invalid(r, ["body", "score"])
        assert body["errors"][0]["msg"] == "duplicate member name"
        assert "'score'" in body["detail"]
        assert await count_responses(tenant.client) == 0

    async def test_a_duplicate_deep_in_attributes_is_refused(self, tenant: Tenant) -> None:
        raw = b'{"name": "Acme", "attributes": {"crm": {"tier": 1, "tier": 2}}}'
        r = await tenant.client.put("/v1/accounts/acme", content=raw, headers=JSON)
        assert_invalid(r, ["body", "tier"])
        assert (await tenant.client.get("/v1/accounts/acme")).status_code == 404

    async def test_a_duplicate_in_a_batch_item_is_refused(self, tenant: Tenant) -> None:
        await _person(tenant)
        item = b'{"stakeholder_id": "dana", "score": 9, "comment": "a", "comment": "b"}'
        raw = b'{"responses": [' + item + b"]}"
        r = await tenant.client.post("/v1/responses/batch", content=raw, headers=JSON)
        assert_invalid(r, ["body", "comment"])

    async def test_the_member_is_quoted_cut_and_escaped(self, tenant: Tenant) -> None:
        name = "\x1b[31m" + "k" * 300
        raw = json.dumps({"name": "Acme"})[:-1].encode()
        raw += f", {json.dumps(name)}: 1, {json.dumps(name)}: 2}}".encode()
        r = await tenant.client.put("/v1/accounts/acme", content=raw, headers=JSON)
        body = assert_invalid(r)
        [error] = body["errors"]
        assert error["loc"][1].startswith("\\x1b[31mkkk")
        assert error["loc"][1].endswith("…")
        assert "k" * 100 not in r.text
        assert "\x1b" not in r.text

    async def test_a_merge_patch_with_a_duplicate_is_refused(self, tenant: Tenant) -> None:
        raw = b'{"min_n": 3, "min_n": 4}'
        headers = {"Content-Type": "application/merge-patch+json"}
        r = await tenant.client.patch("/v1/settings", content=raw, headers=headers)
        assert_invalid(r, ["body", "min_n"])
        assert (await tenant.client.get("/v1/settings")).json()["min_n"] == 5

    async def test_a_public_answer_with_a_duplicate_is_refused(self, tenant: Tenant) -> None:
        await _person(tenant)
        made = await invite(tenant.client, "dana")
        raw = b'{"score": 10, "score": 0}'
        r = await tenant.client.post(
            "/v1/public/answers", content=raw, headers={**JSON, **bearer(made["token"])}
        )
        assert_invalid(r, ["body", "score"])
        assert (await get_row(tenant, made["id"])).response_id is None

    async def test_the_same_name_in_two_objects_is_fine(self, tenant: Tenant) -> None:
        raw = b'{"name": "Acme", "attributes": {"a": {"x": 1}, "b": {"x": 2}}}'
        r = await tenant.client.put("/v1/accounts/acme", content=raw, headers=JSON)
        assert r.status_code == 201, r.text

    def test_every_api_route_reads_its_body_strictly(self) -> None:
        app = create_app(Settings(**TEST_SETTINGS))
        loose = [
            context.path
            for context in iter_route_contexts(app.routes)
            if isinstance(context.original_route, APIRoute)
            and not isinstance(context.original_route, StrictRoute)
            and context.original_route.include_in_schema
        ]
        assert loose == []


class TestOneParseOnTheAnswerPath:
    async def test_the_fingerprint_reuses_the_parsed_body(
        self, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The idempotency fingerprint canonicalises the value the route parsed: it never
        parses the body a second time (a replay and a mismatch still tell bodies apart)."""
        await _person(tenant)

        class NoSecondParse:
            dumps = staticmethod(json.dumps)

            @staticmethod
            def loads(*_: Any, **__: Any) -> Any:
                raise AssertionError("the body was parsed a second time")

        monkeypatch.setattr("app.api.idempotency.json", NoSecondParse)
        key = {"Idempotency-Key": "one-parse"}
        body = {"stakeholder_id": "dana", "score": 9, "attributes": {"b": 1, "a": 2}}
        first = await tenant.client.post("/v1/responses", json=body, headers=key)
        assert first.status_code == 201, first.text
        reordered = b'{"attributes": {"a": 2, "b": 1}, "score": 9, "stakeholder_id": "dana"}'
        again = await tenant.client.post(
            "/v1/responses", content=reordered, headers={**key, **JSON}
        )
        assert again.status_code == 201, again.text
        assert again.headers["Idempotent-Replayed"] == "true"
        other = await tenant.client.post("/v1/responses", json={**body, "score": 8}, headers=key)
        assert problem(other, 422)["type"] == "/problems/idempotency-key-reused"


class TestOnlyUtf8:
    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param('{"name": "Café"}'.encode("latin-1"), id="latin-1 bytes"),
            pytest.param(b'{"name": "\xed\xa0\x80"}', id="encoded surrogate"),
            pytest.param(b'{"name": "\xc0\xaf"}', id="overlong"),
            pytest.param('{"name": "Acme"}'.encode("utf-16"), id="utf-16 with BOM"),
            pytest.param('{"name": "Acme"}'.encode("utf-32"), id="utf-32 with BOM"),
            pytest.param(b"\xef\xbb\xbf" + b'{"name": "Acme"}', id="utf-8 BOM"),
        ],
    )
    async def test_a_body_that_is_not_plain_utf8_is_400(self, tenant: Tenant, raw: bytes) -> None:
        r = await tenant.client.put("/v1/accounts/acme", content=raw, headers=JSON)
        assert problem(r, 400)["type"] == "/problems/invalid-encoding"
        assert (await tenant.client.get("/v1/accounts/acme")).status_code == 404

    async def test_utf16_without_a_bom_is_not_guessed(self, tenant: Tenant) -> None:
        raw = '{"name": "Acme"}'.encode("utf-16-le")
        r = await tenant.client.put("/v1/accounts/acme", content=raw, headers=JSON)
        assert r.status_code in (400, 422), r.text
        assert (await tenant.client.get("/v1/accounts/acme")).status_code == 404

    @pytest.mark.parametrize("charset", ["iso-8859-1", "utf-16", '"windows-1252"'])
    async def test_another_declared_charset_is_415(self, tenant: Tenant, charset: str) -> None:
        await _person(tenant)
        headers = {"Content-Type": f"application/json; charset={charset}"}
        r = await tenant.client.post(
            "/v1/responses", content=b'{"stakeholder_id": "dana", "score": 9}', headers=headers
        )
        body = problem(r, 415)
        assert body["errors"] == [{"loc": ["header", "Content-Type"], "msg": "only charset=utf-8"}]
        assert await count_responses(tenant.client) == 0

    @pytest.mark.parametrize("charset", ["utf-8", "UTF-8", '"utf-8"'])
    async def test_utf8_may_be_declared(self, tenant: Tenant, charset: str) -> None:
        headers = {"Content-Type": f"application/json; charset={charset}"}
        raw = '{"name": "Café"}'.encode()
        r = await tenant.client.put("/v1/accounts/acme", content=raw, headers=headers)
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "Café"

    async def test_a_merge_patch_in_latin1_is_415(self, tenant: Tenant) -> None:
        headers = {"Content-Type": "application/merge-patch+json; charset=latin-1"}
        r = await tenant.client.patch("/v1/settings", content=b'{"min_n": 3}', headers=headers)
        problem(r, 415)


class TestOnlyUtf8Forms:
    async def _page(self, tenant: Tenant) -> str:
        await _person(tenant)
        made = await invite(tenant.client, "dana")
        return f"/s/{made['token']}"

    @pytest.mark.parametrize(
        ("raw", "content_type", "status"),
        [
            (b"score=9&comment=caf%E9", FORM, 400),
            (b"score=9&comment=caf\xe9", FORM, 400),
            (b"score=9", FORM + "; charset=iso-8859-1", 415),
            (b'{"score": 9}', "application/json", 415),
        ],
    )
    async def test_a_form_that_is_not_utf8_is_refused(
        self, tenant: Tenant, raw: bytes, content_type: str, status: int
    ) -> None:
        path = await self._page(tenant)
        r = await tenant.client.post(path, content=raw, headers={"Content-Type": content_type})
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("text/html")
        assert await count_responses(tenant.client) == 0

    async def test_a_utf8_form_is_recorded(self, tenant: Tenant) -> None:
        path = await self._page(tenant)
        raw = b"score=9&comment=caf%C3%A9+cr%C3%A8me"
        r = await tenant.client.post(path, content=raw, headers={"Content-Type": FORM})
        assert r.status_code == 303, r.text
        [stored] = await list_responses(tenant.client)
        assert stored["comment"] == "café crème"


def _nested(levels: int) -> dict[str, Any]:
    """`attributes` with `levels` levels of objects, itself the first."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"in": value}
    return value


# Over one bound each (app/schemas/attributes.py); a flat driver rating has no nesting to test.
CUSTOM_FIELDS_OVER = {
    "too many keys": {str(i): i for i in range(ATTRIBUTES_MAX_KEYS + 1)},
    "too many keys inside": {"crm": {str(i): i for i in range(ATTRIBUTES_MAX_KEYS + 1)}},
    "a long key inside": {"crm": {"k" * (ATTRIBUTE_KEY_MAX_LENGTH + 1): 1}},
    "too deep": _nested(ATTRIBUTES_MAX_DEPTH + 1),
    "too deep in a list": {"a": [[[["x"]]]]},
    "too large": {f"k{i}": "x" * 900 for i in range(ATTRIBUTES_MAX_BYTES // 900 + 1)},
}
DRIVERS_OVER = {
    "too many keys": {str(i): i for i in range(ATTRIBUTES_MAX_KEYS + 1)},
    "a long key": {"k" * (ATTRIBUTE_KEY_MAX_LENGTH + 1): 1},
    "too large": {f"k{i}": "x" * 900 for i in range(ATTRIBUTES_MAX_BYTES // 900 + 1)},
}


def assert_attributes_refused(r: httpx.Response) -> None:
    """A 422 at the field (a member name too long: at the field and that name, quoted)."""
    [error] = assert_invalid(r)["errors"]
    assert error["loc"][:2] == ["body", "attributes"], error


class TestAttributesBounded:
    @pytest.mark.parametrize("attributes", CUSTOM_FIELDS_OVER.values(), ids=CUSTOM_FIELDS_OVER)
    async def test_an_accounts_attributes_over_a_bound_are_refused(
        self, tenant: Tenant, attributes: dict[str, Any]
    ) -> None:
        r = await tenant.client.put(
            "/v1/accounts/acme", json={"name": "Acme", "attributes": attributes}
        )
        assert_attributes_refused(r)

    @pytest.mark.parametrize("attributes", CUSTOM_FIELDS_OVER.values(), ids=CUSTOM_FIELDS_OVER)
    async def test_a_stakeholders_attributes_over_a_bound_are_refused(
        self, tenant: Tenant, attributes: dict[str, Any]
    ) -> None:
        await tenant.db.account("acme")
        r = await tenant.client.put(
            "/v1/stakeholders/dana", json={"account_id": "acme", "attributes": attributes}
        )
        assert_attributes_refused(r)

    async def test_attributes_at_every_bound_are_stored(self, tenant: Tenant) -> None:
        attributes: dict[str, Any] = {
            "k" * ATTRIBUTE_KEY_MAX_LENGTH: _nested(ATTRIBUTES_MAX_DEPTH - 1),
            **{str(i): i for i in range(ATTRIBUTES_MAX_KEYS - 2)},
        }
        attributes["pad"] = ""
        size = len(json.dumps(attributes, separators=(",", ":")).encode())
        attributes["pad"] = "x" * (ATTRIBUTES_MAX_BYTES - size)
        r = await tenant.client.put(
            "/v1/accounts/acme", json={"name": "Acme", "attributes": attributes}
        )
        assert r.status_code == 201, r.text
        assert r.json()["attributes"] == attributes

    @pytest.mark.parametrize("attributes", DRIVERS_OVER.values(), ids=DRIVERS_OVER)
    async def test_a_responses_ratings_over_a_bound_are_refused(
        self, tenant: Tenant, attributes: dict[str, Any]
    ) -> None:
        await _person(tenant)
        body = {"stakeholder_id": "dana", "score": 9, "attributes": attributes}
        assert_attributes_refused(await tenant.client.post("/v1/responses", json=body))
        stored = await tenant.client.post("/v1/responses", json={**body, "attributes": {}})
        assert stored.status_code == 201, stored.text
        r = await tenant.client.patch(
            f"/v1/responses/{stored.json()['id']}", json={"attributes": attributes}
        )
        assert_attributes_refused(r)

    async def test_a_public_answers_ratings_over_a_bound_are_refused(self, tenant: Tenant) -> None:
        await _person(tenant)
        made = await invite(tenant.client, "dana")
        r = await tenant.client.post(
            "/v1/public/answers",
            json={"score": 9, "attributes": DRIVERS_OVER["too large"]},
            headers=bearer(made["token"]),
        )
        assert_attributes_refused(r)

    def test_the_bounds_are_in_the_openapi_document(self) -> None:
        document = create_app(Settings(**TEST_SETTINGS)).openapi()
        account = document["components"]["schemas"]["AccountUpsert"]["properties"]["attributes"]
        assert account["maxProperties"] == ATTRIBUTES_MAX_KEYS
        assert account["propertyNames"] == {"maxLength": ATTRIBUTE_KEY_MAX_LENGTH}
        assert f"{ATTRIBUTES_MAX_BYTES} bytes" in account["description"]
