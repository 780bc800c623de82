"""Accounts: the client organisations, upserted by the caller's own id."""

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import any_, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from app.errors import NotFound
from app.models import Account, Stakeholder, SurveyResponse
from app.pagination import paginate
from app.schemas import AccountBatchItem, AccountFields
from app.services import events, imports
from app.services.batches import ItemOutcome, parse_items, upsert_outcomes
from app.services.chain import lock_chains, relink
from app.services.upsert import upsert_by_id, upsert_many
from app.sql import text_array


async def upsert_account(
    session: AsyncSession, workspace_id: uuid.UUID, account_id: str, fields: AccountFields
) -> tuple[Account, bool]:
    """Create or replace the account; returns it and whether it was created."""
    return await upsert_by_id(session, Account, workspace_id, account_id, fields.model_dump())


async def upsert_accounts(
    session: AsyncSession, workspace_id: uuid.UUID, items: list[Any]
) -> list[ItemOutcome[str]]:
    """A batch of account PUTs in one statement, each item reported by index.

    Items apply in order, as PUTs one after the other would: of items with the same id the last
    valid one is stored, the first is 201 when it created the account and the others are 200.
    """
    outcomes: dict[int, ItemOutcome[Any]] = {}
    valid = parse_items(AccountBatchItem, items, "accounts", "account", outcomes)
    last = {item.id: item for _, item in valid}
    created = await upsert_many(
        session,
        Account,
        workspace_id,
        {account_id: item.model_dump(exclude={"id"}) for account_id, item in last.items()},
    )
    upsert_outcomes([(index, item.id) for index, item in valid], created, outcomes)
    return [outcomes[i] for i in range(len(items))]


async def ensure_accounts(
    session: AsyncSession, workspace_id: uuid.UUID, described: dict[str, AccountFields]
) -> None:
    """Create the missing ones of these accounts in one statement, in id order."""
    if not described:
        return
    rows = [
        {"workspace_id": workspace_id, "id": account_id, **fields.model_dump()}
        for account_id, fields in sorted(described.items())
    ]
    await session.execute(
        insert(Account)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[Account.workspace_id, Account.id])
    )


async def existing_account_ids(
    session: AsyncSession, workspace_id: uuid.UUID, ids: set[str]
) -> set[str]:
    found = await session.scalars(
        select(Account.id).where(
            Account.workspace_id == workspace_id, Account.id == any_(text_array(sorted(ids)))
        )
    )
    return set(found)


async def accounts_by_id(
    session: AsyncSession, workspace_id: uuid.UUID, ids: Iterable[str]
) -> dict[str, Account]:
    """These accounts of the workspace, in one statement (a breakdown by account's profiles)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await session.scalars(
        select(Account)
        .options(load_only(Account.name, Account.segment, Account.industry, *_REVENUE))
        .where(Account.workspace_id == workspace_id, Account.id == any_(text_array(wanted)))
    )
    return {account.id: account for account in rows}


_REVENUE = (Account.annual_revenue, Account.currency)


async def get_account(session: AsyncSession, workspace_id: uuid.UUID, account_id: str) -> Account:
    account = await session.get(Account, (workspace_id, account_id))
    if account is None:
        raise NotFound(f"account {account_id!r} does not exist")
    return account


async def list_accounts(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None = None,
    updated_since: datetime | None = None,
    segment: str | None = None,
    industry: str | None = None,
) -> tuple[list[Account], str | None]:
    query = select(Account).where(Account.workspace_id == workspace_id)
    if updated_since is not None:
        query = query.where(Account.updated_at >= updated_since)
    if segment is not None:
        query = query.where(Account.segment == segment)
    if industry is not None:
        query = query.where(Account.industry == industry)
    return await paginate(
        session,
        query,
        updated_col=Account.updated_at,
        id_col=Account.id,
        limit=limit,
        cursor=cursor,
    )


async def delete_account(session: AsyncSession, workspace_id: uuid.UUID, account_id: str) -> None:
    """Delete the account; its stakeholders and responses go with it (ON DELETE CASCADE).

    People registered elsewhere now who answered for this account lose those answers too, so
    their chains are relinked from the earliest one on. Triggers (migration 0005) record a
    tombstone for the account and for every stakeholder and response that goes with it.
    The events that name the account or any of those stakeholders go too (events.forget).
    """
    registered_here = select(Stakeholder.id).where(
        Stakeholder.workspace_id == workspace_id, Stakeholder.account_id == account_id
    )
    moved_away = await session.execute(
        select(SurveyResponse.stakeholder_id, func.min(SurveyResponse.submitted_at))
        .where(
            SurveyResponse.workspace_id == workspace_id,
            SurveyResponse.account_id == account_id,
            ~SurveyResponse.excluded,
            SurveyResponse.stakeholder_id.not_in(registered_here),
        )
        .group_by(SurveyResponse.stakeholder_id)
    )
    since = {row[0]: row[1] for row in moved_away}
    await lock_chains(session, workspace_id, since)
    erased = (await session.scalars(registered_here)).all()
    deleted = await session.scalar(
        delete(Account)
        .where(Account.workspace_id == workspace_id, Account.id == account_id)
        .returning(Account.id)
    )
    if deleted is None:
        raise NotFound(f"account {account_id!r} does not exist")
    await events.forget(session, workspace_id, stakeholder_ids=erased, account_id=account_id)
    await imports.forget_rows(session, workspace_id, stakeholder_ids=erased, account_id=account_id)
    await relink(session, workspace_id, since)
