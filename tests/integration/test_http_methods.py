"""Methods of a path: 405 with a correct Allow everywhere, HEAD wherever GET, OPTIONS."""

import re
import uuid
from typing import Any

import pytest

from app.openapi import current
from tests.support.api import put_account
from tests.support.harness import Tenant
from tests.support.problems import assert_invalid, problem

METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE")
# A valid value for each path parameter of the API.
SAMPLES = {
    "account_id": "acme",
    "stakeholder_id": "dana",
    "response_id": str(uuid.UUID(int=0)),
    "invitation_id": str(uuid.UUID(int=0)),
    "case_id": str(uuid.UUID(int=0)),
    "prefix": "nokey",
    "survey_id": "relationship-2026",
    "webhook_id": str(uuid.UUID(int=0)),
    "delivery_id": str(uuid.UUID(int=0)),
    "author": "kim",
    "import_id": str(uuid.UUID(int=0)),
}
SPEC: dict[str, Any] = current()


def _fits(value: str, schema: dict[str, Any]) -> bool:
    """Whether a path segment is a valid value of a path parameter, as the document says."""
    if schema.get("format") == "uuid":
        try:
            uuid.UUID(value)
        except ValueError:
            return False
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        return False
    longest: int = schema.get("maxLength", len(value))
    return len(value) <= longest


def _template_matches(template: str, path: str) -> bool:
    operations = SPEC["paths"][template]
    schemas = {
        p["name"]: p["schema"]
        for op in operations.values()
        for p in op.get("parameters", [])
        if p["in"] == "path"
    }
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    match = re.fullmatch(regex, path)
    if match is None:
        return False
    return all(_fits(value, schemas[name]) for name, value in match.groupdict().items())


def documented_allow(path: str) -> set[str]:
    """Every method the OpenAPI document gives a concrete path, through any template that
    matches it with valid path parameters, with HEAD for GET and OPTIONS."""
    methods = {
        method.upper()
        for template, operations in SPEC["paths"].items()
        if _template_matches(template, path)
        for method in operations
    }
    return methods | ({"HEAD"} if "GET" in methods else set()) | {"OPTIONS"}


def concrete(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], template)


def allow(headers: Any) -> set[str]:
    return {m.strip() for m in headers["allow"].split(",")}


class TestMethodNotAllowed:
    async def test_every_path_answers_an_unsupported_method_with_its_allow(
        self, tenant: Tenant
    ) -> None:
        wrong = {}
        for template in SPEC["paths"]:
            path = concrete(template)
            expected = documented_allow(path)
            for method in sorted(set(METHODS) - expected):
                r = await tenant.client.request(method, path)
                got = allow(r.headers) if r.status_code == 405 else r.status_code
                if got != expected:
                    wrong[f"{method} {path}"] = got
                else:
                    body = problem(r, 405)
                    assert body["type"] == "/problems/method-not-allowed"
        assert wrong == {}

    async def test_a_path_parameter_another_route_refuses_does_not_make_it_422(
        self, tenant: Tenant
    ) -> None:
        """/v1/responses/batch is POST only: a GET is not a read of a response named batch."""
        for method in ("GET", "PATCH"):
            r = await tenant.client.request(method, "/v1/responses/batch")
            problem(r, 405)
            assert allow(r.headers) == {"POST", "OPTIONS"}

    async def test_a_path_no_route_validates_allows_what_its_routes_have(
        self, tenant: Tenant
    ) -> None:
        r = await tenant.client.post("/v1/responses/not-a-uuid")
        problem(r, 405)
        assert allow(r.headers) == {"GET", "HEAD", "PATCH", "OPTIONS"}
        # A method it has still validates the parameter.
        assert_invalid(await tenant.client.get("/v1/responses/not-a-uuid"), ["path", "response_id"])

    async def test_a_literal_path_also_has_the_methods_of_a_template_it_fits(
        self, tenant: Tenant
    ) -> None:
        # "at-risk" is a valid account id: PUT and DELETE reach that account.
        r = await tenant.client.post("/v1/accounts/at-risk")
        assert allow(r.headers) == {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}

    async def test_comes_before_authentication(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/v1/settings", headers={"Authorization": ""})
        problem(r, 405)
        assert allow(r.headers) == documented_allow("/v1/settings")

    async def test_unknown_path_stays_404(self, tenant: Tenant) -> None:
        problem(await tenant.client.post("/v1/nowhere"), 404)


class TestHead:
    @pytest.mark.parametrize("path", ["/v1/accounts/acme", "/v1/accounts", "/healthz"])
    async def test_is_get_without_its_body(self, tenant: Tenant, path: str) -> None:
        await put_account(tenant.client, "acme")
        got = await tenant.client.get(path)
        head = await tenant.client.head(path)
        assert (head.status_code, head.content) == (got.status_code, b"")
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == got.headers["content-length"]

    async def test_of_a_missing_resource_is_its_404(self, tenant: Tenant) -> None:
        r = await tenant.client.head("/v1/accounts/nobody")
        assert (r.status_code, r.content) == (404, b"")
        assert r.headers["content-type"] == "application/problem+json"

    async def test_where_there_is_no_get_is_405(self, tenant: Tenant) -> None:
        r = await tenant.client.head("/v1/responses/batch")
        assert r.status_code == 405
        assert allow(r.headers) == {"POST", "OPTIONS"}


class TestOptions:
    async def test_lists_the_methods_of_any_path(self, tenant: Tenant) -> None:
        for template in SPEC["paths"]:
            path = concrete(template)
            r = await tenant.client.options(path)
            assert (r.status_code, r.content) == (204, b""), path
            assert allow(r.headers) == documented_allow(path), path

    async def test_needs_no_key_and_changes_nothing(self, tenant: Tenant) -> None:
        r = await tenant.client.options("/v1/accounts/acme", headers={"Authorization": ""})
        assert r.status_code == 204
        assert (await tenant.client.get("/v1/accounts/acme")).status_code == 404
