"""`nps demo`'s workspace and data set (app.demo): a workspace of its own each time, and the
benchmark's generator loaded through the API with what the dashboard shows (roles, job levels,
departments, two years of answers with comments and driver ratings). The command itself, served,
is run by tests/browser/test_dashboard.py."""

from collections import Counter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.demo import create_demo_workspace, seed
from tests.support.harness import Tenant


async def _all(tenant: Tenant, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = f"{path}?limit=200" + (f"&cursor={cursor}" if cursor else "")
        r = await tenant.client.get(query)
        assert r.status_code == 200, r.text
        items += r.json()["data"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return items


async def test_each_demo_gets_a_workspace_of_its_own(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        first = await create_demo_workspace(session)
        second = await create_demo_workspace(session)
    assert first.workspace_id != second.workspace_id
    assert first.workspace_name.startswith("demo")
    assert second.workspace_name != first.workspace_name
    assert len({first.read_key, first.admin_key, second.read_key, second.admin_key}) == 4


async def test_the_data_set_is_stored_whole_through_the_api(tenant: Tenant) -> None:
    stored = await seed(tenant.client, accounts=4, stakeholders=24, responses=300, seed="t")
    assert stored == 300

    accounts = await _all(tenant, "/v1/accounts")
    people = await _all(tenant, "/v1/stakeholders")
    answers = await _all(tenant, "/v1/responses")
    assert len(accounts) == 4
    assert len(people) == 24
    assert len(answers) == 300
    assert {a["segment"] for a in accounts} <= {"enterprise", "mid-market", "smb"}
    roles = Counter(p["role"] for p in people)
    assert len(roles) >= 2, roles
    assert all(p["job_level"] and p["department"] for p in people)
    # About a fifth carry a comment and half driver ratings (1-5); two years of answers.
    commented = sum(1 for a in answers if a["comment"])
    rated = [a["attributes"] for a in answers if a["attributes"]]
    assert 30 <= commented <= 90, commented
    assert 100 <= len(rated) <= 200, len(rated)
    assert all(1 <= v <= 5 for ratings in rated for v in ratings.values())
    days = sorted(a["submitted_at"][:10] for a in answers)
    assert days[0][:4] != days[-1][:4]
