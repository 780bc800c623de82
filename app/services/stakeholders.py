"""Stakeholders: the people at an account, upserted by the caller's own id."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import any_, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound, ProblemError, Unprocessable, field_error
from app.models import Role, Stakeholder
from app.pagination import paginate
from app.schemas import AccountFields, StakeholderBatchItem, StakeholderFields, StakeholderInline
from app.services import events, imports
from app.services.accounts import ensure_accounts, existing_account_ids
from app.services.batches import ItemOutcome, failed, parse_items, upsert_outcomes
from app.services.upsert import upsert_by_id, upsert_many
from app.sql import text_array

Loc = tuple[str | int, ...]
PROFILE = ("account_id", "name", "email", "role", "job_level", "department", "attributes")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Who answered, as they were then: responses keep it when the stakeholder changes later."""

    stakeholder_id: str
    account_id: str
    role: str
    job_level: str
    department: str | None

    @classmethod
    def of(cls, who: Stakeholder) -> "Snapshot":
        return cls(who.id, who.account_id, who.role, who.job_level, who.department)

    @classmethod
    def of_profile(cls, stakeholder_id: str, profile: dict[str, Any]) -> "Snapshot":
        return cls(
            stakeholder_id,
            profile["account_id"],
            profile["role"],
            profile["job_level"],
            profile["department"],
        )


def _unknown_account(account_id: str, loc: Loc) -> Unprocessable:
    return Unprocessable(
        f"account {account_id!r} does not exist; create it first "
        "or pass an `account` object to create it in the same call",
        errors=[field_error([*loc, "account_id"], "unknown account")],
    )


async def upsert_stakeholder(
    session: AsyncSession, workspace_id: uuid.UUID, stakeholder_id: str, fields: StakeholderFields
) -> tuple[Stakeholder, bool]:
    """Create or replace the stakeholder; its account must exist or be described in `account`."""
    if fields.account is not None:
        await ensure_accounts(session, workspace_id, {fields.account_id: fields.account})
    elif not await existing_account_ids(session, workspace_id, {fields.account_id}):
        raise _unknown_account(fields.account_id, ("body",))
    values = fields.model_dump(exclude={"account"})
    return await upsert_by_id(session, Stakeholder, workspace_id, stakeholder_id, values)


async def upsert_stakeholders(
    session: AsyncSession, workspace_id: uuid.UUID, items: list[Any]
) -> list[ItemOutcome[str]]:
    """A batch of stakeholder PUTs in a fixed number of statements, each item reported by index.

    The rules of the PUT hold item by item: the account must exist or be described in the
    item's `account` (then created when missing). Items apply in order: of items with the same
    id the last one that succeeds is stored; the first is 201 when it created the person.
    """
    outcomes: dict[int, ItemOutcome[Any]] = {}
    valid = parse_items(StakeholderBatchItem, items, "stakeholders", "stakeholder", outcomes)
    described: dict[str, AccountFields] = {}
    for _, item in valid:
        if item.account is not None:
            described.setdefault(item.account_id, item.account)
    await ensure_accounts(session, workspace_id, described)
    known = await existing_account_ids(session, workspace_id, {i.account_id for _, i in valid})
    applied: list[tuple[int, StakeholderBatchItem]] = []
    for index, item in valid:
        if item.account_id in known:
            applied.append((index, item))
        else:
            outcomes[index] = failed(
                index, _unknown_account(item.account_id, ("body", "stakeholders", index))
            )
    last = {item.id: item for _, item in applied}
    created = await upsert_many(
        session,
        Stakeholder,
        workspace_id,
        {sid: item.model_dump(exclude={"id", "account"}) for sid, item in last.items()},
    )
    upsert_outcomes([(index, item.id) for index, item in applied], created, outcomes)
    return [outcomes[i] for i in range(len(items))]


