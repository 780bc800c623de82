"""ETags, 304s and a bounded cache for the score and analytics reports: one mechanism.

A tagged GET declares `dependencies=[REVALIDATE]` and `responses=TAGGED_DOCS`. The dependency
computes the report's strong tag from what its body is a function of: the caller's workspace,
the workspace's data version (app.services.data_versions: every write a score reads bumps it),
the settings as stored, the path, the query canonicalised, and, without `to`, the default end
of the window (the end of the current minute: the tag moves with it). Then, before
the handler runs a statement of the report:

- `If-None-Match` naming the tag: 304 with the tag, no body;
- the tag's body in this process's cache: that body, byte for byte;
- else the handler runs, and `ReportTags` (an ASGI middleware) adds the tag and
  `Cache-Control: private, no-cache` to its 200 and keeps the body for the next identical query.

The version is read before the report's own statements: under READ COMMITTED each statement
has its own snapshot, so the body is at least as new as its tag; a write that lands in between
changes the version, and the next poll gets a new tag and a fresh body, never an old body under
a new tag.
"""

import hashlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.auth import ReadAuth
from app.api.score_params import RequestNow
from app.canonical import canonical_json
from app.db import ReadSessionDep
from app.etags import if_none_match_hits
from app.services.data_versions import report_state
from app.services.selection import default_end

CACHE_CONTROL = "private, no-cache"
# Where the dependency leaves the tag for the middleware (the request's state, scope["state"]).
TAG_STATE = "report_tag"
# A body larger than this is not kept: the cache is bounded in entries, this bounds each one.
MAX_CACHED_BYTES = 1 << 20


class ReportCache:
    """The least recently used bodies, by (workspace, tag); at most `entries` of them."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._bodies: OrderedDict[tuple[uuid.UUID, str], bytes] = OrderedDict()

    def get(self, workspace_id: uuid.UUID, tag: str) -> bytes | None:
        body = self._bodies.get((workspace_id, tag))
        if body is not None:
            self._bodies.move_to_end((workspace_id, tag))
        return body

    def put(self, workspace_id: uuid.UUID, tag: str, body: bytes) -> None:
        if self.entries == 0 or len(body) > MAX_CACHED_BYTES:
            return
        self._bodies[(workspace_id, tag)] = body
        self._bodies.move_to_end((workspace_id, tag))
        while len(self._bodies) > self.entries:
            self._bodies.popitem(last=False)

    def __len__(self) -> int:
        return len(self._bodies)


@dataclass(frozen=True)
class Tagged:
    workspace_id: uuid.UUID
    etag: str


class Revalidated(Exception):
    """The answer is known before the handler runs: a 304, or the cached body."""

    def __init__(self, etag: str, body: bytes | None) -> None:
        self.etag = etag
        self.body = body


def canonical_query(request: Request) -> list[list[str]]:
    """The query's parameters sorted by name; a repeated one keeps its values' order."""
    return [[k, v] for k, v in sorted(request.query_params.multi_items(), key=lambda kv: kv[0])]


IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        description="the ETag of the report held: 304 without a body while it is still current",
    ),
]


async def revalidate(
    request: Request,
    session: ReadSessionDep,
    auth: ReadAuth,
    now: RequestNow,
    if_none_match: IfNoneMatch = None,
) -> None:
    # One statement: a 304 costs the caller's authentication and this. The settings are taken
    # as stored (jsonb's text is one spelling of a value), not parsed: a 304 needs no model.
    version, stored_settings = await report_state(session, auth.workspace_id)
    # The resolved window is a function of the query's `from` and `to`, the settings'
    # default_window_days and, without `to`, the default end: they are in the tag. (Resolving
    # it here would report a bad window before the checks that come first.)
    etag = report_etag(
        workspace_id=auth.workspace_id,
        version=version,
        settings=stored_settings,
        path=request.url.path,
        query=canonical_query(request),
        default_end=None if "to" in request.query_params else default_end(now).isoformat(),
    )
    if if_none_match_hits(if_none_match, etag):
        raise Revalidated(etag, None)
    cache: ReportCache = request.app.state.report_cache
    body = cache.get(auth.workspace_id, etag)
    if body is not None:
        raise Revalidated(etag, body)
    setattr(request.state, TAG_STATE, Tagged(auth.workspace_id, etag))


def report_etag(
    *,
    workspace_id: uuid.UUID,
    version: int,
    settings: str,
    path: str,
    query: list[list[str]],
    default_end: str | None,
) -> str:
    """A strong tag: equal inputs, equal tags; SHA-256 of their canonical JSON."""
    value: Any = [str(workspace_id), version, settings, path, query, default_end]
    return '"' + hashlib.sha256(canonical_json(value).encode()).hexdigest()[:32] + '"'


REVALIDATE = Depends(revalidate)

TAG_HEADERS = {
    "ETag": {
        "description": "strong tag of this report: it changes when an answer, a stakeholder, an "
        "account, a case or the settings change, or the default window moves (each minute)",
        "schema": {"type": "string"},
    },
    "Cache-Control": {"description": CACHE_CONTROL, "schema": {"type": "string"}},
}
TAGGED_DOCS: dict[int | str, dict[str, Any]] = {
    200: {"description": "The report", "headers": TAG_HEADERS},
    304: {
        "description": "Not modified: If-None-Match names the current ETag (no body)",
        "headers": TAG_HEADERS,
    },
}


def install_report_tags(app: FastAPI, entries: int) -> None:
    app.state.report_cache = ReportCache(entries)

    @app.exception_handler(Revalidated)
    async def _revalidated(_: Request, exc: Revalidated) -> Response:
        headers = {"ETag": exc.etag, "Cache-Control": CACHE_CONTROL}
        if exc.body is None:
            return Response(status_code=304, headers=headers)
        return Response(exc.body, media_type="application/json", headers=headers)


class ReportTags:
    """Adds the tag to a tagged report's 200 and keeps its body in the cache."""

    def __init__(self, app: ASGIApp, *, cache_of: FastAPI) -> None:
        self.app = app
        self.api = cache_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        keep = scope["method"] == "GET"
        status = 0
        chunks: list[bytes] = []

        async def send_tagged(message: Message) -> None:
            nonlocal status, keep
            tagged: Tagged | None = state.get(TAG_STATE)
            if message["type"] == "http.response.start":
                status = message["status"]
                if tagged is not None and status == 200:
                    headers = list(message.get("headers", []))
                    headers += [
                        (b"etag", tagged.etag.encode()),
                        (b"cache-control", CACHE_CONTROL.encode()),
                    ]
                    message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and tagged is not None and keep:
                if status != 200:
                    keep = False
                else:
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body", False):
                        cache: ReportCache = self.api.state.report_cache
                        cache.put(tagged.workspace_id, tagged.etag, b"".join(chunks))
            await send(message)

        await self.app(scope, receive, send_tagged)
