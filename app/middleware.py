"""ASGI middleware: pure ASGI, so they see every request before FastAPI parses it."""

import asyncio

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import ReadSlots, get_read_session
from app.errors import PayloadTooLarge, RequestTimeout, problem_response
from app.routing import declares


class BodyLimit:
    """Refuse a request body over `limit` bytes with 413 before any of it is parsed or stored,
    and one that has not fully arrived `timeout` seconds after its headers with 408 (a client
    that stalls, or sends less than its Content-Length, would otherwise hold the request, and a
    connection, for ever: uvicorn has no timeout of its own while a body is read)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        timeout: float | None = None,
        *,
        uploads: dict[str, tuple[int, float]] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout
        # Paths that take files (POST /v1/imports): a limit and a timeout of their own.
        self.uploads = uploads or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, timeout = self.limit, self.timeout
        upload = self.uploads.get(scope["path"]) if scope.get("method") == "POST" else None
        if upload is not None:
            limit, timeout = upload
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        seen = 0
        complete = False
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout

        async def limited() -> Message:
            nonlocal seen, complete
            if complete or deadline is None:
                # The body is in: what is left to receive is the client's disconnect, which
                # may come at any time (a streamed answer listens for it).
                message = await receive()
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    raise _TimedOut(timeout or 0) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
                complete = not message.get("more_body", False)
            return message

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except _TooLarge:
            if not started:
                await self._refuse(scope, receive, send, limit)
        except _TimedOut as exc:
            if not started:
                await problem_response(_timed_out(exc.seconds))(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        await problem_response(PayloadTooLarge(_too_large(limit)))(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    # An HTTPException because FastAPI turns any other error raised while it reads the body
    # into a 400 "error parsing the body"; this one reaches the problem+json handler as a 413.
    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


def _too_large(limit: int) -> str:
    return f"the request body is over {limit} bytes: nothing was stored"


class _TimedOut(StarletteHTTPException):
    # An HTTPException for the same reason as _TooLarge: the problem+json handler answers 408.
    def __init__(self, seconds: float) -> None:
        error = _timed_out(seconds)
        super().__init__(408, error.detail, headers=error.headers)
        self.seconds = seconds


def _timed_out(seconds: float) -> RequestTimeout:
    # The rest of the body may still be on its way: the connection cannot carry another request.
    return RequestTimeout(
        f"the request body did not arrive within {seconds:g} s: nothing was stored",
        headers={"Connection": "close"},
    )


# Answers of the API are data for one caller: never kept by a shared cache, never sniffed into
# something a browser would run, never framed. An answer with an ETag (a validator the caller
# polls with If-None-Match) may be kept by the caller's own cache, revalidated each time.
NO_STORE = b"no-store"
REVALIDATE = b"private, no-cache"
# JSON loads nothing and runs nothing; /docs and the hosted page set policies of their own.
API_POLICY = b"default-src 'none'; frame-ancestors 'none'"
HSTS = b"max-age=31536000"


class SecurityHeaders:
    """Cache-Control, X-Content-Type-Options, a Content-Security-Policy with frame-ancestors
    'none' and, in production, Strict-Transport-Security on every answer; a header an answer set
    itself (an asset's Cache-Control, the hosted page's own policy) is kept. One pass over the
    answer's headers, no header object: it runs for every request on the ingest path."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                if b"cache-control" not in names:
                    cache = REVALIDATE if b"etag" in names else NO_STORE
                    headers.append((b"cache-control", cache))
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", API_POLICY))
                if self.hsts and b"strict-transport-security" not in names:
                    headers.append((b"strict-transport-security", HSTS))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


LIVENESS_PATH = "/healthz"
_LIVE_BODY = b'{"status":"ok"}'


class Liveness:
    """`GET /healthz` (and its HEAD) answered here, outside the routes, the dependencies and the
    database: the answer says the process's event loop runs, so it must not wait for anything a
    request waits for. With a query string it goes on to the route gate (which refuses it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.start: Message = {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_LIVE_BODY)).encode()),
            ],
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != LIVENESS_PATH
            or scope["method"] not in ("GET", "HEAD")
            or scope.get("query_string")
        ):
            await self.app(scope, receive, send)
            return
        await send({**self.start, "headers": list(self.start["headers"])})
        body = b"" if scope["method"] == "HEAD" else _LIVE_BODY
        await send({"type": "http.response.body", "body": body})


class ReadShedding:
    """A read that would only be refused (its route takes a read turn, and ReadSlots is full)
    is answered 503 /problems/busy here, behind the RouteGate that chose its route, before any
    dependency or statement. The slots are the app's (app.state.read_slots)."""

    def __init__(self, app: ASGIApp, *, slots_of: FastAPI) -> None:
        self.app = app
        self.api = slots_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            slots: ReadSlots = self.api.state.read_slots
            if slots.full and declares(scope, get_read_session):
                await problem_response(slots.refusal())(scope, receive, send)
                return
        await self.app(scope, receive, send)
