"""Pre-counted calendar buckets (app.services.tallies, migration 0023) give exactly the counts of
the answers, with deltas pending or folded, under late answers, exclusions and deletions.

Random data on purpose, as in test_chain: answers arrive out of order, share instants, come singly
and in batches, cross month, quarter and year boundaries, and are excluded and included again.
"""

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app import migrate
from app.buckets import Interval, buckets
from app.config import Settings
from app.db import driver, in_workspace, session_scope
from app.jobs import TASKS, JobContext
from app.models import AnswerTally, JobLevel, Role, TallyDelta
from app.scoring import Method
from app.services import tallies
from app.services.cells import Cells
from app.services.counting import count
from app.services.keys import create_workspace
from app.services.selection import Dimension, Filters, Selection, Weighting, Window
from tests.support.harness import MakeTenant, Tenant, as_service

ROLES = [r.value for r in Role]
LEVELS = [level.value for level in JobLevel]
METHODS = [Method.RESPONDENT, Method.LATEST_PER_STAKEHOLDER, Method.ROLE_WEIGHTED]
WEIGHTS = Weighting(
    role={"decision_maker": 3.0, "influencer": 2.0, "user": 1.0, "other": 0.3},
    job_level={"executive": 1.7, "director": 1.1},
)
# Answers over about 15 months: across month, quarter and year ends, and weeks that straddle them.
FIRST = datetime(2025, 9, 15, tzinfo=UTC)
DAYS = 430
ZONE = ZoneInfo("UTC")


async def _people(tenant: Tenant, rnd: random.Random, count_: int = 14) -> list[str]:
    client = tenant.client
    for a in range(3):
        r = await client.put(f"/v1/accounts/acct{a}", json={})
        assert r.status_code == 201, r.text
    people = [f"p{i}" for i in range(count_)]
    for person in people:
        body = {
            "account_id": f"acct{rnd.randrange(3)}",
            "role": rnd.choice(ROLES),
            "job_level": rnd.choice(LEVELS),
        }
        r = await client.put(f"/v1/stakeholders/{person}", json=body)
        assert r.status_code == 201, r.text
    return people


async def _answer(tenant: Tenant, rnd: random.Random, people: list[str], n: int) -> list[str]:
    """n answers at instants shared often (ties), sent singly and in batches, out of order."""
    instants = [
        FIRST + timedelta(days=rnd.randrange(DAYS), hours=rnd.randrange(24)) for _ in range(60)
    ]
    # Some at the very start of a month, a quarter or a week: a next answer at a bucket's end.
    for _ in range(12):
        day = FIRST + timedelta(days=rnd.randrange(DAYS))
        instants.append(rnd.choice([day.replace(day=1), day - timedelta(days=day.weekday())]))
    answers: list[dict[str, Any]] = [
        {
            "stakeholder_id": rnd.choice(people),
            "score": rnd.randrange(11),
            "submitted_at": rnd.choice(instants).isoformat(),
        }
        for _ in range(n)
    ]
    ids: list[str] = []
    position = 0
    while position < len(answers):
        size = rnd.choice([1, 1, 7, 40])
        chunk = answers[position : position + size]
        position += size
        if size == 1:
            r = await tenant.client.post("/v1/responses", json=chunk[0])
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        else:
            r = await tenant.client.post("/v1/responses/batch", json={"responses": chunk})
            assert r.status_code == 200, r.text
            ids += [result["id"] for result in r.json()["results"]]
    return ids


