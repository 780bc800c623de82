"""The built-in dashboard: `GET /` and `GET /dashboard`, read-only, served by the service itself.

One static page and its two files (app/pages/static/dashboard.*): no build step, no template, no
external asset, no inline script or style. The page asks for a read key, keeps it in
sessionStorage and sends it as `Authorization: Bearer` to the API on the same origin (no
cookie is ever set), and polls the score reports with `If-None-Match` (app.api.report_tags).

The page's answers carry a strict policy of their own (the API's SecurityHeaders keeps a header
an answer set): script and style from this origin only, fetches to this origin only, never
framed. The page holds no data: what it shows comes from the API, which keeps problem+json.
"""

from collections.abc import Awaitable, Callable, Mapping
from functools import cache

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from app.pages.assets import STATIC, asset, asset_response

DASHBOARD_PATHS = ("/", "/dashboard")
ASSETS = ("dashboard.js", "dashboard.css")
ASSET_PREFIX = "/dashboard/"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",  # the API, same origin
        "form-action 'none'",  # the key form is handled by the script, never submitted
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
DASHBOARD_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


@cache
def _page() -> bytes:
    return (STATIC / "dashboard.html").read_bytes()


async def dashboard_page(request: Request) -> Response:
    """The page (never stored: it is small, and a release must reach it at once)."""
    return Response(
        _page(),
        media_type="text/html; charset=utf-8",
        headers={**DASHBOARD_HEADERS, "Cache-Control": "no-store"},
    )


def _asset_route(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        found = asset(name)
        assert found is not None, f"app/pages/static/{name} is part of the package"
        return asset_response(request, found, headers=dict(DASHBOARD_HEADERS))

    return serve


def install_dashboard(api: FastAPI) -> None:
    """GET / and /dashboard (the page), /dashboard/dashboard.js and .css (its files)."""
    for path in DASHBOARD_PATHS:
        api.add_route(path, dashboard_page, methods=["GET"], include_in_schema=False)
    for name in ASSETS:
        api.add_route(
            ASSET_PREFIX + name, _asset_route(name), methods=["GET"], include_in_schema=False
        )
