"""Stakeholders: the people at an account, upserted by the caller's own id."""

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound, Unprocessable, field_error
from app.models import Role, Stakeholder
from app.pagination import paginate
from app.schemas import StakeholderFields
from app.services.accounts import account_exists, ensure_account
from app.services.common import upsert_by_id


async def upsert_stakeholder(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    stakeholder_id: str,
    fields: StakeholderFields,
    *,
    loc: tuple[str | int, ...] = ("body",),
) -> tuple[Stakeholder, bool]:
    """Create or replace the stakeholder; its account must exist or be described in `account`."""
    if fields.account is not None:
        await ensure_account(session, workspace_id, fields.account_id, fields.account)
    elif not await account_exists(session, workspace_id, fields.account_id):
        raise Unprocessable(
            f"account {fields.account_id!r} does not exist; create it first "
            "or pass an `account` object to create it in the same call",
            errors=[field_error([*loc, "account_id"], "unknown account")],
        )
    values = fields.model_dump(exclude={"account", "id"})  # an inline stakeholder carries its id
    return await upsert_by_id(session, Stakeholder, workspace_id, stakeholder_id, values)


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
        select(Stakeholder).where(
            Stakeholder.workspace_id == workspace_id, Stakeholder.id.in_(sorted(ids))
        )
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
    """Erase the person: the stakeholder and every response they gave (ON DELETE CASCADE)."""
    deleted = await session.scalar(
        delete(Stakeholder)
        .where(Stakeholder.workspace_id == workspace_id, Stakeholder.id == stakeholder_id)
        .returning(Stakeholder.id)
    )
    if deleted is None:
        raise NotFound(f"stakeholder {stakeholder_id!r} does not exist")
