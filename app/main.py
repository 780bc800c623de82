"""The application factory."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.access_log import install_redaction
from app.api import (
    accounts,
    at_risk,
    cases,
    coverage,
    deletions,
    drivers,
    exports,
    health,
    imports,
    invitations,
    keys,
    movements,
    nps,
    perception,
    public,
    rates,
    responses,
    surveys,
    themes,
    trend,
    webhooks,
)
from app.api import settings as settings_api
from app.api import workspace as workspace_api
from app.api.docs import complete_openapi, install_docs
from app.api.idempotency import install_replay_handler
from app.api.imports import IMPORTS_PATH
from app.api.report_tags import ReportTags, install_report_tags
from app.api.score_params import PORTFOLIO_HINTS
from app.config import Settings, get_settings, key_pepper
from app.db import State, create_engine, create_sessionmaker, read_slots_for
from app.errors import install_error_handlers
from app.guard import PUBLIC_API, PublicGuard
from app.logs import install_json_logs
from app.middleware import BodyLimit, Liveness, ReadShedding, SecurityHeaders
from app.observability import Observe, watch_pool
from app.pages import PAGES_ZONE, install_pages
from app.routing import RouteGate
from app.schemas import PROBLEM_RESPONSES
from app.services.keys import use_pepper
from app.startup import SchemaGate
from app.tasks import MODULES as TASK_MODULES  # noqa: F401 - declares what services may queue

API_APPLICATION_NAME = "nps-api"


def create_app(settings: Settings | None = None, *, gated: bool = False) -> FastAPI:
    """The API. Its database comes from the lifespan's state; tests replace the dependencies that
    read it (app.db.get_engine, get_sessionmaker, get_read_sessionmaker) instead.

    `gated` (how `nps serve` runs it): every call but the probes is a 503 until the database has
    once answered with its schema at head (app.startup.SchemaGate)."""
    settings = settings or get_settings()
    # The pepper API keys are hashed with, for this process (app.services.keys).
    use_pepper(key_pepper(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        if settings.database_url is None:
            raise RuntimeError("NPS_DATABASE_URL is not set (`nps serve` starts a database)")
        engine = create_engine(
            settings.database_url,
            settings,
            application_name=API_APPLICATION_NAME,
            generic_plans=True,
        )
        watch_pool("primary", engine)
        replica = None
        if settings.read_database_url:
            replica = create_engine(
                settings.read_database_url, settings, application_name=API_APPLICATION_NAME
            )
            watch_pool("replica", replica)
        try:
            yield State(
                engine=engine,
                sessionmaker=create_sessionmaker(engine),
                read_sessionmaker=None if replica is None else create_sessionmaker(replica),
            )
        finally:
            await engine.dispose()
            if replica is not None:
                await replica.dispose()

    # In production the API's documents are served only when a setting says so.
    documents = settings.env != "production" or settings.docs_in_production
    app = FastAPI(
        title="B2B NPS service",
        version="1.0.0",
        summary="Account- and role-level Net Promoter Scores with honest small-sample statistics.",
        description="How scores, intervals, changes and weights are computed, with worked "
        "examples: docs/scoring.md in the service's repository.",
        lifespan=lifespan,
        # Served by install_docs from local assets instead of FastAPI's CDN-backed pages.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if documents else None,
    )
    # The process's configuration, fixed for the app's life (not per-request state).
    app.state.settings = settings
    app.state.read_slots = read_slots_for(settings)
    install_error_handlers(app)
    install_replay_handler(app)
    install_report_tags(app, settings.report_cache_entries)
    app.include_router(health.router)
    # The router tries routes in order, one by one: the answer paths, the hottest, come first
    # (no other router has paths under theirs, so the order changes nothing else).
    for module in (
        responses,
        public,
        at_risk,
        accounts,
        trend,
        nps,
        drivers,
        themes,
        perception,
        keys,
        settings_api,
        movements,
        coverage,
        deletions,
        surveys,
        workspace_api,
        invitations,
        rates,
        cases,
        webhooks,
        exports,
        imports,
    ):
        app.include_router(module.router, responses=PROBLEM_RESPONSES)
    if documents:
        install_docs(app)
    # The hosted survey page (/s, HTML) and /widget.js; the page's URL holds a token, so the
    # access log of every server process that builds this app redacts it.
    install_pages(app)
    install_redaction()
    complete_openapi(app)
    # Innermost: a read that would only wait to be refused is refused before any of its work;
    # behind the tags, so a revalidation (which takes no read turn) is never refused for them.
    app.add_middleware(ReadShedding, slots_of=app)
    # Tags, 304s and the cache of the score and analytics reports (app.api.report_tags).
    app.add_middleware(ReportTags, cache_of=app)
    # Methods, Allow and strict query parameters for every route (app.routing).
    app.add_middleware(RouteGate, api=app, hints=PORTFOLIO_HINTS)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        timeout=settings.body_timeout_seconds,
        uploads={IMPORTS_PATH: (settings.import_max_bytes, settings.import_body_timeout_seconds)},
    )
    if gated:
        # Inside the request id, metrics and security headers, so its 503s carry them too.
        app.add_middleware(SchemaGate, bootstrap_key=settings.bootstrap_api_key)
    # Outermost: CORS and rate limits for /v1/public/*, rate limits for the pages (/s/<token>),
    # before anything there can answer.
    app.add_middleware(PublicGuard, api=app, settings=settings, zones=(PUBLIC_API, PAGES_ZONE))
    # /healthz is answered here, before the guard, the route gate and the routes (nothing a
    # request can wait for), inside the headers and the metrics.
    app.add_middleware(Liveness)
    # Around everything, so the guard's own answers (429, preflights) carry them too.
    app.add_middleware(SecurityHeaders, hsts=settings.env == "production")
    # Outermost of all: the request id and the metrics see every answer, the guard's too.
    app.add_middleware(Observe)
    return app


# Allocations between young-generation collections (CPython's default is 700). A request
# allocates thousands of container objects, so the default collected several times per
# request, and every hundredth young collection traversed the whole heap.
GC_YOUNG_THRESHOLD = 20_000


def serve_app() -> FastAPI:
    """The app as `nps serve` runs it in each web process: create_app, and the garbage collector
    set for a long-lived server. What the imports and the app built are kept for the process's
    life, so they are frozen out of every collection (they made a full collection, about a
    million objects, take tens of milliseconds, a pause every request in flight waited for);
    the young generation is collected less often. Measured at 32 concurrent answers: the
    collector took about a sixth of the web process's CPU before."""
    app = create_app(gated=True)
    settings = get_settings()
    if settings.log_format == "json":
        install_json_logs(settings.log_level)
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
    return app
