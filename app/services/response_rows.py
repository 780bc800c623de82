"""Storing response rows: one INSERT of fixed shape for a single answer or a batch."""

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, SmallInteger, String, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

# One statement of fixed shape for any number of rows: the columns go in as arrays, so the
# statement is prepared once, not compiled and planned anew for each batch size.
_INSERT = text(
    """
    INSERT INTO responses (workspace_id, id, external_id, stakeholder_id, account_id, role,
                           job_level, department, score, comment, submitted_at, survey, channel,
                           attributes)
    SELECT :workspace_id, r.* FROM unnest(
        CAST(:id AS uuid[]), CAST(:external_id AS text[]), CAST(:stakeholder_id AS text[]),
        CAST(:account_id AS text[]), CAST(:role AS text[]), CAST(:job_level AS text[]),
        CAST(:department AS text[]), CAST(:score AS smallint[]), CAST(:comment AS text[]),
        CAST(:submitted_at AS timestamptz[]), CAST(:survey AS text[]), CAST(:channel AS text[]),
        CAST(CAST(:attributes AS text[]) AS jsonb[])
    ) AS r
    ON CONFLICT (workspace_id, external_id) DO NOTHING
    RETURNING id, created_at
    """
).bindparams(
    bindparam("id", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("score", type_=ARRAY(SmallInteger)),
    bindparam("submitted_at", type_=ARRAY(DateTime(timezone=True))),
    *(
        bindparam(name, type_=ARRAY(String))
        for name in (
            "external_id",
            "stakeholder_id",
            "account_id",
            "role",
            "job_level",
            "department",
            "comment",
            "survey",
            "channel",
            "attributes",
        )
    ),
)
_COLUMNS = (
    "id",
    "external_id",
    "stakeholder_id",
    "account_id",
    "role",
    "job_level",
    "department",
    "score",
    "comment",
    "submitted_at",
    "survey",
    "channel",
)


async def insert_rows(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> dict[uuid.UUID, datetime]:
    """Insert rows, skipping any whose external_id is already stored: the ids that went in,
    with the time they were recorded."""
    params: dict[str, Any] = {name: [row[name] for row in rows] for name in _COLUMNS}
    params["attributes"] = [json.dumps(row["attributes"]) for row in rows]
    params["workspace_id"] = rows[0]["workspace_id"]
    return {row.id: row.created_at for row in await session.execute(_INSERT, params)}
