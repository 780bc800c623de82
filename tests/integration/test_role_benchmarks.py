"""Where each role stands (issue 15, section 3): role ranges, per industry, falling back to the
industry range, on GET /v1/nps?group_by=role, the account report's role breakdown and
GET /v1/drivers?group_by=role. Expected standings are worked out by hand below."""

from typing import Any

import pytest_asyncio

from tests.support.api import Answer, put_settings, report
from tests.support.clock import at
from tests.support.harness import Tenant

# acme (technology): decision makers 10, 9; users 3, 8; other 7.
# globex (retail): decision maker 6; user 10.
ANSWERS = [
    ("a-dm1", "acme", 10, "decision_maker"),
    ("a-dm2", "acme", 9, "decision_maker"),
    ("a-u1", "acme", 3, "user"),
    ("a-u2", "acme", 8, "user"),
    ("a-o1", "acme", 7, "other"),
    ("g-dm1", "globex", 6, "decision_maker"),
    ("g-u1", "globex", 10, "user"),
]
SETTINGS = {
    "role_benchmarks": {"decision_maker": {"low": 20, "high": 50}},
    "industry_role_benchmarks": {"Technology": {"user": {"low": -60, "high": -40}}},
}


def standing(
    role: str | None,
    industry: str | None,
    bounds: tuple[float, float] | None,
    position: str,
    source: str | None,
) -> dict[str, Any]:
    return {
        "industry": industry,
        "role": role,
        "low": None if bounds is None else bounds[0],
        "high": None if bounds is None else bounds[1],
        "position": position,
        "source": source,
    }


@pytest_asyncio.fixture(loop_scope="session")
async def ranked(tenant: Tenant) -> Tenant:
    await tenant.db.account("acme", industry="technology")
    await tenant.db.account("globex", industry="retail")
    await tenant.db.answers(
        [
            Answer(sid, account, score, at(5 + i), role=role)
            for i, (sid, account, score, role) in enumerate(ANSWERS)
        ]
    )
    await put_settings(tenant.client, SETTINGS)
    return tenant


def by_role(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {g["key"]["role"]: g for g in groups}


class TestSettings:
    async def test_role_tables_are_echoed_with_industries_normalised(self, ranked: Tenant) -> None:
        r = await ranked.client.get("/v1/settings")
        body = r.json()
        assert body["role_benchmarks"] == {"decision_maker": {"low": 20.0, "high": 50.0}}
        assert body["industry_role_benchmarks"] == {
            "technology": {"user": {"low": -60.0, "high": -40.0}}
        }

    async def test_an_unknown_role_or_an_inverted_range_is_refused(self, tenant: Tenant) -> None:
        for body in (
            {"role_benchmarks": {"buyer": {"low": 0, "high": 10}}},
            {"role_benchmarks": {"user": {"low": 10, "high": 0}}},
            {"industry_role_benchmarks": {"technology": {"user": {"low": "1", "high": 2}}}},
        ):
            r = await tenant.client.put("/v1/settings", json=body)
            assert r.status_code == 422, (body, r.text)


class TestNpsByRole:
    async def test_across_industries_only_role_ranges_apply(self, ranked: Tenant) -> None:
        groups = by_role((await report(ranked.client, group_by="role"))["groups"])
        # decision makers 10, 9, 6: P2 D1 -> 33.3, within [20, 50] (their role range).
        assert groups["decision_maker"]["score"]["nps"] == 100 * (2 - 1) / 3
        assert groups["decision_maker"]["benchmark"] == standing(
            "decision_maker", None, (20.0, 50.0), "within", "role"
        )
        # users 3, 8, 10: no role range, no industry to fall back to.
        assert groups["user"]["benchmark"] == standing("user", None, None, "unknown", None)

    async def test_within_an_industry_the_most_specific_range_wins(self, ranked: Tenant) -> None:
        body = await report(ranked.client, group_by="role", industry="technology")
        groups = by_role(body["groups"])
        # decision makers 10, 9 -> 100, above their role range [20, 50].
        assert groups["decision_maker"]["benchmark"] == standing(
            "decision_maker", "technology", (20.0, 50.0), "above", "role"
        )
        # users 3, 8 -> -50, within technology's user range [-60, -40].
        assert groups["user"]["score"]["nps"] == -50.0
        assert groups["user"]["benchmark"] == standing(
            "user", "technology", (-60.0, -40.0), "within", "industry_role"
        )
        # other 7 -> 0: no role range, so technology's built-in range [30, 50]: below.
        assert groups["other"]["benchmark"] == standing(
            "other", "technology", (30.0, 50.0), "below", "industry"
        )

    async def test_an_industry_without_any_range_leaves_users_unknown(self, ranked: Tenant) -> None:
        groups = by_role(
            (await report(ranked.client, group_by="role", industry="retail"))["groups"]
        )
        assert groups["decision_maker"]["benchmark"] == standing(
            "decision_maker", "retail", (20.0, 50.0), "below", "role"
        )
        assert groups["user"]["benchmark"] == standing("user", "retail", None, "unknown", None)

    async def test_other_dimensions_carry_no_role_standing(self, ranked: Tenant) -> None:
        body = await report(ranked.client, group_by="job_level")
        assert [g["benchmark"] for g in body["groups"]] == [None]


class TestAccountReport:
    async def test_the_role_breakdown_reads_the_accounts_industry(self, ranked: Tenant) -> None:
        body = await report(ranked.client, "/v1/accounts/acme/nps")
        groups = by_role(body["breakdowns"]["role"])
        assert groups["decision_maker"]["benchmark"]["position"] == "above"
        assert groups["user"]["benchmark"] == standing(
            "user", "technology", (-60.0, -40.0), "within", "industry_role"
        )
        assert groups["other"]["benchmark"]["source"] == "industry"
        assert [g["benchmark"] for g in body["breakdowns"]["job_level"]] == [None]

    async def test_a_changed_range_moves_the_standing(self, ranked: Tenant) -> None:
        await put_settings(
            ranked.client,
            {
                **SETTINGS,
                "industry_role_benchmarks": {"technology": {"user": {"low": -100, "high": -70}}},
            },
        )
        body = await report(ranked.client, "/v1/accounts/acme/nps")
        user = by_role(body["breakdowns"]["role"])["user"]
        assert user["benchmark"] == standing(
            "user", "technology", (-100.0, -70.0), "above", "industry_role"
        )


class TestDriversByRole:
    async def test_each_role_group_has_its_score_and_standing(self, ranked: Tenant) -> None:
        body = await report(ranked.client, "/v1/drivers", group_by="role", industry="technology")
        groups = {g["key"]["role"]: g for g in body["groups"]}
        assert groups["user"]["score"]["nps"] == -50.0
        assert groups["user"]["score"]["n"] == 2
        assert groups["user"]["benchmark"] == standing(
            "user", "technology", (-60.0, -40.0), "within", "industry_role"
        )
        assert groups["decision_maker"]["benchmark"]["position"] == "above"

    async def test_other_groupings_have_scores_but_no_standing(self, ranked: Tenant) -> None:
        body = await report(ranked.client, "/v1/drivers", group_by="segment")
        assert [(g["score"]["n"], g["benchmark"]) for g in body["groups"]] == [(7, None)]
