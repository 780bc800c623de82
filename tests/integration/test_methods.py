"""Counting methods and benchmarks on GET /v1/nps and GET /v1/accounts/{id}/nps."""

from typing import Any

import pytest

from app.scoring import CIMethod, Tally
from tests.support.api import Answer, answers_for, put_settings, report
from tests.support.clock import WINDOW, at
from tests.support.expected import (
    DEFAULT_JOB_LEVEL_WEIGHTS,
    DEFAULT_ROLE_WEIGHTS,
    MANUFACTURING,
    TECHNOLOGY,
    expected_groups,
    expected_score,
    role_weighted_echo,
    unknown_benchmark,
    weighted_score,
)
from tests.support.harness import Tenant
from tests.support.problems import assert_invalid

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
SPEC_PAIRS = [(score, DEFAULT_ROLE_WEIGHTS[role]) for _, role, score in SPEC_PEOPLE]
EQUAL_ACCOUNTS = {
    "role": None,
    "job_level": None,
    "account": "equal",
    "accounts_without_revenue": None,
}


def spec_answers() -> list[Answer]:
    return [
        Answer(sid, "acme", score, at(10 + i), role=role)
        for i, (sid, role, score) in enumerate(SPEC_PEOPLE)
    ]


class TestRoleWeighted:
    async def test_spec_example(self, tenant: Tenant) -> None:
        await tenant.db.answers(spec_answers())

        body = await report(tenant.client, method="role_weighted")

        assert body == {
            "method": "role_weighted",
            "from": WINDOW["from"],
            "to": WINDOW["to"],
            "filters": {},
            "score": weighted_score(SPEC_PAIRS),
            "groups": None,
            "weights": role_weighted_echo(),
            "benchmark": None,
        }
        score = body["score"]
        assert (score["nps"], round(score["n_effective"], 2), score["unweighted"]["nps"]) == (
            pytest.approx(50.0, abs=1e-9),
            6.53,
            pytest.approx(25.0, abs=1e-9),
        )
        assert (score["n"], score["precision"]) == (8, "low")

    async def test_weighted_interval_is_adjusted_wald_whatever_ci_method(
        self, tenant: Tenant
    ) -> None:
        await tenant.db.answers(spec_answers())

        body = await report(
            tenant.client, method="role_weighted", ci_method="score", confidence="0.9"
        )

        assert body["score"] == weighted_score(SPEC_PAIRS, ci_method=CIMethod.SCORE, confidence=0.9)
        assert body["score"]["ci"]["method"] == "adjusted_wald"
        assert body["score"]["unweighted"]["ci"]["method"] == "score"

    async def test_job_level_weights_multiply_role_weights(self, tenant: Tenant) -> None:
        await put_settings(
            tenant.client,
            {"role_weights": {"user": 0.5}, "job_level_weights": {"executive": 2}},
        )
        people = [
            ("e1", "decision_maker", "executive", 10, 3 * 2),
            ("e2", "user", "executive", 0, 0.5 * 2),
            ("m1", "influencer", "manager", 8, 2 * 1),
            ("i1", "user", "individual_contributor", 9, 0.5 * 1),
            ("o1", "other", "other", 6, 1 * 1),
        ]
        await tenant.db.answers(
            [
                Answer(sid, "acme", score, at(5 + i), role=role, job_level=level)
                for i, (sid, role, level, score, _) in enumerate(people)
            ],
        )

        body = await report(tenant.client, method="role_weighted")

        assert body["score"] == weighted_score([(score, w) for *_, score, w in people])
        assert body["weights"] == role_weighted_echo(
            role={"user": 0.5}, job_level={"executive": 2.0}
        )

    async def test_weights_come_from_the_snapshot_at_answering(self, tenant: Tenant) -> None:
        await tenant.db.answers([Answer("pat", "acme", 0, at(5), role="user")])
        # Promoted since: the stored answer keeps role user (weight 1).
        r = await tenant.client.put(
            "/v1/stakeholders/pat", json={"account_id": "acme", "role": "decision_maker"}
        )
        assert r.status_code == 200, r.text
        await tenant.db.answers([Answer("dm", "acme", 10, at(6), role="decision_maker")])

        body = await report(tenant.client, method="role_weighted")

        assert body["score"] == weighted_score([(0, 1.0), (10, 3.0)])

    async def test_account_report(self, tenant: Tenant) -> None:
        await tenant.db.answers(spec_answers())

        body = await report(tenant.client, "/v1/accounts/acme/nps", method="role_weighted")

        assert body["method"] == "role_weighted"
        assert body["score"] == weighted_score(SPEC_PAIRS)
        assert body["weights"] == role_weighted_echo()


