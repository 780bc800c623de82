"""Direct-database builders: rows a test needs but does not test, written without the ingest path.

They insert with the ORM through the test's sessionmaker, whose sessions join the test's outer
transaction (rolled back at the end), so later requests of the test see the rows. Responses are
then linked into their stakeholders' chains with app.services.chain.relink, exactly as ingest
does, so scores read off the chain stay right. `created_at` is the database's now(), one instant
within the test's transaction, as for rows stored over HTTP.

An ingest bug then fails the ingest tests, not every score test as well.
"""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import session_scope
from app.models import Account, Stakeholder, SurveyResponse
from app.services.chain import relink
from tests.support.api import Answer

EXCLUDED_REASON = "test"


def _since(rows: Iterable[SurveyResponse]) -> dict[str, datetime]:
    """Each touched stakeholder's earliest new answer: where relinking must start."""
    since: dict[str, datetime] = {}
    for row in rows:
        who, when = row.stakeholder_id, row.submitted_at
        since[who] = min(when, since.get(who, when))
    return since


class Rows:
    """Builders of one workspace's accounts, stakeholders and responses, in the database."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], workspace_id: uuid.UUID
    ) -> None:
        self.sessionmaker = sessionmaker
        self.workspace_id = workspace_id

    async def account(
        self,
        account_id: str,
        *,
        name: str | None = None,
        industry: str | None = None,
        segment: str | None = None,
        annual_revenue: str | None = None,
        currency: str | None = None,
    ) -> None:
        """A new account, named `name` (default: its id)."""
        async with session_scope(self.sessionmaker) as session:
            session.add(
                Account(
                    workspace_id=self.workspace_id,
                    id=account_id,
                    name=account_id if name is None else name,
                    industry=industry,
                    segment=segment,
                    annual_revenue=None if annual_revenue is None else Decimal(annual_revenue),
                    currency=currency,
                )
            )

    async def stakeholder(
        self,
        stakeholder_id: str,
        account_id: str = "acme",
        *,
        role: str = "other",
        job_level: str = "other",
        department: str | None = None,
        name: str | None = None,
    ) -> None:
        """A new stakeholder of an existing account."""
        async with session_scope(self.sessionmaker) as session:
            session.add(
                Stakeholder(
                    workspace_id=self.workspace_id,
                    id=stakeholder_id,
                    account_id=account_id,
                    role=role,
                    job_level=job_level,
                    department=department,
                    name=name,
                )
            )

    async def answers(
        self, answers: Sequence[Answer], *, excluded: Iterable[int] = ()
    ) -> list[str]:
        """Store the answers as POST /v1/responses/batch with inline stakeholders would: an
        account is created (named by its id) when missing; a stakeholder is created, or amended
        (role, job level, account; a department only when given); each response carries its
        stakeholder as registered for it. `excluded` are indexes of answers stored excluded.
        The response ids in order."""
        out = set(excluded)
        async with session_scope(self.sessionmaker) as session:
            w = self.workspace_id
            accounts = set(
                await session.scalars(
                    select(Account.id).where(
                        Account.workspace_id == w,
                        Account.id.in_({a.account_id for a in answers}),
                    )
                )
            )
            people = {
                p.id: p
                for p in await session.scalars(
                    select(Stakeholder).where(
                        Stakeholder.workspace_id == w,
                        Stakeholder.id.in_({a.stakeholder_id for a in answers}),
                    )
                )
            }
            for a in answers:
                if a.account_id not in accounts:
                    session.add(Account(workspace_id=w, id=a.account_id, name=a.account_id))
                    accounts.add(a.account_id)
            await session.flush()
            rows: list[SurveyResponse] = []
            for index, a in enumerate(answers):
                who = people.get(a.stakeholder_id)
                if who is None:
                    who = Stakeholder(workspace_id=w, id=a.stakeholder_id, department=None)
                    session.add(who)
                    people[a.stakeholder_id] = who
                who.account_id, who.role, who.job_level = a.account_id, a.role, a.job_level
                if a.department is not None:
                    who.department = a.department
                rows.append(
                    SurveyResponse(
                        workspace_id=w,
                        id=uuid.uuid4(),
                        stakeholder_id=a.stakeholder_id,
                        account_id=a.account_id,
                        role=a.role,
                        job_level=a.job_level,
                        department=who.department,
                        score=a.score,
                        submitted_at=a.submitted_at,
                        survey=a.survey,
                        excluded=index in out,
                        excluded_reason=EXCLUDED_REASON if index in out else None,
                    )
                )
            await session.flush()
            session.add_all(rows)
            await session.flush()
            await relink(session, w, _since(rows))
        return [str(row.id) for row in rows]

    async def respond(
        self,
        stakeholder_id: str,
        *scored: tuple[int, datetime],
        survey: str | None = None,
        excluded: bool = False,
        comment: str | None = None,
    ) -> list[str]:
        """(score, submitted_at) answers of a registered stakeholder, each carrying the
        stakeholder as registered now (and `comment`); excluded ones are stored excluded. Their
        ids in order."""
        async with session_scope(self.sessionmaker) as session:
            who = await session.get_one(Stakeholder, (self.workspace_id, stakeholder_id))
            rows = [
                SurveyResponse(
                    workspace_id=self.workspace_id,
                    id=uuid.uuid4(),
                    stakeholder_id=who.id,
                    account_id=who.account_id,
                    role=who.role,
                    job_level=who.job_level,
                    department=who.department,
                    score=score,
                    comment=comment,
                    submitted_at=submitted_at,
                    survey=survey,
                    excluded=excluded,
                    excluded_reason=EXCLUDED_REASON if excluded else None,
                )
                for score, submitted_at in scored
            ]
            session.add_all(rows)
            await session.flush()
            await relink(session, self.workspace_id, _since(rows))
        return [str(row.id) for row in rows]
