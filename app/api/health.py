"""Liveness and readiness probes."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from app.bodies import StrictRoute
from app.db import EngineDep
from app.errors import problem_response
from app.observability import exposition
from app.schemas import Health, problem_doc
from app.startup import schema_problem

router = APIRouter(tags=["health"], route_class=StrictRoute)


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
    """The database answers (within a second) and its schema is at the code's migration head."""
    problem = await schema_problem(engine)
    if problem is not None:
        return problem_response(problem)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
async def metrics(engine: EngineDep) -> Response:
    """Prometheus metrics (app.observability): requests, latency, pools, background jobs."""
    body, content_type = await exposition(engine)
    return Response(body, media_type=content_type)
