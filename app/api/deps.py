"""Dependencies shared by the routers: the clock, the process's settings, and list options.

Who is calling is app.api.auth.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BeforeValidator

from app.config import Settings
from app.pagination import MAX_LIMIT
from app.routing import sent_method
from app.schemas import Timestamp


def utcnow() -> datetime:
    return datetime.now(UTC)


async def get_app_settings(request: Request) -> Settings:
    """The process's configuration (NPS_* variables), not a workspace's settings."""
    settings: Settings = request.app.state.settings
    return settings


AppSettingsDep = Annotated[Settings, Depends(get_app_settings)]


def is_head(request: Request) -> bool:
    """A HEAD served as this GET (app.routing): skip what only a real GET should do."""
    return sent_method(request.scope) == "HEAD"


HeadRequest = Annotated[bool, Depends(is_head)]

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]


def _empty_is_absent(value: object) -> object:
    return None if value == "" else value


# `cursor=` (a client that sends back an empty next_cursor) is the first page, not a bad cursor.
Cursor = Annotated[
    str | None,
    BeforeValidator(_empty_is_absent),
    Query(description="next_cursor of the previous page; absent or empty: the first page"),
]
UpdatedSince = Annotated[
    Timestamp | None,
    Query(description="only rows created or changed at or after this instant (RFC 3339)"),
]
