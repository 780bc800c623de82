"""Liveness and readiness probes."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from app.db import EngineDep
from app.errors import ServiceUnavailable, problem_response
from app.migrate import head_revision
from app.observability import exposition
from app.schemas import Health, problem_doc

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, operation_id="healthz")
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: problem_doc("Database unreachable or not migrated", retry_after=True)},
    operation_id="readyz",
)
async def readyz(engine: EngineDep) -> Any:
    """The database answers and its schema is at the code's migration head."""
    head = head_revision()
    try:
        async with engine.connect() as conn:
            current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
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
