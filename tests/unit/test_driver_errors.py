"""app.db.driver: a BEGIN the server cut off is the driver's error, which the handlers map."""

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

from app.db import _driver_error
from app.errors import infrastructure_problem


def _translated(cause: BaseException) -> Exception:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise AsyncAdapt_asyncpg_dbapi.Error(str(exc)) from exc  # type: ignore[no-untyped-call]
    except Exception as translated:
        return translated


def test_a_connection_lost_at_begin_is_an_outage_not_a_500() -> None:
    lost = asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    translated = _translated(lost)
    assert infrastructure_problem(translated) is None  # what reached the handlers: a 500
    error = _driver_error(translated)
    assert error is lost
    problem = infrastructure_problem(error)
    assert problem is not None
    assert problem.status == 503


def test_anything_else_is_left_as_it_is() -> None:
    other = _translated(ValueError("a bug"))
    assert _driver_error(other) is other
