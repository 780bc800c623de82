"""Assertions shared by the HTTP tests."""

from datetime import datetime
from typing import Any

import httpx

PROBLEM_JSON = "application/problem+json"
# Text that would mean internals reached a client.
LEAKS = ("Traceback", "SELECT", "sqlalchemy", "asyncpg", "psycopg", 'File "')


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of an error answer, after checking it reveals nothing internal."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM_JSON
    for leak in LEAKS:
        assert leak.lower() not in r.text.lower(), r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


def error_locs(body: dict[str, Any]) -> list[list[str | int]]:
    return [e["loc"] for e in body["errors"]]


def without_stamps(body: dict[str, Any]) -> dict[str, Any]:
    """The body minus created_at/updated_at, which must be RFC 3339 instants with an offset."""
    rest = dict(body)
    for name in ("created_at", "updated_at"):
        assert datetime.fromisoformat(rest.pop(name)).tzinfo is not None
    return rest


def ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [row["id"] for row in r.json()["data"]]
