"""Database plumbing: the declarative base, engines, and the per-request session."""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def create_engine(url: str, settings: Settings, **kwargs: Any) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        # No pre-ping: it costs a round trip per request. A connection lost to a server
        # restart fails one request with a 503 and SQLAlchemy then renews the whole pool.
        # Bounded waits: a stuck query or server becomes a 503, never a hung client.
        connect_args={
            "server_settings": {
                "application_name": "nps-service",
                "statement_timeout": str(settings.statement_timeout_ms),
                # Compiling a query plan to machine code costs 20-50 ms, more than these
                # index-driven queries take to run.
                "jit": "off",
                # Plan each query for its own window and workspace: a generic plan, which
                # PostgreSQL switches to after five runs of a prepared statement, cannot see
                # that one workspace holds most of the rows or how wide a window is.
                "plan_cache_mode": "force_custom_plan",
            },
            "timeout": 10,
        },
        **kwargs,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request is the unit of work: one transaction, committed before the response is sent."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(request: Request, primary: SessionDep) -> AsyncIterator[AsyncSession]:
    """A session on the read replica when one is configured, else the request's own session."""
    replica: async_sessionmaker[AsyncSession] | None = request.app.state.read_sessionmaker
    if replica is None:
        yield primary
        return
    async with replica() as session, session.begin():
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
