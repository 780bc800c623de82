"""The staff perception gap: the account team's predictions (each PUT a version) and what a
comparison with the clients' answers reads (app.presenters.perception does the comparing).

No hindsight: an account's answers in a window are compared with each author's latest
prediction made strictly before the account's first counted answer in that window (the
cutoff). A prediction made after the answers began, even one made the same second, waits for
the next window. Predictions are never counted in a score: they are read here only.
"""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Float, cast, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.models import Account, AccountPrediction
from app.schemas.perception import PredictionWrite
from app.scoring.perception import latest_before
from app.services.accounts import get_account
from app.services.cells import Cells
from app.services.counting import count, counted_answers
from app.services.selection import Counting, Dimension, Filters, Window

RULE = (
    "each author's latest prediction made strictly before the account's first counted answer "
    "in the window (in each bucket of the series: before its first counted answer in the bucket)"
)


async def record_prediction(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    account_id: str,
    author: str,
    body: PredictionWrite,
) -> tuple[AccountPrediction, bool]:
    """A new version (True), or the latest one unchanged (False) when the body repeats it, so a
    retried PUT adds nothing. The author's latest version is locked while deciding; a concurrent
    first prediction by the same author is a key violation (409)."""
    await get_account(session, workspace_id, account_id)
    latest = await session.scalar(
        select(AccountPrediction)
        .where(
            AccountPrediction.workspace_id == workspace_id,
            AccountPrediction.account_id == account_id,
            AccountPrediction.author == author,
        )
        .order_by(AccountPrediction.version.desc())
        .limit(1)
        .with_for_update()
    )
    roles = {role.value: score for role, score in sorted(body.role_predictions.items())}
    if (
        latest is not None
        and latest.predicted_score == body.predicted_score
        and latest.role_predictions == roles
        and latest.note == body.note
    ):
        return latest, False
    stored = await session.scalar(
        insert(AccountPrediction)
        .values(
            workspace_id=workspace_id,
            account_id=account_id,
            author=author,
            version=1 if latest is None else latest.version + 1,
            predicted_score=body.predicted_score,
            role_predictions=roles,
            note=body.note,
        )
        .returning(AccountPrediction)
    )
    assert stored is not None
    return stored, True


async def prediction_history(
    session: AsyncSession, workspace_id: uuid.UUID, account_id: str, author: str
) -> list[AccountPrediction]:
    """Every version, oldest first; 404 when the author made none for the account."""
    await get_account(session, workspace_id, account_id)
    rows = list(
        await session.scalars(
            select(AccountPrediction)
            .where(
                AccountPrediction.workspace_id == workspace_id,
                AccountPrediction.account_id == account_id,
                AccountPrediction.author == author,
            )
            .order_by(AccountPrediction.version)
        )
    )
    if not rows:
        raise NotFound(f"{author!r} made no prediction for account {account_id!r}")
    return rows


@dataclass(frozen=True, slots=True)
class Answered:
    """What an account's counted answers in one window say: their mean and the earliest."""

    mean: float
    first_at: datetime


@dataclass(slots=True)
class Gathered:
    windows: Sequence[Window]
    accounts: list[Account]
    cells: Cells
    # (window index, account id) -> the counted answers' mean and first instant.
    answered: dict[tuple[int, str], Answered]
    # account id -> every version made before the window's end, any author.
    predictions: dict[str, list[AccountPrediction]] = field(default_factory=dict)


async def gather(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    windows: Sequence[Window],
    counting: Counting,
    filters: Filters,
) -> Gathered:
    """The accounts with a prediction made before the end of the last window (and passing the
    account filters), their scores and answer statistics in each window, their predictions."""
    end = max(w.end for w in windows)
    query = (
        select(AccountPrediction)
        .join(
            Account,
            (Account.workspace_id == AccountPrediction.workspace_id)
            & (Account.id == AccountPrediction.account_id),
        )
        .where(AccountPrediction.workspace_id == workspace_id, AccountPrediction.predicted_at < end)
        .order_by(AccountPrediction.account_id, AccountPrediction.author, AccountPrediction.version)
    )
    accounts_query = select(Account).where(Account.workspace_id == workspace_id)
    for column, value in (
        (Account.id, filters.account_id),
        (Account.segment, filters.segment),
        (Account.industry, filters.industry),
    ):
        if value is not None:
            query = query.where(column == value)
            accounts_query = accounts_query.where(column == value)
    predictions: dict[str, list[AccountPrediction]] = {}
    for row in await session.scalars(query):
        predictions.setdefault(row.account_id, []).append(row)
    if not predictions:
        return Gathered(windows, [], {}, {})
    accounts = list(
        await session.scalars(
            accounts_query.where(Account.id.in_(list(predictions))).order_by(Account.id)
        )
    )
    selection = counting.selection(windows, filters)
    cells = await count(session, workspace_id, selection, (Dimension.ACCOUNT,))
    rows, where = counted_answers(
        workspace_id, selection, (Dimension.ACCOUNT,), extra=("answered_at",)
    )
    weight = cast(rows.c.weight, Float) if "weight" in rows.c else literal(1.0, Float)
    stats = (
        select(
            rows.c.period,
            rows.c.account_id,
            (func.sum(weight * cast(rows.c.score, Float)) / func.sum(weight)).label("mean"),
            func.min(rows.c.answered_at).label("first_at"),
        )
        .where(*where, rows.c.account_id.in_([a.id for a in accounts]))
        .group_by(rows.c.period, rows.c.account_id)
    )
    answered = {
        (int(period), account_id): Answered(float(mean), first_at)
        for period, account_id, mean, first_at in await session.execute(stats)
    }
    return Gathered(windows, accounts, cells, answered, predictions)


@dataclass(frozen=True, slots=True)
class Compared:
    """One account in one window: the versions counted (None: no answers) and the team mean."""

    counted: list[AccountPrediction] | None
    team: float | None
    clients: float | None


def predicted(row: AccountPrediction, role: str | None) -> int:
    """An author's prediction: for the role filtered on, if they made one, else overall."""
    if role is not None and role in row.role_predictions:
        return row.role_predictions[role]
    return row.predicted_score


def compare(data: Gathered, index: int, account_id: str, role: str | None) -> Compared:
    answered = data.answered.get((index, account_id))
    if answered is None:
        return Compared(None, None, None)
    by_author: dict[str, list[AccountPrediction]] = defaultdict(list)
    for row in data.predictions.get(account_id, []):
        by_author[row.author].append(row)
    counted = []
    for author in sorted(by_author):
        version = latest_before(by_author[author], answered.first_at)
        if version is not None:
            counted.append(version)
    if not counted:
        return Compared([], None, answered.mean)
    team = sum(predicted(v, role) for v in counted) / len(counted)
    return Compared(counted, team, answered.mean)
