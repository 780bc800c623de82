"""The case_rules setting through PUT and PATCH /v1/settings: kinds, defaults, and 422s that name
the field."""

from typing import Any

import pytest

from tests.support.api import get_json, put_settings
from tests.support.cases import CUSTOM_CASE_RULES, DEFAULT_CASE_RULES
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_invalid

SETTINGS = "/v1/settings"


class TestPutCaseRules:
    async def test_rules_of_every_kind_are_stored_in_order(self, tenant: Tenant) -> None:
        body = await put_settings(tenant.client, {"case_rules": CUSTOM_CASE_RULES})

        assert body["case_rules"] == CUSTOM_CASE_RULES
        assert (await get_json(tenant.client, SETTINGS))["case_rules"] == CUSTOM_CASE_RULES

    async def test_an_empty_list_opens_no_cases(self, tenant: Tenant) -> None:
        body = await put_settings(tenant.client, {"case_rules": []})

        assert body["case_rules"] == []

    async def test_key_role_kinds_default_to_decision_makers_and_influencers(
        self, tenant: Tenant
    ) -> None:
        rules = [
            {"id": "p", "kind": "passive_or_lower", "sla_hours": 1},
            {"id": "a", "kind": "advocacy", "sla_hours": 8760},
            {"id": "d", "kind": "detractor", "sla_hours": 2},
        ]
        body = await put_settings(tenant.client, {"case_rules": rules})

        assert [r["roles"] for r in body["case_rules"]] == [
            ["decision_maker", "influencer"],
            ["decision_maker", "influencer"],
            None,
        ]

    async def test_keywords_are_trimmed(self, tenant: Tenant) -> None:
        rule = {"id": "k", "kind": "keyword", "sla_hours": 1, "keywords": ["  cancel "]}
        body = await put_settings(tenant.client, {"case_rules": [rule]})

        assert body["case_rules"][0]["keywords"] == ["cancel"]

    async def test_each_workspace_has_its_own_rules(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("tenant-b")
        await put_settings(tenant.client, {"case_rules": []})

        assert (await get_json(other.client, SETTINGS))["case_rules"] == DEFAULT_CASE_RULES


def _rule(**fields: Any) -> dict[str, Any]:
    return {"id": "r", "kind": "detractor", "sla_hours": 48, **fields}


class TestCaseRulesValidation:
    @pytest.mark.parametrize(
        ("rules", "loc"),
        [
            ([_rule(sla_hours=0)], ["body", "case_rules", 0, "detractor", "sla_hours"]),
            ([_rule(sla_hours=8761)], ["body", "case_rules", 0, "detractor", "sla_hours"]),
            ([_rule(sla_hours=4.0)], ["body", "case_rules", 0, "detractor", "sla_hours"]),
            ([_rule(sla_hours="4")], ["body", "case_rules", 0, "detractor", "sla_hours"]),
            ([_rule(id="Has Space")], ["body", "case_rules", 0, "detractor", "id"]),
            ([_rule(kind="angry")], ["body", "case_rules", 0]),
            ([{"id": "r", "sla_hours": 1}], ["body", "case_rules", 0]),
            ([_rule(roles=["boss"])], ["body", "case_rules", 0, "detractor", "roles", 0]),
            ([_rule(roles=[])], ["body", "case_rules", 0, "detractor", "roles"]),
            (
                [_rule(roles=["user", "user"])],
                ["body", "case_rules", 0, "detractor", "roles"],
            ),
            ([_rule(keywords=["x"])], ["body", "case_rules", 0, "detractor", "keywords"]),
            (
                [_rule(kind="keyword")],
                ["body", "case_rules", 0, "keyword", "keywords"],
            ),
            (
                [_rule(kind="keyword", keywords=[])],
                ["body", "case_rules", 0, "keyword", "keywords"],
            ),
            (
                [_rule(kind="keyword", keywords=["--"])],
                ["body", "case_rules", 0, "keyword", "keywords", 0],
            ),
            (
                [_rule(kind="advocacy", roles=None)],
                ["body", "case_rules", 0, "advocacy", "roles"],
            ),
            ([_rule(), _rule()], ["body", "case_rules"]),
            ([_rule(id=f"r{i}") for i in range(51)], ["body", "case_rules"]),
            ({"id": "r"}, ["body", "case_rules"]),
        ],
    )
    async def test_an_invalid_rule_is_a_422_naming_its_field(
        self, tenant: Tenant, rules: Any, loc: list[str | int]
    ) -> None:
        r = await tenant.client.put(SETTINGS, json={"case_rules": rules})

        assert_invalid(r, loc)
        assert (await get_json(tenant.client, SETTINGS))["case_rules"] == DEFAULT_CASE_RULES

    async def test_a_rule_id_used_twice_is_named(self, tenant: Tenant) -> None:
        r = await tenant.client.put(SETTINGS, json={"case_rules": [_rule(), _rule()]})

        body = assert_invalid(r, ["body", "case_rules"])
        assert body["errors"][0]["msg"] == "the rule id 'r' is used twice"


class TestPatchCaseRules:
    async def test_a_patch_replaces_the_list_and_null_restores_the_defaults(
        self, tenant: Tenant
    ) -> None:
        replaced = await tenant.client.patch(SETTINGS, json={"case_rules": [_rule()]})
        restored = await tenant.client.patch(SETTINGS, json={"case_rules": None})

        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["case_rules"] == [{**_rule(), "roles": None}]
        assert restored.json()["case_rules"] == DEFAULT_CASE_RULES

    async def test_an_invalid_rule_in_a_patch_is_a_422_naming_its_field(
        self, tenant: Tenant
    ) -> None:
        r = await tenant.client.patch(SETTINGS, json={"case_rules": [_rule(sla_hours=-1)]})

        assert_invalid(r, ["body", "case_rules", 0, "detractor", "sla_hours"])