async def _toggle(tenant: Tenant, rnd: random.Random, ids: list[str], n: int) -> None:
    excluded = rnd.sample(ids, n)
    for response_id in excluded:
        r = await tenant.client.patch(
            f"/v1/responses/{response_id}", json={"excluded": True, "reason": "test"}
        )
        assert r.status_code == 200, r.text
    for response_id in excluded[: n // 3]:
        r = await tenant.client.patch(f"/v1/responses/{response_id}", json={"excluded": False})
        assert r.status_code == 200, r.text


def _selection(rnd: random.Random) -> tuple[Selection, tuple[Dimension, ...]]:
    interval = rnd.choice(list(Interval))
    start = FIRST + timedelta(days=rnd.randrange(-20, DAYS))
    end = start + timedelta(days=rnd.randrange(1, 400))
    bounds = buckets(start, end, interval, ZONE)
    assert bounds is not None
    method = rnd.choice(METHODS)
    filters = Filters(
        role=rnd.choice([None, None, Role.DECISION_MAKER, Role.USER]),
        job_level=rnd.choice([None, None, None, JobLevel.EXECUTIVE]),
    )
    selection = Selection(
        [Window(a, b) for a, b in bounds],
        filters,
        method,
        WEIGHTS if method is Method.ROLE_WEIGHTED else None,
    )
    dimensions = rnd.choice([(), (), (Dimension.ROLE,), (Dimension.JOB_LEVEL,)])
    return selection, dimensions


async def _compare(
    session: AsyncSession, workspace_id: uuid.UUID, rnd: random.Random, rounds: int = 60
) -> int:
    """Every random selection counts the same pre-counted as from the answers; the number of
    non-empty cells compared (so a comparison of nothing cannot pass unnoticed)."""
    compared = 0
    for _ in range(rounds):
        selection, dimensions = _selection(rnd)
        assert tallies.interval_of(selection, dimensions) is not None
        fast: Cells = await count(session, workspace_id, selection, dimensions)
        answers: Cells = await count(
            session, workspace_id, selection, dimensions, pre_counted=False
        )
        assert fast == answers, (selection, dimensions)
        compared += sum(1 for c in answers.values() if c.tally.n)
    return compared


async def _pending(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    query = (
        select(func.count()).select_from(TallyDelta).where(TallyDelta.workspace_id == workspace_id)
    )
    return await session.scalar(query) or 0


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_pre_counted_buckets_equal_the_answers_through_every_change(
    tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession], seed: int
) -> None:
    rnd = random.Random(seed)
    people = await _people(tenant, rnd)
    ids = await _answer(tenant, rnd, people, 260)
    async with sessionmaker() as session:
        assert await _pending(session, tenant.id) > 0  # every write left its deltas
        assert await _compare(session, tenant.id, rnd, 30) > 0  # no tallies yet: the deltas
        assert await tallies.fold(session, tenant.id) > 0
        assert await _pending(session, tenant.id) == 0
        assert await _compare(session, tenant.id, rnd) > 100  # the tallies alone

    # Exclusions, late answers and a deleted stakeholder: deltas on top of the tallies.
    await _toggle(tenant, rnd, ids, 30)
    await _answer(tenant, rnd, people, 25)
    r = await tenant.client.delete(f"/v1/stakeholders/{people[0]}")
    assert r.status_code == 204, r.text
    async with sessionmaker() as session:
        assert await _pending(session, tenant.id) > 0
        assert await _compare(session, tenant.id, rnd) > 100  # tallies and deltas
        await tallies.fold(session, tenant.id)
        assert await _pending(session, tenant.id) == 0
        assert await _compare(session, tenant.id, rnd) > 100


async def test_a_clean_bucket_is_read_from_the_tallies_alone(
    tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Proof the pre-counted path is the one taken: a tally changed by hand changes the score."""
    rnd = random.Random(7)
    people = await _people(tenant, rnd, 3)
    for person, score in zip(people, (10, 9, 3), strict=True):
        body = {"stakeholder_id": person, "score": score, "submitted_at": "2026-02-10T09:00:00Z"}
        r = await tenant.client.post("/v1/responses", json=body)
        assert r.status_code == 201, r.text
    february = Window(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    selection = Selection([february], Filters(), Method.LATEST_PER_STAKEHOLDER)
    async with sessionmaker() as session:
        await tallies.fold(session, tenant.id)
        cells = await count(session, tenant.id, selection)
        assert cells[(0,)].tally.promoters == 2
        assert cells[(0,)].tally.detractors == 1
        tally = (
            await session.scalars(
                select(AnswerTally).where(
                    AnswerTally.workspace_id == tenant.id,
                    AnswerTally.grain == "month",
                    AnswerTally.score == 3,
                )
            )
        ).one()
        tally.latest = 5
        await session.flush()
        assert (await count(session, tenant.id, selection))[(0,)].tally.detractors == 5
        # A later answer of the detractor: its deltas add to the (tampered) tallies, pending
        # and folded: +1 passive, and the 3 is no longer their latest in February.
        body = {"stakeholder_id": people[2], "score": 8, "submitted_at": "2026-02-20T09:00:00Z"}
        r = await tenant.client.post("/v1/responses", json=body)
        assert r.status_code == 201, r.text
        for _ in range(2):
            cell = (await count(session, tenant.id, selection))[(0,)]
            assert (cell.tally.promoters, cell.tally.passives, cell.tally.detractors) == (2, 1, 4)
            assert await tallies.fold(session, tenant.id) in (0, 3)


async def test_writes_that_change_no_count_leave_no_pending(
    tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    rnd = random.Random(3)
    people = await _people(tenant, rnd, 2)
    body = {"stakeholder_id": people[0], "score": 6, "submitted_at": "2026-02-10T09:00:00Z"}
    r = await tenant.client.post("/v1/responses", json=body)
    assert r.status_code == 201, r.text
    response_id = r.json()["id"]
    async with sessionmaker() as session:
        await tallies.fold(session, tenant.id)
        # A stakeholder's new name, or an account's, changes no tally.
        r = await tenant.client.put(
            f"/v1/stakeholders/{people[0]}", json={"account_id": "acct1", "name": "Ann"}
        )
        assert r.status_code == 200, r.text
        assert await _pending(session, tenant.id) == 0
        r = await tenant.client.patch(
            f"/v1/responses/{response_id}", json={"excluded": True, "reason": "test"}
        )
        assert r.status_code == 200, r.text
        deltas = (await session.scalars(select(TallyDelta))).all()
        assert [(d.sign, d.score, d.submitted_at.isoformat()) for d in deltas] == [
            (-1, 6, "2026-02-10T09:00:00+00:00")
        ]


async def test_windows_the_tallies_cannot_count_exactly_take_the_answers() -> None:
    month = [Window(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))]
    plain = Selection(month, Filters(), Method.LATEST_PER_STAKEHOLDER)
    assert tallies.interval_of(plain, ()) is Interval.MONTH
    local = [Window(datetime(2026, 1, 31, 23, tzinfo=UTC), datetime(2026, 2, 28, 23, tzinfo=UTC))]
    two_weeks = [Window(month[0].start, month[0].start + timedelta(days=14))]
    gap = [month[0], Window(datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))]
    for selection, dimensions in [
        (Selection(local, Filters(), Method.LATEST_PER_STAKEHOLDER), ()),
        (Selection(two_weeks, Filters(), Method.LATEST_PER_STAKEHOLDER), ()),
        (Selection(gap, Filters(), Method.LATEST_PER_STAKEHOLDER), ()),
        (Selection(month, Filters(survey="q1"), Method.LATEST_PER_STAKEHOLDER), ()),
        (Selection(month, Filters(account_id="a"), Method.LATEST_PER_STAKEHOLDER), ()),
        (Selection(month, Filters(department="ops"), Method.LATEST_PER_STAKEHOLDER), ()),
        (Selection(month, Filters(), Method.DECISION_MAKER_FIRST), ()),
        (Selection(month, Filters(), Method.ACCOUNT_AS_UNIT), ()),
        (plain, (Dimension.ACCOUNT,)),
        (plain, (Dimension.DEPARTMENT,)),
        (plain, (Dimension.SEGMENT,)),
        (plain, (Dimension.SURVEY,)),
    ]:
        assert tallies.interval_of(selection, dimensions) is None, (selection, dimensions)


async def test_the_trend_reads_the_same_through_the_api_folded_or_not(
    tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    rnd = random.Random(11)
    people = await _people(tenant, rnd)
    await _answer(tenant, rnd, people, 120)
    params = {"interval": "month", "from": "2025-09-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
    calls = [
        ("/v1/nps/trend", params),
        ("/v1/nps/trend", params | {"group_by": "role", "method": "role_weighted"}),
        ("/v1/nps/trend", params | {"interval": "quarter", "method": "respondent"}),
        ("/v1/nps", {"from": "2026-01-01T00:00:00Z", "to": "2026-07-01T00:00:00Z"}),
    ]
    before = []
    for path, query in calls:
        r = await tenant.client.get(path, params=query)
        assert r.status_code == 200, r.text
        before.append(r.json())
    async with sessionmaker() as session:
        assert await tallies.fold(session, tenant.id) > 0
        assert await _pending(session, tenant.id) == 0
    for (path, query), body in zip(calls, before, strict=True):
        r = await tenant.client.get(path, params=query)
        assert r.status_code == 200, r.text
        assert r.json() == body, path


async def test_the_fold_is_a_periodic_task_that_keeps_to_each_workspace(
    make_tenant: MakeTenant, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    assert TASKS.tasks["tallies.fold"].every == tallies.FOLD_EVERY
    rnd = random.Random(5)
    a, b = await make_tenant("tallies-a"), await make_tenant("tallies-b")
    for tenant in (a, b):
        people = await _people(tenant, rnd, 4)
        await _answer(tenant, rnd, people, 30)
    service = as_service(sessionmaker)
    async with service() as session:
        await in_workspace(session, a.id)
        # Row-level security: a's transaction sees none of b's deltas or tallies.
        assert await _pending(session, b.id) == 0
        assert await _pending(session, a.id) > 0
        ctx = JobContext(session, Settings(), 1, None, {}, 1)
        await tallies.fold_periodically(ctx)
        for tenant in (a, b):
            await in_workspace(session, tenant.id)
            assert await _pending(session, tenant.id) == 0
            rows = select(func.count()).select_from(AnswerTally)
            assert (await session.scalar(rows) or 0) > 0
            other = b.id if tenant is a else a.id
            assert await session.scalar(rows.where(AnswerTally.workspace_id == other)) == 0


async def test_the_migration_counts_the_answers_stored_before_it(empty_database_url: str) -> None:
    """Upgrading to 0023 over a history already stored tallies every answer there: the counts
    equal the answers' with no delta pending."""
    url = empty_database_url
    await asyncio.to_thread(migrate.upgrade, url, "0022")
    engine = create_async_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    rnd = random.Random(23)
    try:
        async with session_scope(sessions) as session:
            created, _ = await create_workspace(session, "before 0023")
            workspace_id = created.id
            conn = await driver(session)
            await conn.execute("SELECT set_config('app.workspace_id', $1, true)", str(workspace_id))
            await conn.execute(
                "INSERT INTO accounts (workspace_id, id) VALUES ($1, 'a')", workspace_id
            )
            people = [(f"p{i}", rnd.choice(ROLES), rnd.choice(LEVELS)) for i in range(12)]
            await conn.executemany(
                "INSERT INTO stakeholders (workspace_id, id, account_id, role, job_level) "
                "VALUES ($1, $2, 'a', $3, $4)",
                [(workspace_id, *p) for p in people],
            )
            answers = []
            for _ in range(300):
                person, role, level = rnd.choice(people)
                at = FIRST + timedelta(days=rnd.randrange(DAYS), hours=rnd.randrange(24))
                answers.append(
                    (
                        uuid.uuid4(),
                        workspace_id,
                        person,
                        role,
                        level,
                        rnd.randrange(11),
                        at,
                        rnd.random() < 0.1,
                    )
                )
            await conn.executemany(
                "INSERT INTO responses (id, workspace_id, stakeholder_id, account_id, role, "
                "job_level, score, submitted_at, excluded) "
                "VALUES ($1, $2, $3, 'a', $4, $5, $6, $7, $8)",
                answers,
            )
            # Each counted answer superseded by its stakeholder's next one, as the chain keeps it.
            await conn.execute(
                "UPDATE responses AS r SET superseded_at = n.next FROM ("
                " SELECT id, coalesce(lead(submitted_at) OVER (PARTITION BY stakeholder_id"
                " ORDER BY submitted_at, created_at, id), 'infinity') AS next"
                " FROM responses WHERE NOT excluded) AS n WHERE r.id = n.id"
            )
        await asyncio.to_thread(migrate.upgrade, url)
        async with sessions() as session:
            await in_workspace(session, workspace_id)
            assert await _pending(session, workspace_id) == 0
            tallied = select(func.count()).select_from(AnswerTally)
            assert (await session.scalar(tallied) or 0) > 0
            assert await _compare(session, workspace_id, rnd) > 100
    finally:
        await engine.dispose()
