"""HTTP semantics in front of the router: which methods a path has, and which query parameters
an endpoint takes.

Starlette picks the first route whose path matches and, when none has the method, answers 405
with that one route's methods; a route whose path parameter fails validation (a uuid, an id
pattern) still matches, so another method's request becomes its 422. And FastAPI ignores a
query parameter nobody declared, so a typo silently widens a query. This gate, a pure ASGI
middleware built from the app's own routes, answers before the router does:

- a path is the union of every route whose path matches and whose path parameters are valid
  (else every route whose path matches): a method none of them has is 405 with an `Allow`
  header listing them all, never 404 or 422;
- HEAD is served wherever GET is (the GET answer without its body; the handler can tell by
  `sent_method`), OPTIONS everywhere (204 with `Allow`);
- a query parameter that the chosen route does not declare, directly or through any nested
  dependency, is a 422 naming it (with the closest known name when one is close), and so is a
  single-valued parameter given more than once.

These are checks of the request's shape, like 404 and 405, so they come before authentication.
"""

import difflib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from re import Match, Pattern
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi._compat import ModelField, field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import _get_flat_fields_from_params
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ProblemError, Unprocessable, field_error, problem_response, quoted

# Where the gate keeps the method the client sent when it serves a HEAD as a GET, so a handler
# can leave out what only a real GET should do (app.api.deps.HeadRequest).
SENT_METHOD = "nps.sent_method"
# Where the gate leaves the route the router will pick (a `_Route`: see `declares`).
CHOSEN_ROUTE = "nps.route"


def declares(scope: Scope, call: Any) -> bool:
    """Whether the route the router will pick for this request declares the dependency `call`
    (for a middleware behind the gate; False before the gate or for a path no route has)."""
    route: _Route | None = scope.get(CHOSEN_ROUTE)
    return route is not None and call in route.calls


def sent_method(scope: Scope) -> str:
    """The request's method as the client sent it (HEAD, where the route sees GET)."""
    method: str = scope.get(SENT_METHOD, scope["method"])
    return method


