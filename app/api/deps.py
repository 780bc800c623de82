"""Dependencies shared by the routers: the clock, the process's settings, and list options.

Who is calling is app.api.auth.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request

from app.config import Settings
from app.pagination import MAX_LIMIT
from app.schemas import Timestamp


def utcnow() -> datetime:
    return datetime.now(UTC)


def get_app_settings(request: Request) -> Settings:
    """The process's configuration (NPS_* variables), not a workspace's settings."""
    settings: Settings = request.app.state.settings
    return settings


AppSettingsDep = Annotated[Settings, Depends(get_app_settings)]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
UpdatedSince = Annotated[
    Timestamp | None,
    Query(description="only rows created or changed at or after this instant (RFC 3339)"),
]
