"""Invitations: their status as read, list, read, revoke, and the token's side.

Issuing them (subject to the fatigue rules) is app.services.issuing.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import AUTHENTICATED_WORKSPACE, driver
from app.errors import Conflict, NotFound
from app.local_limits import Flush, OriginCheck
from app.models import (
    Invitation,
    InvitationStatus,
    Role,
    Stakeholder,
)
from app.pagination import paginate
from app.services.invitation_tokens import hash_token
from app.services.lookups import Rider, run_lookup
from app.services.response_rows import Companion

OPEN = (InvitationStatus.ISSUED.value, InvitationStatus.OPENED.value)


# Issuing (app.services.issuing) locks each invitee, and so does any other writer of the facts
# the fatigue rules read; taken in sorted order so that concurrent requests cannot deadlock.
LOCK = """
    SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))
    FROM (SELECT DISTINCT k FROM unnest($1::text[]) AS k ORDER BY k) AS sorted
"""


def person_key(workspace_id: uuid.UUID, stakeholder_id: str) -> str:
    return f"invite:{workspace_id}:{stakeholder_id}"


async def lock_invitees(
    session: AsyncSession, workspace_id: uuid.UUID, stakeholder_ids: Sequence[str]
) -> None:
    """The per-stakeholder lock issuing takes, for another writer of the facts the rules read."""
    await (await driver(session)).fetchval(
        LOCK, [person_key(workspace_id, s) for s in stakeholder_ids]
    )


def status_as_read(status: str, expires_at: datetime | None, now: datetime) -> InvitationStatus:
    """The stored status, except that an open invitation past its expiry reads as expired."""
    if status in OPEN and expires_at is not None and expires_at <= now:
        return InvitationStatus.EXPIRED
    return InvitationStatus(status)


def effective_status(invitation: Invitation, now: datetime) -> InvitationStatus:
    """status_as_read of a stored invitation."""
    return status_as_read(invitation.status, invitation.expires_at, now)


def status_column(now: datetime) -> ColumnElement[str]:
    """effective_status in SQL, so list filters, reads and response rates agree."""
    return case(
        (
            and_(Invitation.status.in_(OPEN), Invitation.expires_at <= now),
            InvitationStatus.EXPIRED.value,
        ),
        else_=Invitation.status,
    )


async def list_invitations(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    now: datetime,
    limit: int,
    cursor: str | None,
    updated_since: datetime | None = None,
    status: InvitationStatus | None = None,
    survey: str | None = None,
    account_id: str | None = None,
    stakeholder_id: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> tuple[list[Invitation], str | None]:
    query = select(Invitation).where(Invitation.workspace_id == workspace_id)
    if updated_since is not None:
        query = query.where(Invitation.updated_at >= updated_since)
    if status is not None:
        query = query.where(status_column(now) == status.value)
    if survey is not None:
        query = query.where(Invitation.survey == survey)
    if account_id is not None:
        query = query.where(Invitation.account_id == account_id)
    if stakeholder_id is not None:
        query = query.where(Invitation.stakeholder_id == stakeholder_id)
    if created_from is not None:
        query = query.where(Invitation.created_at >= created_from)
    if created_to is not None:
        query = query.where(Invitation.created_at < created_to)
    return await paginate(
        session,
        query,
        updated_col=Invitation.updated_at,
        id_col=Invitation.id,
        limit=limit,
        cursor=cursor,
    )


async def get_invitation(
    session: AsyncSession, workspace_id: uuid.UUID, invitation_id: uuid.UUID, *, lock: bool = False
) -> Invitation:
    query = select(Invitation).where(
        Invitation.workspace_id == workspace_id, Invitation.id == invitation_id
    )
    if lock:
        # Read again under the lock: the token's lookup loaded this row before another request
        # may have changed it.
        query = query.with_for_update().execution_options(populate_existing=True)
    found = await session.scalar(query)
    if found is None:
        raise NotFound(f"no invitation {invitation_id} in this workspace")
    return found


# On the driver (app.db.driver): answering reads and marks its invitation with these.
_COLUMNS = ", ".join(column.name for column in Invitation.__table__.columns)
_LOCKED = f"SELECT {_COLUMNS} FROM invitations WHERE workspace_id = $1 AND id = $2 FOR UPDATE"
_ANSWERED = """
    UPDATE invitations SET status = $3, answered_at = $4, response_id = $5, updated_at = now()
    WHERE workspace_id = $1 AND id = $2
    RETURNING updated_at
