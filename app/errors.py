"""Domain errors and the one place that renders every error as RFC 9457 problem+json."""

import logging
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("app.errors")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "/problems/"


class ProblemError(Exception):
    """A client-visible error: its status, a stable type slug, and a human detail."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            payload["errors"] = self.errors
        return payload


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Unauthorized"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class LastAdminKey(Conflict):
    """Revoking this key would leave its workspace without an active admin key."""

    slug, title = "last-admin-key", "Last admin key"


class ResyncRequired(ProblemError):
    status, slug, title = 410, "resync-required", "Full resync required"


class Gone(ProblemError):
    status, slug, title = 410, "gone", "Gone"


class ExternalIdConflict(Conflict):
    """An external_id already stored with other content: names the stored response."""

    slug, title = "external-id-conflict", "External id already used"

    def __init__(
        self, detail: str, *, response_id: Any, errors: Sequence[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(detail, errors=errors)
        self.response_id = str(response_id)

    def body(self) -> dict[str, Any]:
        return {**super().body(), "response_id": self.response_id}


def rfc3339(moment: datetime) -> str:
    """An instant as the API writes it: RFC 3339 in UTC with `Z`."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class AlreadyAnswered(Conflict):
    """The invitation was answered already: names when, and the response it recorded."""

    slug, title = "already-answered", "Already answered"

    def __init__(self, detail: str, *, answered_at: datetime, response_id: Any) -> None:
        super().__init__(detail)
        self.answered_at = answered_at
        self.response_id = None if response_id is None else str(response_id)

    def body(self) -> dict[str, Any]:
        return {
            **super().body(),
            "answered_at": rfc3339(self.answered_at),
            "response_id": self.response_id,
        }


class NotAnswered(Conflict):
    slug, title = "not-answered", "Not answered yet"


class EditWindowClosed(Conflict):
    """An answer may be edited for a while after it was given; this one no longer."""

    slug, title = "edit-window-closed", "Edit window closed"

    def __init__(self, detail: str, *, editable_until: datetime) -> None:
        super().__init__(detail)
        self.editable_until = editable_until

    def body(self) -> dict[str, Any]:
        return {**super().body(), "editable_until": rfc3339(self.editable_until)}


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class RequestTimeout(ProblemError):
    """The request's body did not fully arrive in time (NPS_BODY_TIMEOUT_SECONDS)."""

    status, slug, title = 408, "request-timeout", "Request timeout"


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Unprocessable(ProblemError):
    status, slug, title = 422, "validation-error", "Request validation failed"


class IdempotencyMismatch(ProblemError):
    status, slug, title = 422, "idempotency-key-reused", "Idempotency key reused"


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


class Busy(ProblemError):
    """The service is working at capacity (no database connection or read turn came free in
    time): the database is fine, so a retry after Retry-After is likely to be served. An outage
    is ServiceUnavailable."""

    status, slug, title = 503, "busy", "Service busy"


BUSY_RETRY_AFTER = "2"


def busy(what: str) -> Busy:
    return Busy(
        f"the service is at capacity ({what}); retry after a moment",
        headers={"Retry-After": BUSY_RETRY_AFTER},
    )


class RateLimited(ProblemError):
    """Over a rate limit: `violated-policies` names the policies of the RateLimit header fields
    that were exceeded (the member draft-ietf-httpapi-ratelimit-headers defines)."""

    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, *, violated: Sequence[str], headers: dict[str, str]) -> None:
        super().__init__(detail, headers=headers)
        self.violated = list(violated)

    def body(self) -> dict[str, Any]:
        return {**super().body(), "violated-policies": self.violated}


class BodyRefused(StarletteHTTPException):
    """A problem found while the request body is read: FastAPI turns any error raised there
    into a 400 "error parsing the body" except an HTTPException, so it travels as one and is
    rendered as the problem it carries (app.bodies)."""

    def __init__(self, problem: ProblemError) -> None:
        super().__init__(problem.status, problem.detail)
        self.problem = problem


# How much of a client's own text (a member or parameter name) an error may quote.
QUOTED_MAX = 64


def quoted(text: str) -> str:
    """A client's text as an error quotes it: control and other unprintable characters escaped,
    and cut to QUOTED_MAX characters, so an answer never carries hostile input verbatim."""
    if len(text) > QUOTED_MAX:
        text = text[: QUOTED_MAX - 1] + "…"
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def field_error(loc: Sequence[str | int], msg: str) -> dict[str, Any]:
    return {"loc": [quoted(p) if isinstance(p, str) else p for p in loc], "msg": msg}


def invalid_query(param: str, message: str, msg: str | None = None) -> Unprocessable:
    """A 422 about one query parameter: `message` as the detail, `msg` (default the same) at it."""
    return Unprocessable(message, errors=[field_error(["query", param], msg or message)])


def problem_response(error: ProblemError) -> JSONResponse:
    return JSONResponse(
        error.body(), status_code=error.status, media_type=PROBLEM_JSON, headers=error.headers
    )


