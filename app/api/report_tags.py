"""ETags, 304s and a bounded cache for the score and analytics reports: one mechanism.

A tagged GET declares `dependencies=[REVALIDATE]` (a marker) and `responses=TAGGED_DOCS`.
`ReportTags`, a pure ASGI middleware in front of the router, answers for it: it authenticates
the caller (an API key with the read scope; anyone else goes on to the route, which gives the
401 or 403) and computes the report's strong tag from what its body is a function of: the
caller's workspace, the workspace's data version (app.services.data_versions: every write a
score reads bumps it), the settings as stored, the path, the query canonicalised, and, without
`to`, the default end of the window (the end of the current minute: the tag moves with it).
Then, before any of the framework's routing, dependencies or the report's statements:

- `If-None-Match` naming the tag: 304 with the tag, no body;
- the tag's body in this process's cache: that body, byte for byte;
- else the route runs, and the middleware adds the tag and `Cache-Control: private, no-cache`
  to its 200 and keeps the body for the next identical query.

A revalidation takes no read slot (app.db.ReadSlots): it is two short statements in one
transaction, and a poll that finds nothing changed must not queue behind the reports.

The version is read before the report's own statements, on the database the report reads (the
replica when one is configured): under READ COMMITTED each statement has its own snapshot, so
the body is at least as new as its tag; a write that lands in between changes the version, and
the next poll gets a new tag and a fresh body, never an old body under a new tag. The route's
window is defaulted from the instant the tag was (REQUEST_INSTANT), so a minute's end between
the two cannot tell them apart.
"""

import hashlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, FastAPI, Header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.score_params import REQUEST_INSTANT, instant
from app.canonical import canonical_json
from app.db import in_workspace, session_scope, sessionmakers_of
from app.errors import infrastructure_problem, problem_response
from app.etags import if_none_match_hits
from app.guard import api_key_credential
from app.local_limits import FLUSH_SCOPE_KEY
from app.models import Scope as KeyScope
from app.routing import declares, route_path
from app.services.data_versions import report_state
from app.services.keys import authenticate, granted
from app.services.selection import default_end

CACHE_CONTROL = "private, no-cache"
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


def canonical_query(scope: Scope) -> list[list[str]]:
    """The query's parameters sorted by name; a repeated one keeps its values' order."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return [[k, v] for k, v in sorted(pairs, key=lambda kv: kv[0])]


IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        description="the ETag of the report held: 304 without a body while it is still current",
    ),
]


async def revalidate(if_none_match: IfNoneMatch = None) -> None:
    """Marks a route as a tagged report, which ReportTags answers for (the module's doc); the
    parameter documents the header."""


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


class ReportTags:
    """Answers a tagged report's revalidation, or its cached body, before the router; else adds
    the tag to the route's 200 and keeps its body in the cache (the module's doc). Behind the
    RouteGate, which has chosen the route and checked the query's names."""

    def __init__(self, app: ASGIApp, *, cache_of: FastAPI) -> None:
        self.app = app
        self.api = cache_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not declares(scope, revalidate):
            await self.app(scope, receive, send)
            return
        try:
            tagged = await self._tag(scope)
        except Exception as exc:
            problem = infrastructure_problem(exc)
            if problem is None:
                raise
            await problem_response(problem)(scope, receive, send)
            return
        if tagged is None:  # not a reader's API key: the route answers (401, 403)
            await self.app(scope, receive, send)
            return
        headers = [(b"etag", tagged.etag.encode()), (b"cache-control", CACHE_CONTROL.encode())]
        if if_none_match_hits(_header(scope, b"if-none-match"), tagged.etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        cache: ReportCache = self.api.state.report_cache
        body = cache.get(tagged.workspace_id, tagged.etag)
        if body is not None:
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, _tagging(tagged, headers, cache, send))

    async def _tag(self, scope: Scope) -> Tagged | None:
        raw = api_key_credential(scope)
        if raw is None:
            return None
        now = instant()
        scope[REQUEST_INSTANT] = now
        primary, replica = sessionmakers_of(self.api, scope)
        # The guard's rate-limit counts ride on this authentication; the route's, if it runs,
        # must not add them again.
        flush = scope.pop(FLUSH_SCOPE_KEY, None)
        async with session_scope(primary) as session:
            key = await authenticate(session, raw, now=now, flush=flush)
            if key is None or KeyScope.READ not in granted(key.scopes):
                return None
            if replica is None:
                version, settings = await report_state(session, key.workspace_id)
        if replica is not None:
            async with session_scope(replica) as session:
                await in_workspace(session, key.workspace_id)
                version, settings = await report_state(session, key.workspace_id)
        query = canonical_query(scope)
        etag = report_etag(
            workspace_id=key.workspace_id,
            version=version,
            settings=settings,
            path=route_path(scope),
            query=query,
            default_end=None if any(k == "to" for k, _ in query) else default_end(now).isoformat(),
        )
        return Tagged(key.workspace_id, etag)


def _header(scope: Scope, name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope["headers"] if k == name]
    return ", ".join(values) if values else None


def _tagging(
    tagged: Tagged, tag_headers: list[tuple[bytes, bytes]], cache: ReportCache, send: Send
) -> Send:
    """The route's answer: its 200 tagged, and its body kept."""
    status = 0
    chunks: list[bytes] = []

    async def send_tagged(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            if status == 200:
                message = {**message, "headers": [*message.get("headers", ()), *tag_headers]}
        elif message["type"] == "http.response.body" and status == 200:
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                cache.put(tagged.workspace_id, tagged.etag, b"".join(chunks))
        await send(message)

    return send_tagged
