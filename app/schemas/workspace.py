"""The caller's workspace and who the caller is (`GET /v1/workspace`)."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.models import Scope


class WorkspaceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    created_at: datetime


class ApiKeyCaller(BaseModel):
    """The API key the request was sent with (never its secret)."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )

    kind: Literal["api_key"] = "api_key"
    prefix: str
    scopes: list[Scope] = Field(
        description="as the key was created; admin implies write implies read"
    )
    label: str | None
    created_at: datetime


class CurrentWorkspace(BaseModel):
    workspace: WorkspaceRead
    caller: ApiKeyCaller = Field(
        description="who sent the request; `kind` names the kind of caller (today `api_key`)"
    )