def validation_errors(raw: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's error list reduced to {loc, msg}; the offending input is never echoed back."""
    return [field_error(err.get("loc", ()), _message(err)) for err in raw]


def invalid_fields(raw: Sequence[Any]) -> Unprocessable:
    """The 422 for Pydantic's errors (their locs as given), the detail naming the first one."""
    errors = validation_errors(raw)
    first = errors[0] if errors else None
    where = ".".join(str(p) for p in first["loc"]) if first else "request"
    detail = f"{len(errors)} invalid field(s); first: {where}: {first['msg'] if first else ''}"
    return Unprocessable(detail, errors=errors)


def _message(err: Any) -> str:
    msg = str(err.get("msg", "invalid value"))
    # Pydantic prefixes the messages of custom validators; the client needs only the sentence.
    return msg.removeprefix("Value error, ")


_HTTP_TITLES: dict[int, type[ProblemError]] = {
    400: ProblemError,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    408: RequestTimeout,
    409: Conflict,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(invalid_fields(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyRefused):
            return problem_response(exc.problem)
        cls = _HTTP_TITLES.get(exc.status_code)
        if cls is not None:
            error: ProblemError = cls(str(exc.detail))
        else:
            error = ProblemError(str(exc.detail))
            error.status, error.slug, error.title = exc.status_code, "http-error", str(exc.detail)
        error.headers = dict(exc.headers or {})
        return problem_response(error)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # Services turn the constraints they expect into precise errors; this is the safety net.
        logger.warning("unhandled integrity error: %s", exc.orig)
        return problem_response(Conflict("the request conflicts with the current state"))

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        error = database_problem(exc)
        if error is None:  # a bug in a query or in the service, not the client or the network
            return await _unexpected(request, exc)
        logger.log(logging.ERROR if error.status >= 500 else logging.WARNING, "%s", exc.orig)
        return problem_response(error)

    # Statements of the hot paths run on the driver (app.db.driver): its errors mean the same.
    @app.exception_handler(asyncpg.PostgresError)
    async def _driver(request: Request, exc: asyncpg.PostgresError) -> JSONResponse:
        if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
            logger.warning("unhandled integrity error: %s", exc)
            return problem_response(Conflict("the request conflicts with the current state"))
        error = sqlstate_problem(str(getattr(exc, "sqlstate", None) or ""))
        if error is None:
            return await _unexpected(request, exc)
        logger.log(logging.ERROR if error.status >= 500 else logging.WARNING, "%s", exc)
        return problem_response(error)

    @app.exception_handler(PoolTimeoutError)
    async def _pool_exhausted(_: Request, exc: PoolTimeoutError) -> JSONResponse:
        logger.warning("no database connection came free in time: %s", exc)
        return problem_response(busy(POOL_EXHAUSTED))

    @app.exception_handler(asyncpg.InterfaceError)
    async def _driver_gone(_: Request, exc: asyncpg.InterfaceError) -> JSONResponse:
        logger.error("database connection lost: %r", exc)
        return problem_response(_unavailable())

    for transient in TRANSIENT_ERRORS:

        @app.exception_handler(transient)
        async def _transient(_: Request, exc: Exception) -> JSONResponse:
            logger.error("database unreachable: %r", exc)
            return problem_response(_unavailable())

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        # Starlette re-raises the error once this answer is sent, and uvicorn then closes the
        # connection: say so, or a client sends its next request on a connection about to close.
        error = ProblemError(
            "an unexpected error occurred; it has been logged", headers={"Connection": "close"}
        )
        error.status, error.slug, error.title = 500, "internal-error", "Internal server error"
        return problem_response(error)


# The database cannot be reached (the network or the server is away). An exhausted pool is not
# an outage: it is Busy.
TRANSIENT_ERRORS = (ConnectionError, TimeoutError, socket.gaierror)
POOL_EXHAUSTED = "every database connection is in use"


def infrastructure_problem(exc: Exception) -> ProblemError | None:
    """What a failure of the database means for the client (503, 409 retry, ...), for code that
    runs outside the handlers (a middleware); None for a bug."""
    if isinstance(exc, PoolTimeoutError):
        return busy(POOL_EXHAUSTED)
    if isinstance(exc, DBAPIError):
        return database_problem(exc)
    if isinstance(exc, asyncpg.PostgresError):  # a statement run on the driver (app.db.driver)
        return sqlstate_problem(str(getattr(exc, "sqlstate", None) or ""))
    if isinstance(exc, (*TRANSIENT_ERRORS, asyncpg.InterfaceError)):
        return _unavailable()
    return None


def database_problem(exc: DBAPIError) -> ProblemError | None:
    """What a database error means for the client, by SQLSTATE; None for our own bugs."""
    code = str(getattr(exc.orig, "sqlstate", None) or "")
    error = sqlstate_problem(code)
    # Raised by the driver itself, without a SQLSTATE: the connection is gone.
    gone = not code and isinstance(exc, OperationalError | InterfaceError)
    if error is None and (gone or exc.connection_invalidated):
        return _unavailable()
    return error


def sqlstate_problem(code: str) -> ProblemError | None:
    """What an error with this SQLSTATE means for the client; None for our own bugs."""
    if code.startswith("22"):
        # Data exception: a value PostgreSQL cannot hold or compare. Retrying would not help.
        return Unprocessable("a value in the request cannot be stored or compared")
    if code in ("40001", "40P01"):
        return Conflict(
            "a concurrent request touched the same rows; retry", headers={"Retry-After": "1"}
        )
    if code == "57014":
        return ServiceUnavailable(
            "the database did not answer in time; retry later", headers={"Retry-After": "5"}
        )
    if code[:2] in ("08", "53", "57"):
        return _unavailable()
    return None


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "the database is unavailable; retry later", headers={"Retry-After": "5"}
    )
