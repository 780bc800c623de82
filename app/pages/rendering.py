"""Templates, and the page's one error handler: every error of the hosted page is an HTML page
(the API keeps problem+json), with no trace, SQL or internal detail in it."""

import logging
import socket
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import iter_route_contexts
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import ProblemError, database_problem
from app.pages.messages import MESSAGES, Words

logger = logging.getLogger("app.pages")

templates = Environment(
    loader=PackageLoader("app.pages", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,  # a missing value is a bug to see, not an empty string
    trim_blocks=True,
    lstrip_blocks=True,
)
# Headers of an error worth passing on to the browser (the rest is API detail).
_KEPT_HEADERS = ("retry-after", "allow", "ratelimit", "ratelimit-policy")


def root_of(request: Request) -> str:
    """Where the pages are mounted (`/s`, behind any proxy prefix), for the links they write."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def render(
    request: Request,
    template: str,
    *,
    words: Words,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    page = templates.get_template(template).render(
        root=root_of(request), words=words, lang=words.lang, **context
    )
    return HTMLResponse(page, status_code=status, headers=dict(headers or {}))


def words_for_request(request: Request) -> Words:
    """The words of the invitation's locale when the page got that far (`request.state.locale`),
    else the browser's first language the page speaks."""
    locale = getattr(request.state, "locale", None)
    if locale is not None:
        return Words(locale)
    for part in request.headers.get("accept-language", "").split(","):
        lang = part.split(";", 1)[0].strip().split("-", 1)[0].lower()
        if lang in MESSAGES:
            return Words(lang)
    return Words(None)


# status -> (title, message) keys; a 410 says which of expired or revoked in `reason`.
_ERROR_TEXTS = {
    404: ("not_found_title", "not_found"),
    401: ("not_found_title", "not_found"),
    410: ("expired_title", "expired"),
    429: ("too_many_title", "too_many"),
}


def error_page(
    request: Request, status: int, *, headers: Mapping[str, str] | None = None, reason: str = ""
) -> HTMLResponse:
    words = words_for_request(request)
    if status in _ERROR_TEXTS:
        title, message = _ERROR_TEXTS[status]
        if status == 410 and reason == "revoked":
            message = "revoked"
    elif status >= 500:
        title, message = "error_title", "error"
    else:
        title, message = "bad_request_title", "bad_request"
    kept = {k: v for k, v in (headers or {}).items() if k.lower() in _KEPT_HEADERS}
    return render(
        request,
        "message.html",
        words=words,
        status=status,
        headers=kept,
        title=words(title),
        message=words(message),
    )


def _methods_of(request: Request) -> set[str]:
    """Every method the request's path has: Starlette's 405 names only its first route's."""
    root: str = request.scope.get("root_path", "")
    path = request.url.path.removeprefix(root)
    methods: set[str] = set()
    for context in iter_route_contexts(request.app.routes):
        regex = getattr(context, "path_regex", None)
        if regex is not None and context.methods and regex.match(path):
            methods |= context.methods
    return methods


def install_page_errors(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> HTMLResponse:
        reason = "revoked" if exc.status == 410 and "revoked" in exc.detail else ""
        return error_page(request, exc.status, headers=exc.headers, reason=reason)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, _: RequestValidationError) -> HTMLResponse:
        return error_page(request, 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(sorted(_methods_of(request)))
        return error_page(request, exc.status_code, headers=headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> HTMLResponse:
        logger.warning("unhandled integrity error: %s", exc.orig)
        return error_page(request, 409)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> HTMLResponse:
        error = database_problem(exc)
        if error is None:
            return await _unexpected(request, exc)
        logger.warning("%s", exc.orig)
        return error_page(request, error.status, headers=error.headers)

    for transient in (PoolTimeoutError, ConnectionError, TimeoutError, socket.gaierror):

        @app.exception_handler(transient)
        async def _transient(request: Request, exc: Exception) -> HTMLResponse:
            logger.error("database unreachable: %r", exc)
            return error_page(request, 503, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> HTMLResponse:
        logger.exception("unhandled error on the hosted page", exc_info=exc)
        return error_page(request, 500)
