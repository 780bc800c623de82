"""What a database error means for the client: retry later, retry now, fix the input, or a bug."""

import pytest
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, ProgrammingError

from app.errors import database_problem


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