class MethodNotAllowed(ProblemError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


@dataclass(frozen=True, slots=True)
class _Route:
    label: str  # "GET /v1/nps", for messages
    regex: Pattern[str]
    methods: frozenset[str]
    path_params: tuple[ModelField, ...]
    # Declared query parameters by name: True when it takes several values (a list).
    query: Mapping[str, bool] | None  # None: not an API route, its parameters are not checked
    # Every dependency the route declares, nested ones too (a marker such as
    # app.api.report_tags.REVALIDATE tells the middleware behind the gate what the route is).
    calls: frozenset[Any] = frozenset()

    def params_valid(self, match: Match[str]) -> bool:
        values = match.groupdict()
        for field in self.path_params:
            _, errors = field.validate(values.get(field.alias), {}, loc=("path", field.alias))
            if errors:
                return False
        return True


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _route_table(app: FastAPI) -> list[_Route]:
    table = []
    for context in iter_route_contexts(app.routes):
        regex = getattr(context, "path_regex", None)
        methods = context.methods
        if regex is None or not methods:  # mounts, websockets
            continue
        label = f"{'/'.join(sorted(methods - {'HEAD'}))} {context.path}"
        route = context.original_route
        # Only the documented contract is strict: /docs, /redoc and the OAuth2 redirect page
        # (which receives `code` and `state`) take what a browser sends them.
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            table.append(_Route(label, regex, frozenset(methods), (), None))
            continue
        query: dict[str, bool] = {}
        path_params: list[ModelField] = []
        calls = set()
        for dependant in _dependants(context.dependant):
            calls.add(dependant.call)
            path_params.extend(dependant.path_params)
            # Flattened as FastAPI reads them: a query model (Annotated[Model, Query()]) is its
            # fields.
            for field in _get_flat_fields_from_params(dependant.query_params):
                query[field.alias] = field_annotation_is_sequence(field.field_info.annotation)
        table.append(
            _Route(label, regex, frozenset(methods), tuple(path_params), query, frozenset(calls))
        )
    return table


# Paths whose routes are remembered at once (ids make many paths; the hot ones come back).
_PATHS_KEPT = 4096


def _allowed(routes: Iterable[_Route]) -> frozenset[str]:
    methods = set().union(*(r.methods for r in routes))
    if "GET" in methods:
        methods.add("HEAD")
    return frozenset(methods | {"OPTIONS"})


def route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class RouteGate:
    """405/Allow, HEAD and OPTIONS for every path, and strict query parameters (module doc).

    `hints`: a sentence for a parameter name that some endpoints refuse on purpose.
    """

    def __init__(self, app: ASGIApp, api: FastAPI, hints: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.api = api
        self.hints = dict(hints or {})
        self._table: list[_Route] | None = None
        self._takers: dict[str, list[str]] = {}
        self._paths: dict[str, tuple[list[_Route], list[_Route]]] = {}

    def table(self) -> list[_Route]:
        # Built on the first request, when every router is included.
        if self._table is None:
            table = _route_table(self.api)
            takers: dict[str, list[str]] = {}
            for route in table:
                for name in route.query or {}:
                    takers.setdefault(name, []).append(route.label)
            self._table, self._takers = table, takers
        return self._table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        matching, routes = self._routes_of(route_path(scope))
        if not matching:  # 404, or a redirect to the path with(out) its trailing slash
            await self.app(scope, receive, send)
            return
        allowed = _allowed(routes)
        method: str = scope["method"]
        served = set().union(*(r.methods for r in routes))
        if method not in allowed:
            error = MethodNotAllowed(
                f"{method} is not a method of this path; it allows {', '.join(sorted(allowed))}",
                headers={"Allow": ", ".join(sorted(allowed))},
            )
            await problem_response(error)(scope, receive, send)
            return
        if method == "OPTIONS" and method not in served:
            await self._options(allowed, send)
            return
        head = method == "HEAD" and method not in served
        wanted = "GET" if head else method
        # The route the router picks: the first whose path matches and that has the method.
        chosen = next(r for r in matching if wanted in r.methods)
        problems = self._query_problems(chosen, scope.get("query_string", b"").decode("latin-1"))
        if problems:
            where = ".".join(str(p) for p in problems[0]["loc"])
            detail = f"{len(problems)} invalid query parameter(s); first: {where}: "
            await problem_response(Unprocessable(detail + problems[0]["msg"], errors=problems))(
                scope, receive, send
            )
            return
        scope[CHOSEN_ROUTE] = chosen
        if head:
            await self.app(
                {**scope, "method": "GET", SENT_METHOD: "HEAD"}, receive, _without_body(send)
            )
            return
        await self.app(scope, receive, send)

    def _routes_of(self, path: str) -> tuple[list[_Route], list[_Route]]:
        """The routes whose path matches, and those of them whose path parameters are valid
        (all of them when none is). Remembered per path: the same paths come again and again,
        and trying every route's pattern and parameters was a few percent of a request."""
        known = self._paths.get(path)
        if known is None:
            found = [(r, m) for r in self.table() if (m := r.regex.match(path))]
            matching = [r for r, _ in found]
            known = (matching, [r for r, m in found if r.params_valid(m)] or matching)
            if len(self._paths) >= _PATHS_KEPT:
                self._paths.clear()
            self._paths[path] = known
        return known

    def _query_problems(self, route: _Route, query_string: str) -> list[dict[str, Any]]:
        if route.query is None:
            return []
        counts = Counter(name for name, _ in parse_qsl(query_string, keep_blank_values=True))
        problems = []
        for name, count in counts.items():
            if name not in route.query:
                problems.append(field_error(["query", name], self._unknown(route, name)))
            elif count > 1 and not route.query[name]:
                msg = f"given {count} times; this parameter takes one value"
                problems.append(field_error(["query", name], msg))
        return problems

    def _unknown(self, route: _Route, name: str) -> str:
        name = quoted(name)
        msg = f"unknown parameter: {route.label} does not take `{name}`"
        assert route.query is not None
        known = list(route.query)
        lowered = {k.lower(): k for k in known}
        close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)
        if close:
            return f"{msg}; did you mean `{lowered[close[0]]}`?"
        if name in self.hints:
            return f"{msg}: {self.hints[name]}"
        takers = self._takers.get(name)
        if takers:
            more = f" and {len(takers) - 3} more" if len(takers) > 3 else ""
            return f"{msg}; it is a parameter of {', '.join(takers[:3])}{more}"
        if not known:
            return f"{msg}; it takes no query parameters"
        return f"{msg}; it takes {', '.join(f'`{k}`' for k in sorted(known))}"

    @staticmethod
    async def _options(allowed: frozenset[str], send: Send) -> None:
        headers = [(b"allow", ", ".join(sorted(allowed)).encode()), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _without_body(send: Send) -> Send:
    """HEAD: the GET answer's status and headers (its Content-Length included), no body."""

    async def head_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return head_send
