"""Import jobs: their status and their rejected rows."""

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from app.models import ImportFormat, ImportKind, ImportStatus


class ImportCounts(BaseModel):
    read: int = Field(description="rows read so far")
    stored: int = Field(description="rows stored (created, or for accounts and people, upserted)")
    duplicates: int = Field(
        description="rows already stored (the same external_id and content, or the same answer)"
    )
    rejected: int = Field(description="rows refused; GET .../errors says why")


class ImportRead(BaseModel):
    id: uuid.UUID
    kind: ImportKind
    format: ImportFormat
    status: ImportStatus
    preset: str | None
    mapping: dict[str, str | None] = Field(description="their column -> our field (null: ignored)")
    file_name: str | None
    size_bytes: int
    sha256: str = Field(description="hex SHA-256 of the file")
    duplicate_of: uuid.UUID | None = Field(
        description="the earlier import of the same file (kind, preset, mapping): nothing of "
        "this one was stored again"
    )
    rows: ImportCounts
    progress: float = Field(description="share of the file read, 0-1")
    eta_seconds: float | None = Field(
        description="time left at the pace so far (null before the first chunk and once done)"
    )
    error: str | None = Field(description="why a failed import failed")
    errors_url: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class ImportRowErrorRead(BaseModel):
    row: int = Field(description="the data row (CSV, header not counted) or line (NDJSON), from 1")
    field: str | None = Field(description="the field at fault; null for the row as a whole")
    reason: str
    raw: str = Field(description="the row as it was in the file")


class ImportErrorPage(BaseModel):
    data: list[ImportRowErrorRead]
    next_cursor: str | None
