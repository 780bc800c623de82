"""What a database error means for the client: retry later, retry now, fix the input, or a bug."""

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, ProgrammingError

from app.errors import database_problem, install_error_handlers


class _DriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("driver says no")
        self.sqlstate = sqlstate


def _error(cls: type[DBAPIError], sqlstate: str | None) -> DBAPIError:
    return cls("SELECT 1", {}, _DriverError(sqlstate))


@pytest.mark.parametrize(
    ("cls", "sqlstate", "status", "retry_after"),
    [
        (DBAPIError, "22021", 422, None),  # invalid byte sequence
        (DBAPIError, "22008", 422, None),  # datetime out of range
        (OperationalError, "40001", 409, "1"),  # serialization failure
        (OperationalError, "40P01", 409, "1"),  # deadlock
        (OperationalError, "57014", 503, "5"),  # statement timeout
        (OperationalError, "57P01", 503, "5"),  # admin shutdown
        (OperationalError, "08006", 503, "5"),  # connection failure
        (OperationalError, "53300", 503, "5"),  # too many connections
        (OperationalError, None, 503, "5"),  # the driver lost the connection
        (InterfaceError, None, 503, "5"),
    ],
)
def test_database_errors_the_client_can_act_on(
    cls: type[DBAPIError], sqlstate: str | None, status: int, retry_after: str | None
) -> None:
    problem = database_problem(_error(cls, sqlstate))
    assert problem is not None
    assert problem.status == status
    assert problem.headers.get("Retry-After") == retry_after


@pytest.mark.parametrize(
    ("cls", "sqlstate"),
    [(ProgrammingError, "42703"), (DBAPIError, "XX000"), (DBAPIError, None)],
)
def test_our_own_bugs_are_not_blamed_on_the_client_or_the_network(
    cls: type[DBAPIError], sqlstate: str | None
) -> None:
    assert database_problem(_error(cls, sqlstate)) is None


def _app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return app


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (asyncpg.exceptions.QueryCanceledError("canceling statement"), 503, "5"),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock detected"), 409, "1"),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), 409, None),
        (asyncpg.exceptions.InvalidTextRepresentationError("invalid input"), 422, None),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), 503, "5"),
    ],
)
async def test_errors_of_statements_run_on_the_driver_mean_the_same(
    error: Exception, status: int, retry_after: str | None
) -> None:
    transport = httpx.ASGITransport(app=_app_raising(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers.get("retry-after") == retry_after
    assert "duplicate key" not in response.text  # no driver text reaches the client
    assert "canceling" not in response.text


async def test_a_driver_error_that_is_our_bug_is_a_500_without_its_text() -> None:
    error = asyncpg.exceptions.UndefinedColumnError('column "nope" does not exist')
    transport = httpx.ASGITransport(app=_app_raising(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert "nope" not in response.text
