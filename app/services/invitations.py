"""Invitations: issue (subject to the fatigue rules), list, read, revoke, and the token's side.

Issuing reads the facts the rules need for every stakeholder of a request in a few set-based
statements, decides each item in order in memory (so the items of one batch see each other),
and inserts every row in one statement. A transaction-scoped advisory lock per stakeholder (and
per account and survey when max_per_account is set), taken in sorted order before the facts are
read, keeps two concurrent requests from both issuing to one person.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, case, func, insert, select, text, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import String

from app.errors import Conflict, NotFound, ProblemError, Unprocessable, field_error
from app.models import (
    Invitation,
    InvitationStatus,
    Role,
    Stakeholder,
    SurveyResponse,
    Unsubscribe,
)
from app.pagination import paginate
from app.schemas.invitations import InvitationCreate
from app.schemas.settings import SurveyRules
from app.services.fatigue import AccountFacts, PersonFacts, Verdict, issued, suppression
from app.services.invitation_tokens import generate_token, hash_token

DEFAULT_LIFETIME = timedelta(days=30)
MAX_LIFETIME = timedelta(days=180)
OPEN = (InvitationStatus.ISSUED.value, InvitationStatus.OPENED.value)

Loc = tuple[str | int, ...]

_LOCK = text(
    """
    SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))
    FROM (SELECT DISTINCT k FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS sorted
    """
).bindparams(bindparam("keys", type_=ARRAY(String)))


def _person_key(workspace_id: uuid.UUID, stakeholder_id: str) -> str:
    return f"invite:{workspace_id}:{stakeholder_id}"


async def lock_invitees(
    session: AsyncSession, workspace_id: uuid.UUID, stakeholder_ids: Sequence[str]
) -> None:
    """The per-stakeholder lock issuing takes, for another writer of the facts the rules read."""
    await session.execute(_LOCK, {"keys": [_person_key(workspace_id, s) for s in stakeholder_ids]})


@dataclass(frozen=True, slots=True)
class Created:
    """A stored invitation and its token (None when a fatigue rule suppressed it)."""

    invitation: Invitation
    token: str | None


def effective_status(invitation: Invitation, now: datetime) -> InvitationStatus:
    """The stored status, except that an open invitation past its expiry reads as expired."""
    if (
        invitation.status in OPEN
        and invitation.expires_at is not None
        and invitation.expires_at <= now
    ):
        return InvitationStatus.EXPIRED
    return InvitationStatus(invitation.status)


def status_column(now: datetime) -> ColumnElement[str]:
    """effective_status in SQL, so list filters, reads and response rates agree."""
    return case(
        (
            and_(Invitation.status.in_(OPEN), Invitation.expires_at <= now),
            InvitationStatus.EXPIRED.value,
        ),
        else_=Invitation.status,
    )


def _expiry(item: InvitationCreate, loc: Loc, now: datetime) -> datetime:
    if item.expires_at is None:
        return now + DEFAULT_LIFETIME
    if item.expires_at <= now:
        raise Unprocessable(
            "expires_at is not in the future: nothing was stored",
            errors=[field_error([*loc, "expires_at"], "must be in the future")],
        )
    if item.expires_at > now + MAX_LIFETIME:
        raise Unprocessable(
            "expires_at is more than 180 days ahead: nothing was stored",
            errors=[field_error([*loc, "expires_at"], "at most 180 days ahead")],
        )
    return item.expires_at


async def _people(
    session: AsyncSession, workspace_id: uuid.UUID, ids: set[str], now: datetime
) -> dict[str, PersonFacts]:
    facts = {i: PersonFacts() for i in ids}
    for sid in await session.scalars(
        select(Unsubscribe.stakeholder_id).where(
            Unsubscribe.workspace_id == workspace_id, Unsubscribe.stakeholder_id.in_(ids)
        )
    ):
        facts[sid].unsubscribed = True
    answers = await session.execute(
        select(SurveyResponse.stakeholder_id, func.max(SurveyResponse.submitted_at))
        .where(
            SurveyResponse.workspace_id == workspace_id,
            SurveyResponse.stakeholder_id.in_(ids),
            SurveyResponse.excluded.is_(False),
        )
        .group_by(SurveyResponse.stakeholder_id)
    )
    for sid, answered in answers:
        facts[sid].last_answered_at = answered
    expired = and_(
        Invitation.status.in_([*OPEN, InvitationStatus.EXPIRED.value]),
        Invitation.expires_at <= now,
    )
    live = and_(Invitation.status.in_(OPEN), Invitation.expires_at > now)
    rows = await session.execute(
        select(
            Invitation.stakeholder_id,
            func.max(Invitation.answered_at),
            func.max(Invitation.dismissed_at),
            func.max(Invitation.expires_at).filter(expired),
            func.max(Invitation.expires_at).filter(live),
        )
        .where(Invitation.workspace_id == workspace_id, Invitation.stakeholder_id.in_(ids))
        .group_by(Invitation.stakeholder_id)
    )
    for sid, invitation_answered, dismissed, unanswered, open_until in rows:
        person = facts[sid]
        if invitation_answered is not None and (
            person.last_answered_at is None or invitation_answered > person.last_answered_at
        ):
            person.last_answered_at = invitation_answered
        person.last_dismissed_at = dismissed
        person.last_unanswered_expiry = unanswered
        person.open_until = open_until
    return facts


async def _accounts(
    session: AsyncSession, workspace_id: uuid.UUID, pairs: set[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], AccountFacts]:
    facts = {p: AccountFacts() for p in pairs}
    rows = await session.execute(
        select(Invitation.account_id, Invitation.survey, Invitation.expires_at).where(
            Invitation.workspace_id == workspace_id,
            tuple_(Invitation.account_id, Invitation.survey).in_(list(pairs)),
            Invitation.status.in_(OPEN),
            Invitation.expires_at > now,
        )
    )
    for account_id, survey, expires_at in rows:
        if expires_at is not None:  # always, by the filter
            facts[(account_id, survey)].open_expiries.append(expires_at)
    return facts


async def issue_invitations(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    items: Sequence[tuple[int, InvitationCreate]],
    *,
    rules: SurveyRules,
    now: datetime,
    loc: Loc = ("body",),
    indexed: bool = True,
) -> dict[int, Created | ProblemError]:
    """Each item (by its index) issued, suppressed (and stored either way), or refused."""
    where = {i: (*loc, i) if indexed else loc for i, _ in items}
    found = await session.execute(
        select(Stakeholder.id, Stakeholder.account_id).where(
            Stakeholder.workspace_id == workspace_id,
            Stakeholder.id.in_({item.stakeholder_id for _, item in items}),
        )
    )
    accounts: dict[str, str] = {row.id: row.account_id for row in found}
    out: dict[int, Created | ProblemError] = {}
    valid: list[tuple[int, InvitationCreate, datetime]] = []
    for index, item in items:
        if item.stakeholder_id not in accounts:
            out[index] = Unprocessable(
                f"no stakeholder {item.stakeholder_id!r} in this workspace: register it first "
                "(PUT /v1/stakeholders/{id})",
                errors=[field_error([*where[index], "stakeholder_id"], "unknown stakeholder")],
            )
            continue
        try:
            valid.append((index, item, _expiry(item, where[index], now)))
        except Unprocessable as exc:
            out[index] = exc
    if not valid:
        return out
    people = {item.stakeholder_id for _, item, _ in valid}
    pairs = {(accounts[item.stakeholder_id], item.survey) for _, item, _ in valid}
    keys = [_person_key(workspace_id, p) for p in people]
    if rules.max_per_account is not None:
        keys += [f"invite-account:{workspace_id}:{a}:{s}" for a, s in pairs]
    await session.execute(_LOCK, {"keys": keys})
    person_facts = await _people(session, workspace_id, people, now)
    account_facts = (
        await _accounts(session, workspace_id, pairs, now)
        if rules.max_per_account is not None
        else {p: AccountFacts() for p in pairs}
    )
    rows: list[dict[str, Any]] = []
    tokens: dict[uuid.UUID, str] = {}
    order: list[tuple[int, uuid.UUID]] = []
    for index, item, expires_at in valid:
        account_id = accounts[item.stakeholder_id]
        person, account = (
            person_facts[item.stakeholder_id],
            account_facts[(account_id, item.survey)],
        )
        verdict: Verdict | None = suppression(person, account, rules, now=now)
        row_id = uuid.uuid4()
        row: dict[str, Any] = {
            "workspace_id": workspace_id,
            "id": row_id,
            "stakeholder_id": item.stakeholder_id,
            "account_id": account_id,
            "survey": item.survey,
            "channel": item.channel.value,
            "locale": item.locale,
        }
        if verdict is None:
            token = generate_token()
            tokens[row_id] = token
            row |= {
                "token_hash": hash_token(token),
                "status": InvitationStatus.ISSUED.value,
                "suppression_rule": None,
                "suppressed_until": None,
                "expires_at": expires_at,
            }
            issued(person, account, expires_at)
        else:
            row |= {
                "token_hash": None,
                "status": InvitationStatus.SUPPRESSED.value,
                "suppression_rule": verdict.rule,
                "suppressed_until": verdict.until,
                "expires_at": None,
            }
        rows.append(row)
        order.append((index, row_id))
    stored = {
        inv.id: inv for inv in await session.scalars(insert(Invitation).returning(Invitation), rows)
    }
    for index, row_id in order:
        out[index] = Created(stored[row_id], tokens.get(row_id))
    return out


async def issue_invitation(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    body: InvitationCreate,
    *,
    rules: SurveyRules,
    now: datetime,
) -> Created:
    result = (
        await issue_invitations(
            session, workspace_id, [(0, body)], rules=rules, now=now, indexed=False
        )
    )[0]
    if isinstance(result, ProblemError):
        raise result
    return result


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


async def invitation_by_token(session: AsyncSession, raw: str) -> Invitation | None:
    found: Invitation | None = await session.scalar(
        select(Invitation).where(Invitation.token_hash == hash_token(raw))
    )
    return found


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
