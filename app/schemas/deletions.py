"""Deletions sync: tombstones of deleted accounts, stakeholders and responses."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.models import DeletionKind

DELETION_READ_EXAMPLE: JsonValue = {
    "kind": "response",
    "id": "5f0c6a8e-2f1b-4d3c-9a57-0e1f2a3b4c5d",
    "external_id": "crm-7781",
    "deleted_at": "2026-11-30T14:05:12.345678Z",
}


class DeletionRead(BaseModel):
    """That an object was deleted, and when: ids only, no personal data."""

    model_config = ConfigDict(json_schema_extra={"examples": [DELETION_READ_EXAMPLE]})

    kind: DeletionKind
    id: str = Field(description="the account's or stakeholder's id, or the response's id")
    external_id: str | None = Field(description="a response's external_id; null otherwise")
    deleted_at: datetime
