"""GET /v1/response-rates: what became of the invitations sent in a window."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from app.db import session_scope
from app.models import Scope, Stakeholder
from tests.support.api import put_settings, report
from tests.support.clock import END, WINDOW, at, stamp, stamp_at
from tests.support.expected import account_profile
from tests.support.harness import MakeTenant, Tenant
from tests.support.invitations import add_invitation, answer, invite, people, public_call
from tests.support.problems import assert_invalid, assert_unauthorized, problem
from tests.support.rates import NOTHING, expected_rate

PATH = "/v1/response-rates"
DAY = timedelta(days=1)


def now() -> datetime:
    return datetime.now(UTC)


async def seed(tenant: Tenant) -> None:
    """Ten invitations sent in the window and one suppressed, plus two outside it.

    | # | who (account, role, job level)   | survey  | channel | created | outcome            |
    |---|----------------------------------|---------|---------|---------|--------------------|
    | 1 | dana (acme, dm, executive)       | rel     | email   | day 1   | answered, opened   |
    | 2 | lee (acme, user, ic)             | rel     | email   | day 2   | answered, unopened |
    | 3 | lee                              | rel     | link    | day 3   | dismissed          |
    | 4 | kim (acme, influencer, manager)  | rel     | widget  | day 4   | opened, live       |
    | 5 | kim                              | rel     | email   | day 5   | issued, lapsed     |
    | 6 | gus (globex, dm, executive)      | rel     | email   | day 6   | issued, live       |
    | 7 | gus                              | support | link    | day 7   | revoked            |
    | 8 | ivy (globex, user, manager)      | support | widget  | day 8   | answered, opened   |
    | 9 | ivy                              | rel     | email   | day 9   | suppressed         |
    | 10| dana                             | support | email   | day 10  | opened, lapsed     |
    """
    db = tenant.db
    await db.account("acme", name="Acme", segment="enterprise", industry="software")
    await db.account("globex", name="Globex", segment="smb", industry="retail")
    await db.stakeholder(
        "dana", "acme", role="decision_maker", job_level="executive", department="Finance"
    )
    await db.stakeholder(
        "lee", "acme", role="user", job_level="individual_contributor", department="Engineering"
    )
    await db.stakeholder("kim", "acme", role="influencer", job_level="manager")
    await db.stakeholder("gus", "globex", role="decision_maker", job_level="executive")
    await db.stakeholder("ivy", "globex", role="user", job_level="manager")
    live, lapsed = now() + 10 * DAY, now() - DAY

    async def sent(who: str, day: float, status: str, **values: Any) -> None:
        await add_invitation(tenant, who, at(day), status=status, **values)

    await sent("dana", 1, "answered", opened_at=at(1.1), answered_at=at(1.2), expires_at=live)
    await sent("lee", 2, "answered", answered_at=at(2.1), expires_at=live)
    await sent("lee", 3, "dismissed", channel="link", opened_at=at(3.1), dismissed_at=at(3.2))
    await sent("kim", 4, "opened", channel="widget", opened_at=at(4.1), expires_at=live)
    await sent("kim", 5, "issued", expires_at=lapsed)
    await sent("gus", 6, "issued", expires_at=live)
    await sent("gus", 7, "revoked", survey="support", channel="link", revoked_at=at(7.1))
    await sent(
        "ivy",
        8,
        "answered",
        survey="support",
        channel="widget",
        opened_at=at(8.1),
        answered_at=at(8.2),
    )
    await sent("ivy", 9, "suppressed", suppression_rule="answered_recently")
    await sent("dana", 10, "opened", survey="support", opened_at=at(10.1), expires_at=lapsed)
    # Outside the window: before `from`, and at `to` (exclusive).
    await sent("dana", -5, "answered", answered_at=at(-4))
    await add_invitation(tenant, "lee", END, status="answered", answered_at=END)


TOTAL = expected_rate(9, 3, 6, dismissed=1, expired=2, revoked=1, suppressed=1)


def body(
    response_rate: dict[str, Any],
    *,
    filters: dict[str, str] | None = None,
    groups: list[dict[str, Any]] | None = None,
    start: str = WINDOW["from"],
    end: str = WINDOW["to"],
) -> dict[str, Any]:
    return {
        "from": start,
        "to": end,
        "filters": filters or {},
        "response_rate": response_rate,
        "groups": groups,
    }


def group(name: str, key: str, rate: dict[str, Any], account: Any = None) -> dict[str, Any]:
    return {"key": {name: key}, "response_rate": rate, "account": account}


def query_cases(*cases: tuple[dict[str, str], Any]) -> list[Any]:
    """Parameter sets named by their query string."""
    return [
        pytest.param(params, other, id="&".join(f"{k}={v}" for k, v in params.items()))
        for params, other in cases
    ]


@pytest.fixture
async def seeded(tenant: Tenant) -> Tenant:
    await seed(tenant)
    return tenant


class TestResponseRates:
    async def test_counts_and_the_wilson_interval_of_a_known_set(self, seeded: Tenant) -> None:
        assert await report(seeded.client, PATH) == body(TOTAL)

    async def test_the_interval_by_hand(self, seeded: Tenant) -> None:
        # 3 of 9 at 95 %: z = 1.95996, centre (1/3 + z^2/18) / (1 + z^2/9) = 0.38319,
        # half-width z / (1 + z^2/9) * sqrt((1/3)(2/3)/9 + z^2/324) = 0.26261.
        ci = (await report(seeded.client, PATH))["response_rate"]["ci"]

        assert (round(ci["low"], 4), round(ci["high"], 4)) == (0.1206, 0.6458)

    async def test_confidence_sets_the_level(self, seeded: Tenant) -> None:
        got = await report(seeded.client, PATH, confidence=0.9)

        assert got["response_rate"] == expected_rate(
            9, 3, 6, dismissed=1, expired=2, revoked=1, suppressed=1, confidence=0.9
        )

    async def test_the_workspace_default_confidence_and_thresholds(self, seeded: Tenant) -> None:
        await put_settings(seeded.client, {"default_confidence": 0.8, "min_n": 2, "low_n": 9})

        got = await report(seeded.client, PATH)

        assert got["response_rate"] == expected_rate(
            9, 3, 6, dismissed=1, expired=2, revoked=1, suppressed=1, confidence=0.8, precision="ok"
        )

    async def test_the_window_is_by_created_at_from_inclusive_to_exclusive(
        self, seeded: Tenant
    ) -> None:
        # Days 5, 6 and 7: the lapsed one, the live one, the revoked one; not day 8.
        got = await report(seeded.client, PATH, **{"from": at(5).isoformat(), "to": stamp_at(8)})

        assert got == body(
            expected_rate(3, expired=1, revoked=1), start=stamp_at(5), end=stamp_at(8)
        )

    async def test_an_empty_window_has_no_rate(self, seeded: Tenant) -> None:
        params = {"from": stamp_at(100), "to": stamp_at(200)}

        assert await report(seeded.client, PATH, **params) == body(
            NOTHING, start=stamp_at(100), end=stamp_at(200)
        )
        grouped = await report(seeded.client, PATH, group_by="survey", **params)
        assert grouped == body(NOTHING, groups=[], start=stamp_at(100), end=stamp_at(200))

    async def test_only_suppressed_is_nothing_sent(self, seeded: Tenant) -> None:
        got = await report(seeded.client, PATH, **{"from": stamp_at(9), "to": stamp_at(10)})

        assert got["response_rate"] == expected_rate(0, suppressed=1)
        assert got["response_rate"]["rate"] is None

    async def test_small_samples_are_flagged(self, seeded: Tenant) -> None:
        few = await report(seeded.client, PATH, account_id="globex")
        some = await report(seeded.client, PATH)

        assert few["response_rate"]["precision"] == "insufficient"  # n = 3 < 5
        assert some["response_rate"]["precision"] == "low"  # 5 <= 9 < 30

    async def test_without_from_and_to_the_workspaces_default_window(self, seeded: Tenant) -> None:
        r = await seeded.client.get(PATH)

        assert r.status_code == 200, r.text
        got = r.json()

        assert datetime.fromisoformat(got["to"]) - datetime.fromisoformat(got["from"]) == (
            365 * DAY
        )

    async def test_the_public_calls_move_the_figures(self, tenant: Tenant) -> None:
        # Issued over HTTP, answered with the token (never opened first), dismissed, dismissed
        # and then answered, revoked, and one suppressed by the open-invitation rule.
        await people(tenant, "p1", "p2", "p3", "p4", "p5")
        client = tenant.client
        first = await invite(client, "p1")
        second = await invite(client, "p2", channel="widget")
        third = await invite(client, "p3", channel="link")
        fourth = await invite(client, "p4")
        await invite(client, "p5")
        await invite(client, "p5", status=200)
        await answer(client, first["token"], {"score": 9})
        r = await public_call(client, "POST", "dismissals", second["token"])
        assert r.status_code == 204, r.text
        r = await public_call(client, "POST", "dismissals", third["token"])
        assert r.status_code == 204, r.text
        await answer(client, third["token"], {"score": 4})
        r = await client.delete(f"/v1/invitations/{fourth['id']}")
        assert r.status_code == 204, r.text

        got = await report(client, PATH, **{"from": stamp(now() - DAY), "to": stamp(now() + DAY)})

        assert got["response_rate"] == expected_rate(5, 2, 3, dismissed=1, revoked=1, suppressed=1)

    async def test_another_workspace_sees_nothing(
        self, seeded: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("tenant-b")
        # Same ids in the other workspace, with invitations of its own.
        await other.db.account("acme", segment="enterprise")
        await other.db.stakeholder("dana", "acme", role="decision_maker")
        await add_invitation(other, "dana", at(1), status="answered", answered_at=at(1.5))

        theirs = await report(other.client, PATH, group_by="account")
        ours = await report(seeded.client, PATH, group_by="role")

        assert theirs["response_rate"] == expected_rate(1, 1, 1)
        assert [g["key"] for g in theirs["groups"]] == [{"account_id": "acme"}]
        assert ours["response_rate"] == TOTAL

    async def test_a_read_key_is_enough_and_no_key_is_401(
        self, seeded: Tenant, make_tenant: MakeTenant
    ) -> None:
        read = await seeded.make_key(Scope.READ)
        r = await seeded.client.get(
            PATH, params=WINDOW, headers={"Authorization": f"Bearer {read}"}
        )
        assert r.status_code == 200, r.text
        anonymous = await seeded.client.get(PATH, params=WINDOW, headers={"Authorization": ""})
        assert_unauthorized(anonymous)


class TestResponseRateGroups:
    async def test_by_account_with_its_profile(self, seeded: Tenant) -> None:
        got = await report(seeded.client, PATH, group_by="account")

        assert got == body(
            TOTAL,
            groups=[
                group(
                    "account_id",
                    "acme",
                    expected_rate(6, 2, 5, dismissed=1, expired=2),
                    account_profile("Acme", segment="enterprise", industry="software"),
                ),
                group(
                    "account_id",
                    "globex",
                    expected_rate(3, 1, 1, revoked=1, suppressed=1),
                    account_profile("Globex", segment="smb", industry="retail"),
                ),
            ],
        )

    async def test_by_role(self, seeded: Tenant) -> None:
        got = await report(seeded.client, PATH, group_by="role")

        assert got["groups"] == [
            group("role", "decision_maker", expected_rate(4, 1, 2, expired=1, revoked=1)),
            group("role", "influencer", expected_rate(2, 0, 1, expired=1)),
            group("role", "user", expected_rate(3, 2, 3, dismissed=1, suppressed=1)),
        ]

    async def test_by_job_level(self, seeded: Tenant) -> None:
        got = await report(seeded.client, PATH, group_by="job_level")

        assert got["groups"] == [
            group("job_level", "executive", expected_rate(4, 1, 2, expired=1, revoked=1)),
            group("job_level", "individual_contributor", expected_rate(2, 1, 2, dismissed=1)),
            group("job_level", "manager", expected_rate(3, 1, 2, expired=1, suppressed=1)),
        ]

    async def test_by_survey(self, seeded: Tenant) -> None:
        got = await report(seeded.client, PATH, group_by="survey")

        assert got["groups"] == [
            group(
                "survey",
                "relationship",
                expected_rate(6, 2, 4, dismissed=1, expired=1, suppressed=1),
            ),
            group("survey", "support", expected_rate(3, 1, 2, expired=1, revoked=1)),
        ]

    async def test_by_channel(self, seeded: Tenant) -> None:
        got = await report(seeded.client, PATH, group_by="channel")

        assert got["groups"] == [
            group("channel", "email", expected_rate(5, 2, 3, expired=2, suppressed=1)),
            group("channel", "link", expected_rate(2, 0, 1, dismissed=1, revoked=1)),
            group("channel", "widget", expected_rate(2, 1, 2)),
        ]

    async def test_account_is_where_they_were_asked_role_is_the_current_one(
        self, seeded: Tenant
    ) -> None:
        # lee (acme, user) moves to globex as a decision maker after invitations 2 and 3.
        async with session_scope(seeded.db.sessionmaker) as session:
            await session.execute(
                update(Stakeholder)
                .where(Stakeholder.workspace_id == seeded.id, Stakeholder.id == "lee")
                .values(account_id="globex", role="decision_maker")
            )

        by_account = await report(seeded.client, PATH, group_by="account")
        by_role = await report(seeded.client, PATH, group_by="role")

        assert [g["response_rate"]["invited"] for g in by_account["groups"]] == [6, 3]
        assert by_role["groups"] == [
            group(
                "role", "decision_maker", expected_rate(6, 2, 4, dismissed=1, expired=1, revoked=1)
            ),
            group("role", "influencer", expected_rate(2, 0, 1, expired=1)),
            group("role", "user", expected_rate(1, 1, 1, suppressed=1)),
        ]


class TestResponseRateFilters:
    @pytest.mark.parametrize(
        ("params", "expected"),
        query_cases(
            ({"account_id": "globex"}, expected_rate(3, 1, 1, revoked=1, suppressed=1)),
            ({"role": "user"}, expected_rate(3, 2, 3, dismissed=1, suppressed=1)),
            ({"job_level": "manager"}, expected_rate(3, 1, 2, expired=1, suppressed=1)),
            ({"department": " FINANCE "}, expected_rate(2, 1, 2, expired=1)),
            ({"segment": "enterprise"}, expected_rate(6, 2, 5, dismissed=1, expired=2)),
            ({"industry": "retail"}, expected_rate(3, 1, 1, revoked=1, suppressed=1)),
            ({"survey": "support"}, expected_rate(3, 1, 2, expired=1, revoked=1)),
            ({"channel": "widget"}, expected_rate(2, 1, 2)),
            (
                {"channel": "email", "role": "decision_maker"},
                expected_rate(3, 1, 2, expired=1),
            ),
            ({"account_id": "nobody"}, NOTHING),
        ),
    )
    async def test_filter(
        self, seeded: Tenant, params: dict[str, str], expected: dict[str, Any]
    ) -> None:
        got = await report(seeded.client, PATH, **params)

        assert got == body(expected, filters=params)

    async def test_filters_and_groups_together(self, seeded: Tenant) -> None:
        got = await report(seeded.client, PATH, segment="enterprise", group_by="channel")

        assert got["groups"] == [
            group("channel", "email", expected_rate(4, 2, 3, expired=2)),
            group("channel", "link", expected_rate(1, 0, 1, dismissed=1)),
            group("channel", "widget", expected_rate(1, 0, 1)),
        ]


class TestResponseRateParams:
    @pytest.mark.parametrize(
        ("params", "loc"),
        query_cases(
            ({"group_by": "department"}, ["query", "group_by"]),
            ({"group_by": "segment"}, ["query", "group_by"]),
            ({"channel": "api"}, ["query", "channel"]),
            ({"role": "boss"}, ["query", "role"]),
            ({"account_id": "a b"}, ["query", "account_id"]),
            ({"confidence": "0.3"}, ["query", "confidence"]),
            ({"confidence": "high"}, ["query", "confidence"]),
            ({"from": "yesterday"}, ["query", "from"]),
            ({"from": "2026-01-01T00:00:00"}, ["query", "from"]),
            ({"method": "respondent"}, ["query", "method"]),
        ),
    )
    async def test_bad_params_are_422(
        self, tenant: Tenant, params: dict[str, str], loc: list[str]
    ) -> None:
        r = await tenant.client.get(PATH, params=params)

        assert_invalid(r, loc)

    async def test_from_not_before_to_is_422(self, tenant: Tenant) -> None:
        r = await tenant.client.get(PATH, params={"from": stamp(END), "to": stamp(END)})

        body = problem(r, 422)
        assert [e["loc"] for e in body["errors"]] == [["query", "from"]]
