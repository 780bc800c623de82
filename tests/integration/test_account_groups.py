"""group_by=account: each group carries its account's profile and benchmark standing."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.api import Answer, report
from tests.support.clock import WINDOW, at
from tests.support.expected import (
    MANUFACTURING,
    TECHNOLOGY,
    account_profile,
    expected_groups,
    expected_score,
    unknown_benchmark,
)
from tests.support.harness import MakeTenant, Tenant


async def seed(tenant: Tenant) -> None:
    db = tenant.db
    await db.account(
        "t1",
        name="Tech One",
        industry="technology",
        segment="enterprise",
        annual_revenue="1200000.00",
        currency="EUR",
    )
    await db.account("m1", name="Mill", industry="Manufacturing")
    await db.account("h1", industry="healthcare", segment="smb")
    await db.account("x1")
    await db.answers(
        [
            Answer("t1-a", "t1", 10, at(1)),
            Answer("t1-b", "t1", 9, at(2)),
            Answer("m1-a", "m1", 3, at(3)),
            Answer("h1-a", "h1", 8, at(4)),
            Answer("x1-a", "x1", 7, at(5)),
        ]
    )


class TestNpsGroupByAccount:
    async def test_groups_carry_the_account_and_its_standing(self, tenant: Tenant) -> None:
        await seed(tenant)

        body = await report(tenant.client, group_by="account")

        assert body["groups"] == [
            {
                "key": {"account_id": "h1"},
                "score": expected_score(0, 1, 0),
                "account": account_profile("h1", segment="smb", industry="healthcare"),
                # An industry the benchmark table does not have.
                "benchmark": unknown_benchmark("healthcare"),
            },
            {
                "key": {"account_id": "m1"},
                "score": expected_score(0, 0, 1),
                "account": account_profile("Mill", industry="Manufacturing"),
                "benchmark": {**MANUFACTURING, "industry": "Manufacturing", "position": "below"},
            },
            {
                "key": {"account_id": "t1"},
                "score": expected_score(2, 0, 0),
                "account": account_profile(
                    "Tech One",
                    segment="enterprise",
                    industry="technology",
                    annual_revenue="1200000.00",
                    currency="EUR",
                ),
                "benchmark": {**TECHNOLOGY, "position": "above"},
            },
            {
                "key": {"account_id": "x1"},
                "score": expected_score(0, 1, 0),
                "account": account_profile("x1"),
                # No industry: no range to stand against.
                "benchmark": unknown_benchmark(None),
            },
        ]

    async def test_the_standing_follows_the_workspace_benchmarks(self, tenant: Tenant) -> None:
        await seed(tenant)
        r = await tenant.client.put(
            "/v1/settings", json={"benchmarks": {"healthcare": {"low": 5, "high": 10}}}
        )
        assert r.status_code == 200, r.text

        body = await report(tenant.client, group_by="account", account_id="h1")

        [group] = body["groups"]  # one passive: NPS 0
        assert group["benchmark"] == {
            "industry": "healthcare",
            "low": 5.0,
            "high": 10.0,
            "position": "below",
        }

    async def test_other_groupings_carry_no_account(self, tenant: Tenant) -> None:
        await seed(tenant)
        body = await report(tenant.client, group_by="segment")
        assert {g["key"]["segment"]: g["account"] for g in body["groups"]} == {
            "enterprise": None,
            "smb": None,
            None: None,
        }

    async def test_each_workspace_sees_its_own_accounts(self, make_tenant: MakeTenant) -> None:
        a, b = await make_tenant("a"), await make_tenant("b")
        await a.db.account("acme", name="A's Acme", industry="technology")
        await a.db.answers([Answer("p", "acme", 10, at(1)), Answer("q", "globex", 0, at(2))])
        await b.db.account("acme", name="B's Acme")
        await b.db.answers([Answer("p", "acme", 0, at(1))])

        body = await report(b.client, group_by="account")

        assert body["groups"] == expected_groups(
            "account_id", [("acme", (0, 0, 1))], {"acme": account_profile("B's Acme")}
        )

    async def test_profiles_take_one_statement_whatever_the_number_of_groups(
        self, make_tenant: MakeTenant, engine: AsyncEngine
    ) -> None:
        few, many = await make_tenant("few"), await make_tenant("many")
        await few.db.answers([Answer("s0", "acc-0", 9, at(1))])
        await many.db.answers([Answer(f"s{i}", f"acc-{i}", 9, at(1 + i)) for i in range(12)])

        with statements(engine) as seen:
            await report(few.client, group_by="account")
        one_group = len(seen)
        with statements(engine) as seen:
            body = await report(many.client, group_by="account")

        assert len(body["groups"]) == 12
        assert len(seen) == one_group


class TestTrendGroupByAccount:
    async def test_each_series_carries_its_account(self, tenant: Tenant) -> None:
        await seed(tenant)

        r = await tenant.client.get(
            "/v1/nps/trend", params={**WINDOW, "group_by": "account", "interval": "quarter"}
        )
        assert r.status_code == 200, r.text

        series = r.json()["series"]
        assert [(s["key"]["account_id"], s["account"]) for s in series] == [
            ("h1", account_profile("h1", segment="smb", industry="healthcare")),
            ("m1", account_profile("Mill", industry="Manufacturing")),
            (
                "t1",
                account_profile(
                    "Tech One",
                    segment="enterprise",
                    industry="technology",
                    annual_revenue="1200000.00",
                    currency="EUR",
                ),
            ),
            ("x1", account_profile("x1")),
        ]


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[Any]]:
    """The SQL statements run on `engine` inside the block."""
    seen: list[Any] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
