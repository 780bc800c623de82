"""INSERT ... ON CONFLICT DO UPDATE for the rows a client names by its own id."""

import uuid
from typing import Any, TypeVar

from sqlalchemy import func, literal_column
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Account, Stakeholder, Survey

Upsertable = TypeVar("Upsertable", Account, Stakeholder, Survey)


async def upsert_by_id(
    session: AsyncSession,
    model: type[Upsertable],
    workspace_id: uuid.UUID,
    row_id: str,
    values: dict[str, Any],
) -> tuple[Upsertable, bool]:
    """INSERT ... ON CONFLICT DO UPDATE on (workspace_id, id): the row and whether it is new."""
    statement: Any = (
        insert(model)
        .values(workspace_id=workspace_id, id=row_id, **values)
        .on_conflict_do_update(
            index_elements=[model.workspace_id, model.id],
            set_={**values, "updated_at": func.now()},
        )
        # xmax is 0 only on a freshly inserted row version: the usual way to tell the two apart.
        .returning(model, literal_column("xmax = 0").label("created"))
        .execution_options(populate_existing=True)
    )
    row = (await session.execute(statement)).one()
    return row[0], bool(row[1])


async def upsert_many(
    session: AsyncSession,
    model: type[Upsertable],
    workspace_id: uuid.UUID,
    rows: dict[str, dict[str, Any]],
) -> dict[str, bool]:
    """upsert_by_id for many rows (every one with the same fields) in one statement, written in
    id order so concurrent batches lock rows in the same order; each id and whether it is new."""
    if not rows:
        return {}
    values = [
        {"workspace_id": workspace_id, "id": row_id, **rows[row_id]} for row_id in sorted(rows)
    ]
    fields = [name for name in values[0] if name not in ("workspace_id", "id")]
    upsert = insert(model).values(values)
    statement: Any = upsert.on_conflict_do_update(
        index_elements=[model.workspace_id, model.id],
        set_={**{name: upsert.excluded[name] for name in fields}, "updated_at": func.now()},
    ).returning(model.id, literal_column("xmax = 0"))
    return {row_id: bool(created) for row_id, created in await session.execute(statement)}
