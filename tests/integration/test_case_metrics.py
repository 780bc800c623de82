"""GET /v1/cases/metrics: counts, Kaplan-Meier times with open cases censored, the share closed
within SLA, recovery beside detractors with no case (a hand-built data set), and tenancy."""

from datetime import UTC, datetime, timedelta

import pytest

from app.scoring.survival import share_difference
from tests.support.api import get_json
from tests.support.cases import open_case, set_case
from tests.support.clock import ago, stamp
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_invalid

METRICS = "/v1/cases/metrics"
EMPTY_DURATION = {"median_hours": None, "p90_hours": None, "n": 0, "censored": 0}
NO_RECOVERY = {
    "with_case": {"share": None, "recovered": 0, "n": 0},
    "without_case": {"share": None, "recovered": 0, "n": 0},
    "difference": None,
    "ci": None,
    "z": None,
    "p_value": None,
}


async def _three_cases(tenant: Tenant) -> datetime:
    """A: opened 10 h ago, acted on 2 h later, closed after 6 h (within its 48 h SLA).
    B: opened 5 h ago, untouched, past due. C: opened 100 h ago, acted on after 1 h, closed
    after 60 h (past SLA). Returns the instant the hours count back from."""
    base = datetime.now(UTC).replace(microsecond=0)
    a = await open_case(tenant, "p-a", 3)
    b = await open_case(tenant, "p-b", 2, account_id="globex", role="user")
    c = await open_case(tenant, "p-c", 1)

    def hours(h: float) -> datetime:
        return base - timedelta(hours=h)

    await set_case(tenant, a, opened_at=hours(10), first_action_at=hours(8), closed_at=hours(4))
    await set_case(tenant, b, opened_at=hours(5), due_at=hours(1))
    await set_case(tenant, c, opened_at=hours(100), first_action_at=hours(99), closed_at=hours(40))
    return base


class TestCaseMetrics:
    async def test_nothing_yet(self, tenant: Tenant) -> None:
        assert await get_json(tenant.client, METRICS) == {
            "kind": "recovery",
            "from": None,
            "to": None,
            "opened": 0,
            "closed": 0,
            "open_now": 0,
            "overdue": 0,
            "time_to_first_action": EMPTY_DURATION,
            "time_to_close": EMPTY_DURATION,
            "closed_within_sla": {"share": None, "n": 0},
            "recovery": NO_RECOVERY,
        }

    async def test_counts_and_times_with_the_open_case_censored(self, tenant: Tenant) -> None:
        await _three_cases(tenant)

        body = await get_json(tenant.client, METRICS)

        assert {k: body[k] for k in ("opened", "closed", "open_now", "overdue")} == {
            "opened": 3,
            "closed": 2,
            "open_now": 1,
            "overdue": 1,
        }
        # To close: (6, closed), (5, open), (60, closed). t=6: 2 at risk, S = 1/2 -> median 6;
        # t=60: S = 0 -> p90 60. Dropping the open case would not change these, but n would.
        assert body["time_to_close"] == {
            "median_hours": 6.0,
            "p90_hours": 60.0,
            "n": 3,
            "censored": 1,
        }
        # First action: (2, seen), (5, waiting), (1, seen). t=1: 2/3; t=2: 1/3 -> median 2.
        assert body["time_to_first_action"] == {
            "median_hours": 2.0,
            "p90_hours": None,
            "n": 3,
            "censored": 1,
        }
        assert body["closed_within_sla"] == {"share": 0.5, "n": 2}

    async def test_window_and_filters(self, tenant: Tenant) -> None:
        base = await _three_cases(tenant)

        since = base - timedelta(hours=20)
        windowed = await get_json(tenant.client, METRICS, **{"from": stamp(since)})
        assert (windowed["from"], windowed["opened"], windowed["closed"]) == (stamp(since), 2, 1)
        early = await get_json(tenant.client, METRICS, to=stamp(since))
        assert (early["opened"], early["closed"]) == (1, 1)
        assert (await get_json(tenant.client, METRICS, account_id="globex"))["opened"] == 1
        assert (await get_json(tenant.client, METRICS, role="user"))["opened"] == 1
        assert (await get_json(tenant.client, METRICS, rule="detractor"))["opened"] == 3
        assert (await get_json(tenant.client, METRICS, owner="jane"))["opened"] == 0
        assert (await get_json(tenant.client, METRICS, kind="advocacy"))["opened"] == 0

    async def test_advocacy_apart(self, tenant: Tenant) -> None:
        await open_case(tenant, "p-1", 10, role="decision_maker")
        await open_case(tenant, "p-2", 3)

        assert (await get_json(tenant.client, METRICS, kind="advocacy"))["opened"] == 1
        assert (await get_json(tenant.client, METRICS))["opened"] == 1

    async def test_recovery_against_a_hand_built_set(self, tenant: Tenant) -> None:
        # With a case, closed 10 days ago: p-1 answers 8 afterwards (recovered), p-2 answers 4
        # (not), p-3 never answers again (not counted): 1 of 2.
        for person in ("p-1", "p-2", "p-3"):
            case_id = await open_case(tenant, person, 3)
            await set_case(tenant, case_id, opened_at=ago(days=12), closed_at=ago(days=10))
        await tenant.db.respond("p-1", (8, ago(days=5)))
        await tenant.db.respond("p-2", (4, ago(days=5)))
        # No case (answers the worker never saw): q-1 5 then 9, q-2 2 then 7 (both recovered),
        # q-3 6 then 3 (not); q-3's 3 and p-2's 4 have no next answer (not counted): 2 of 3.
        for person, first, then in (("q-1", 5, 9), ("q-2", 2, 7), ("q-3", 6, 3)):
            await tenant.db.stakeholder(person)
            await tenant.db.respond(person, (first, ago(days=20)), (then, ago(days=3)))
        # An excluded answer is no next answer.
        await tenant.db.stakeholder("q-4")
        await tenant.db.respond("q-4", (1, ago(days=20)))
        await tenant.db.respond("q-4", (10, ago(days=2)), excluded=True)

        recovery = (await get_json(tenant.client, METRICS))["recovery"]

        test = share_difference((1, 2), (2, 3))
        assert test is not None
        assert recovery == {
            "with_case": {"share": 0.5, "recovered": 1, "n": 2},
            "without_case": {"share": pytest.approx(2 / 3), "recovered": 2, "n": 3},
            "difference": pytest.approx(0.5 - 2 / 3),
            "ci": {
                "low": pytest.approx(test.low),
                "high": pytest.approx(test.high),
                "level": 0.95,
                "method": "newcombe",
            },
            "z": pytest.approx(test.z),
            "p_value": pytest.approx(test.p_value),
        }

    @pytest.mark.parametrize(
        ("param", "value"),
        [("kind", "nope"), ("from", "yesterday"), ("role", "ceo"), ("account_id", "a b")],
    )
    async def test_bad_query_is_422(self, tenant: Tenant, param: str, value: str) -> None:
        r = await tenant.client.get(METRICS, params={param: value})
        assert_invalid(r, ["query", param])

    async def test_another_workspace_sees_none(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        await _three_cases(tenant)
        other = await make_tenant("tenant-b")

        body = await get_json(other.client, METRICS)

        assert (body["opened"], body["time_to_close"], body["recovery"]) == (
            0,
            EMPTY_DURATION,
            NO_RECOVERY,
        )
