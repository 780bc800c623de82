"""Strict query parameters: an undeclared or repeated one is a 422 naming it, on every route."""

import base64
import re
from typing import Any

import httpx
import pytest

from app.openapi import current
from tests.support.api import Answer, get_json, put_account, report
from tests.support.clock import WINDOW, at
from tests.support.harness import Tenant
from tests.support.invitations import invite
from tests.support.problems import assert_invalid, error_locs

SPEC: dict[str, Any] = current()
SAMPLES = {
    "account_id": "acme",
    "stakeholder_id": "dana",
    "author": "kim",
    "prefix": "nokey",
    "response_id": "00000000-0000-0000-0000-000000000000",
    "survey_id": "relationship-2026",
    "invitation_id": "00000000-0000-0000-0000-000000000000",
    "case_id": "00000000-0000-0000-0000-000000000000",
    "webhook_id": "00000000-0000-0000-0000-000000000000",
    "delivery_id": "00000000-0000-0000-0000-000000000000",
    "import_id": "00000000-0000-0000-0000-000000000000",
}


def unknown(r: httpx.Response, *names: str) -> list[str]:
    """A 422 naming exactly these query parameters; the message at each."""
    body = assert_invalid(r, *(["query", name] for name in names))
    return [e["msg"] for e in body["errors"]]


def query_params(path: str, method: str = "get") -> dict[str, dict[str, Any]]:
    operation = SPEC["paths"][path][method]
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}


class TestUnknownParameters:
    @pytest.mark.parametrize(
        ("path", "typo", "meant"),
        [
            ("/v1/nps", "acount_id", "account_id"),
            ("/v1/nps/trend", "intervall", "interval"),
            ("/v1/nps/trend", "group-by", "group_by"),
            ("/v1/responses", "acount_id", "account_id"),
            ("/v1/accounts/at-risk", "segmnet", "segment"),
            ("/v1/accounts", "Updated_Since", "updated_since"),
        ],
    )
    async def test_a_typo_is_422_naming_it_and_the_closest_name(
        self, tenant: Tenant, path: str, typo: str, meant: str
    ) -> None:
        window = {} if path == "/v1/accounts" else WINDOW
        r = await tenant.client.get(path, params={**window, typo: "x"})

        [msg] = unknown(r, typo)
        assert msg.endswith(f"did you mean `{meant}`?"), msg
        assert r.json()["detail"].startswith(f"1 invalid query parameter(s); first: query.{typo}")

    async def test_the_typo_no_longer_widens_the_query(self, tenant: Tenant) -> None:
        """Today's bug: `acount_id` was ignored, and the answer was the whole workspace's."""
        await tenant.db.answers([Answer("p", "acme", 10, at(5)), Answer("d", "globex", 0, at(6))])
        unknown(await tenant.client.get("/v1/nps", params={**WINDOW, "acount_id": "acme"}))
        body = await report(tenant.client, account_id="acme")
        assert body["score"]["n"] == 1

    async def test_every_unknown_one_is_named_in_order(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/nps?zzz=1&group_by=role&qqq=2&zzz=3")
        unknown(r, "zzz", "qqq")

    async def test_nested_dependency_parameters_are_known(self, tenant: Tenant) -> None:
        # account_id (filters), confidence and ci_method (counting), from/to (window).
        params = {**WINDOW, "account_id": "acme", "confidence": "0.9", "ci_method": "score"}
        for path in ("/v1/nps", "/v1/nps/trend", "/v1/nps/compare"):
            await get_json(tenant.client, path, **params)
        await put_account(tenant.client, "acme")
        await report(tenant.client, "/v1/accounts/acme/nps", confidence="0.9", ci_method="wald")

    async def test_a_parameter_of_other_endpoints_says_where_it_belongs(
        self, tenant: Tenant
    ) -> None:
        [msg] = unknown(await tenant.client.get("/v1/coverage?group_by=role"), "group_by")
        assert msg == (
            "unknown parameter: GET /v1/coverage does not take `group_by`; "
            "it is a parameter of GET /v1/nps/trend, GET /v1/nps, GET /v1/drivers and 1 more"
        )

    async def test_a_route_without_parameters_refuses_any(self, tenant: Tenant) -> None:
        for path in ("/healthz", "/v1/settings", "/v1/accounts/acme"):
            [msg] = unknown(await tenant.client.get(path, params={"verbose": "1"}), "verbose")
            assert msg.endswith("it takes no query parameters"), msg

    async def test_a_write_with_one_stores_nothing(self, tenant: Tenant) -> None:
        r = await tenant.client.put("/v1/accounts/acme?dry_run=true", json={"name": "Acme"})
        unknown(r, "dry_run")
        assert (await tenant.client.get("/v1/accounts/acme")).status_code == 404

    async def test_is_checked_before_authentication(self, tenant: Tenant) -> None:
        """Like 404 and 405, a request of the wrong shape is refused whoever sends it."""
        r = await tenant.client.get("/v1/nps?acount_id=x", headers={"Authorization": ""})
        unknown(r, "acount_id")


class TestRepeatedParameters:
    async def test_a_single_valued_one_given_twice_is_422(self, tenant: Tenant) -> None:
        """FastAPI would silently take the last value."""
        [msg] = unknown(await tenant.client.get("/v1/accounts?limit=1&limit=2"), "limit")
        assert msg == "given 2 times; this parameter takes one value"
        r = await tenant.client.get(
            "/v1/nps", params=[("group_by", "role"), ("group_by", "account")]
        )
        unknown(r, "group_by")

    async def test_every_single_valued_one_of_every_operation(self, tenant: Tenant) -> None:
        """RouteGate covers every route: no operation in the document takes the last (or the
        first) of two values of a parameter that has one."""
        await put_account(tenant.client, "acme")
        accepted, checked = [], 0
        for template, operations in SPEC["paths"].items():
            path = re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], template)
            for method, operation in operations.items():
                for param in operation.get("parameters", []):
                    if param["in"] != "query" or _takes_several(param["schema"]):
                        continue
                    checked += 1
                    name = param["name"]
                    r = await tenant.client.request(
                        method.upper(), path, params=[(name, "1"), (name, "2")]
                    )
                    if r.status_code != 422 or error_locs(r.json()) != [["query", name]]:
                        accepted.append((method, template, name, r.status_code))
        assert accepted == []
        assert checked > 100

    async def test_the_pages_preselected_score_given_twice_is_refused(self, tenant: Tenant) -> None:
        await tenant.db.account("acme")
        await tenant.db.stakeholder("dana", "acme")
        made = await invite(tenant.client, "dana")
        r = await tenant.client.get(f"/s/{made['token']}?score=9&score=0")
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("text/html")
        single = await tenant.client.get(f"/s/{made['token']}?score=9")
        assert single.status_code == 200, single.text

    async def test_a_list_valued_one_takes_several(self, tenant: Tenant) -> None:
        r = await tenant.client.get(
            "/v1/accounts/at-risk", params=[("reason", "silent"), ("reason", "low_nps")]
        )
        assert r.status_code == 200, r.text


