"""What became of invitations: response rates over a window, and each stakeholder's latest one.

An invitation belongs to the window its `created_at` falls in and counts under the status it
has now, as the invitation endpoints show it (app.services.invitations.status_column: an
issued or opened one past its expiry is expired). Each invitation sent ends up in exactly one
of answered, dismissed, expired, revoked or pending, so those add up to `invited`; one answered
after a dismissal counts as answered.

Cut by the invitation's own account (the account_id it snapshots: where the person was asked),
survey and channel, and by the stakeholder's current role, job level and department and the
account's current segment and industry: invitations keep no snapshot of those.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    Account,
    Invitation,
    InvitationChannel,
    InvitationStatus,
    Stakeholder,
)
from app.services.invitations import OPEN, status_column
from app.services.selection import Filters, Window
from app.sql import department_key


class RateDimension(StrEnum):
    ACCOUNT = "account"
    ROLE = "role"
    JOB_LEVEL = "job_level"
    SURVEY = "survey"
    CHANNEL = "channel"


# The dimensions read off the stakeholder as registered now.
_PERSON = frozenset({RateDimension.ROLE, RateDimension.JOB_LEVEL})


def key_name(dim: RateDimension) -> str:
    """The name a group's key goes by (`account` is `account_id`, as in score breakdowns)."""
    return "account_id" if dim is RateDimension.ACCOUNT else dim.value


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Counts of a set of invitations; suppressed ones were never sent, so not `invited`."""

    invited: int = 0
    suppressed: int = 0
    opened: int = 0
    answered: int = 0
    dismissed: int = 0
    expired: int = 0
    revoked: int = 0
    pending: int = 0

    def __add__(self, other: "Outcomes") -> "Outcomes":
        return Outcomes(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True, slots=True)
class RateCounts:
    total: Outcomes
    # By group value, with group_by; None without.
    groups: dict[str, Outcomes] | None


def _sums(now: datetime) -> list[ColumnElement[Any]]:
    """The counts of Outcomes, in its field order, as FILTERed aggregates."""
    status = status_column(now)
    sent = Invitation.status != InvitationStatus.SUPPRESSED.value
    # Answering or dismissing needs the survey shown, so either implies opened.
    seen = or_(
        Invitation.opened_at.is_not(None),
        status.in_([InvitationStatus.ANSWERED.value, InvitationStatus.DISMISSED.value]),
    )
    conditions: dict[str, ColumnElement[bool]] = {
        "invited": sent,
        "suppressed": ~sent,
        "opened": and_(sent, seen),
        "answered": status == InvitationStatus.ANSWERED.value,
        "dismissed": status == InvitationStatus.DISMISSED.value,
        "expired": status == InvitationStatus.EXPIRED.value,
        "revoked": status == InvitationStatus.REVOKED.value,
        "pending": status.in_(OPEN),
    }
    return [func.count().filter(conditions[f.name]).label(f.name) for f in fields(Outcomes)]


def _conditions(columns: Mapping[str, Any], wanted: Mapping[str, str]) -> list[Any]:
    return [columns[name] == value for name, value in wanted.items()]


async def count_outcomes(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    window: Window,
    filters: Filters,
    channel: InvitationChannel | None = None,
    group_by: RateDimension | None = None,
    now: datetime,
) -> RateCounts:
    """The invitations created in the window that pass the filters, counted in one statement
    (one row per group with `group_by`; the total is their sum)."""
    wanted = filters.wanted()
    if filters.survey is not None:
        wanted["survey"] = filters.survey
    if channel is not None:
        wanted["channel"] = channel.value
    on_invitation = {
        "account_id": Invitation.account_id,
        "survey": Invitation.survey,
        "channel": Invitation.channel,
    }
    on_person = {
        "role": Stakeholder.role,
        "job_level": Stakeholder.job_level,
        "department": department_key(Stakeholder.department),
    }
    on_account = {"segment": Account.segment, "industry": Account.industry}
    query = select(*_sums(now)).where(
        Invitation.workspace_id == workspace_id,
        Invitation.created_at >= window.start,
        Invitation.created_at < window.end,
    )
    if group_by in _PERSON or on_person.keys() & wanted.keys():
        query = query.join(
            Stakeholder,
            and_(
                Stakeholder.workspace_id == Invitation.workspace_id,
                Stakeholder.id == Invitation.stakeholder_id,
            ),
        )
    if on_account.keys() & wanted.keys():
        query = query.join(
            Account,
            and_(
                Account.workspace_id == Invitation.workspace_id, Account.id == Invitation.account_id
            ),
        )
    columns = on_invitation | on_person | on_account
    query = query.where(*_conditions(columns, wanted))
    if group_by is None:
        row = (await session.execute(query)).one()
        return RateCounts(Outcomes(*(int(v) for v in row)), None)
    key = columns[key_name(group_by)]
    rows = (await session.execute(query.add_columns(key).group_by(key))).all()
    width = len(fields(Outcomes))
    groups = {row[width]: Outcomes(*(int(v) for v in row[:width])) for row in rows}
    return RateCounts(sum(groups.values(), Outcomes()), groups)


async def last_invitations(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    account_id: str,
    *,
    before: datetime,
    now: datetime,
) -> dict[str, tuple[Invitation, InvitationStatus]]:
    """The latest invitation sent before `before` to each stakeholder registered at the account
    now (suppressed ones were never sent), with its status now; one statement."""
    query = (
        select(Invitation, status_column(now))
        .join(
            Stakeholder,
            and_(
                Stakeholder.workspace_id == Invitation.workspace_id,
                Stakeholder.id == Invitation.stakeholder_id,
            ),
        )
        .where(
            Invitation.workspace_id == workspace_id,
            Stakeholder.account_id == account_id,
            Invitation.status != InvitationStatus.SUPPRESSED.value,
            Invitation.created_at < before,
        )
        .ext(distinct_on(Invitation.stakeholder_id))
        .order_by(Invitation.stakeholder_id, Invitation.created_at.desc(), Invitation.id.desc())
    )
    return {
        invitation.stakeholder_id: (invitation, InvitationStatus(status))
        for invitation, status in await session.execute(query)
    }