class TestRespondentAndLatest:
    async def test_same_data_under_both_methods(self, tenant: Tenant) -> None:
        await tenant.db.answers(
            [
                Answer("s1", "acme", 2, at(5)),
                Answer("s1", "acme", 10, at(30)),
                Answer("s1", "acme", 5, at(20)),
                Answer("s2", "acme", 8, at(40)),
            ],
        )

        for path in ("/v1/nps", "/v1/accounts/acme/nps"):
            respondent = await report(tenant.client, path, method="respondent")
            latest = await report(tenant.client, path, method="latest_per_stakeholder")

            assert respondent["score"] == expected_score(1, 1, 2), path
            assert latest["score"] == expected_score(1, 1, 0), path
            assert respondent["weights"] is None
            assert latest["weights"] is None


# decision_maker_first: (account, stakeholder, role, score, day); day < 0 is before the window.
DMF = [
    ("acme", "a-dm", "decision_maker", 3, 1),
    *[("acme", f"a-u{i}", "user", 10, 2 + i) for i in range(4)],
    ("globex", "g-in1", "influencer", 9, 10),
    ("globex", "g-in2", "influencer", 7, 11),
    ("globex", "g-u1", "user", 0, 12),
    ("globex", "g-u2", "user", 0, 13),
    ("initech", "i-u1", "user", 10, 20),
    ("initech", "i-o1", "other", 5, 21),
    ("hooli", "h-dm", "decision_maker", 10, -10),
    ("hooli", "h-in", "influencer", 2, 30),
    ("hooli", "h-u", "user", 9, 31),
    ("umbrella", "u-dm", "decision_maker", 0, -5),
    ("umbrella", "u-u", "user", 9, 40),
]


class TestDecisionMakerFirst:
    @staticmethod
    async def _seed(tenant: Tenant) -> None:
        await tenant.db.answers(
            [Answer(sid, acct, score, at(day), role=role) for acct, sid, role, score, day in DMF],
        )

    async def test_per_account_fallback(self, tenant: Tenant) -> None:
        await self._seed(tenant)

        body = await report(tenant.client, method="decision_maker_first", group_by="account")

        assert body["method"] == "decision_maker_first"
        assert body["weights"] is None
        # acme: its one decision maker; globex: no decision maker, its influencers; initech:
        # neither, everyone; hooli and umbrella: their decision makers answered before the window.
        assert body["groups"] == expected_groups(
            "account_id",
            [
                ("acme", (0, 0, 1)),
                ("globex", (1, 1, 0)),
                ("hooli", (0, 0, 1)),
                ("initech", (1, 0, 1)),
                ("umbrella", (1, 0, 0)),
            ],
        )
        assert body["score"] == expected_score(3, 1, 3)

    async def test_a_detractor_decision_maker_among_promoter_users(self, tenant: Tenant) -> None:
        await self._seed(tenant)

        dmf = await report(tenant.client, "/v1/accounts/acme/nps", method="decision_maker_first")
        latest = await report(tenant.client, "/v1/accounts/acme/nps")

        assert dmf["method"] == "decision_maker_first"
        assert dmf["score"] == expected_score(0, 0, 1)
        assert dmf["score"]["nps"] == -100.0
        assert dmf["weights"] is None
        assert latest["score"] == expected_score(4, 0, 1)

    async def test_filters_apply_before_the_choice(self, tenant: Tenant) -> None:
        await self._seed(tenant)

        users = await report(tenant.client, method="decision_maker_first", role="user")

        # Only users are left, so every account keeps all of them.
        assert users["score"] == expected_score(7, 0, 2)
        assert users["filters"] == {"role": "user"}