async def register_inline(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    items: Sequence[tuple[Loc, StakeholderInline]],
) -> list[Snapshot | ProblemError]:
    """Register the people described inside responses, in a fixed number of statements.

    A new person is created with what the item says (defaults elsewhere); a known person is
    updated with only the fields the item sent, so a widget that sends `{"id", "account_id"}`
    does not wipe the role a CRM registered. Items about the same person apply in order; each
    item gets the person as it left them. Rows are written in id order, so concurrent batches
    lock them in the same order and cannot deadlock each other.
    """
    described: dict[str, AccountFields] = {}
    for _, inline in items:
        if inline.account is not None:
            described.setdefault(inline.account_id, inline.account)
    await ensure_accounts(session, workspace_id, described)
    known_accounts = await existing_account_ids(
        session, workspace_id, {inline.account_id for _, inline in items}
    )
    stored = await stakeholders_by_id(session, workspace_id, {inline.id for _, inline in items})
    profiles = {sid: {f: getattr(who, f) for f in PROFILE} for sid, who in stored.items()}
    results: list[Snapshot | ProblemError] = []
    for loc, inline in items:
        if inline.account_id not in known_accounts:
            results.append(_unknown_account(inline.account_id, loc))
            continue
        sent = inline.model_dump(mode="json", exclude_unset=True, exclude={"id", "account"})
        base = profiles.get(inline.id) or inline.model_dump(mode="json", include=set(PROFILE))
        profiles[inline.id] = {**base, **sent}
        results.append(Snapshot.of_profile(inline.id, profiles[inline.id]))
    touched = sorted({r.stakeholder_id for r in results if isinstance(r, Snapshot)})
    if touched:
        upsert = insert(Stakeholder).values(
            [{"workspace_id": workspace_id, "id": sid, **profiles[sid]} for sid in touched]
        )
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=[Stakeholder.workspace_id, Stakeholder.id],
                set_={**{f: upsert.excluded[f] for f in PROFILE}, "updated_at": func.now()},
            )
        )
    return results


async def get_stakeholder(
    session: AsyncSession, workspace_id: uuid.UUID, stakeholder_id: str
) -> Stakeholder:
    stakeholder = await session.get(Stakeholder, (workspace_id, stakeholder_id))
    if stakeholder is None:
        raise NotFound(f"stakeholder {stakeholder_id!r} does not exist")
    return stakeholder


async def stakeholders_by_id(
    session: AsyncSession, workspace_id: uuid.UUID, ids: set[str]
) -> dict[str, Stakeholder]:
    if not ids:
        return {}
    rows = await session.scalars(
        select(Stakeholder)
        .where(
            Stakeholder.workspace_id == workspace_id,
            Stakeholder.id == any_(text_array(sorted(ids))),
        )
        .execution_options(populate_existing=True)
    )
    return {s.id: s for s in rows}


async def list_stakeholders(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None = None,
    updated_since: datetime | None = None,
    account_id: str | None = None,
    role: Role | None = None,
) -> tuple[list[Stakeholder], str | None]:
    query = select(Stakeholder).where(Stakeholder.workspace_id == workspace_id)
    if updated_since is not None:
        query = query.where(Stakeholder.updated_at >= updated_since)
    if account_id is not None:
        query = query.where(Stakeholder.account_id == account_id)
    if role is not None:
        query = query.where(Stakeholder.role == role.value)
    return await paginate(
        session,
        query,
        updated_col=Stakeholder.updated_at,
        id_col=Stakeholder.id,
        limit=limit,
        cursor=cursor,
    )


async def delete_stakeholder(
    session: AsyncSession, workspace_id: uuid.UUID, stakeholder_id: str
) -> None:
    """Erase the person: the stakeholder and every response they gave, their invitations,
    cases (with notes and changes) and unsubscribe (ON DELETE CASCADE), and every event that
    names them with its webhook deliveries (events.forget).

    Triggers (migration 0005) record a tombstone (ids only) for each of them.
    """
    deleted = await session.scalar(
        delete(Stakeholder)
        .where(Stakeholder.workspace_id == workspace_id, Stakeholder.id == stakeholder_id)
        .returning(Stakeholder.id)
    )
    if deleted is None:
        raise NotFound(f"stakeholder {stakeholder_id!r} does not exist")
    await events.forget(session, workspace_id, stakeholder_ids=[stakeholder_id])
    await imports.forget_rows(session, workspace_id, stakeholder_ids=[stakeholder_id])
