"""GET /v1/nps and GET /v1/accounts/{id}/nps: counts, intervals, methods, filters, breakdowns."""

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import NormalDist
from typing import Any

import httpx
import pytest
import pytest_asyncio

from app.models import Role
from app.scoring import CIMethod, Tally, confidence_interval
from tests.support.api import (
    Answer,
    post_responses,
    put_account,
    put_stakeholder,
    report,
    set_excluded,
)
from tests.support.cases import open_case, set_case
from tests.support.clock import END, START, WINDOW, ago, at, iso_at, minute_end
from tests.support.expected import (
    Counts,
    account_profile,
    counts,
    expected_groups,
    expected_score,
    unknown_benchmark,
)
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import PROBLEM_JSON, assert_invalid

# The SPEC example: P/Pa/D = 5/3/2.
SPEC_SCORES = [10, 10, 9, 9, 9, 8, 7, 7, 3, 0]


# Helpers


def answer(stakeholder_id: str, score: int, submitted_at: str, **extra: Any) -> dict[str, Any]:
    return {"stakeholder_id": stakeholder_id, "score": score, "submitted_at": submitted_at, **extra}


async def seed_one_each(tenant: Tenant, scores: list[int], *, account_id: str = "acme") -> None:
    """One stakeholder per score, each answering once inside the window (in the database)."""
    await tenant.db.answers(
        [
            Answer(f"{account_id}-p{i}", account_id, score, at(1 + i / 100))
            for i, score in enumerate(scores)
        ]
    )


# A small portfolio: three accounts (acme: software/enterprise, globex: retail/smb, initech: no
# industry or segment), seven stakeholders, one response each (PORTFOLIO below).
# Overall: P 3 (a1, g1, g3), Pa 1 (a3), D 3 (a2, g2, i1).


@dataclass(frozen=True)
class Person:
    id: str
    account_id: str
    role: str
    job_level: str
    department: str | None
    score: int
    survey: str | None


PORTFOLIO = [
    Person("a1", "acme", "decision_maker", "executive", "Engineering", 10, "q1"),
    Person("a2", "acme", "user", "individual_contributor", " engineering ", 6, "q1"),
    Person("a3", "acme", "influencer", "manager", "Finance", 8, "q2"),
    Person("g1", "globex", "user", "manager", "ENGINEERING", 9, "q2"),
    Person("g2", "globex", "decision_maker", "director", None, 3, None),
    Person("g3", "globex", "other", "other", "Procurement", 9, "q1"),
    Person("i1", "initech", "influencer", "director", "finance ", 5, "q2"),
]
PORTFOLIO_PROFILES = {
    "acme": account_profile("acme", segment="enterprise", industry="software"),
    "globex": account_profile("globex", segment="smb", industry="retail"),
    "initech": account_profile("initech"),
}


@pytest_asyncio.fixture(loop_scope="session")
async def portfolio(tenant: Tenant) -> Tenant:
    """PORTFOLIO's answers, of accounts as PORTFOLIO_PROFILES describes them."""
    await tenant.db.account("acme", industry="software", segment="enterprise")
    await tenant.db.account("globex", industry="retail", segment="smb")
    await tenant.db.account("initech")
    await tenant.db.answers(
        [
            Answer(
                p.id,
                p.account_id,
                p.score,
                at(10 + i),
                role=p.role,
                job_level=p.job_level,
                department=p.department,
                survey=p.survey,
            )
            for i, p in enumerate(PORTFOLIO)
        ]
    )
    return tenant