"""


# Answerable: open, or dismissed ("not now" is not "never"), and not expired at the instant
# given. The UPDATE waits for a concurrent writer of the row (a revoke) and then checks again.
_ANSWERABLE = (*OPEN, InvitationStatus.DISMISSED.value)


def _answering_sql(first: int) -> str:
    invitation, answered_at, statuses, now = (f"${first + i}" for i in range(4))
    return f"""
        UPDATE invitations AS i
        SET status = '{InvitationStatus.ANSWERED.value}', answered_at = {answered_at}::timestamptz,
            response_id = stored.id, updated_at = now()
        FROM stored
        WHERE i.workspace_id = $1 AND i.id = {invitation}::uuid
          AND i.status = ANY({statuses}::text[])
          AND (i.expires_at IS NULL OR i.expires_at > {now}::timestamptz)
        RETURNING i.id"""


ANSWERING = "invitation-answered"


def answering(invitation_id: uuid.UUID, answered_at: datetime, now: datetime) -> Companion:
    """The invitation marked answered by the response recorded with it, in the statement that
    stores the response (response_rows.store_one), if it is still answerable at `now`."""
    return Companion(
        ANSWERING, _answering_sql, (invitation_id, answered_at, list(_ANSWERABLE), now)
    )


async def lock_invitation(
    session: AsyncSession, workspace_id: uuid.UUID, invitation_id: uuid.UUID
) -> Invitation:
    """The invitation, its row locked until the transaction ends, read on the driver as an
    instance outside the session: a change to it is written with its own statement
    (mark_answered), never by a flush."""
    row = await (await driver(session)).fetchrow(_LOCKED, workspace_id, invitation_id)
    if row is None:
        raise NotFound(f"no invitation {invitation_id} in this workspace")
    return Invitation(**row)


async def mark_answered(
    session: AsyncSession,
    invitation: Invitation,
    *,
    answered_at: datetime,
    response_id: uuid.UUID,
) -> None:
    """Store that the invitation (from lock_invitation) was answered by this response."""
    status = InvitationStatus.ANSWERED.value
    invitation.updated_at = await (await driver(session)).fetchval(
        _ANSWERED, invitation.workspace_id, invitation.id, status, answered_at, response_id
    )
    invitation.status, invitation.answered_at = status, answered_at
    invitation.response_id = response_id


async def revoke_invitation(
    session: AsyncSession, workspace_id: uuid.UUID, invitation_id: uuid.UUID
) -> Invitation:
    """Its token stops working at once; revoking twice changes nothing; an answered one is kept
    (409): its answer is a response, corrected or excluded there."""
    invitation = await get_invitation(session, workspace_id, invitation_id, lock=True)
    if invitation.status == InvitationStatus.ANSWERED:
        raise Conflict(
            f"invitation {invitation_id} was answered at {_instant(invitation.answered_at)} "
            "and cannot be revoked; exclude its response instead (PATCH /v1/responses/{id})"
        )
    if invitation.status != InvitationStatus.REVOKED:
        stamp = await session.scalar(select(func.now()))
        invitation.status = InvitationStatus.REVOKED.value
        invitation.revoked_at = stamp
        invitation.updated_at = stamp  # type: ignore[assignment]
        await session.flush()
    return invitation


def _instant(moment: datetime | None) -> str:
    return "an unknown time" if moment is None else moment.isoformat()


@dataclass(frozen=True, slots=True)
class TokenHolder:
    """What a request made with an invitation token needs of its invitation to authenticate."""

    workspace_id: uuid.UUID
    id: uuid.UUID
    stakeholder_id: str
    survey: str
    channel: str
    status: str
    expires_at: datetime | None


# On the driver (app.db.driver): every public call authenticates with it. invitation_holder
# (migration 0013) finds the invitation in whichever workspace and sets the transaction's
# workspace to its own (row-level security), in the same statement.
_COLUMNS = "k.workspace_id, k.id, k.stakeholder_id, k.survey, k.channel, k.status, k.expires_at"
_LOOKUP = "invitation_holder($1)"


async def token_holder(
    session: AsyncSession,
    raw: str,
    *,
    flush: Flush | None = None,
    origin: OriginCheck | None = None,
    rider: Rider | None = None,
) -> TokenHolder | None:
    """The invitation whose token this is, or None; the session's transaction then acts in
    its workspace. With a `flush`, the rate-limit counts are added in the same statement
    (app.local_limits); an `origin` is answered there too, and a `rider` runs there
    (app.services.lookups)."""
    conn = await driver(session)
    row = await run_lookup(
        conn,
        _LOOKUP,
        _COLUMNS,
        hash_token(raw),
        session=session,
        flush=flush,
        origin=origin,
        rider=rider,
    )
    if row is None or row["id"] is None:
        return None
    session.info[AUTHENTICATED_WORKSPACE] = row["workspace_id"]
    return TokenHolder(*(row[name] for name in TokenHolder.__slots__))


async def open_invitation(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    invitation_id: uuid.UUID,
    *,
    now: datetime,
    mark_opened: bool = True,
) -> tuple[Invitation, str | None, Role | None]:
    """The invitation, marked opened when it was issued (only then, and only if `mark_opened`),
    and the stakeholder's name and role (the role picks the survey's question)."""
    invitation = await get_invitation(session, workspace_id, invitation_id, lock=mark_opened)
    if (
        mark_opened
        and invitation.status == InvitationStatus.ISSUED
        and effective_status(invitation, now) == InvitationStatus.ISSUED
    ):
        stamp = await session.scalar(select(func.now()))
        invitation.status = InvitationStatus.OPENED.value
        invitation.opened_at = stamp
        invitation.updated_at = stamp  # type: ignore[assignment]
        await session.flush()
    who = (
        await session.execute(
            select(Stakeholder.name, Stakeholder.role).where(
                Stakeholder.workspace_id == workspace_id,
                Stakeholder.id == invitation.stakeholder_id,
            )
        )
    ).first()
    if who is None:
        return invitation, None, None
    return invitation, who.name, Role(who.role)