class TestEmptyValues:
    @pytest.mark.parametrize(
        "path",
        [
            "/v1/accounts",
            "/v1/stakeholders",
            "/v1/responses",
            "/v1/movements",
            "/v1/accounts/at-risk",
            "/v1/deletions",
        ],
    )
    async def test_an_empty_cursor_is_the_first_page(self, tenant: Tenant, path: str) -> None:
        await tenant.db.answers([Answer("p", "acme", 10, at(5))])
        first = await get_json(tenant.client, path, **WINDOW_FOR.get(path, {}))
        assert await get_json(tenant.client, path, cursor="", **WINDOW_FOR.get(path, {})) == first

    async def test_any_other_empty_value_is_422_at_it(self, tenant: Tenant) -> None:
        """An empty value is never read as absent (which would widen the query) nor coerced."""
        await put_account(tenant.client, "acme")
        accepted = []
        for template, operations in SPEC["paths"].items():
            if "get" not in operations:
                continue
            path = re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], template)
            for name in query_params(template):
                if name == "cursor":
                    continue
                r = await tenant.client.get(path, params={name: ""})
                if r.status_code != 422 or [loc[:2] for loc in error_locs(r.json())] != [
                    ["query", name]
                ]:
                    accepted.append((template, name, r.status_code))
        assert accepted == []


def _takes_several(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "array" or any(
        option.get("type") == "array" for option in schema.get("anyOf", [])
    )


WINDOW_FOR = {"/v1/movements": WINDOW, "/v1/accounts/at-risk": WINDOW}


class TestAccountScoreParameters:
    """GET /v1/accounts/{id}/nps no longer advertises what it always refused."""

    @pytest.mark.parametrize("path", ["/v1/accounts/{account_id}/nps", "/v1/accounts/at-risk"])
    def test_the_document_has_no_portfolio_options(self, path: str) -> None:
        params = query_params(path)
        assert not {"weight", "account_mean"} & set(params)
        method = params["method"]["schema"]["anyOf"][0]
        enum = SPEC["components"]["schemas"][method["$ref"].rsplit("/", 1)[1]]["enum"]
        assert enum == [
            "respondent",
            "latest_per_stakeholder",
            "role_weighted",
            "decision_maker_first",
        ]

    def test_portfolio_views_keep_them(self) -> None:
        for path in ("/v1/nps", "/v1/nps/trend", "/v1/nps/compare"):
            assert {"weight", "account_mean", "method"} <= set(query_params(path))

    @pytest.mark.parametrize("name", ["weight", "account_mean", "account_as_unit"])
    async def test_sending_one_says_it_is_portfolio_only(self, tenant: Tenant, name: str) -> None:
        await put_account(tenant.client, "acme")
        r = await tenant.client.get("/v1/accounts/acme/nps", params={name: "revenue"})
        [msg] = unknown(r, name)
        assert msg.endswith("portfolio-only (method=account_as_unit): use GET /v1/nps"), msg

    async def test_method_account_as_unit_says_so(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")
        for path in ("/v1/accounts/acme/nps", "/v1/accounts/at-risk"):
            r = await tenant.client.get(path, params={"method": "account_as_unit"})
            body = assert_invalid(r, ["query", "method"])
            assert body["errors"][0]["msg"] == (
                "account_as_unit counts accounts, so it is portfolio-only "
                "(method=account_as_unit): use GET /v1/nps"
            )


class TestHostileCursors:
    async def test_a_cursor_nested_thousands_deep_is_422_on_every_route(
        self, tenant: Tenant
    ) -> None:
        """JSON arrays 3,000 deep exhaust the decoder's recursion (it was a 500). A route under
        a sample id that does not exist answers 404 before it reads the cursor."""
        deep = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode().rstrip("=")
        answered = {}
        for template, operations in SPEC["paths"].items():
            if "get" not in operations or "cursor" not in query_params(template):
                continue
            path = re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], template)
            r = await tenant.client.get(path, params={"cursor": deep, **WINDOW_FOR.get(path, {})})
            locs = error_locs(r.json()) if r.status_code == 422 else []
            answered[template] = (r.status_code, locs)
        wrong = {
            template: answer
            for template, answer in answered.items()
            if answer != (422, [["query", "cursor"]]) and not (answer[0] == 404 and "{" in template)
        }
        assert len(answered) > 5
        assert wrong == {}
