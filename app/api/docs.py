"""The API's documents: the OpenAPI schema as client generators read it, and /docs and /redoc
served offline, their JavaScript and CSS from the pinned fastapi-offline package, not a CDN."""

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.api.idempotency import HEADER as IDEMPOTENCY_KEY
from app.api.idempotency import REPLAYED, REPLAYED_HEADER
from app.guard import API_PREFIX, PUBLIC_PREFIX, RATE_LIMIT_DOCS
from app.schemas import Problem, problem_doc

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_URL = "/docs/assets"
DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL = "/docs", "/redoc", "/docs/oauth2-redirect"
# The pages load only what the service serves. ReDoc's bundle shows its vendor's logo from a CDN
# (unconditionally); with this policy the browser never asks for it and ReDoc hides the image.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",  # each page starts its bundle from an inline script
        "style-src 'self' 'unsafe-inline'",  # both render their styles at run time
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",  # ReDoc's search runs in a worker made from a blob
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    )
)


def _confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


def install_docs(app: FastAPI) -> None:
    """/docs and /redoc on local assets (create the app with docs_url=None, redoc_url=None)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    def local(request: Request, path: str) -> str:
        return f"{request.scope.get('root_path', '')}{path}"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=local(request, app.openapi_url or "/openapi.json"),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=local(request, f"{ASSETS_URL}/swagger-ui-bundle.js"),
            swagger_css_url=local(request, f"{ASSETS_URL}/swagger-ui.css"),
            swagger_favicon_url=local(request, f"{ASSETS_URL}/favicon.png"),
            oauth2_redirect_url=local(request, OAUTH2_REDIRECT_URL),
            # No badge fetched from the public validator: the page makes no outside request.
            swagger_ui_parameters={"validatorUrl": None},
        )
        return _confined(page)

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=local(request, app.openapi_url or "/openapi.json"),
            title=f"{app.title} - ReDoc",
            redoc_js_url=local(request, f"{ASSETS_URL}/redoc.standalone.js"),
            redoc_favicon_url=local(request, f"{ASSETS_URL}/favicon.png"),
            with_google_fonts=False,
        )
        return _confined(page)


def complete_openapi(app: FastAPI) -> None:
    """What FastAPI cannot derive from the routes: the Problem schema, which error responses
    reference but no route returns, the Idempotent-Replayed header of idempotent POSTs, and
    the public calls' rate limits (app.guard, a middleware the routes do not know of)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            defs = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(defs.pop("$defs", {}))
            schemas["Problem"] = defs
            spec["components"].setdefault("headers", {}).update(RATE_LIMIT_DOCS)
            for name, path in spec.get("paths", {}).items():
                for operation in path.values():
                    _declare_replay(operation)
                    if name.startswith(PUBLIC_PREFIX):
                        _declare_rate_limits(operation, RATE_LIMITED)
                    elif name.startswith(API_PREFIX):
                        _declare_rate_limits(operation, API_RATE_LIMITED)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _declare_replay(operation: dict[str, Any]) -> None:
    """An operation taking Idempotency-Key may answer any success as a replay."""
    idempotent = any(
        p.get("in") == "header" and p.get("name") == IDEMPOTENCY_KEY
        for p in operation.get("parameters", [])
    )
    if not idempotent:
        return
    for status, response in operation.get("responses", {}).items():
        if status.startswith("2"):
            response.setdefault("headers", {})[REPLAYED] = REPLAYED_HEADER


RATE_LIMIT_HEADERS = {name: {"$ref": f"#/components/headers/{name}"} for name in RATE_LIMIT_DOCS}
RATE_LIMITED = problem_doc(
    "Too many requests from this address or with this token: retry after `Retry-After` "
    "seconds; `violated-policies` names the quotas exceeded",
    retry_after=True,
    headers=RATE_LIMIT_HEADERS,
)

# The rest of /v1 (app.guard's API zone): per key and per address, and wrong keys per address.
API_RATE_LIMITED = problem_doc(
    "Too many requests with this API key or from this address (or too many look-ups of keys "
    "not known to work from it): retry after `Retry-After` seconds; `violated-policies` names "
    "the quotas exceeded",
    retry_after=True,
    headers=RATE_LIMIT_HEADERS,
)


def _declare_rate_limits(operation: dict[str, Any], refused: dict[str, Any]) -> None:
    """A call under a rate limit may be refused with 429, and every answer says what is left
    of its quotas (when the limits are on)."""
    responses = operation.setdefault("responses", {})
    for response in responses.values():
        response.setdefault("headers", {}).update(RATE_LIMIT_HEADERS)
    responses["429"] = refused
