"""The idempotent POSTs (the answer paths among them) resolve their caller, session and
Idempotency-Key in one dependency: FastAPI solves every dependency of a request again, a cached
one's own dependencies included, and POST /v1/responses had declared 13 of them."""

from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from app.api.idempotency import HEADER
from app.config import Settings
from app.main import create_app


def _nodes(dependant: Dependant) -> list[Dependant]:
    """Every dependency FastAPI solves for a request, repeats included."""
    found: list[Dependant] = []
    for sub in dependant.dependencies:
        found.append(sub)
        found.extend(_nodes(sub))
    return found


def _idempotent_routes() -> list[Any]:
    app = create_app(Settings())
    routes = []
    for route in iter_route_contexts(app.routes):
        if getattr(route, "dependant", None) is None:
            continue
        headers = [p.alias for node in _nodes(route.dependant) for p in node.header_params]
        if HEADER in headers:
            routes.append(route)
    return routes


def test_every_idempotent_post_solves_its_caller_in_one_dependency() -> None:
    routes = _idempotent_routes()
    paths = {f"{sorted(r.methods or ())[0]} {r.path}" for r in routes}
    assert {"POST /v1/responses", "POST /v1/public/answers", "POST /v1/api-keys"} <= paths
    assert len(routes) >= 13
    for route in routes:
        nodes = _nodes(route.dependant)
        calls: list[Any] = [node.call for node in nodes]
        names = [getattr(c, "__name__", type(c).__name__) for c in calls]
        # the call, the bearer scheme it declares for the OpenAPI document, and at most the
        # process's settings (get_app_settings, an attribute read)
        assert names[:2] == ["idempotent_call", "HTTPBearer"], (route.path, names)
        assert names[2:] in ([], ["get_app_settings"]), (route.path, names)
