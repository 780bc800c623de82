"""openapi/openapi.json is the contract clients read; it must be what the app serves."""

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from app.openapi import PATH, current, render
from app.schemas import PROBLEM_REF


def test_openapi_file_matches_the_app() -> None:
    assert PATH.read_text() == render(current()), "run `make openapi` and commit the result"


def test_operation_ids_are_stable_names() -> None:
    spec = current()
    ids = [
        op["operationId"]
        for path in spec["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    assert len(ids) == len(set(ids))
    assert all(i.isidentifier() and "__" not in i for i in ids)
    assert "record_response" in ids


def test_errors_are_documented_as_problem_json() -> None:
    spec = json.loads(PATH.read_text())
    post = spec["paths"]["/v1/responses"]["post"]["responses"]
    for status in ("401", "403", "409", "422", "503"):
        assert "application/problem+json" in post[status]["content"], status
    assert "Problem" in spec["components"]["schemas"]


def test_scoring_references_point_at_the_repositorys_page() -> None:
    # Served descriptions once pointed at SPEC.md, which no user of the API can open.
    text = render(current())
    assert "SPEC" not in text
    assert "docs/scoring.md" in current()["info"]["description"]
    assert (PATH.parents[1] / "docs" / "scoring.md").is_file()
    change = current()["components"]["schemas"]["ChangeRead"]
    assert "docs/scoring.md" in change["description"]
    assert {"difference", "adjusted_difference"} <= set(change["properties"])
    assert all(
        "description" in change["properties"][f] for f in ("difference", "adjusted_difference")
    )


@functools.cache
def _spec() -> dict[str, Any]:
    """The app's document, built once for the tests below (which only read it)."""
    return current()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def _refs(schema: object) -> Iterator[str]:
    if isinstance(schema, dict):
        if "$ref" in schema:
            yield schema["$ref"]
        for value in schema.values():
            yield from _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _refs(value)


MONEY = "#/components/schemas/Money"
# Every amount of money in the document, request and answer alike.
MONEY_FIELDS = [
    ("AccountFields", "annual_revenue"),
    ("AccountUpsert", "annual_revenue"),
    ("AccountRead", "annual_revenue"),
    ("AccountBatchItem", "annual_revenue"),
    ("AccountProfile", "annual_revenue"),
    ("AtRiskAccount", "annual_revenue"),
    ("AtRiskSummary", "revenue_at_risk"),
    ("RevenueShare", "total"),
    ("RevenueShare", "answered"),
    ("RevenueShare", "decision_maker_answered"),
]


class TestTypedDocument:
    @pytest.mark.parametrize(
        ("batch", "field", "item"),
        [
            ("BatchRequest", "responses", "ResponseCreate"),
            ("AccountBatch", "accounts", "AccountBatchItem"),
            ("StakeholderBatch", "stakeholders", "StakeholderBatchItem"),
        ],
    )
    def test_batch_items_are_typed(self, batch: str, field: str, item: str) -> None:
        schemas = _spec()["components"]["schemas"]
        items = schemas[batch]["properties"][field]["items"]
        assert items == {"$ref": f"#/components/schemas/{item}"}

    def test_a_batch_result_carries_a_typed_problem(self) -> None:
        schemas = _spec()["components"]["schemas"]
        for result in ("BatchItemResult", "RegisteredItem"):
            problem = schemas[result]["properties"]["problem"]
            assert list(_refs(problem)) == [PROBLEM_REF], result
        assert schemas["Problem"]["required"] == ["type", "title", "status", "detail"]
        assert schemas["Problem"]["properties"]["status"]["type"] == "integer"

    def test_every_problem_response_uses_the_problem_component(self) -> None:
        seen = 0
        for method, path, operation in _operations(_spec()):
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                if status.startswith(("4", "5")) or "application/problem+json" in content:
                    schema = content["application/problem+json"]["schema"]
                    assert schema == {"$ref": PROBLEM_REF}, (method, path, status)
                    seen += 1
        assert seen > 100

    def test_money_is_one_decimal_string_component(self) -> None:
        schemas = _spec()["components"]["schemas"]
        money = schemas["Money"]
        assert money["type"] == "string"
        assert re.fullmatch(money["pattern"], "1200000.00")
        assert not re.fullmatch(money["pattern"], "1e6")
        for model, field in MONEY_FIELDS:
            prop = schemas[model]["properties"][field]
            assert list(_refs(prop)) == [MONEY], (model, field)
            assert "number" not in json.dumps(prop), (model, field)

    def test_no_field_gives_money_another_way(self) -> None:
        for name, schema in _spec()["components"]["schemas"].items():
            for field, prop in schema.get("properties", {}).items():
                if re.search(r"revenue|amount", field):
                    assert '"number"' not in json.dumps(prop), (name, field)
                if re.search(r"annual_revenue|revenue_at_risk|amount", field):
                    assert list(_refs(prop)) == [MONEY], (name, field)


class TestDeclaredHeaders:
    def test_idempotent_posts_declare_the_replay_header_on_success(self) -> None:
        idempotent = []
        for _method, path, operation in _operations(_spec()):
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            if "Idempotency-Key" not in names:
                continue
            idempotent.append(path)
            successes = [s for s in operation["responses"] if s.startswith("2")]
            assert successes, path
            for status in successes:
                headers = operation["responses"][status]["headers"]
                assert headers["Idempotent-Replayed"]["schema"]["enum"] == ["true"], (path, status)
        assert sorted(idempotent) == [
            "/v1/accounts/batch",
            "/v1/api-keys",
            "/v1/cases/{case_id}/notes",
            "/v1/invitations",
            "/v1/invitations/batch",
            "/v1/public/answers",
            "/v1/responses",
            "/v1/responses/batch",
            "/v1/stakeholders/batch",
            "/v1/webhooks",
            "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
            "/v1/webhooks/{webhook_id}/recover",
            "/v1/webhooks/{webhook_id}/rotate-secret",
            "/v1/webhooks/{webhook_id}/test",
        ]

    def test_retry_after_is_declared_where_it_is_sent(self) -> None:
        spec = _spec()
        for method, path, operation in _operations(spec):
            unavailable = operation["responses"].get("503")
            if path != "/healthz":
                assert unavailable is not None, (method, path)
            if unavailable is not None:
                schema = unavailable["headers"]["Retry-After"]["schema"]
                assert schema == {"type": "integer", "minimum": 0}, (method, path)
        for path in (
            "/v1/responses",
            "/v1/responses/batch",
            "/v1/accounts/batch",
            "/v1/stakeholders/batch",
            "/v1/api-keys",
            "/v1/cases/{case_id}/notes",
            "/v1/public/answers",
        ):
            in_progress = spec["paths"][path]["post"]["responses"]["409"]
            assert "Retry-After" in in_progress["headers"], path

    def test_every_v1_call_and_only_they_declare_rate_limits(self) -> None:
        """The public calls' guard and the API's (app.guard) cover all of /v1: any call there
        may be a 429, and every answer there carries the RateLimit fields."""
        spec = _spec()
        public = 0
        for method, path, operation in _operations(spec):
            responses = operation["responses"]
            declared = [s for s, r in responses.items() if "RateLimit" in r.get("headers", {})]
            if not path.startswith("/v1/"):
                assert declared == [], (method, path)
                assert "429" not in responses, (method, path)
                continue
            public += path.startswith("/v1/public/")
            assert declared == list(responses), (method, path)
            assert set(responses["429"]["headers"]) == {
                "Retry-After",
                "RateLimit",
                "RateLimit-Policy",
            }
            audience = "token" if path.startswith("/v1/public/") else "API key"
            assert audience in responses["429"]["description"], (method, path)
        assert public >= 1
        assert set(spec["components"]["headers"]) == {"RateLimit", "RateLimit-Policy"}


class TestCrossFieldRules:
    @pytest.mark.parametrize(
        ("path", "param", "names"),
        [
            ("/v1/nps", "weight", ["account_as_unit"]),
            ("/v1/nps", "account_mean", ["account_as_unit"]),
            ("/v1/nps", "method", ["account_id", "group_by"]),
            ("/v1/nps", "from", ["`to`"]),
            ("/v1/nps/compare", "baseline_from", ["`baseline_to`", "`dimension`"]),
            ("/v1/nps/compare", "baseline_to", ["`dimension`"]),
            ("/v1/nps/compare", "dimension", ["`a`", "`b`", "`baseline_from`"]),
            ("/v1/nps/compare", "a", ["`dimension`"]),
            ("/v1/nps/trend", "rolling_days", ["40,000"]),
        ],
    )
    def test_a_parameter_names_the_parameters_it_depends_on(
        self, path: str, param: str, names: list[str]
    ) -> None:
        operation = _spec()["paths"][path]["get"]
        described = next(p for p in operation["parameters"] if p["name"] == param)
        for name in names:
            assert name in described.get("description", ""), (path, param, name)

    @pytest.mark.parametrize(
        ("model", "field", "names"),
        [
            ("ResponseCreate", "stakeholder_id", ["`stakeholder`"]),
            ("ResponseCreate", "stakeholder", ["`stakeholder_id`"]),
            ("ResponsePatch", "reason", ["`excluded`"]),
            ("BenchmarkRange", "high", ["`low`"]),
            ("WorkspaceSettings", "low_n", ["`min_n`"]),
        ],
    )
    def test_a_field_names_the_fields_it_depends_on(
        self, model: str, field: str, names: list[str]
    ) -> None:
        prop = _spec()["components"]["schemas"][model]["properties"][field]
        for name in names:
            assert name in prop.get("description", ""), (model, field, name)