class TestNpsScore:
    async def test_spec_example_gives_the_exact_score_object(self, tenant: Tenant) -> None:
        await seed_one_each(tenant, SPEC_SCORES)

        body = await report(tenant.client)

        assert body == {
            "method": "latest_per_stakeholder",
            "weights": None,
            "benchmark": None,
            "from": "2026-01-01T00:00:00Z",
            "to": "2026-04-01T00:00:00Z",
            "filters": {},
            "score": {
                "nps": 30.0,
                "n": 10,
                "promoters": 5,
                "passives": 3,
                "detractors": 2,
                "promoter_pct": 50.0,
                "passive_pct": 30.0,
                "detractor_pct": 20.0,
                "ci": {
                    "low": pytest.approx(-19.05, abs=0.01),
                    "high": pytest.approx(65.20, abs=0.01),
                    "level": 0.95,
                    "method": "adjusted_wald",
                },
                "precision": "low",
                "n_effective": 10.0,
                "unweighted": None,
            },
            "groups": None,
        }

    async def test_method_is_echoed(self, tenant: Tenant) -> None:
        await seed_one_each(tenant, SPEC_SCORES)

        body = await report(tenant.client, method="respondent")

        assert body["method"] == "respondent"
        assert counts(body["score"]) == (5, 3, 2)

    async def test_score_interval(self, tenant: Tenant) -> None:
        await seed_one_each(tenant, SPEC_SCORES)

        body = await report(tenant.client, ci_method="score")

        assert body["score"]["nps"] == 30.0
        assert body["score"]["ci"] == {
            "low": pytest.approx(-21.66, abs=0.01),
            "high": pytest.approx(67.53, abs=0.01),
            "level": 0.95,
            "method": "score",
        }

    async def test_wald_interval(self, tenant: Tenant) -> None:
        await seed_one_each(tenant, SPEC_SCORES)

        body = await report(tenant.client, ci_method="wald")

        # NPS +- z * sqrt((pp + pd - (pp - pd)^2) / n) with pp = 0.5, pd = 0.2, n = 10.
        z = NormalDist().inv_cdf(0.975)
        half = z * math.sqrt((0.5 + 0.2 - 0.3**2) / 10)
        assert body["score"]["ci"] == {
            "low": pytest.approx(100 * (0.3 - half), abs=1e-9),
            "high": pytest.approx(100 * (0.3 + half), abs=1e-9),
            "level": 0.95,
            "method": "wald",
        }
        assert body["score"]["ci"]["low"] == pytest.approx(-18.41, abs=0.01)

    async def test_lower_confidence_gives_a_narrower_interval(self, tenant: Tenant) -> None:
        await seed_one_each(tenant, SPEC_SCORES)

        wide = (await report(tenant.client))["score"]["ci"]
        narrow = (await report(tenant.client, confidence="0.9"))["score"]["ci"]

        assert narrow["level"] == 0.9
        assert narrow["method"] == "adjusted_wald"
        assert wide["low"] < narrow["low"] < 30.0 < narrow["high"] < wide["high"]
        expected = confidence_interval(Tally(5, 3, 2), confidence=0.9)
        assert expected is not None
        assert (narrow["low"], narrow["high"]) == pytest.approx((expected.low, expected.high))

    @pytest.mark.parametrize("confidence", ["0.4", "1.0", "0.9991", "nan"])
    async def test_confidence_out_of_range_is_422(self, tenant: Tenant, confidence: str) -> None:
        r = await tenant.client.get("/v1/nps", params={**WINDOW, "confidence": confidence})

        assert_invalid(r, ["query", "confidence"])

    @pytest.mark.parametrize("confidence", ["0.5", "0.999"])
    async def test_confidence_bounds_are_accepted(self, tenant: Tenant, confidence: str) -> None:
        await seed_one_each(tenant, SPEC_SCORES)

        body = await report(tenant.client, confidence=confidence)

        assert body["score"]["ci"]["level"] == float(confidence)

    async def test_unknown_ci_method_is_422(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/nps", params={**WINDOW, "ci_method": "bogus"})

        assert_invalid(r, ["query", "ci_method"])

    @pytest.mark.parametrize("method", ["Respondent", "bogus"])
    async def test_unsupported_method_is_422(self, tenant: Tenant, method: str) -> None:
        r = await tenant.client.get("/v1/nps", params={**WINDOW, "method": method})

        assert_invalid(r, ["query", "method"])

    async def test_empty_window_has_no_score(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")
        await put_stakeholder(tenant.client, "s1", "acme")
        await post_responses(tenant.client, [answer("s1", 10, iso_at(-1))])

        body = await report(tenant.client)

        assert body["score"] == {
            "nps": None,
            "n": 0,
            "promoters": 0,
            "passives": 0,
            "detractors": 0,
            "promoter_pct": None,
            "passive_pct": None,
            "detractor_pct": None,
            "ci": None,
            "precision": "insufficient",
            "n_effective": 0.0,
            "unweighted": None,
        }

    @pytest.mark.parametrize(
        ("n", "flag"), [(4, "insufficient"), (5, "low"), (29, "low"), (30, "ok")]
    )
    async def test_precision_flag(self, tenant: Tenant, n: int, flag: str) -> None:
        await seed_one_each(tenant, [9] * n)

        score = (await report(tenant.client))["score"]

        assert score["n"] == n
        assert score["precision"] == flag

    async def test_other_workspaces_responses_are_not_counted(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")
        await seed_one_each(other, SPEC_SCORES)
        await seed_one_each(tenant, [0])

        score = (await report(tenant.client))["score"]

        assert counts(score) == (0, 0, 1)


class TestNpsMethods:
    async def _three_answers(self, client: httpx.AsyncClient) -> list[str]:
        """s1 answers 2, 5, 10 (in time order, stored out of order); s2 answers 8 once."""
        await put_account(client, "acme")
        await put_stakeholder(client, "s1", "acme")
        await put_stakeholder(client, "s2", "acme")
        return await post_responses(
            client,
            [
                answer("s1", 10, iso_at(30)),
                answer("s1", 2, iso_at(5)),
                answer("s2", 8, iso_at(40)),
                answer("s1", 5, iso_at(20)),
            ],
        )

    async def test_respondent_counts_every_response(self, tenant: Tenant) -> None:
        await self._three_answers(tenant.client)

        score = (await report(tenant.client, method="respondent"))["score"]

        assert score == expected_score(1, 1, 2)

    async def test_latest_per_stakeholder_counts_each_latest_once(self, tenant: Tenant) -> None:
        await self._three_answers(tenant.client)

        score = (await report(tenant.client, method="latest_per_stakeholder"))["score"]

        assert score == expected_score(1, 1, 0)

    async def test_latest_per_stakeholder_is_the_default(self, tenant: Tenant) -> None:
        await self._three_answers(tenant.client)

        body = await report(tenant.client)

        assert body["method"] == "latest_per_stakeholder"
        assert counts(body["score"]) == (1, 1, 0)

    async def test_window_is_from_inclusive_to_exclusive(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")
        for sid in ("before", "first", "last", "end"):
            await put_stakeholder(tenant.client, sid, "acme")
        await post_responses(
            tenant.client,
            [
                answer("before", 0, "2025-12-31T23:59:59.999999Z"),
                answer("first", 10, "2026-01-01T00:00:00Z"),
                answer("last", 7, "2026-03-31T23:59:59.999999Z"),
                answer("end", 3, "2026-04-01T00:00:00Z"),
            ],
        )

        for method in ("respondent", "latest_per_stakeholder"):
            score = (await report(tenant.client, method=method))["score"]
            assert counts(score) == (1, 1, 0), method

    async def test_window_bound_with_another_offset(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")
        await put_stakeholder(tenant.client, "s1", "acme")
        await post_responses(tenant.client, [answer("s1", 9, "2026-01-01T00:00:00Z")])

        # 02:00 at +02:00 is midnight UTC: the response sits exactly on `from`.
        from_start = await report(tenant.client, **{"from": "2026-01-01T02:00:00+02:00"})
        after_it = await report(tenant.client, **{"from": "2026-01-01T02:00:01+02:00"})

        assert counts(from_start["score"]) == (1, 0, 0)
        assert counts(after_it["score"]) == (0, 0, 0)

    async def test_a_later_answer_outside_the_window_does_not_replace_the_latest(
        self, tenant: Tenant
    ) -> None:
        await put_account(tenant.client, "acme")
        await put_stakeholder(tenant.client, "s1", "acme")
        await post_responses(
            tenant.client, [answer("s1", 9, iso_at(10)), answer("s1", 0, "2026-04-01T00:00:00Z")]
        )

        score = (await report(tenant.client))["score"]

        assert counts(score) == (1, 0, 0)

    async def test_excluded_response_never_counts(self, tenant: Tenant) -> None:
        ids = await self._three_answers(tenant.client)
        await set_excluded(tenant.client, ids[2])  # s2's 8

        respondent = (await report(tenant.client, method="respondent"))["score"]
        latest = (await report(tenant.client))["score"]

        assert counts(respondent) == (1, 0, 2)
        assert counts(latest) == (1, 0, 0)

    async def test_excluding_the_latest_makes_the_previous_one_count(self, tenant: Tenant) -> None:
        ids = await self._three_answers(tenant.client)
        assert counts((await report(tenant.client))["score"]) == (1, 1, 0)

        await set_excluded(tenant.client, ids[0])  # s1's 10: their 5 is now the latest

        assert counts((await report(tenant.client))["score"]) == (0, 1, 1)

    async def test_including_again_restores_the_latest(self, tenant: Tenant) -> None:
        ids = await self._three_answers(tenant.client)
        await set_excluded(tenant.client, ids[0])
        r = await tenant.client.patch(f"/v1/responses/{ids[0]}", json={"excluded": False})
        assert r.status_code == 200, r.text

        assert counts((await report(tenant.client))["score"]) == (1, 1, 0)


class TestNpsFilters:
    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"account_id": "acme"}, (1, 1, 1)),
            ({"account_id": "globex"}, (2, 0, 1)),
            ({"account_id": "unknown"}, (0, 0, 0)),
            ({"role": "user"}, (1, 0, 1)),
            ({"role": "influencer"}, (0, 1, 1)),
            ({"job_level": "manager"}, (1, 1, 0)),
            ({"job_level": "director"}, (0, 0, 2)),
            ({"department": "engineering"}, (2, 0, 1)),
            ({"department": "Finance"}, (0, 1, 1)),
            ({"segment": "smb"}, (2, 0, 1)),
            ({"industry": "software"}, (1, 1, 1)),
            ({"survey": "q2"}, (1, 1, 1)),
            ({"account_id": "acme", "department": "engineering"}, (1, 0, 1)),
            (
                {
                    "account_id": "acme",
                    "role": "decision_maker",
                    "job_level": "executive",
                    "department": "engineering",
                    "segment": "enterprise",
                    "industry": "software",
                    "survey": "q1",
                },
                (1, 0, 0),
            ),
        ],
    )
    async def test_filter(
        self, portfolio: Tenant, params: dict[str, str], expected: Counts
    ) -> None:
        body = await report(portfolio.client, **params)

        assert body["score"] == expected_score(*expected)
        assert body["filters"] == params

    @pytest.mark.parametrize("department", [" Engineering ", "ENGINEERING", "engineering  "])
    async def test_department_matches_case_insensitively_after_trimming(
        self, portfolio: Tenant, department: str
    ) -> None:
        score = (await report(portfolio.client, department=department))["score"]

        assert counts(score) == (2, 0, 1)

    @pytest.mark.parametrize(
        ("name", "value"),
        [("role", "boss"), ("account_id", "no spaces"), ("survey", "")],
    )
    async def test_invalid_filter_is_422(self, portfolio: Tenant, name: str, value: str) -> None:
        r = await portfolio.client.get("/v1/nps", params={**WINDOW, name: value})

        assert_invalid(r, ["query", name])


class TestNpsGroupBy:
    @pytest.mark.parametrize(
        ("group_by", "name", "groups"),
        [
            (
                "role",
                "role",
                [
                    ("decision_maker", (1, 0, 1)),
                    ("influencer", (0, 1, 1)),
                    ("other", (1, 0, 0)),
                    ("user", (1, 0, 1)),
                ],
            ),
            (
                "job_level",
                "job_level",
                [
                    ("director", (0, 0, 2)),
                    ("executive", (1, 0, 0)),
                    ("individual_contributor", (0, 0, 1)),
                    ("manager", (1, 1, 0)),
                    ("other", (1, 0, 0)),
                ],
            ),
            (
                "department",
                "department",
                [
                    ("engineering", (2, 0, 1)),
                    ("finance", (0, 1, 1)),
                    ("procurement", (1, 0, 0)),
                    (None, (0, 0, 1)),
                ],
            ),
            (
                "account",
                "account_id",
                [("acme", (1, 1, 1)), ("globex", (2, 0, 1)), ("initech", (0, 0, 1))],
            ),
            (
                "segment",
                "segment",
                [("enterprise", (1, 1, 1)), ("smb", (2, 0, 1)), (None, (0, 0, 1))],
            ),
            (
                "industry",
                "industry",
                [("retail", (2, 0, 1)), ("software", (1, 1, 1)), (None, (0, 0, 1))],
            ),
            (
                "survey",
                "survey",
                [("q1", (2, 0, 1)), ("q2", (1, 1, 1)), (None, (0, 0, 1))],
            ),
        ],
    )
    async def test_group_by(
        self,
        portfolio: Tenant,
        group_by: str,
        name: str,
        groups: list[tuple[str | None, Counts]],
    ) -> None:
        body = await report(portfolio.client, group_by=group_by)

        assert body["groups"] == expected_groups(name, groups, PORTFOLIO_PROFILES)
        assert body["score"] == expected_score(3, 1, 3)
        assert body["score"]["n"] == sum(g["score"]["n"] for g in body["groups"])

    async def test_group_by_within_a_filter(self, portfolio: Tenant) -> None:
        body = await report(portfolio.client, account_id="globex", group_by="role")

        assert body["filters"] == {"account_id": "globex"}
        assert body["score"] == expected_score(2, 0, 1)
        assert body["groups"] == expected_groups(
            "role", [("decision_maker", (0, 0, 1)), ("other", (1, 0, 0)), ("user", (1, 0, 0))]
        )

    async def test_group_by_under_respondent_counts_every_response(self, portfolio: Tenant) -> None:
        await post_responses(portfolio.client, [answer("a1", 0, iso_at(50))])

        respondent = await report(portfolio.client, method="respondent", group_by="role")
        latest = await report(portfolio.client, group_by="role")

        others: list[tuple[str | None, Counts]] = [
            ("influencer", (0, 1, 1)),
            ("other", (1, 0, 0)),
            ("user", (1, 0, 1)),
        ]
        assert respondent["groups"] == expected_groups(
            "role", [("decision_maker", (1, 0, 2)), *others]
        )
        assert latest["groups"] == expected_groups("role", [("decision_maker", (0, 0, 2)), *others])

    async def test_no_responses_gives_no_groups(self, tenant: Tenant) -> None:
        body = await report(tenant.client, group_by="role")

        assert body["groups"] == []
        assert body["score"]["n"] == 0

    @pytest.mark.parametrize("group_by", ["stakeholder", "Role"])
    async def test_unknown_group_by_is_422(self, tenant: Tenant, group_by: str) -> None:
        r = await tenant.client.get("/v1/nps", params={**WINDOW, "group_by": group_by})

        assert_invalid(r, ["query", "group_by"])


class TestNpsAgreesWithScoring:
    """The SQL counts against app.scoring on the same randomly generated responses."""

    SEED = 20260401
    ACCOUNTS = ("acct-0", "acct-1", "acct-2", "acct-3")
    STAKEHOLDERS = 15
    RESPONSES = 200
    EXCLUDED = 4

    @dataclass(frozen=True)
    class Generated:
        stakeholder_id: str
        account_id: str
        role: str
        score: int
        submitted_at: datetime
        excluded: bool

    async def _seed(self, client: httpx.AsyncClient) -> list[Generated]:
        rng = random.Random(self.SEED)
        for account_id in self.ACCOUNTS:
            await put_account(client, account_id)
        people: dict[str, tuple[str, str]] = {}
        for i in range(self.STAKEHOLDERS):
            sid = f"person-{i:02d}"
            people[sid] = (self.ACCOUNTS[i % len(self.ACCOUNTS)], rng.choice(list(Role)).value)
            await put_stakeholder(client, sid, people[sid][0], role=people[sid][1])
        # A week either side of the window, distinct seconds, and both bounds exactly.
        margin = 7 * 86_400
        span = int((END - START).total_seconds())
        offsets = rng.sample(range(2 * margin + span), self.RESPONSES)
        offsets[0], offsets[1] = margin, margin + span
        assert len(set(offsets)) == len(offsets)
        excluded = set(rng.sample(range(self.RESPONSES), self.EXCLUDED))
        generated = []
        for i, offset in enumerate(offsets):
            sid = rng.choice(sorted(people))
            generated.append(
                self.Generated(
                    stakeholder_id=sid,
                    account_id=people[sid][0],
                    role=people[sid][1],
                    score=rng.randint(0, 10),
                    submitted_at=START + timedelta(seconds=offset - margin),
                    excluded=i in excluded,
                )
            )
        ids = await post_responses(
            client,
            [answer(g.stakeholder_id, g.score, g.submitted_at.isoformat()) for g in generated],
        )
        for i in sorted(excluded):
            await set_excluded(client, ids[i])
        return generated

    @staticmethod
    def _counted(generated: list[Generated], method: str) -> list[Generated]:
        inside = [g for g in generated if START <= g.submitted_at < END and not g.excluded]
        if method == "respondent":
            return inside
        latest: dict[str, TestNpsAgreesWithScoring.Generated] = {}
        for g in inside:
            if (
                g.stakeholder_id not in latest
                or g.submitted_at > latest[g.stakeholder_id].submitted_at
            ):
                latest[g.stakeholder_id] = g
        return list(latest.values())

    @pytest.mark.parametrize("method", ["respondent", "latest_per_stakeholder"])
    async def test_counts_match_the_pure_tally(self, tenant: Tenant, method: str) -> None:
        generated = await self._seed(tenant.client)
        counted = self._counted(generated, method)
        overall = Tally.from_scores(g.score for g in counted)
        assert overall.n > 10  # the seed gives a sample worth comparing

        for group_by, key_name in (("role", "role"), ("account", "account_id")):
            body = await report(tenant.client, method=method, group_by=group_by)

            by_group: dict[str, list[int]] = defaultdict(list)
            for g in counted:
                by_group[g.role if group_by == "role" else g.account_id].append(g.score)
            want = {}
            for key, scores in by_group.items():
                t = Tally.from_scores(scores)
                want[key] = (t.promoters, t.passives, t.detractors)
            got = {g["key"][key_name]: counts(g["score"]) for g in body["groups"]}
            assert got == want, group_by
            assert [g["key"][key_name] for g in body["groups"]] == sorted(want)
            score = body["score"]
            assert counts(score) == (overall.promoters, overall.passives, overall.detractors)
            assert score["nps"] == pytest.approx(overall.nps, abs=1e-9)
            interval = confidence_interval(overall)
            assert interval is not None
            assert (score["ci"]["low"], score["ci"]["high"]) == pytest.approx(
                (interval.low, interval.high), abs=1e-9
            )

    async def test_score_interval_matches_the_pure_interval(self, tenant: Tenant) -> None:
        generated = await self._seed(tenant.client)
        overall = Tally.from_scores(g.score for g in self._counted(generated, "respondent"))

        body = await report(tenant.client, method="respondent", ci_method="score", confidence="0.8")

        interval = confidence_interval(overall, method=CIMethod.SCORE, confidence=0.8)
        assert interval is not None
        assert body["score"]["ci"] == {
            "low": pytest.approx(interval.low, abs=1e-9),
            "high": pytest.approx(interval.high, abs=1e-9),
            "level": 0.8,
            "method": "score",
        }


class TestAccountNps:
    async def test_score_with_breakdowns(self, portfolio: Tenant) -> None:
        r = await portfolio.client.get("/v1/accounts/acme/nps", params=WINDOW)

        assert r.status_code == 200, r.text
        assert r.json() == {
            "account_id": "acme",
            "method": "latest_per_stakeholder",
            "weights": None,
            "from": "2026-01-01T00:00:00Z",
            "to": "2026-04-01T00:00:00Z",
            "score": expected_score(1, 1, 1),
            "benchmark": unknown_benchmark("software"),
            "breakdowns": {
                "role": expected_groups(
                    "role",
                    [
                        ("decision_maker", (1, 0, 0)),
                        ("influencer", (0, 1, 0)),
                        ("user", (0, 0, 1)),
                    ],
                    industry="software",
                ),
                "job_level": expected_groups(
                    "job_level",
                    [
                        ("executive", (1, 0, 0)),
                        ("individual_contributor", (0, 0, 1)),
                        ("manager", (0, 1, 0)),
                    ],
                ),
                "department": expected_groups(
                    "department", [("engineering", (1, 0, 1)), ("finance", (0, 1, 0))]
                ),
            },
            "open_case": {"count": 0, "case_ids": []},
        }

    async def test_open_recovery_cases_of_the_account_only(
        self, portfolio: Tenant, make_tenant: MakeTenant
    ) -> None:
        first = await open_case(portfolio, "acme-x", 3)
        second = await open_case(portfolio, "acme-y", 2)
        await set_case(portfolio, first, opened_at=ago(hours=2))
        await set_case(portfolio, second, opened_at=ago(hours=1))
        # No evidence: an advocacy case, a closed recovery case, another account's case, and
        # a case of an account of the same id in another workspace.
        await open_case(portfolio, "acme-z", 10, role="decision_maker")
        closed = await open_case(portfolio, "acme-w", 1)
        r = await portfolio.client.patch(
            f"/v1/cases/{closed}", json={"status": "closed", "outcome": "resolved"}
        )
        assert r.status_code == 200, r.text
        await open_case(portfolio, "globex-x", 0, account_id="globex")
        other = await make_tenant("b")
        await open_case(other, "acme-x", 3)

        body = await report(portfolio.client, "/v1/accounts/acme/nps")

        assert body["open_case"] == {"count": 2, "case_ids": [first, second]}

    async def test_null_department_group_comes_last(self, portfolio: Tenant) -> None:
        body = await report(portfolio.client, "/v1/accounts/globex/nps")

        assert body["score"] == expected_score(2, 0, 1)
        assert body["breakdowns"]["department"] == expected_groups(
            "department",
            [("engineering", (1, 0, 0)), ("procurement", (1, 0, 0)), (None, (0, 0, 1))],
        )

    async def test_methods(self, portfolio: Tenant) -> None:
        await post_responses(
            portfolio.client, [answer("a1", 7, iso_at(60)), answer("a1", 0, iso_at(1))]
        )

        respondent = await report(portfolio.client, "/v1/accounts/acme/nps", method="respondent")
        latest = await report(portfolio.client, "/v1/accounts/acme/nps")

        assert respondent["method"] == "respondent"
        assert respondent["score"] == expected_score(1, 2, 2)
        assert latest["method"] == "latest_per_stakeholder"
        assert latest["score"] == expected_score(0, 2, 1)

    async def test_survey_filter(self, portfolio: Tenant) -> None:
        body = await report(portfolio.client, "/v1/accounts/acme/nps", survey="q1")

        assert body["score"] == expected_score(1, 0, 1)
        assert body["breakdowns"]["role"] == expected_groups(
            "role", [("decision_maker", (1, 0, 0)), ("user", (0, 0, 1))], industry="software"
        )

    async def test_account_without_responses(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "quiet")

        body = await report(tenant.client, "/v1/accounts/quiet/nps")

        assert body["score"] == expected_score(0, 0, 0)
        assert body["score"]["nps"] is None
        assert body["breakdowns"] == {"role": [], "job_level": [], "department": []}

    async def test_interval_options(self, tenant: Tenant) -> None:
        await seed_one_each(tenant, SPEC_SCORES)

        body = await report(
            tenant.client, "/v1/accounts/acme/nps", ci_method="score", confidence="0.95"
        )

        assert body["score"]["ci"] == {
            "low": pytest.approx(-21.66, abs=0.01),
            "high": pytest.approx(67.53, abs=0.01),
            "level": 0.95,
            "method": "score",
        }

    async def test_unknown_account_is_404(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/accounts/nope/nps", params=WINDOW)

        assert r.status_code == 404
        assert r.headers["content-type"] == PROBLEM_JSON
        assert r.json() == {
            "type": "/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "account 'nope' does not exist",
        }

    async def test_another_workspaces_account_is_404(
        self, portfolio: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")

        r = await other.client.get("/v1/accounts/acme/nps", params=WINDOW)

        assert r.status_code == 404

    @pytest.mark.parametrize(
        ("name", "value"), [("method", "account_as_unit"), ("ci_method", "x"), ("confidence", "1")]
    )
    async def test_invalid_option_is_422(self, portfolio: Tenant, name: str, value: str) -> None:
        r = await portfolio.client.get("/v1/accounts/acme/nps", params={**WINDOW, name: value})

        assert_invalid(r, ["query", name])

    async def test_answers_keep_the_account_they_were_given_for(self, tenant: Tenant) -> None:
        client = tenant.client
        await put_account(client, "old")
        await put_account(client, "new")
        await put_stakeholder(client, "mover", "old", role="decision_maker")
        await post_responses(client, [answer("mover", 9, iso_at(10))])
        await put_stakeholder(client, "mover", "new", role="user", status=200)

        # Not heard from since the move: their latest answer is still the one given at "old".
        old = await report(client, "/v1/accounts/old/nps")
        assert old["score"] == expected_score(1, 0, 0)
        assert old["breakdowns"]["role"] == expected_groups("role", [("decision_maker", (1, 0, 0))])
        assert (await report(client, "/v1/accounts/new/nps"))["score"] == expected_score(0, 0, 0)

        await post_responses(client, [answer("mover", 2, iso_at(20))])
        every = await report(client, "/v1/accounts/old/nps", method="respondent")
        assert every["score"] == expected_score(1, 0, 0)
        assert every["breakdowns"]["role"] == expected_groups(
            "role", [("decision_maker", (1, 0, 0))]
        )

    async def test_a_moved_stakeholder_counts_once_where_they_answered_last(
        self, tenant: Tenant
    ) -> None:
        client = tenant.client
        await put_account(client, "old")
        await put_account(client, "new")
        await put_stakeholder(client, "mover", "old")
        await post_responses(client, [answer("mover", 9, iso_at(10))])
        await put_stakeholder(client, "mover", "new", status=200)
        await post_responses(client, [answer("mover", 2, iso_at(20))])

        latest = await report(client, group_by="account")
        respondent = await report(client, method="respondent", group_by="account")

        # Each stakeholder's latest answer once: the groups add up to the total, and a group
        # is the same slice as its filter and as the account's own score.
        assert latest["score"] == expected_score(0, 0, 1)
        assert latest["groups"] == expected_groups("account_id", [("new", (0, 0, 1))])
        assert (await report(client, account_id="old"))["score"] == expected_score(0, 0, 0)
        assert (await report(client, "/v1/accounts/old/nps"))["score"] == expected_score(0, 0, 0)
        assert (await report(client, "/v1/accounts/new/nps"))["score"] == expected_score(0, 0, 1)
        assert respondent["score"] == expected_score(1, 0, 1)
        assert respondent["groups"] == expected_groups(
            "account_id", [("new", (0, 0, 1)), ("old", (1, 0, 0))]
        )

    async def test_a_promoted_stakeholder_counts_in_their_new_role_only(
        self, tenant: Tenant
    ) -> None:
        client = tenant.client
        await put_account(client, "acme")
        await put_stakeholder(client, "pat", "acme", role="user")
        await post_responses(client, [answer("pat", 0, iso_at(10))])
        await put_stakeholder(client, "pat", "acme", role="decision_maker", status=200)
        await post_responses(client, [answer("pat", 10, iso_at(20))])

        account = await report(client, "/v1/accounts/acme/nps")
        assert account["score"] == expected_score(1, 0, 0)
        assert account["breakdowns"]["role"] == expected_groups(
            "role", [("decision_maker", (1, 0, 0))]
        )
        assert (await report(client, role="user"))["score"] == expected_score(0, 0, 0)
        assert (await report(client, role="decision_maker"))["score"] == expected_score(1, 0, 0)
        by_role = await report(client, method="respondent", group_by="role")
        assert by_role["groups"] == expected_groups(
            "role", [("decision_maker", (1, 0, 0)), ("user", (0, 0, 1))]
        )


class TestNpsWindow:
    @pytest.mark.parametrize(
        ("start", "end"),
        [
            ("2026-04-01T00:00:00Z", "2026-04-01T00:00:00Z"),
            ("2026-04-01T00:00:00Z", "2026-01-01T00:00:00Z"),
            ("2026-01-01T02:00:00+02:00", "2026-01-01T00:00:00Z"),
        ],
    )
    async def test_from_not_before_to_is_422(self, tenant: Tenant, start: str, end: str) -> None:
        await put_account(tenant.client, "acme")

        for path in ("/v1/nps", "/v1/accounts/acme/nps"):
            r = await tenant.client.get(path, params={"from": start, "to": end})

            assert r.status_code == 422, path
            assert r.headers["content-type"] == PROBLEM_JSON
            assert r.json() == {
                "type": "/problems/validation-error",
                "title": "Request validation failed",
                "status": 422,
                "detail": "`from` must be before `to`",
                "errors": [{"loc": ["query", "from"], "msg": "not before `to`"}],
            }

    @pytest.mark.parametrize(
        ("name", "params"),
        [
            ("from", {"from": "2026-01-01T00:00:00", "to": "2026-04-01T00:00:00Z"}),
            ("to", {"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00"}),
            ("from", {"from": "2026-01-01T00:00:00"}),
        ],
    )
    async def test_time_without_offset_is_422(
        self, tenant: Tenant, name: str, params: dict[str, str]
    ) -> None:
        await put_account(tenant.client, "acme")

        for path in ("/v1/nps", "/v1/accounts/acme/nps"):
            r = await tenant.client.get(path, params=params)

            assert_invalid(r, ["query", name])

    @pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z"])
    async def test_unparseable_time_is_422(self, tenant: Tenant, value: str) -> None:
        r = await tenant.client.get("/v1/nps", params={"from": value, "to": WINDOW["to"]})

        assert_invalid(r, ["query", "from"])

    async def test_default_window_is_the_trailing_365_days(self, tenant: Tenant) -> None:
        now = datetime.now(UTC)
        await put_account(tenant.client, "acme")
        await put_stakeholder(tenant.client, "recent", "acme")
        await put_stakeholder(tenant.client, "old", "acme")
        await post_responses(
            tenant.client,
            [
                answer("recent", 9, (now - timedelta(days=10)).isoformat()),
                answer("old", 0, (now - timedelta(days=366)).isoformat()),
            ],
        )

        r = await tenant.client.get("/v1/nps")
        after = datetime.now(UTC)

        assert r.status_code == 200, r.text
        body = r.json()
        start = datetime.fromisoformat(body["from"])
        end = datetime.fromisoformat(body["to"])
        assert end - start == timedelta(days=365)
        # The default end is the end of the minute of the request (a stable instant to poll).
        assert end in {minute_end(now), minute_end(after)}
        assert counts(body["score"]) == (1, 0, 0)

    async def test_only_to_gives_the_365_days_before_it(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/nps", params={"to": "2026-04-01T00:00:00Z"})

        assert r.status_code == 200, r.text
        assert r.json()["from"] == "2025-04-01T00:00:00Z"
        assert r.json()["to"] == "2026-04-01T00:00:00Z"

    async def test_account_default_window(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")

        r = await tenant.client.get("/v1/accounts/acme/nps")

        assert r.status_code == 200, r.text
        body = r.json()
        start = datetime.fromisoformat(body["from"])
        end = datetime.fromisoformat(body["to"])
        assert end - start == timedelta(days=365)
