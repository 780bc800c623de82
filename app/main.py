"""The application factory."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import accounts, at_risk, coverage, health, keys, movements, nps, responses, trend
from app.api import settings as settings_api
from app.api.idempotency import install_replay_handler, purge_expired
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.errors import PayloadTooLarge, install_error_handlers, problem_response
from app.schemas import PROBLEM_RESPONSES, Problem

logger = logging.getLogger("app")

PURGE_EVERY_SECONDS = 3600.0


class BodyLimit:
    """Refuse a request body over `limit` bytes with 413 before any of it is parsed or stored."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(self.limit)
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await problem_response(PayloadTooLarge(_too_large(self.limit)))(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    # An HTTPException because FastAPI turns any other error raised while it reads the body
    # into a 400 "error parsing the body"; this one reaches the problem+json handler as a 413.
    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


def _too_large(limit: int) -> str:
    return f"the request body is over {limit} bytes: nothing was stored"


async def _purge_idempotency_keys(app: FastAPI, hours: int) -> None:
    while True:
        await asyncio.sleep(PURGE_EVERY_SECONDS)
        try:
            async with app.state.sessionmaker() as session, session.begin():
                await purge_expired(session, hours=hours)
        except Exception:
            logger.exception("purging expired idempotency keys failed; will retry")


def _register_problem_schema(app: FastAPI) -> None:
    """Error responses reference the Problem schema, which no route returns directly."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            defs = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(defs.pop("$defs", {}))
            schemas["Problem"] = defs
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = []
        if getattr(app.state, "sessionmaker", None) is None:
            if settings.database_url is None:
                raise RuntimeError("NPS_DATABASE_URL is not set (`nps serve` starts a database)")
            engine = create_engine(settings.database_url, settings)
            app.state.engine = engine
            app.state.sessionmaker = create_sessionmaker(engine)
            owned.append(engine)
            if settings.read_database_url:
                replica = create_engine(settings.read_database_url, settings)
                app.state.read_sessionmaker = create_sessionmaker(replica)
                owned.append(replica)
        purger = asyncio.create_task(_purge_idempotency_keys(app, settings.idempotency_ttl_hours))
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            for engine in owned:
                await engine.dispose()

    app = FastAPI(
        title="B2B NPS service",
        version="1.0.0",
        summary="Account- and role-level Net Promoter Scores with honest small-sample statistics.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.sessionmaker = None
    app.state.read_sessionmaker = None
    install_error_handlers(app)
    install_replay_handler(app)
    app.include_router(health.router)
    for module in (
        at_risk,
        accounts,
        responses,
        trend,
        nps,
        keys,
        settings_api,
        movements,
        coverage,
    ):
        app.include_router(module.router, responses=PROBLEM_RESPONSES)
    _register_problem_schema(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
