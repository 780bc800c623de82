"""The built-in dashboard's answers (app.pages.dashboard): the page and its two files, under a
strict policy of their own (script and style from the service only, no inline code, fetches to
the same origin), never stored or framed; the API beside them keeps its JSON and problem+json."""

import re

import pytest

from app.pages.dashboard import ASSET_PREFIX, DASHBOARD_PATHS
from tests.support.harness import Tenant

POLICY = {
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
}


def _assert_strict(policy: str) -> None:
    parts = set(policy.split("; "))
    assert parts == POLICY
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy


class TestPage:
    @pytest.mark.parametrize("path", DASHBOARD_PATHS)
    async def test_served_without_a_key_never_stored_or_framed(
        self, tenant: Tenant, path: str
    ) -> None:
        r = await tenant.client.get(path, headers={"Authorization": ""})
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        _assert_strict(r.headers["content-security-policy"])
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "set-cookie" not in r.headers

    async def test_loads_only_its_own_files_and_no_inline_code(self, tenant: Tenant) -> None:
        html = (await tenant.client.get("/")).text
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
        assert scripts == [(' src="/dashboard/dashboard.js" defer', "")]
        assert "<style" not in html
        assert " style=" not in html
        assert re.search(r"\son[a-z]+=", html) is None  # no inline event handler
        for url in re.findall(r'(?:src|href)="([^"#]+)"', html):
            assert url.startswith("/dashboard/"), url

    async def test_head_is_the_get_without_a_body(self, tenant: Tenant) -> None:
        r = await tenant.client.head("/dashboard")
        assert r.status_code == 200
        assert r.content == b""
        _assert_strict(r.headers["content-security-policy"])

    async def test_a_write_is_405_in_problem_json(self, tenant: Tenant) -> None:
        r = await tenant.client.post("/", json={})
        assert r.status_code == 405
        assert r.headers["content-type"] == "application/problem+json"
        assert "GET" in r.headers["allow"]


class TestFiles:
    @pytest.mark.parametrize(
        ("name", "media_type"),
        [
            ("dashboard.js", "text/javascript; charset=utf-8"),
            ("dashboard.css", "text/css; charset=utf-8"),
        ],
    )
    async def test_cached_and_revalidated_by_their_tag(
        self, tenant: Tenant, name: str, media_type: str
    ) -> None:
        r = await tenant.client.get(ASSET_PREFIX + name)
        assert r.status_code == 200
        assert r.headers["content-type"] == media_type
        assert r.headers["cache-control"] == "public, max-age=3600"
        _assert_strict(r.headers["content-security-policy"])
        again = await tenant.client.get(
            ASSET_PREFIX + name, headers={"If-None-Match": r.headers["etag"]}
        )
        assert again.status_code == 304

    async def test_the_script_runs_nothing_from_strings(self, tenant: Tenant) -> None:
        js = (await tenant.client.get(ASSET_PREFIX + "dashboard.js")).text
        for forbidden in (
            "eval(",
            "new Function",
            "innerHTML",
            "document.write",
            "document.cookie",
        ):
            assert forbidden not in js, forbidden
        assert "sessionStorage" in js
        assert "localStorage" not in js

    async def test_an_unknown_file_is_a_problem_json_404(self, tenant: Tenant) -> None:
        r = await tenant.client.get(ASSET_PREFIX + "secrets.js")
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"


class TestTheApiBeside:
    async def test_keeps_its_own_policy_and_problems(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/nps", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
