"""GET /v1/nps/trend: calendar buckets in a time zone, rolling windows, changes, series."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.models import Scope
from app.scoring import Tally
from tests.support.api import Answer, answers_for, get_json
from tests.support.clock import stamp, utc
from tests.support.expected import (
    counted,
    counts,
    expected_change,
    expected_score,
    expected_weighted_change,
    tally_of,
)
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_invalid, problem

TREND = "/v1/nps/trend"
Bucket = tuple[datetime, datetime]

# Four months: 8/6/4 in January, nothing in February, 14/5/3 in March, 0/2/10 in April.
MONTHS: list[Bucket] = [
    (utc(2026, 1, 1), utc(2026, 2, 1)),
    (utc(2026, 2, 1), utc(2026, 3, 1)),
    (utc(2026, 3, 1), utc(2026, 4, 1)),
    (utc(2026, 4, 1), utc(2026, 5, 1)),
]
FOUR_MONTHS = {"from": "2026-01-01T00:00:00Z", "to": "2026-05-01T00:00:00Z"}


def month_answers() -> list[Answer]:
    return [
        *answers_for("jan", (8, 6, 4), utc(2026, 1, 10)),
        *answers_for("mar", (14, 5, 3), utc(2026, 3, 10)),
        *answers_for("apr", (0, 2, 10), utc(2026, 4, 10)),
    ]


def expected_points(
    buckets: Sequence[Bucket],
    answers: Sequence[Answer],
    *,
    rolling_days: int | None = None,
    latest: bool = True,
) -> list[dict[str, Any]]:
    """Points by the design's rules, counted from the seeded answers."""
    points: list[dict[str, Any]] = []
    previous: tuple[Tally, datetime, datetime] | None = None  # tally, bucket start, window end
    for start, end in buckets:
        window_start = start if rolling_days is None else end - timedelta(days=rolling_days)
        tally = tally_of(a.score for a in counted(answers, window_start, end, latest=latest))
        change = None
        if tally.n and previous is not None and previous[2] <= window_start:
            change = expected_change(tally, previous[0], previous_start=stamp(previous[1]))
        points.append(
            {
                "start": stamp(start),
                "end": stamp(end),
                "from": stamp(window_start),
                "to": stamp(end),
                "score": expected_score(tally.promoters, tally.passives, tally.detractors),
                "change": change,
            }
        )
        if tally.n:
            previous = (tally, start, end)
    return points


def point_counts(body: dict[str, Any]) -> list[tuple[int, int, int]]:
    return [counts(p["score"]) for p in body["points"]]


async def trend(tenant: Tenant, **params: str) -> dict[str, Any]:
    return await get_json(tenant.client, TREND, **params)


