"""Liveness and readiness probes."""

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bodies import StrictRoute
from app.db import EngineDep
from app.errors import ServiceUnavailable, problem_response
from app.migrate import head_revision
from app.observability import exposition
from app.schemas import Health, problem_doc

router = APIRouter(tags=["health"], route_class=StrictRoute)


@router.get("/healthz", response_model=Health, operation_id="healthz")
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


# The probe answers within a second whatever the database does: a check that takes longer goes
# on in the background (bounded by the driver's command_timeout) while the probe says 503.
READY_WITHIN_SECONDS = 0.8
_checks: set[asyncio.Task[Any]] = set()


async def _schema_revision(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(text("SELECT version_num FROM alembic_version"))


def _forget(check: asyncio.Task[Any]) -> None:
    _checks.discard(check)
    if not check.cancelled():
        check.exception()  # retrieved: a late failure is no news once the probe has answered


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: problem_doc("Database unreachable or not migrated", retry_after=True)},
    operation_id="readyz",
)
async def readyz(engine: EngineDep) -> Any:
    """The database answers (within a second) and its schema is at the code's migration head."""
    head = head_revision()
    # Not cancelled when the probe gives up: cancelling a statement in flight waits for the
    # server to acknowledge, which a frozen server never does.
    check = asyncio.create_task(_schema_revision(engine))
    _checks.add(check)
    check.add_done_callback(_forget)
    try:
        current = await asyncio.wait_for(asyncio.shield(check), READY_WITHIN_SECONDS)
    except TimeoutError:
        return problem_response(
            ServiceUnavailable(
                f"the database did not answer within {READY_WITHIN_SECONDS} s",
                headers={"Retry-After": "5"},
            )
        )
    except Exception:  # any failure to reach or read the database means "not ready"
        return problem_response(
            ServiceUnavailable("the database is unreachable", headers={"Retry-After": "5"})
        )
    if current != head:
        return problem_response(
            ServiceUnavailable(
                f"the database schema is at {current!r}, the code expects {head!r}: "
                "run `nps migrate`",
                headers={"Retry-After": "30"},
            )
        )
    return JSONResponse({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
async def metrics(engine: EngineDep) -> Response:
    """Prometheus metrics (app.observability): requests, latency, pools, background jobs."""
    body, content_type = await exposition(engine)
    return Response(body, media_type=content_type)
