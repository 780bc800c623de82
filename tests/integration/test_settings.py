"""GET/PUT /v1/settings: defaults, replacement, validation, access, and their effect on scores."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.models import Scope
from app.scoring import CIMethod
from tests.support.api import Answer, answers_for, get_json, put_settings, report
from tests.support.cases import CUSTOM_CASE_RULES, DEFAULT_CASE_RULES
from tests.support.clock import at, minute_end, stamp
from tests.support.expected import (
    DEFAULT_JOB_LEVEL_WEIGHTS,
    DEFAULT_ROLE_WEIGHTS,
    MANUFACTURING,
    TECHNOLOGY,
    Counts,
    counts,
    expected_groups,
    expected_score,
    role_weighted_echo,
    unknown_benchmark,
    weighted_score,
)
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_invalid, problem

BUILT_IN_BENCHMARKS = {
    "manufacturing": {"low": 20.0, "high": 40.0},
    "professional services": {"low": 40.0, "high": 60.0},
    "technology": {"low": 30.0, "high": 50.0},
}
DEFAULTS: dict[str, Any] = {
    "role_weights": DEFAULT_ROLE_WEIGHTS,
    "job_level_weights": DEFAULT_JOB_LEVEL_WEIGHTS,
    "min_n": 5,
    "low_n": 30,
    "default_window_days": 365,
    "default_method": "latest_per_stakeholder",
    "default_ci_method": "adjusted_wald",
    "default_confidence": 0.95,
    "benchmarks": BUILT_IN_BENCHMARKS,
    "role_benchmarks": {},
    "industry_role_benchmarks": {},
    "at_risk": {"nps_below": 0.0, "silent_days": 90},
    "company": None,
    "survey_rules": {
        "resurvey_after_days": 90,
        "after_dismissal_days": 30,
        "after_unanswered_days": 30,
        "max_per_account": None,
    },
    "allowed_origins": [],
    "case_rules": DEFAULT_CASE_RULES,
    "themes": {},
}
# Every field away from its default.
CUSTOM: dict[str, Any] = {
    "role_weights": {"decision_maker": 4.0, "influencer": 2.5, "user": 0.5, "other": 0.25},
    "job_level_weights": {
        "executive": 2.0,
        "director": 1.5,
        "manager": 1.25,
        "individual_contributor": 0.75,
        "other": 0.5,
    },
    "min_n": 3,
    "low_n": 10,
    "default_window_days": 90,
    "default_method": "role_weighted",
    "default_ci_method": "score",
    "default_confidence": 0.9,
    "benchmarks": {**BUILT_IN_BENCHMARKS, "retail": {"low": -10.0, "high": 15.0}},
    "role_benchmarks": {"decision_maker": {"low": 10.0, "high": 30.0}},
    "industry_role_benchmarks": {"retail": {"user": {"low": -20.0, "high": 0.0}}},
    "at_risk": {"nps_below": -20.0, "silent_days": 30},
    "company": "Acme Corporation",
    "survey_rules": {
        "resurvey_after_days": 60,
        "after_dismissal_days": 14,
        "after_unanswered_days": 0,
        "max_per_account": 3,
    },
    "allowed_origins": ["https://app.example.com", "http://localhost:3000"],
    "case_rules": CUSTOM_CASE_RULES,
    "themes": {"pricing": ["price", "Preis", "too expensive"]},
}

# The SPEC's weighted example, one account: (id, role, score).
SPEC_PEOPLE = [
    ("dm1", "decision_maker", 10),
    ("dm2", "decision_maker", 9),
    ("in1", "influencer", 9),
    ("in2", "influencer", 8),
    ("u1", "user", 7),
    ("u2", "user", 6),
    ("u3", "user", 3),
    ("u4", "user", 10),
]


def spec_answers() -> list[Answer]:
    return [
        Answer(sid, "acme", score, at(10 + i), role=role)
        for i, (sid, role, score) in enumerate(SPEC_PEOPLE)
    ]


class TestGetSettings:
    async def test_defaults(self, tenant: Tenant) -> None:
        assert await get_json(tenant.client, "/v1/settings") == DEFAULTS

    @pytest.mark.parametrize("scope", [Scope.READ, Scope.WRITE])
    async def test_read_and_write_keys_are_403(self, tenant: Tenant, scope: Scope) -> None:
        key = await tenant.make_key(scope)
        headers = {"Authorization": f"Bearer {key}"}

        got = await tenant.client.get("/v1/settings", headers=headers)
        put = await tenant.client.put("/v1/settings", json={"min_n": 3}, headers=headers)

        for r in (got, put):
            assert problem(r, 403)["type"] == "/problems/forbidden"
        assert await get_json(tenant.client, "/v1/settings") == DEFAULTS

    async def test_without_key_is_401(self, tenant: Tenant) -> None:
        for method, body in (("GET", None), ("PUT", {"min_n": 3})):
            request = tenant.client.build_request(method, "/v1/settings", json=body)
            del request.headers["Authorization"]

            r = await tenant.client.send(request)

            assert problem(r, 401)["type"] == "/problems/unauthorized"

    async def test_workspaces_have_their_own_settings(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")

        await put_settings(tenant.client, CUSTOM)

        assert await get_json(other.client, "/v1/settings") == DEFAULTS
        assert await get_json(tenant.client, "/v1/settings") == CUSTOM


class TestPutSettings:
    async def test_every_field(self, tenant: Tenant) -> None:
        assert await put_settings(tenant.client, CUSTOM) == CUSTOM
        assert await get_json(tenant.client, "/v1/settings") == CUSTOM

    async def test_empty_body_gives_the_defaults(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, CUSTOM)

        assert await put_settings(tenant.client, {}) == DEFAULTS
        assert await get_json(tenant.client, "/v1/settings") == DEFAULTS

    async def test_partial_weights_keep_the_other_defaults(self, tenant: Tenant) -> None:
        body = await put_settings(
            tenant.client,
            {"role_weights": {"decision_maker": 5}, "job_level_weights": {"manager": 0.5}},
        )

        want = {
            **DEFAULTS,
            "role_weights": {**DEFAULT_ROLE_WEIGHTS, "decision_maker": 5.0},
            "job_level_weights": {**DEFAULT_JOB_LEVEL_WEIGHTS, "manager": 0.5},
        }
        assert body == want
        assert await get_json(tenant.client, "/v1/settings") == want

    async def test_put_replaces_rather_than_merges(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, {"role_weights": {"user": 2}, "min_n": 3, "low_n": 10})

        body = await put_settings(tenant.client, {"low_n": 20})

        assert body == {**DEFAULTS, "low_n": 20}
        assert await get_json(tenant.client, "/v1/settings") == {**DEFAULTS, "low_n": 20}

    async def test_industry_names_are_normalised(self, tenant: Tenant) -> None:
        body = await put_settings(
            tenant.client,
            {
                "benchmarks": {
                    "Professional_Services ": {"low": 10, "high": 20},
                    "  Health-Care   Tech": {"low": -100, "high": 100},
                }
            },
        )

        assert body["benchmarks"] == {
            **BUILT_IN_BENCHMARKS,
            "professional services": {"low": 10.0, "high": 20.0},
            "health care tech": {"low": -100.0, "high": 100.0},
        }

    async def test_null_removes_a_built_in_industry(self, tenant: Tenant) -> None:
        body = await put_settings(tenant.client, {"benchmarks": {"Manufacturing": None}})

        assert body["benchmarks"] == {
            "professional services": {"low": 40.0, "high": 60.0},
            "technology": {"low": 30.0, "high": 50.0},
        }

    async def test_low_n_may_equal_min_n(self, tenant: Tenant) -> None:
        body = await put_settings(tenant.client, {"min_n": 7, "low_n": 7})

        assert (body["min_n"], body["low_n"]) == (7, 7)

    @pytest.mark.parametrize(
        "fields",
        [
            {"default_window_days": 1},
            {"default_window_days": 3650},
            {"default_confidence": 0.5},
            {"default_confidence": 0.999},
            {"benchmarks": {"technology": {"low": -100, "high": 100}}},
            {"benchmarks": {"technology": {"low": 45, "high": 45}}},
            {"at_risk": {"nps_below": -100, "silent_days": 1}},
            {"at_risk": {"nps_below": 100, "silent_days": 3650}},
            {"survey_rules": {"resurvey_after_days": 0, "max_per_account": 1}},
            {
                "survey_rules": {
                    "resurvey_after_days": 3650,
                    "after_dismissal_days": 3650,
                    "after_unanswered_days": 3650,
                    "max_per_account": 1_000_000,
                }
            },
        ],
    )
    async def test_bounds_are_accepted(self, tenant: Tenant, fields: dict[str, Any]) -> None:
        body = await put_settings(tenant.client, fields)

        for name, value in fields.items():
            if name == "benchmarks":
                assert body[name]["technology"] == value["technology"]
            elif name == "survey_rules":
                assert body[name] == {**DEFAULTS[name], **value}
            else:
                assert body[name] == value


class TestSettingsValidation:
    @pytest.mark.parametrize(
        ("fields", "loc"),
        [
            ({"role_weights": {"user": 0}}, ["body", "role_weights", "user"]),
            # Out of bounds, a sum of squared weights would overflow or vanish.
            ({"role_weights": {"user": 1e200}}, ["body", "role_weights", "user"]),
            ({"role_weights": {"user": 1e-320}}, ["body", "role_weights", "user"]),
            ({"role_weights": {"user": -1}}, ["body", "role_weights", "user"]),
            ({"role_weights": {"user": "3"}}, ["body", "role_weights", "user"]),
            ({"role_weights": {"user": True}}, ["body", "role_weights", "user"]),
            ({"role_weights": {"ceo": 2}}, ["body", "role_weights", "ceo"]),
            ({"job_level_weights": {"manager": 0}}, ["body", "job_level_weights", "manager"]),
            ({"job_level_weights": {"manager": -0.5}}, ["body", "job_level_weights", "manager"]),
            ({"job_level_weights": {"intern": 1}}, ["body", "job_level_weights", "intern"]),
            ({"min_n": 0}, ["body", "min_n"]),
            ({"min_n": 10, "low_n": 9}, ["body", "low_n"]),
            ({"low_n": 4}, ["body", "low_n"]),  # below the default min_n of 5
            ({"default_window_days": 0}, ["body", "default_window_days"]),
            ({"default_window_days": 3651}, ["body", "default_window_days"]),
            ({"default_confidence": 0.4}, ["body", "default_confidence"]),
            ({"default_confidence": 1.0}, ["body", "default_confidence"]),
            ({"default_method": "account_as_unit"}, ["body", "default_method"]),
            ({"default_method": "bogus"}, ["body", "default_method"]),
            ({"default_ci_method": "bogus"}, ["body", "default_ci_method"]),
            (
                {"at_risk": {"nps_below": 101, "silent_days": 90}},
                ["body", "at_risk", "nps_below"],
            ),
            ({"at_risk": {"nps_below": 0, "silent_days": 0}}, ["body", "at_risk", "silent_days"]),
            (
                {"at_risk": {"nps_below": 0, "silent_days": 3651}},
                ["body", "at_risk", "silent_days"],
            ),
            (
                {"survey_rules": {"resurvey_after_days": -1}},
                ["body", "survey_rules", "resurvey_after_days"],
            ),
            (
                {"survey_rules": {"after_dismissal_days": 3651}},
                ["body", "survey_rules", "after_dismissal_days"],
            ),
            (
                {"survey_rules": {"after_unanswered_days": "30"}},
                ["body", "survey_rules", "after_unanswered_days"],
            ),
            (
                {"survey_rules": {"max_per_account": 0}},
                ["body", "survey_rules", "max_per_account"],
            ),
            ({"survey_rules": {"per_person": 1}}, ["body", "survey_rules", "per_person"]),
        ],
    )
    async def test_invalid_field_is_422(
        self, tenant: Tenant, fields: dict[str, Any], loc: list[str]
    ) -> None:
        r = await tenant.client.put("/v1/settings", json=fields)

        assert_invalid(r, loc)
        assert await get_json(tenant.client, "/v1/settings") == DEFAULTS

    @pytest.mark.parametrize(
        "bounds",
        [
            {"low": 60, "high": 50},
            {"low": 40, "high": 101},
            {"low": -101, "high": 0},
            {"low": "30", "high": 50},
        ],
    )
    async def test_invalid_benchmark_is_422(self, tenant: Tenant, bounds: dict[str, Any]) -> None:
        r = await tenant.client.put("/v1/settings", json={"benchmarks": {"technology": bounds}})

        body = assert_invalid(r)
        # The design fixes the field, not whether the pair or the bound is named.
        for loc in (e["loc"] for e in body["errors"]):
            assert loc[:3] == ["body", "benchmarks", "technology"], body
        assert await get_json(tenant.client, "/v1/settings") == DEFAULTS


class TestSettingsEffects:
    async def test_min_n_and_low_n_set_the_precision_flag(self, tenant: Tenant) -> None:
        await tenant.db.answers(answers_for("p", (2, 1, 1), at(5)))
        assert (await report(tenant.client))["score"]["precision"] == "insufficient"

        await put_settings(tenant.client, {"min_n": 1, "low_n": 4})
        first = await report(tenant.client)
        await put_settings(tenant.client, {"min_n": 2, "low_n": 10})
        second = await report(tenant.client)
        account = await report(tenant.client, "/v1/accounts/acme/nps")

        assert first["score"] == expected_score(2, 1, 1, min_n=1, low_n=4)
        assert first["score"]["precision"] == "ok"
        assert second["score"]["precision"] == "low"
        assert account["score"]["precision"] == "low"

    async def test_role_weights_change_scores_not_responses(self, tenant: Tenant) -> None:
        await tenant.db.answers(spec_answers())
        stored = await get_json(tenant.client, "/v1/responses", limit="200")
        pairs = [(score, DEFAULT_ROLE_WEIGHTS[role]) for _, role, score in SPEC_PEOPLE]
        before = await report(tenant.client, method="role_weighted")

        weights = {"decision_maker": 1.0, "influencer": 1.0, "user": 2.0}
        await put_settings(tenant.client, {"role_weights": weights})
        after = await report(tenant.client, method="role_weighted")

        assert before["score"] == weighted_score(pairs)
        reweighted = [
            (score, {**DEFAULT_ROLE_WEIGHTS, **weights}[r]) for _, r, score in SPEC_PEOPLE
        ]
        assert after["score"] == weighted_score(reweighted)
        assert after["weights"] == role_weighted_echo(role=weights)
        assert after["score"]["nps"] != before["score"]["nps"]
        assert await get_json(tenant.client, "/v1/responses", limit="200") == stored

    async def test_default_method_is_used_and_echoed(self, tenant: Tenant) -> None:
        await tenant.db.answers(
            [Answer("s1", "acme", 0, at(5)), Answer("s1", "acme", 10, at(6))],
        )

        await put_settings(tenant.client, {"default_method": "respondent"})
        respondent = await report(tenant.client)
        account = await report(tenant.client, "/v1/accounts/acme/nps")
        asked = await report(tenant.client, method="latest_per_stakeholder")

        assert respondent["method"] == "respondent"
        assert respondent["score"] == expected_score(1, 0, 1)
        assert respondent["weights"] is None
        assert account["method"] == "respondent"
        assert counts(account["score"]) == (1, 0, 1)
        assert asked["method"] == "latest_per_stakeholder"
        assert asked["score"] == expected_score(1, 0, 0)

        await put_settings(tenant.client, {"default_method": "role_weighted"})
        weighted = await report(tenant.client)

        assert weighted["method"] == "role_weighted"
        assert weighted["weights"] == role_weighted_echo()
        assert weighted["score"] == weighted_score([(10, 1.0)])

    async def test_default_interval_options(self, tenant: Tenant) -> None:
        await tenant.db.answers(answers_for("p", (5, 3, 2), at(5)))

        await put_settings(tenant.client, {"default_ci_method": "score", "default_confidence": 0.9})
        body = await report(tenant.client)
        asked = await report(tenant.client, ci_method="wald", confidence="0.95")

        assert body["score"] == expected_score(5, 3, 2, ci_method=CIMethod.SCORE, confidence=0.9)
        assert asked["score"] == expected_score(5, 3, 2, ci_method=CIMethod.WALD)

    async def test_default_window_days(self, tenant: Tenant) -> None:
        now = datetime.now(UTC)
        await tenant.db.answers(
            [
                Answer("recent", "acme", 9, now - timedelta(days=20)),
                Answer("older", "acme", 0, now - timedelta(days=40)),
            ],
        )

        await put_settings(tenant.client, {"default_window_days": 30})
        r = await tenant.client.get("/v1/nps")
        after = datetime.now(UTC)
        only_to = await get_json(tenant.client, "/v1/nps", to="2026-04-01T00:00:00Z")

        assert r.status_code == 200, r.text
        body = r.json()
        start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
        assert end - start == timedelta(days=30)
        # The default end is the end of the minute of the request (a stable instant to poll).
        assert end in {minute_end(now), minute_end(after)}
        assert body["score"] == expected_score(1, 0, 0)
        assert only_to["from"] == stamp(datetime(2026, 3, 2, tzinfo=UTC))
        assert only_to["to"] == "2026-04-01T00:00:00Z"

    async def test_settings_of_another_workspace_do_not_apply(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")
        await tenant.db.answers(answers_for("p", (2, 1, 1), at(5)))
        await put_settings(other.client, {"min_n": 1, "low_n": 2, "default_method": "respondent"})

        body = await report(tenant.client)

        assert body["method"] == "latest_per_stakeholder"
        assert body["score"] == expected_score(2, 1, 1)


class TestBenchmarks:
    @pytest.mark.parametrize(
        ("tally", "position"),
        [
            ((1, 3, 0), "below"),  # 25
            ((3, 7, 0), "within"),  # 30, the low end
            ((2, 3, 0), "within"),  # 40
            ((1, 1, 0), "within"),  # 50, the high end
            ((3, 2, 0), "above"),  # 60
        ],
    )
    async def test_account_position(self, tenant: Tenant, tally: Counts, position: str) -> None:
        await tenant.db.account("acct", industry="technology")
        await tenant.db.answers(answers_for("p", tally, at(5), account_id="acct"))

        body = await report(tenant.client, "/v1/accounts/acct/nps")

        assert body["score"] == expected_score(*tally)
        assert body["benchmark"] == {**TECHNOLOGY, "position": position}

    @pytest.mark.parametrize("industry", ["healthcare", None])
    async def test_industry_without_a_range_is_unknown_benchmark(
        self, tenant: Tenant, industry: str | None
    ) -> None:
        await tenant.db.account("acct", industry=industry)
        await tenant.db.answers(answers_for("p", (3, 2, 0), at(5), account_id="acct"))

        body = await report(tenant.client, "/v1/accounts/acct/nps")

        assert body["benchmark"] == unknown_benchmark(industry)

    async def test_no_responses_is_unknown_benchmark(self, tenant: Tenant) -> None:
        await tenant.db.account("acct", industry="technology")

        body = await report(tenant.client, "/v1/accounts/acct/nps")

        assert body["score"]["nps"] is None
        assert body["benchmark"] == {**TECHNOLOGY, "position": "unknown"}

    async def test_workspace_override_changes_the_position(self, tenant: Tenant) -> None:
        await tenant.db.account("tech", industry="technology")
        await tenant.db.account("care", industry="healthcare")
        await tenant.db.account("fab", industry="manufacturing")
        await tenant.db.answers(
            [
                *answers_for("t", (1, 3, 0), at(5), account_id="tech"),  # 25
                *answers_for("c", (3, 2, 0), at(5), account_id="care"),  # 60
                *answers_for("f", (1, 1, 0), at(5), account_id="fab"),  # 50
            ],
        )
        assert (await report(tenant.client, "/v1/accounts/tech/nps"))["benchmark"] == {
            **TECHNOLOGY,
            "position": "below",
        }

        await put_settings(
            tenant.client,
            {
                "benchmarks": {
                    "technology": {"low": 10, "high": 20},
                    "Health_Care": {"low": 50, "high": 70},
                    "manufacturing": None,
                }
            },
        )
        await tenant.db.account("care2", industry="health care")
        await tenant.db.answers(answers_for("c2", (3, 2, 0), at(5), account_id="care2"))

        tech = await report(tenant.client, "/v1/accounts/tech/nps")
        care = await report(tenant.client, "/v1/accounts/care/nps")
        care2 = await report(tenant.client, "/v1/accounts/care2/nps")
        fab = await report(tenant.client, "/v1/accounts/fab/nps")

        assert tech["benchmark"] == {
            "industry": "technology",
            "low": 10.0,
            "high": 20.0,
            "position": "above",
        }
        # Normalising never splits words: "healthcare" and "health care" differ.
        assert care["benchmark"] == unknown_benchmark("healthcare")
        assert care2["benchmark"] == {
            "industry": "health care",
            "low": 50.0,
            "high": 70.0,
            "position": "within",
        }
        assert fab["benchmark"] == unknown_benchmark("manufacturing")

    async def test_portfolio_industry_filter_and_groups(self, tenant: Tenant) -> None:
        await tenant.db.account("tech", industry="technology")
        await tenant.db.account("fab", industry="manufacturing")
        await tenant.db.answers(
            [
                *answers_for("t", (1, 3, 0), at(5), account_id="tech"),
                *answers_for("f", (1, 0, 0), at(5), account_id="fab"),
            ],
        )

        everyone = await report(tenant.client)
        tech = await report(tenant.client, industry="technology")
        care = await report(tenant.client, industry="healthcare")
        by_industry = await report(tenant.client, group_by="industry")
        by_role = await report(tenant.client, group_by="role")

        assert everyone["benchmark"] is None
        assert tech["score"] == expected_score(1, 3, 0)
        assert tech["benchmark"] == {**TECHNOLOGY, "position": "below"}
        assert care["score"]["n"] == 0
        assert care["benchmark"] == unknown_benchmark("healthcare")
        assert by_industry["benchmark"] is None
        assert by_industry["groups"] == [
            {
                "key": {"industry": "manufacturing"},
                "score": expected_score(1, 0, 0),
                "account": None,
                "benchmark": {**MANUFACTURING, "position": "above"},
            },
            {
                "key": {"industry": "technology"},
                "score": expected_score(1, 3, 0),
                "account": None,
                "benchmark": {**TECHNOLOGY, "position": "below"},
            },
        ]
        assert by_role["groups"] == expected_groups("role", [("other", (2, 3, 0))])

    async def test_another_workspaces_override_does_not_apply(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")
        await put_settings(other.client, {"benchmarks": {"technology": {"low": 10, "high": 20}}})
        await tenant.db.account("tech", industry="technology")
        await tenant.db.answers(answers_for("t", (1, 3, 0), at(5), account_id="tech"))

        body = await report(tenant.client, "/v1/accounts/tech/nps")

        assert body["benchmark"] == {**TECHNOLOGY, "position": "below"}