class TestAccountAsUnit:
    async def test_account_means_are_classified_with_the_thresholds(self, tenant: Tenant) -> None:
        scores = {
            "a-pass": [8, 9],  # 8.5: passive
            "a-prom": [10, 8],  # 9.0: promoter
            "a-seven": [8, 6],  # 7.0: passive
            "a-det": [7] * 99 + [6],  # 6.99: detractor
            "a-low": [0],
        }
        answers = [
            Answer(f"{acct}-{i}", acct, score, at(10 + i / 1000))
            for acct, values in scores.items()
            for i, score in enumerate(values)
        ]
        # a-prom-1's earlier 0 is replaced by their latest 8; a-old answered before the window.
        answers += [Answer("a-prom-1", "a-prom", 0, at(5)), Answer("a-old-0", "a-old", 10, at(-3))]
        await tenant.db.answers(answers)

        body = await report(tenant.client, method="account_as_unit")

        assert body == {
            "method": "account_as_unit",
            "from": WINDOW["from"],
            "to": WINDOW["to"],
            "filters": {},
            "score": expected_score(1, 2, 2),
            "groups": None,
            "weights": EQUAL_ACCOUNTS,
            "benchmark": None,
        }

    async def test_filters_apply_before_the_means(self, tenant: Tenant) -> None:
        await tenant.db.answers(
            [
                Answer("f1-dm", "f1", 10, at(1), role="decision_maker"),
                Answer("f1-u", "f1", 0, at(2), role="user"),
                Answer("f2-u", "f2", 9, at(3), role="user"),
                Answer("f3-dm", "f3", 6, at(4), role="decision_maker"),
            ],
        )

        every = await report(tenant.client, method="account_as_unit")
        deciders = await report(tenant.client, method="account_as_unit", role="decision_maker")

        assert every["score"] == expected_score(1, 0, 2)
        assert deciders["score"] == expected_score(1, 0, 1)
        assert deciders["filters"] == {"role": "decision_maker"}

    async def test_role_weighted_account_mean(self, tenant: Tenant) -> None:
        await tenant.db.answers(
            [
                # plain mean 5.0 (detractor); weighted (3*10 + 2 + 3) / 5 = 7.0 (passive)
                Answer("m1-dm", "m1", 10, at(1), role="decision_maker"),
                Answer("m1-u1", "m1", 2, at(2), role="user"),
                Answer("m1-u2", "m1", 3, at(3), role="user"),
                # plain mean 8.0 (passive); weighted (3*10 + 6) / 4 = 9.0 (promoter)
                Answer("m2-dm", "m2", 10, at(4), role="decision_maker"),
                Answer("m2-u", "m2", 6, at(5), role="user"),
            ],
        )

        plain = await report(tenant.client, method="account_as_unit")
        weighted = await report(
            tenant.client, method="account_as_unit", account_mean="role_weighted"
        )

        assert plain["score"] == expected_score(0, 1, 1)
        assert weighted["score"] == expected_score(1, 1, 0)
        assert weighted["weights"] == {
            "role": DEFAULT_ROLE_WEIGHTS,
            "job_level": DEFAULT_JOB_LEVEL_WEIGHTS,
            "account": "equal",
            "accounts_without_revenue": None,
        }

    async def test_revenue_weights(self, tenant: Tenant) -> None:
        revenue = {
            "r1": "1000000.00",
            "r2": "3000000.00",
            "r3": None,
            "r4": "0.00",
            "r5": "1000000.00",
            "r6": None,  # no answers: neither counted nor listed
        }
        for account_id, amount in revenue.items():
            await tenant.db.account(account_id, annual_revenue=amount)
        await tenant.db.answers(
            [
                Answer("r1-a", "r1", 10, at(1)),
                Answer("r2-a", "r2", 2, at(2)),
                Answer("r3-a", "r3", 9, at(3)),
                Answer("r4-a", "r4", 7, at(4)),
                Answer("r5-a", "r5", 8, at(5)),
            ],
        )

        body = await report(tenant.client, method="account_as_unit", weight="revenue")

        # Weighted over r1, r2, r5 only: NPS 100 * (1 - 3) / 5 = -40, n_eff 25 / 11.
        every = Tally(2, 2, 1)  # r1 r3 | r4 r5 | r2
        assert body["score"] == weighted_score(
            [(10, 1_000_000.0), (2, 3_000_000.0), (8, 1_000_000.0)], raw=every
        )
        assert body["score"]["nps"] == pytest.approx(-40.0, abs=1e-9)
        assert body["score"]["n_effective"] == pytest.approx(25 / 11, abs=1e-9)
        assert body["score"]["unweighted"]["nps"] == pytest.approx(20.0, abs=1e-9)
        assert body["weights"] == {
            "role": None,
            "job_level": None,
            "account": "revenue",
            "accounts_without_revenue": ["r3", "r4"],
        }

    async def test_group_by_segment(self, tenant: Tenant) -> None:
        for account_id, segment in (("e1", "enterprise"), ("e2", "enterprise"), ("s1", "smb")):
            await tenant.db.account(account_id, segment=segment)
        await tenant.db.answers(
            [
                Answer("e1-a", "e1", 10, at(1)),
                Answer("e1-b", "e1", 9, at(2)),
                Answer("e2-a", "e2", 3, at(3)),
                Answer("s1-a", "s1", 8, at(4)),
                Answer("n1-a", "n1", 9, at(5)),
            ],
        )

        body = await report(tenant.client, method="account_as_unit", group_by="segment")

        assert body["groups"] == expected_groups(
            "segment", [("enterprise", (1, 0, 1)), ("smb", (0, 1, 0)), (None, (1, 0, 0))]
        )
        assert body["score"] == expected_score(2, 1, 1)

    async def test_group_by_industry_with_benchmarks(self, tenant: Tenant) -> None:
        industries = {"t1": "technology", "t2": "technology", "t3": "technology"}
        industries |= {"m1": "manufacturing", "m2": "manufacturing"}
        for account_id, industry in industries.items():
            await tenant.db.account(account_id, industry=industry)
        scores = {"t1": 10, "t2": 10, "t3": 8, "m1": 3, "m2": 9, "x1": 9}
        await tenant.db.answers(
            [Answer(f"{a}-p", a, s, at(1 + i)) for i, (a, s) in enumerate(scores.items())],
        )

        body = await report(tenant.client, method="account_as_unit", group_by="industry")

        assert body["groups"] == [
            {
                "key": {"industry": "manufacturing"},
                "score": expected_score(1, 0, 1),
                "account": None,
                "benchmark": {**MANUFACTURING, "position": "below"},
            },
            {
                "key": {"industry": "technology"},
                "score": expected_score(2, 1, 0),
                "account": None,
                "benchmark": {**TECHNOLOGY, "position": "above"},
            },
            {
                "key": {"industry": None},
                "score": expected_score(1, 0, 0),
                "account": None,
                "benchmark": unknown_benchmark(None),
            },
        ]
        assert body["benchmark"] is None

    @pytest.mark.parametrize(
        "params",
        [
            {"account_id": "acme"},
            {"group_by": "role"},
            {"group_by": "job_level"},
            {"group_by": "department"},
            {"group_by": "account"},
            {"group_by": "survey"},
        ],
    )
    async def test_outside_portfolio_views_is_422(
        self, tenant: Tenant, params: dict[str, str]
    ) -> None:
        r = await tenant.client.get(
            "/v1/nps", params={**WINDOW, "method": "account_as_unit", **params}
        )

        assert_invalid(r, ["query", "method"])

    async def test_on_the_account_report_is_422(self, tenant: Tenant) -> None:
        await tenant.db.account("acme")

        r = await tenant.client.get(
            "/v1/accounts/acme/nps", params={**WINDOW, "method": "account_as_unit"}
        )

        assert_invalid(r, ["query", "method"])

    @pytest.mark.parametrize(
        ("params", "loc"),
        [
            ({"weight": "revenue"}, ["query", "weight"]),
            ({"weight": "revenue", "method": "latest_per_stakeholder"}, ["query", "weight"]),
            ({"weight": "revenue", "method": "role_weighted"}, ["query", "weight"]),
            (
                {"account_mean": "role_weighted", "method": "role_weighted"},
                ["query", "account_mean"],
            ),
            ({"account_mean": "role_weighted", "method": "respondent"}, ["query", "account_mean"]),
            ({"weight": "headcount", "method": "account_as_unit"}, ["query", "weight"]),
            ({"account_mean": "median", "method": "account_as_unit"}, ["query", "account_mean"]),
        ],
    )
    async def test_weight_options_need_account_as_unit(
        self, tenant: Tenant, params: dict[str, str], loc: list[str]
    ) -> None:
        r = await tenant.client.get("/v1/nps", params={**WINDOW, **params})

        assert_invalid(r, loc)


