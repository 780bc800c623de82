"""/docs and /redoc work offline: every asset they load is served by the service itself."""

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from app.config import Settings
from app.main import create_app

# Where a page can make the browser fetch something: src/href attributes and url strings in its
# inline script (Swagger UI's `url: '/openapi.json'`, ReDoc's spec-url).
_REFERENCE = re.compile(r"""(?:src|href|spec-url|url)\s*[=:]\s*['"]([^'"]+)['"]""")

ASSETS = {
    "/docs": {
        "/docs/assets/swagger-ui-bundle.js": "text/javascript",
        "/docs/assets/swagger-ui.css": "text/css",
        "/docs/assets/favicon.png": "image/png",
        "/openapi.json": "application/json",
    },
    "/redoc": {
        "/docs/assets/redoc.standalone.js": "text/javascript",
        "/docs/assets/favicon.png": "image/png",
        "/openapi.json": "application/json",
    },
}


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # No lifespan: these pages and files need no database.
    transport = httpx.ASGITransport(app=create_app(Settings()))
    async with httpx.AsyncClient(transport=transport, base_url="http://nps.test") as client:
        yield client


def references(html: str) -> set[str]:
    return set(_REFERENCE.findall(html))


@pytest.mark.parametrize("page", sorted(ASSETS))
async def test_the_page_references_only_the_services_own_assets(
    client: httpx.AsyncClient, page: str
) -> None:
    r = await client.get(page)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert references(r.text) == set(ASSETS[page])
    assert "cdn" not in r.text.lower()
    assert "googleapis" not in r.text
    assert not re.search(r"https?://", r.text), "the page names an outside address"


@pytest.mark.parametrize(
    ("url", "content_type"),
    sorted({url: kind for urls in ASSETS.values() for url, kind in urls.items()}.items()),
)
async def test_each_asset_is_served_with_its_content_type(
    client: httpx.AsyncClient, url: str, content_type: str
) -> None:
    r = await client.get(url)
    assert r.status_code == 200, url
    assert r.headers["content-type"].split(";")[0] == content_type
    assert len(r.content) > 1000, url  # the real file, not an error page


async def test_swagger_ui_asks_no_outside_validator(client: httpx.AsyncClient) -> None:
    # Swagger UI's default validatorUrl would load a badge from the public validator.
    assert '"validatorUrl": null' in (await client.get("/docs")).text


async def test_an_unknown_asset_is_a_problem_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs/assets/nothing.js")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_the_pages_take_what_a_browser_sends_them(client: httpx.AsyncClient) -> None:
    # Only the documented API is strict about query parameters: the OAuth2 redirect page is
    # called with `code` and `state`, and a page link may carry anything.
    for url in ["/docs/oauth2-redirect?code=abc&state=xyz", "/docs?x=1", "/redoc?x=1&x=2"]:
        r = await client.get(url)
        assert r.status_code == 200, (url, r.text)
    assert (await client.get("/healthz?x=1")).status_code == 422


@pytest.mark.parametrize("page", sorted(ASSETS))
async def test_the_page_may_load_only_from_the_service(
    client: httpx.AsyncClient, page: str
) -> None:
    # ReDoc's bundle shows a logo from its vendor's CDN; the policy keeps the browser from asking.
    policy = (await client.get(page)).headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["img-src"] == "'self' data:"
    assert directives["connect-src"] == "'self'"
