"""The service's HTML surfaces: the hosted survey page under `/s`, the embeddable
`/widget.js` and the built-in dashboard at `/` (app.pages.dashboard).

The page is a mounted sub-app (no OpenAPI) with its own error handler (errors are HTML pages
there; the API keeps problem+json) and security headers. It reads the API's lifespan state
(the database) like every request does, and shares the API's dependency overrides, so tests
that replace the database for the API replace it for the page too.
"""

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import RateLimited
from app.guard import Zone, token_after
from app.pages import survey
from app.pages.assets import asset, asset_response
from app.pages.dashboard import install_dashboard
from app.pages.rendering import error_page, install_page_errors
from app.pages.security import SecurityHeaders

PAGES_PATH = "/s"
WIDGET_PATH = "/widget.js"
# Embedded by other sites: any page may load it (a page with COEP too); it holds no secret.
WIDGET_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "cross-origin",
}


def create_pages(api: FastAPI) -> FastAPI:
    """The hosted page's app."""
    pages = FastAPI(
        title="Hosted survey page",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    pages.dependency_overrides = api.dependency_overrides  # the same mapping, not a copy
    pages.state.settings = api.state.settings
    install_page_errors(pages)
    pages.include_router(survey.router)
    return pages


async def widget_js(request: Request) -> Response:
    """The widget, cached for an hour and revalidated by its ETag."""
    found = asset("widget.js")
    assert found is not None, "app/pages/static/widget.js is part of the package"
    return asset_response(request, found, headers=WIDGET_HEADERS)


def install_pages(api: FastAPI) -> None:
    """Mount the hosted page at /s, serve /widget.js and the dashboard at / (create the API's
    routes first)."""
    # The headers wrap the whole sub-app: its 500 page comes from its outermost middleware.
    pages = SecurityHeaders(create_pages(api))
    api.mount(PAGES_PATH, pages, name="pages")
    api.add_route(WIDGET_PATH, widget_js, methods=["GET"], include_in_schema=False)
    install_dashboard(api)


def rate_limited_page(error: RateLimited) -> ASGIApp:
    """The guard's 429 on the pages: an HTML page with their security headers, Retry-After and
    the RateLimit fields (the guard answers before the request reaches the mounted app)."""

    async def page(scope: Scope, receive: Receive, send: Send) -> None:
        # As if inside the mount, so the page's links point under /s.
        request = Request({**scope, "root_path": scope.get("root_path", "") + PAGES_PATH})
        await error_page(request, 429, headers=error.headers)(scope, receive, send)

    return SecurityHeaders(page)


# The guard's zone for the pages (app.guard): the token is the path's first segment, no CORS.
PAGES_ZONE = Zone(
    f"{PAGES_PATH}/", token_after(f"{PAGES_PATH}/"), cors=False, refuse=rate_limited_page
)
