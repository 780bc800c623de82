"""Assertions on problem+json error answers (RFC 9457)."""

from collections.abc import Sequence
from typing import Any

import httpx

PROBLEM_JSON = "application/problem+json"
VALIDATION = "/problems/validation-error"
REUSED = "/problems/idempotency-key-reused"
REPLAYED = "Idempotent-Replayed"
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


def assert_invalid(r: httpx.Response, *locs: Sequence[str | int]) -> dict[str, Any]:
    """A 422 validation problem; with `locs`, exactly those field locations."""
    body = problem(r, 422)
    assert body["type"] == VALIDATION, body
    if locs:
        assert error_locs(body) == [list(loc) for loc in locs], body
    return body


def assert_unauthorized(r: httpx.Response) -> None:
    body = problem(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"
    assert set(body) == {"type", "title", "status", "detail"}
    assert (body["type"], body["title"]) == ("/problems/unauthorized", "Unauthorized")


def assert_forbidden(r: httpx.Response) -> None:
    body = problem(r, 403)
    assert "www-authenticate" not in r.headers
    assert (body["type"], body["title"]) == ("/problems/forbidden", "Forbidden")


def assert_not_found(r: httpx.Response) -> None:
    body = problem(r, 404)
    assert (body["type"], body["title"]) == ("/problems/not-found", "Not found")


def assert_reused(r: httpx.Response) -> None:
    """An Idempotency-Key sent again with another body: 422, and nothing replayed."""
    body = problem(r, 422)
    assert body["type"] == REUSED, body
    assert REPLAYED not in r.headers


def assert_refused_item(result: dict[str, Any], index: int, locs: list[list[Any]]) -> None:
    """One item of a batch answer refused as invalid, with exactly these field locations."""
    assert (result["index"], result["status"], result["id"], result["duplicate"]) == (
        index,
        422,
        None,
        False,
    )
    problem = result["problem"]
    assert (problem["type"], problem["status"]) == (VALIDATION, 422)
    assert problem["title"]
    assert problem["detail"]
    assert error_locs(problem) == locs
