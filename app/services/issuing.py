"""Issuing invitations, one or a batch, subject to the fatigue rules (app.services.fatigue).

The facts the rules need are read for every stakeholder of a request in one set-based statement,
each item is decided in order in memory (so the items of one batch see each other), and every
row goes in with one INSERT. A transaction-scoped advisory lock per stakeholder (and per account
and survey when max_per_account is set), taken in sorted order before the facts are read, keeps
two concurrent requests from both issuing to one person. The statements run on the driver
(app.db.driver): a batch of 1,000 is a handful of round trips and no model instance per row.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import driver
from app.errors import ProblemError, Unprocessable, field_error
from app.models import Invitation, InvitationStatus
from app.schemas.invitations import InvitationCreate
from app.schemas.settings import SurveyRules
from app.services.fatigue import AccountFacts, PersonFacts, Verdict, issued, suppression
from app.services.invitation_tokens import generate_token, hash_token
from app.services.invitations import LOCK, OPEN, person_key

DEFAULT_LIFETIME = timedelta(days=30)
MAX_LIFETIME = timedelta(days=180)

Loc = tuple[str | int, ...]

_STAKEHOLDERS = (
    "SELECT id, account_id FROM stakeholders WHERE workspace_id = $1 AND id = ANY($2::text[])"
)
# The columns an issued or suppressed row is given; the others start null.
_GIVEN = (
    "id",
    "token_hash",
    "stakeholder_id",
    "account_id",
    "survey",
    "channel",
    "locale",
    "status",
    "suppression_rule",
    "suppressed_until",
    "expires_at",
)
_NULL = ("opened_at", "answered_at", "dismissed_at", "revoked_at", "response_id")
_INSERT = f"""
    INSERT INTO invitations (workspace_id, {", ".join(_GIVEN)})
    SELECT $1, r.* FROM unnest(
        $2::uuid[], $3::bytea[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
        $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[]
    ) AS r
    RETURNING id, created_at, updated_at
"""


@dataclass(frozen=True, slots=True)
class Created:
    """A stored invitation (its columns by name, as app.models.Invitation names them) and its
    token (None when a fatigue rule suppressed it). Columns, not a model instance: a batch
    issues a thousand, and a model instance costs more than storing its row."""

    invitation: dict[str, Any]
    token: str | None


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


# The facts every fatigue rule needs, for each stakeholder of a request, in one statement.
_PEOPLE = """
    SELECT p.id,
           EXISTS (SELECT 1 FROM unsubscribes AS u
                   WHERE u.workspace_id = $1 AND u.stakeholder_id = p.id) AS unsubscribed,
           (SELECT max(r.submitted_at) FROM responses AS r
            WHERE r.workspace_id = $1 AND r.stakeholder_id = p.id AND NOT r.excluded) AS answered,
           i.answered AS invitation_answered, i.dismissed, i.unanswered, i.open_until
    FROM unnest($2::text[]) AS p (id)
    CROSS JOIN LATERAL (
        SELECT max(answered_at) AS answered, max(dismissed_at) AS dismissed,
               max(expires_at) FILTER (
                   WHERE status = ANY($4::text[]) AND expires_at <= $3
               ) AS unanswered,
               max(expires_at) FILTER (
                   WHERE status = ANY($5::text[]) AND expires_at > $3
               ) AS open_until
        FROM invitations
        WHERE workspace_id = $1 AND stakeholder_id = p.id
    ) AS i
"""


async def _people(
    session: AsyncSession, workspace_id: uuid.UUID, ids: set[str], now: datetime
) -> dict[str, PersonFacts]:
    rows = await (await driver(session)).fetch(
        _PEOPLE,
        workspace_id,
        sorted(ids),
        now,
        [*OPEN, InvitationStatus.EXPIRED.value],
        list(OPEN),
    )
    facts: dict[str, PersonFacts] = {}
    for row in rows:
        answered, by_invitation = row["answered"], row["invitation_answered"]
        if by_invitation is not None and (answered is None or by_invitation > answered):
            answered = by_invitation
        facts[row["id"]] = PersonFacts(
            unsubscribed=row["unsubscribed"],
            last_answered_at=answered,
            last_dismissed_at=row["dismissed"],
            last_unanswered_expiry=row["unanswered"],
            open_until=row["open_until"],
        )
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
    conn = await driver(session)
    wanted = sorted({item.stakeholder_id for _, item in items})
    found = await conn.fetch(_STAKEHOLDERS, workspace_id, wanted)
    accounts: dict[str, str] = {row["id"]: row["account_id"] for row in found}
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
    keys = [person_key(workspace_id, p) for p in people]
    if rules.max_per_account is not None:
        keys += [f"invite-account:{workspace_id}:{a}:{s}" for a, s in pairs]
    await conn.fetchval(LOCK, keys)
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
    stamps = {
        r["id"]: r
        for r in await conn.fetch(
            _INSERT, workspace_id, *([row[c] for row in rows] for c in _GIVEN)
        )
    }
    for row in rows:
        stamp = stamps[row["id"]]
        row |= dict.fromkeys(_NULL)
        row |= {"created_at": stamp["created_at"], "updated_at": stamp["updated_at"]}
    for (index, row_id), row in zip(order, rows, strict=True):
        out[index] = Created(row, tokens.get(row_id))
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