class TestTrendBuckets:
    async def test_monthly_buckets_with_an_empty_month(self, tenant: Tenant) -> None:
        answers = month_answers()
        await tenant.db.answers(answers)

        body = await trend(tenant, interval="month", **FOUR_MONTHS)

        assert point_counts(body) == [(8, 6, 4), (0, 0, 0), (14, 5, 3), (0, 2, 10)]
        assert body == {
            "method": "latest_per_stakeholder",
            "weights": None,
            "interval": "month",
            "tz": "UTC",
            "rolling_days": None,
            "from": "2026-01-01T00:00:00Z",
            "to": "2026-05-01T00:00:00Z",
            "filters": {},
            "points": expected_points(MONTHS, answers),
            "series": None,
        }

    async def test_changes_follow_the_last_non_empty_point(self, tenant: Tenant) -> None:
        await tenant.db.answers(month_answers())

        points = (await trend(tenant, **FOUR_MONTHS))["points"]

        assert [p["change"] is None for p in points] == [True, True, False, False]
        february = points[1]
        assert (february["score"]["nps"], february["score"]["ci"]) == (None, None)
        # March against January (February is empty): the SPEC's 28-point swing, not significant.
        march = points[2]["change"]
        assert march == expected_change(
            Tally(14, 5, 3), Tally(8, 6, 4), previous_start="2026-01-01T00:00:00Z"
        )
        assert round(march["difference"], 1) == 27.8  # 50 - 22.2, the scores shown
        assert (round(march["z"], 3), round(march["p_value"], 3)) == (1.108, 0.268)
        assert march["significant"] is False
        april = points[3]["change"]
        assert april == expected_change(
            Tally(0, 2, 10), Tally(14, 5, 3), previous_start="2026-03-01T00:00:00Z"
        )
        assert april["significant"] is True

    async def test_a_change_is_the_difference_of_the_scores_shown(self, tenant: Tenant) -> None:
        # -85.7 in January (0/1/6), -42.9 in February (0/4/3).
        await tenant.db.answers(
            [
                *answers_for("jan", (0, 1, 6), utc(2026, 1, 10)),
                *answers_for("feb", (0, 4, 3), utc(2026, 2, 10)),
            ]
        )

        points = (await trend(tenant, **FOUR_MONTHS))["points"]

        assert [round(p["score"]["nps"], 1) for p in points[:2]] == [-85.7, -42.9]
        change = points[1]["change"]
        assert change == expected_change(
            Tally(0, 4, 3), Tally(0, 1, 6), previous_start="2026-01-01T00:00:00Z"
        )
        # +300/7 = +42.9, not the +30 between the adjusted centres (-60 and -30).
        assert change["difference"] == pytest.approx(300 / 7)
        assert change["adjusted_difference"] == pytest.approx(30.0)

    async def test_a_weighted_change_is_the_difference_of_the_weighted_scores(
        self, tenant: Tenant
    ) -> None:
        await tenant.db.answers(
            [
                Answer("dm", "acme", 10, utc(2026, 1, 10), role="decision_maker"),
                Answer("u", "acme", 0, utc(2026, 1, 11), role="user"),
                Answer("dm", "acme", 0, utc(2026, 2, 10), role="decision_maker"),
                Answer("u", "acme", 10, utc(2026, 2, 11), role="user"),
            ]
        )

        points = (await trend(tenant, method="role_weighted", **FOUR_MONTHS))["points"]

        # Weighted 3 : 1, January is +50 and February -50; the plain scores are 0 both times.
        assert [p["score"]["nps"] for p in points[:2]] == [50.0, -50.0]
        assert [p["score"]["unweighted"]["nps"] for p in points[:2]] == [0.0, 0.0]
        change = points[1]["change"]
        assert change == expected_weighted_change(
            [(0, 3.0), (10, 1.0)], [(10, 3.0), (0, 1.0)], previous_start="2026-01-01T00:00:00Z"
        )
        assert change["difference"] == -100.0

    async def test_month_is_the_default_interval(self, tenant: Tenant) -> None:
        await tenant.db.answers(month_answers())

        body = await trend(tenant, **FOUR_MONTHS)

        assert body["interval"] == "month"
        assert point_counts(body) == [(8, 6, 4), (0, 0, 0), (14, 5, 3), (0, 2, 10)]

    async def test_bounds_align_to_whole_buckets(self, tenant: Tenant) -> None:
        answers = [
            Answer("early", "acme", 0, utc(2026, 1, 3)),  # before `from`, in its bucket
            Answer("late", "acme", 10, utc(2026, 4, 20)),  # after `to`, in its bucket
            Answer("before", "acme", 10, utc(2025, 12, 31, 23, 59, 59)),
            Answer("after", "acme", 0, utc(2026, 5, 1)),
        ]
        await tenant.db.answers(answers)

        body = await trend(tenant, **{"from": "2026-01-15T12:00:00Z", "to": "2026-04-10T00:00:00Z"})

        assert (body["from"], body["to"]) == ("2026-01-01T00:00:00Z", "2026-05-01T00:00:00Z")
        assert body["points"] == expected_points(MONTHS, answers)
        assert point_counts(body) == [(0, 0, 1), (0, 0, 0), (0, 0, 0), (1, 0, 0)]

    async def test_to_on_a_boundary_ends_the_last_bucket(self, tenant: Tenant) -> None:
        body = await trend(tenant, **{"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"})

        assert [(p["start"], p["end"]) for p in body["points"]] == [
            ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
            ("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"),
        ]
        assert body["to"] == "2026-03-01T00:00:00Z"

    async def test_weeks_start_on_monday(self, tenant: Tenant) -> None:
        answers = [
            Answer("sun-before", "acme", 0, utc(2026, 3, 1, 23, 59, 59)),  # outside
            Answer("mon", "acme", 10, utc(2026, 3, 2)),
            Answer("sun", "acme", 0, utc(2026, 3, 8, 23, 59, 59)),
            Answer("mon2", "acme", 8, utc(2026, 3, 9)),
            Answer("tue3", "acme", 9, utc(2026, 3, 17)),
        ]
        await tenant.db.answers(answers)

        # From a Wednesday to a Wednesday: the weeks of 2 March, 9 March and 16 March.
        body = await trend(
            tenant,
            interval="week",
            **{"from": "2026-03-04T00:00:00Z", "to": "2026-03-18T00:00:00Z"},
        )

        weeks = [(utc(2026, 3, d), utc(2026, 3, d + 7)) for d in (2, 9, 16)]
        assert body["interval"] == "week"
        assert (body["from"], body["to"]) == ("2026-03-02T00:00:00Z", "2026-03-23T00:00:00Z")
        assert point_counts(body) == [(1, 0, 1), (0, 1, 0), (1, 0, 0)]
        assert body["points"] == expected_points(weeks, answers)

    async def test_quarters(self, tenant: Tenant) -> None:
        answers = [
            Answer("q1a", "acme", 10, utc(2026, 1, 2)),
            Answer("q1b", "acme", 0, utc(2026, 3, 31, 23, 59, 59)),
            Answer("q2", "acme", 8, utc(2026, 4, 1)),
            Answer("q3", "acme", 9, utc(2026, 9, 30)),
        ]
        await tenant.db.answers(answers)

        body = await trend(
            tenant,
            interval="quarter",
            **{"from": "2026-02-15T00:00:00Z", "to": "2026-08-01T00:00:00Z"},
        )

        quarters = [
            (utc(2026, 1, 1), utc(2026, 4, 1)),
            (utc(2026, 4, 1), utc(2026, 7, 1)),
            (utc(2026, 7, 1), utc(2026, 10, 1)),
        ]
        assert (body["from"], body["to"]) == ("2026-01-01T00:00:00Z", "2026-10-01T00:00:00Z")
        assert point_counts(body) == [(1, 0, 1), (0, 1, 0), (1, 0, 0)]
        assert body["points"] == expected_points(quarters, answers)

    async def test_years(self, tenant: Tenant) -> None:
        answers = [
            Answer("y24", "acme", 10, utc(2024, 12, 31, 23, 59, 59)),
            Answer("y25", "acme", 3, utc(2025, 1, 1)),
            Answer("y26", "acme", 8, utc(2026, 6, 1)),
        ]
        await tenant.db.answers(answers)

        body = await trend(
            tenant,
            interval="year",
            **{"from": "2024-06-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
        )

        years = [(utc(y, 1, 1), utc(y + 1, 1, 1)) for y in (2024, 2025, 2026)]
        assert (body["from"], body["to"]) == ("2024-01-01T00:00:00Z", "2027-01-01T00:00:00Z")
        assert point_counts(body) == [(1, 0, 0), (0, 0, 1), (0, 1, 0)]
        assert body["points"] == expected_points(years, answers)

    async def test_default_window_covers_now(self, tenant: Tenant) -> None:
        before = datetime.now(UTC)
        body = await trend(tenant)

        start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
        first_month = (before - timedelta(days=365)).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        assert start == first_month
        assert end > before
        assert end - before <= timedelta(days=31)
        assert body["points"][0]["start"] == stamp(first_month)
        assert body["points"][-1]["end"] == stamp(end)


class TestTrendTimeZone:
    ANSWERS = (
        Answer("ny-jan", "acme", 8, utc(2026, 2, 1, 4, 59, 59)),  # 31 Jan 23:59:59 EST
        Answer("ny-feb", "acme", 10, utc(2026, 3, 1, 3)),  # 28 Feb 22:00 EST
        Answer("ny-mar", "acme", 0, utc(2026, 3, 1, 6)),  # 1 Mar 01:00 EST
        Answer("ny-mar-end", "acme", 9, utc(2026, 4, 1, 3, 59, 59)),  # 31 Mar 23:59:59 EDT
    )

    async def test_new_york_months(self, tenant: Tenant) -> None:
        await tenant.db.answers(self.ANSWERS)

        body = await trend(
            tenant,
            tz="America/New_York",
            **{"from": "2026-02-01T00:00:00-05:00", "to": "2026-04-01T00:00:00-04:00"},
        )

        # March starts at 05:00Z (EST) and ends at 04:00Z (EDT).
        months = [
            (utc(2026, 2, 1, 5), utc(2026, 3, 1, 5)),
            (utc(2026, 3, 1, 5), utc(2026, 4, 1, 4)),
        ]
        assert body["tz"] == "America/New_York"
        assert datetime.fromisoformat(body["from"]) == utc(2026, 2, 1, 5)
        assert datetime.fromisoformat(body["to"]) == utc(2026, 4, 1, 4)
        assert point_counts(body) == [(1, 0, 0), (1, 0, 1)]
        assert body["points"] == expected_points(months, self.ANSWERS)

    async def test_the_same_answers_in_utc(self, tenant: Tenant) -> None:
        await tenant.db.answers(self.ANSWERS)

        body = await trend(tenant, **{"from": "2026-02-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"})

        assert body["tz"] == "UTC"
        assert point_counts(body) == [(0, 1, 0), (1, 0, 1)]
        assert body["points"] == expected_points(MONTHS[1:3], self.ANSWERS)


class TestTrendWindows:
    ANSWERS = (
        Answer("o1", "acme", 10, utc(2025, 11, 2, 23, 59, 59)),
        Answer("o2", "acme", 0, utc(2025, 11, 3)),
        Answer("o3", "acme", 9, utc(2025, 12, 15)),
        Answer("s3", "acme", 9, utc(2026, 1, 20)),
        Answer("s3", "acme", 2, utc(2026, 3, 10)),
        Answer("o4", "acme", 7, utc(2026, 1, 31)),
        Answer("o5", "acme", 8, utc(2026, 1, 1)),
        Answer("o6", "acme", 10, utc(2026, 4, 15)),
    )

    async def test_rolling_90_days(self, tenant: Tenant) -> None:
        await tenant.db.answers(self.ANSWERS)

        body = await trend(tenant, rolling_days="90", **FOUR_MONTHS)

        # Windows: [3 Nov, 1 Feb), [1 Dec, 1 Mar), [1 Jan, 1 Apr), [31 Jan, 1 May).
        assert body["rolling_days"] == 90
        assert (body["from"], body["to"]) == (FOUR_MONTHS["from"], FOUR_MONTHS["to"])
        assert [p["from"] for p in body["points"]] == [
            "2025-11-03T00:00:00Z",
            "2025-12-01T00:00:00Z",
            "2026-01-01T00:00:00Z",
            "2026-01-31T00:00:00Z",
        ]
        assert point_counts(body) == [(2, 2, 1), (2, 2, 0), (0, 2, 1), (1, 1, 1)]
        # Every window overlaps the one before it.
        assert [p["change"] for p in body["points"]] == [None] * 4
        assert body["points"] == expected_points(MONTHS, self.ANSWERS, rolling_days=90)

    async def test_rolling_30_days_compares_only_disjoint_windows(self, tenant: Tenant) -> None:
        await tenant.db.answers(self.ANSWERS)

        body = await trend(tenant, rolling_days="30", **FOUR_MONTHS)

        # Windows: [2 Jan, 1 Feb), [30 Jan, 1 Mar), [2 Mar, 1 Apr), [1 Apr, 1 May).
        assert point_counts(body) == [(1, 1, 0), (0, 1, 0), (0, 0, 1), (1, 0, 0)]
        changes = [p["change"] for p in body["points"]]
        assert changes[:2] == [None, None]  # February's window overlaps January's
        assert changes[2] == expected_change(
            Tally(0, 0, 1), Tally(0, 1, 0), previous_start="2026-02-01T00:00:00Z"
        )
        assert changes[3] == expected_change(
            Tally(1, 0, 0), Tally(0, 0, 1), previous_start="2026-03-01T00:00:00Z"
        )
        assert body["points"] == expected_points(MONTHS, self.ANSWERS, rolling_days=30)

    async def test_latest_per_stakeholder_within_each_bucket(self, tenant: Tenant) -> None:
        answers = [
            Answer("s1", "acme", 0, utc(2026, 1, 5)),
            Answer("s1", "acme", 10, utc(2026, 1, 20)),
            Answer("s1", "acme", 5, utc(2026, 3, 3)),
            Answer("s2", "acme", 8, utc(2026, 1, 10)),
        ]
        await tenant.db.answers(answers)

        latest = await trend(tenant, **FOUR_MONTHS)
        respondent = await trend(tenant, method="respondent", **FOUR_MONTHS)

        assert point_counts(latest) == [(1, 1, 0), (0, 0, 0), (0, 0, 1), (0, 0, 0)]
        assert latest["points"] == expected_points(MONTHS, answers)
        assert respondent["method"] == "respondent"
        assert point_counts(respondent) == [(1, 1, 1), (0, 0, 0), (0, 0, 1), (0, 0, 0)]
        assert respondent["points"] == expected_points(MONTHS, answers, latest=False)


class TestTrendGroups:
    ANSWERS = (
        Answer("d1", "acme", 10, utc(2026, 1, 10), role="decision_maker"),
        Answer("d2", "acme", 3, utc(2026, 3, 10), role="decision_maker"),
        Answer("u1", "acme", 0, utc(2026, 1, 11), role="user"),
        Answer("u2", "acme", 8, utc(2026, 1, 12), role="user"),
        Answer("u3", "acme", 9, utc(2026, 2, 12), role="user"),
    )

    async def test_group_by_role_has_every_bucket(self, tenant: Tenant) -> None:
        await tenant.db.answers(self.ANSWERS)

        body = await trend(
            tenant,
            group_by="role",
            **{"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"},
        )

        months = MONTHS[:3]
        by_role = {
            role: [a for a in self.ANSWERS if a.role == role] for role in ("decision_maker", "user")
        }
        assert body["points"] == expected_points(months, self.ANSWERS)
        assert body["series"] == [
            {"key": {"role": role}, "account": None, "points": expected_points(months, answers)}
            for role, answers in by_role.items()
        ]
        series = body["series"]
        assert [point_counts(s) for s in series] == [
            [(1, 0, 0), (0, 0, 0), (0, 0, 1)],
            [(0, 1, 1), (1, 0, 0), (0, 0, 0)],
        ]
        assert series[0]["points"][2]["change"]["previous"] == "2026-01-01T00:00:00Z"

    async def test_filters_are_applied_and_echoed(self, tenant: Tenant) -> None:
        await tenant.db.answers(self.ANSWERS)

        body = await trend(
            tenant, role="user", **{"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
        )

        assert body["filters"] == {"role": "user"}
        assert point_counts(body) == [(0, 1, 1), (1, 0, 0), (0, 0, 0)]


class TestTrendErrors:
    @pytest.mark.parametrize(
        ("params", "loc"),
        [
            ({"tz": "Mars/Olympus"}, ["query", "tz"]),
            ({"tz": "America"}, ["query", "tz"]),  # a folder of zones, not a zone
            ({"interval": "day"}, ["query", "interval"]),
            ({"rolling_days": "0"}, ["query", "rolling_days"]),
            ({"rolling_days": "3651"}, ["query", "rolling_days"]),
            # 1000 weekly points of 3650 days would count every answer hundreds of times.
            (
                {
                    "interval": "week",
                    "from": "2007-01-01T00:00:00Z",
                    "to": "2026-01-01T00:00:00Z",
                    "rolling_days": "3650",
                },
                ["query", "rolling_days"],
            ),
            ({"to": "2026-01-01T00:00:00Z"}, ["query", "from"]),
            ({"to": "2025-12-01T00:00:00Z"}, ["query", "from"]),
            ({"group_by": "stakeholder"}, ["query", "group_by"]),
            ({"method": "account_as_unit", "group_by": "role"}, ["query", "method"]),
            ({"method": "account_as_unit", "account_id": "acme"}, ["query", "method"]),
            ({"weight": "revenue"}, ["query", "weight"]),
        ],
    )
    async def test_invalid_query_is_422(
        self, tenant: Tenant, params: dict[str, str], loc: list[str]
    ) -> None:
        r = await tenant.client.get(TREND, params={"from": "2026-01-01T00:00:00Z", **params})

        assert_invalid(r, loc)

    async def test_more_than_1000_buckets_is_422(self, tenant: Tenant) -> None:
        # September 1942 to December 2025 is exactly 1000 months; one more is too many.
        ok = await tenant.client.get(
            TREND, params={"from": "1942-09-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
        )
        too_many = await tenant.client.get(
            TREND, params={"from": "1942-08-31T23:59:59Z", "to": "2026-01-01T00:00:00Z"}
        )
        weeks = await tenant.client.get(
            TREND,
            params={
                "interval": "week",
                "from": "2000-01-03T00:00:00Z",
                "to": "2026-01-01T00:00:00Z",
            },
        )

        assert ok.status_code == 200, ok.text
        assert len(ok.json()["points"]) == 1000
        assert_invalid(too_many)
        assert_invalid(weeks)

    async def test_without_key_is_401_and_read_key_is_enough(self, tenant: Tenant) -> None:
        request = tenant.client.build_request("GET", TREND, params=FOUR_MONTHS)
        del request.headers["Authorization"]
        read = await tenant.make_key(Scope.READ)

        anonymous = await tenant.client.send(request)
        reader = await tenant.client.get(
            TREND, params=FOUR_MONTHS, headers={"Authorization": f"Bearer {read}"}
        )

        assert problem(anonymous, 401)["type"] == "/problems/unauthorized"
        assert reader.status_code == 200, reader.text

    async def test_another_workspaces_answers_are_not_counted(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")
        await other.db.answers(month_answers())

        body = await trend(tenant, **FOUR_MONTHS)

        assert body["points"] == expected_points(MONTHS, [])
        assert point_counts(body) == [(0, 0, 0)] * 4


DECADE = {"from": "2016-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "interval": "week"}


class TestTrendSize:
    async def test_lines_times_points_over_20000_is_422_saying_how_to_narrow(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        """523 weekly points: 38 account lines are 19,874 points, 39 are 20,397."""
        day = utc(2016, 1, 1)
        await tenant.db.answers(
            [Answer(f"p{i}", f"a{i:02}", 9, day + timedelta(weeks=i)) for i in range(38)]
        )
        by_account = {**DECADE, "group_by": "account"}
        body = await trend(tenant, **by_account)
        assert (len(body["series"]), len(body["points"])) == (38, 523)

        await tenant.db.answers([Answer("p38", "a38", 9, day)])
        r = await tenant.client.get("/v1/nps/trend", params=by_account)
        assert assert_invalid(r, ["query", "group_by"])["detail"] == (
            "39 account lines of 523 points each is over 20,000 points: use a longer interval or "
            "a shorter range, filter to fewer values (segment, account_id, ...), or group by "
            "another dimension"
        )
        assert (await tenant.client.get("/v1/nps/trend", params=DECADE)).status_code == 200
        # Another workspace's lines are not counted against this one's.
        other = await make_tenant("other")
        assert (await trend(other, **by_account))["series"] == []