class TestWeightsEcho:
    @pytest.mark.parametrize(
        ("params", "weights"),
        [
            ({"method": "respondent"}, None),
            ({"method": "latest_per_stakeholder"}, None),
            ({"method": "decision_maker_first"}, None),
            ({"method": "role_weighted"}, role_weighted_echo()),
            ({"method": "account_as_unit"}, EQUAL_ACCOUNTS),
            (
                {"method": "account_as_unit", "account_mean": "role_weighted", "weight": "revenue"},
                {
                    "role": DEFAULT_ROLE_WEIGHTS,
                    "job_level": DEFAULT_JOB_LEVEL_WEIGHTS,
                    "account": "revenue",
                    "accounts_without_revenue": ["acme"],
                },
            ),
        ],
    )
    async def test_portfolio(
        self, tenant: Tenant, params: dict[str, str], weights: dict[str, Any] | None
    ) -> None:
        await tenant.db.answers(answers_for("p", (1, 1, 1), at(5)))

        body = await report(tenant.client, **params)

        assert body["method"] == params["method"]
        assert body["weights"] == weights

    @pytest.mark.parametrize(
        ("method", "weights"),
        [
            ("respondent", None),
            ("latest_per_stakeholder", None),
            ("decision_maker_first", None),
            ("role_weighted", role_weighted_echo()),
        ],
    )
    async def test_account(
        self, tenant: Tenant, method: str, weights: dict[str, Any] | None
    ) -> None:
        await tenant.db.answers(answers_for("p", (1, 1, 1), at(5)))

        body = await report(tenant.client, "/v1/accounts/acme/nps", method=method)

        assert body["method"] == method
        assert body["weights"] == weights
