"""GET /v1/nps/compare: two periods, or two values of one dimension, and the test of change."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.scoring import Tally
from tests.support.api import Answer, answers_for, get_json
from tests.support.clock import WINDOW, at, minute_end, utc
from tests.support.expected import (
    counts,
    expected_change,
    expected_score,
    expected_weighted_change,
    role_weighted_echo,
    weighted_score,
)
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_invalid, problem

COMPARE = "/v1/nps/compare"
MARCH = {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}


def spec_periods() -> list[Answer]:
    """8/6/4 in March; 14/5/3 in the 31 days before it (29 January to 1 March)."""
    return [
        *answers_for("a", (8, 6, 4), utc(2026, 3, 10)),
        *answers_for("b", (13, 5, 3), utc(2026, 2, 10)),
        Answer("b-first", "acme", 10, utc(2026, 1, 29)),  # the baseline's first instant
        Answer("b-out", "acme", 0, utc(2026, 1, 28, 23, 59, 59)),
        Answer("a-out", "acme", 0, utc(2026, 4, 1)),
    ]


def spec_roles() -> list[Answer]:
    return [
        *answers_for("u", (8, 6, 4), at(5), role="user"),
        *answers_for("d", (14, 5, 3), at(6), role="decision_maker"),
    ]


async def compare(tenant: Tenant, **params: str) -> dict[str, Any]:
    return await get_json(tenant.client, COMPARE, **params)


class TestCompareWindows:
    async def test_spec_example_against_the_previous_period(self, tenant: Tenant) -> None:
        await tenant.db.answers(spec_periods())

        body = await compare(tenant, **MARCH)

        assert body == {
            "method": "latest_per_stakeholder",
            "weights": None,
            "dimension": None,
            "a": {
                "from": "2026-03-01T00:00:00Z",
                "to": "2026-04-01T00:00:00Z",
                "filters": {},
                "score": expected_score(8, 6, 4),
            },
            "b": {
                "from": "2026-01-29T00:00:00Z",
                "to": "2026-03-01T00:00:00Z",
                "filters": {},
                "score": expected_score(14, 5, 3),
            },
            "change": expected_change(Tally(8, 6, 4), Tally(14, 5, 3), previous_start=None),
        }
        change = body["change"]
        # 22.2 against 50: the scores shown differ by 27.8 points; the test says not significant.
        assert round(change["difference"], 1) == -27.8
        assert round(change["adjusted_difference"], 2) == -24.95
        assert (round(change["z"], 3), round(change["p_value"], 3)) == (-1.108, 0.268)
        assert change["significant"] is False
        assert change["previous"] is None

    async def test_explicit_baseline(self, tenant: Tenant) -> None:
        await tenant.db.answers(
            [*spec_periods(), *answers_for("dec", (1, 0, 2), utc(2025, 12, 10))],
        )

        body = await compare(
            tenant,
            baseline_from="2025-12-01T00:00:00Z",
            baseline_to="2026-01-01T00:00:00Z",
            **MARCH,
        )

        assert body["b"] == {
            "from": "2025-12-01T00:00:00Z",
            "to": "2026-01-01T00:00:00Z",
            "filters": {},
            "score": expected_score(1, 0, 2),
        }
        assert body["change"] == expected_change(
            Tally(8, 6, 4), Tally(1, 0, 2), previous_start=None
        )

    async def test_default_periods_are_the_trailing_year_and_the_one_before(
        self, tenant: Tenant
    ) -> None:
        before = datetime.now(UTC)
        await tenant.db.answers(
            [
                Answer("recent", "acme", 10, before - timedelta(days=30)),
                Answer("last-year", "acme", 0, before - timedelta(days=400)),
                Answer("ancient", "acme", 8, before - timedelta(days=800)),
            ],
        )

        body = await compare(tenant)
        after = datetime.now(UTC)

        a_from, a_to = (datetime.fromisoformat(body["a"][k]) for k in ("from", "to"))
        b_from, b_to = (datetime.fromisoformat(body["b"][k]) for k in ("from", "to"))
        # The default end is the end of the minute of the request (a stable instant to poll).
        assert a_to in {minute_end(before), minute_end(after)}
        assert a_to - a_from == timedelta(days=365)
        assert (b_to, b_from) == (a_from, a_from - timedelta(days=365))
        assert body["a"]["score"] == expected_score(1, 0, 0)
        assert body["b"]["score"] == expected_score(0, 0, 1)
        assert body["change"] == expected_change(
            Tally(1, 0, 0), Tally(0, 0, 1), previous_start=None
        )

    async def test_each_period_counts_its_own_latest_answer(self, tenant: Tenant) -> None:
        await tenant.db.answers(
            [
                Answer("s", "acme", 0, utc(2026, 2, 10)),
                Answer("s", "acme", 10, utc(2026, 3, 10)),
                Answer("s", "acme", 8, utc(2026, 3, 20)),
            ],
        )

        latest = await compare(tenant, **MARCH)
        respondent = await compare(tenant, method="respondent", **MARCH)

        assert latest["a"]["score"] == expected_score(0, 1, 0)
        assert latest["b"]["score"] == expected_score(0, 0, 1)
        assert respondent["method"] == "respondent"
        assert counts(respondent["a"]["score"]) == (1, 1, 0)

    async def test_filters_apply_to_both_periods(self, tenant: Tenant) -> None:
        await tenant.db.answers(
            [
                *answers_for("a-u", (2, 0, 1), utc(2026, 3, 10), role="user"),
                *answers_for("a-d", (0, 0, 3), utc(2026, 3, 11), role="decision_maker"),
                *answers_for("b-u", (1, 1, 0), utc(2026, 2, 10), role="user"),
            ],
        )

        body = await compare(tenant, role="user", **MARCH)

        assert (body["a"]["filters"], body["b"]["filters"]) == ({"role": "user"}, {"role": "user"})
        assert body["a"]["score"] == expected_score(2, 0, 1)
        assert body["b"]["score"] == expected_score(1, 1, 0)

    async def test_empty_baseline_has_no_change(self, tenant: Tenant) -> None:
        await tenant.db.answers(answers_for("a", (8, 6, 4), utc(2026, 3, 10)))

        body = await compare(tenant, **MARCH)

        assert body["b"]["score"] == expected_score(0, 0, 0)
        assert body["change"] is None

    async def test_role_weighted(self, tenant: Tenant) -> None:
        await tenant.db.answers(
            [
                Answer("dm", "acme", 10, utc(2026, 3, 10), role="decision_maker"),
                Answer("u", "acme", 0, utc(2026, 3, 11), role="user"),
                Answer("old", "acme", 8, utc(2026, 2, 11), role="influencer"),
            ],
        )

        body = await compare(tenant, method="role_weighted", **MARCH)

        assert body["method"] == "role_weighted"
        assert body["weights"] == role_weighted_echo()
        assert body["a"]["score"] == weighted_score([(10, 3.0), (0, 1.0)])
        assert body["b"]["score"] == weighted_score([(8, 2.0)])
        assert body["change"] == expected_weighted_change(
            [(10, 3.0), (0, 1.0)], [(8, 2.0)], previous_start=None
        )
        # The weighted scores shown, 50 and 0, not the plain ones (0 and 0).
        assert body["change"]["difference"] == 50.0


class TestCompareDimension:
    async def test_users_against_decision_makers(self, tenant: Tenant) -> None:
        await tenant.db.answers(spec_roles())

        body = await compare(tenant, dimension="role", a="user", b="decision_maker", **WINDOW)

        assert body == {
            "method": "latest_per_stakeholder",
            "weights": None,
            "dimension": "role",
            "a": {**WINDOW, "filters": {"role": "user"}, "score": expected_score(8, 6, 4)},
            "b": {
                **WINDOW,
                "filters": {"role": "decision_maker"},
                "score": expected_score(14, 5, 3),
            },
            "change": expected_change(Tally(8, 6, 4), Tally(14, 5, 3), previous_start=None),
        }

    async def test_single_answers_differ_by_the_scores_shown(self, tenant: Tenant) -> None:
        await tenant.db.answers(
            [
                Answer("u", "acme", 0, at(5), role="user"),
                Answer("d", "acme", 10, at(6), role="decision_maker"),
            ]
        )

        body = await compare(tenant, dimension="role", a="user", b="decision_maker", **WINDOW)

        assert (body["a"]["score"]["nps"], body["b"]["score"]["nps"]) == (-100.0, 100.0)
        assert body["change"] == expected_change(
            Tally(0, 0, 1), Tally(1, 0, 0), previous_start=None
        )
        change = body["change"]
        # -100 minus +100; the interval is centred on the adjusted centres' -25 - 25.
        assert (change["difference"], change["adjusted_difference"]) == (-200.0, -50.0)
        assert change["ci"]["low"] < -50.0 < change["ci"]["high"]
        assert change["significant"] is False

    async def test_other_filters_apply_to_both_sides(self, tenant: Tenant) -> None:
        await tenant.db.answers(
            [*spec_roles(), *answers_for("g", (0, 0, 5), at(7), account_id="globex", role="user")],
        )

        body = await compare(
            tenant, dimension="role", a="user", b="decision_maker", account_id="acme", **WINDOW
        )

        assert body["a"]["filters"] == {"account_id": "acme", "role": "user"}
        assert body["b"]["filters"] == {"account_id": "acme", "role": "decision_maker"}
        assert body["a"]["score"] == expected_score(8, 6, 4)
        assert body["b"]["score"] == expected_score(14, 5, 3)

    async def test_segments(self, tenant: Tenant) -> None:
        await tenant.db.account("ent", segment="enterprise")
        await tenant.db.account("small", segment="smb")
        await tenant.db.answers(
            [
                *answers_for("e", (2, 0, 0), at(5), account_id="ent"),
                *answers_for("s", (0, 1, 2), at(5), account_id="small"),
            ],
        )

        body = await compare(tenant, dimension="segment", a="enterprise", b="smb", **WINDOW)

        assert body["dimension"] == "segment"
        assert body["a"]["filters"] == {"segment": "enterprise"}
        assert body["b"]["filters"] == {"segment": "smb"}
        assert body["change"] == expected_change(
            Tally(2, 0, 0), Tally(0, 1, 2), previous_start=None
        )

    async def test_an_empty_side_has_no_change(self, tenant: Tenant) -> None:
        await tenant.db.answers(spec_roles())

        body = await compare(tenant, dimension="role", a="user", b="influencer", **WINDOW)

        assert body["a"]["score"] == expected_score(8, 6, 4)
        assert body["b"]["score"] == expected_score(0, 0, 0)
        assert body["change"] is None


class TestCompareErrors:
    @pytest.mark.parametrize(
        ("params", "loc"),
        [
            ({"dimension": "role", "a": "user"}, ["query", "b"]),
            ({"dimension": "role", "b": "user"}, ["query", "a"]),
            ({"dimension": "stakeholder", "a": "x", "b": "y"}, ["query", "dimension"]),
            ({"to": "2026-01-01T00:00:00Z"}, ["query", "from"]),
            ({"weight": "revenue"}, ["query", "weight"]),
            # The periods before these would start before the year 1.
            ({"from": "1900-01-02T00:00:00Z", "to": "8999-01-01T00:00:00Z"}, ["query", "from"]),
            (
                {
                    "from": "1900-01-02T00:00:00Z",
                    "to": "8999-01-01T00:00:00Z",
                    "baseline_from": "8999-06-01T00:00:00Z",
                },
                ["query", "baseline_from"],
            ),
        ],
    )
    async def test_invalid_query_is_422(
        self, tenant: Tenant, params: dict[str, str], loc: list[str]
    ) -> None:
        r = await tenant.client.get(COMPARE, params={"from": "2026-01-01T00:00:00Z", **params})

        assert_invalid(r, loc)

    @pytest.mark.parametrize(
        "params",
        [
            {"dimension": "role", "a": "user", "b": "user"},
            {"dimension": "role", "a": "user", "b": "decision_maker", "role": "user"},
            {"dimension": "segment", "a": "smb", "b": "enterprise", "segment": "smb"},
            {
                "dimension": "role",
                "a": "user",
                "b": "decision_maker",
                "baseline_from": "2025-01-01T00:00:00Z",
            },
            {
                "dimension": "role",
                "a": "user",
                "b": "decision_maker",
                "baseline_to": "2025-01-01T00:00:00Z",
            },
            # Overlapping periods, partly or wholly.
            {"baseline_from": "2026-02-15T00:00:00Z", "baseline_to": "2026-03-15T00:00:00Z"},
            {"baseline_from": "2026-03-10T00:00:00Z", "baseline_to": "2026-03-20T00:00:00Z"},
            {"baseline_from": "2026-03-01T00:00:00Z", "baseline_to": "2026-04-01T00:00:00Z"},
            {"baseline_from": "2026-02-01T00:00:00Z", "baseline_to": "2026-05-01T00:00:00Z"},
        ],
    )
    async def test_inconsistent_comparison_is_422(
        self, tenant: Tenant, params: dict[str, str]
    ) -> None:
        r = await tenant.client.get(COMPARE, params={**MARCH, **params})

        assert_invalid(r)

    async def test_without_key_is_401(self, tenant: Tenant) -> None:
        request = tenant.client.build_request("GET", COMPARE, params=MARCH)
        del request.headers["Authorization"]

        r = await tenant.client.send(request)

        assert problem(r, 401)["type"] == "/problems/unauthorized"

    async def test_another_workspaces_answers_are_not_counted(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")
        await other.db.answers([*spec_periods(), *spec_roles()])

        periods = await compare(tenant, **MARCH)
        roles = await compare(tenant, dimension="role", a="user", b="decision_maker", **WINDOW)

        for body in (periods, roles):
            assert body["a"]["score"] == expected_score(0, 0, 0)
            assert body["b"]["score"] == expected_score(0, 0, 0)
            assert body["change"] is None
