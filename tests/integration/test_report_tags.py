"""ETags, 304s and the report cache of the score and analytics GETs (app.api.report_tags)."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.api.report_tags import CACHE_CONTROL, ReportCache, revalidate
from app.db import ReadSlots, in_workspace, session_scope
from app.models import Scope as KeyScope
from app.services.data_versions import data_version
from tests.support.api import put_account, put_stakeholder, respond, set_excluded
from tests.support.harness import Tenant, as_service, build_app, client_for, new_tenant

# Every score and analytics GET: each sends a tag and answers 304 to it.
TAGGED = {
    "/v1/nps",
    "/v1/nps/trend",
    "/v1/nps/compare",
    "/v1/accounts/{account_id}/nps",
    "/v1/accounts/{account_id}/movements",
    "/v1/accounts/at-risk",
    "/v1/coverage",
    "/v1/movements",
    "/v1/drivers",
    "/v1/perception-gap",
    "/v1/themes",
    "/v1/themes/suggested",
}
# Reads that are not tagged, and why: a tag would be wrong or pointless for them.
UNTAGGED = {
    # Count invitations under their status *now*: an open one past expires_at reads as expired
    # without any write, so no data version can say when the answer changed.
    "/v1/response-rates": "now",
    "/v1/accounts/{account_id}/coverage": "now",
    # Rows and lists, not reports: each has its own sync (updated_since, cursors).
    "/v1/accounts": "list",
    "/v1/accounts/{account_id}": "row",
    "/v1/stakeholders": "list",
    "/v1/stakeholders/{stakeholder_id}": "row",
    "/v1/responses": "list",
    "/v1/responses/{response_id}": "row",
    "/v1/responses/{response_id}/revisions": "list",
    "/v1/deletions": "list",
    "/v1/surveys": "list",
    "/v1/surveys/{survey_id}": "row",
    "/v1/invitations": "list",
    "/v1/invitations/{invitation_id}": "row",
    "/v1/api-keys": "list",
    "/v1/cases": "list",
    "/v1/cases/{case_id}": "row",
    "/v1/cases/metrics": "cases' own clock (open ages, now)",
    "/v1/webhooks": "list",
    "/v1/webhooks/{webhook_id}": "row",
    "/v1/webhooks/{webhook_id}/deliveries": "list",
    "/v1/settings": "tagged by its own ETag (app.api.settings)",
    "/v1/workspace": "row",
    "/v1/accounts/{account_id}/predictions/{author}": "list (a prediction's versions)",
    # Files streamed page by page while they are read, never held whole to be cached.
    "/v1/exports/responses": "a streamed file",
    "/v1/exports/accounts": "a streamed file",
    "/v1/exports/responses/metadata": "describes a streamed file (generated-at: now)",
    "/v1/exports/accounts/metadata": "describes a streamed file (generated-at: now)",
    # A job's progress, and its rejected rows: what a poller wants fresh, no report.
    "/v1/imports/{import_id}": "row",
    "/v1/imports/{import_id}/errors": "list",
}
WINDOW = {"from": "2026-01-01T00:00:00Z", "to": "2026-07-01T00:00:00Z"}
IN_WINDOW = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass
class Rig:
    app: FastAPI
    a: Tenant
    b: Tenant
    sessionmaker: async_sessionmaker[AsyncSession]

    async def version(self, tenant: Tenant) -> int:
        async with session_scope(self.sessionmaker) as session:
            await in_workspace(session, tenant.id)
            return await data_version(session, tenant.id)


@pytest_asyncio.fixture(loop_scope="session")
async def rig(
    sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> AsyncIterator[Rig]:
    app = build_app(sessionmaker, engine)
    a = await new_tenant(sessionmaker, app, "tags-a")
    b = await new_tenant(sessionmaker, app, "tags-b")
    yield Rig(app, a, b, as_service(sessionmaker))
    await a.client.aclose()
    await b.client.aclose()


async def _seed(tenant: Tenant, score: int = 10) -> str:
    await put_account(tenant.client, "acme")
    await put_stakeholder(tenant.client, "dana", "acme", role="decision_maker")
    return await respond(tenant.client, "dana", score, IN_WINDOW)


def _concrete(path: str) -> str:
    return path.replace("{account_id}", "acme")


async def _get(tenant: Tenant, path: str, **headers: str) -> httpx.Response:
    return await tenant.client.get(_concrete(path), params=WINDOW, headers=headers)


def _boom(*_: Any, **__: Any) -> Any:
    raise AssertionError("the report ran")


class TestWhichRoutes:
    def test_every_read_is_tagged_or_says_why_not(self, rig: Rig) -> None:
        gets = {
            context.path: context
            for context in iter_route_contexts(rig.app.routes)
            if isinstance(context.original_route, APIRoute)
            and "GET" in (context.methods or ())
            and (context.path or "").startswith("/v1/")
            and not (context.path or "").startswith("/v1/public/")
        }
        tagged = {
            path
            for path, context in gets.items()
            if any(d.call is revalidate for d in context.dependant.dependencies)
        }
        assert tagged == TAGGED
        assert set(gets) - TAGGED == set(UNTAGGED)


class TestRevalidation:
    @pytest.mark.parametrize("path", sorted(TAGGED))
    async def test_a_current_tag_is_304_with_no_body(self, rig: Rig, path: str) -> None:
        await _seed(rig.a)
        first = await _get(rig.a, path)
        assert first.status_code == 200, first.text
        tag = first.headers["etag"]
        assert tag.startswith('"')
        assert not tag.startswith("W/")
        assert first.headers["cache-control"] == CACHE_CONTROL

        again = await _get(rig.a, path, **{"If-None-Match": tag})

        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == tag
        assert again.headers["cache-control"] == CACHE_CONTROL

    async def test_a_304_does_not_run_the_report(
        self, rig: Rig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await _seed(rig.a)
        tag = (await _get(rig.a, "/v1/nps")).headers["etag"]
        monkeypatch.setattr("app.api.nps.count", _boom)

        r = await _get(rig.a, "/v1/nps", **{"If-None-Match": f'"other", {tag}'})

        assert r.status_code == 304

    async def test_a_stale_or_weak_or_unknown_tag_gets_the_report(self, rig: Rig) -> None:
        await _seed(rig.a)
        tag = (await _get(rig.a, "/v1/nps")).headers["etag"]
        assert (await _get(rig.a, "/v1/nps", **{"If-None-Match": f"W/{tag}"})).status_code == 304
        assert (await _get(rig.a, "/v1/nps", **{"If-None-Match": '"nope"'})).status_code == 200

    async def test_the_query_is_canonical(self, rig: Rig) -> None:
        await _seed(rig.a)
        one = await rig.a.client.get(
            "/v1/nps?group_by=role&from=2026-01-01T00:00:00Z&to=2026-07-01T00:00:00Z"
        )
        two = await rig.a.client.get(
            "/v1/nps?to=2026-07-01T00:00:00Z&group_by=role&from=2026-01-01T00:00:00Z"
        )
        other = await rig.a.client.get("/v1/nps?to=2026-07-01T00:00:00Z&from=2026-01-01T00:00:00Z")
        assert one.headers["etag"] == two.headers["etag"] != other.headers["etag"]

    async def test_the_default_window_moving_changes_the_tag(
        self, rig: Rig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await _seed(rig.a)
        tags = []
        for now in ("2026-03-01T10:00:05", "2026-03-01T10:00:55", "2026-03-01T10:01:05"):
            instant = datetime.fromisoformat(now).replace(tzinfo=UTC)
            monkeypatch.setattr("app.api.score_params.utcnow", lambda i=instant: i)
            tags.append((await rig.a.client.get("/v1/nps")).headers["etag"])
        assert tags[0] == tags[1] != tags[2]

    async def test_a_window_with_its_end_named_keeps_its_tag_when_the_minute_moves(
        self, rig: Rig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await _seed(rig.a)
        tags = set()
        for now in ("2026-08-01T10:00:05", "2026-08-01T10:01:05", "2026-08-02T10:01:05"):
            instant = datetime.fromisoformat(now).replace(tzinfo=UTC)
            monkeypatch.setattr("app.api.score_params.utcnow", lambda i=instant: i)
            r = await rig.a.client.get("/v1/nps", params={"to": WINDOW["to"]})
            tags.add(r.headers["etag"])
        assert len(tags) == 1

    async def test_a_304_takes_no_read_slot(self, rig: Rig) -> None:
        """Revalidating is two short statements: it must not queue behind the reports."""
        await _seed(rig.a)
        tag = (await _get(rig.a, "/v1/nps")).headers["etag"]
        slots: ReadSlots = rig.app.state.read_slots
        async with AsyncExitStack() as held:
            for _ in range(slots.slots):
                await held.enter_async_context(slots.turn())
            r = await _get(rig.a, "/v1/nps", **{"If-None-Match": tag})
            assert r.status_code == 304
            cached = await _get(rig.a, "/v1/nps")  # the kept body needs no slot either
            assert cached.status_code == 200
            assert cached.headers["etag"] == tag

    async def test_only_a_reader_s_key_gets_a_304(self, rig: Rig) -> None:
        """The tag is the workspace's: a bad key, no key and an invitation token get the route's
        own answer, never the 304 or the kept body (every key of the workspace reads: write and
        admin imply read)."""
        await _seed(rig.a)
        tag = (await _get(rig.a, "/v1/nps")).headers["etag"]
        writer = await rig.a.make_key(KeyScope.WRITE)
        async with client_for(rig.app, writer) as other_key:
            r = await other_key.get("/v1/nps", params=WINDOW, headers={"If-None-Match": tag})
            assert r.status_code == 304
        expected = {
            f"Bearer {rig.a.admin_key}x": 401,
            "Bearer npsi_" + "A" * 43: 401,
            "": 401,
        }
        for authorization, status in expected.items():
            async with client_for(rig.app) as anonymous:
                headers = {"If-None-Match": tag}
                if authorization:
                    headers["Authorization"] = authorization
                for _ in range(2):  # the first would have kept a body for the second
                    r = await anonymous.get("/v1/nps", params=WINDOW, headers=headers)
                    assert r.status_code == status, authorization
                    assert "etag" not in r.headers
                    assert r.headers["content-type"] == "application/problem+json"

    async def test_head_revalidates_too(self, rig: Rig) -> None:
        await _seed(rig.a)
        tag = (await _get(rig.a, "/v1/nps")).headers["etag"]
        r = await rig.a.client.head("/v1/nps", params=WINDOW, headers={"If-None-Match": tag})
        assert (r.status_code, r.headers["etag"], r.content) == (304, tag, b"")

    async def test_a_bad_query_is_still_its_problem(self, rig: Rig) -> None:
        r = await rig.a.client.get("/v1/nps", params={"from": WINDOW["to"], "to": WINDOW["from"]})
        assert r.status_code == 422
        assert "etag" not in r.headers
        r = await rig.a.client.get("/v1/accounts/nope/nps", params=WINDOW)
        assert r.status_code == 404
        assert "etag" not in r.headers


Write = Callable[[Tenant, str], Awaitable[httpx.Response]]


async def _patch(tenant: Tenant, path: str, body: dict[str, Any]) -> httpx.Response:
    return await tenant.client.patch(path, json=body)


WRITES: dict[str, Write] = {
    "answer": lambda t, _: t.client.post(
        "/v1/responses",
        json={"stakeholder_id": "dana", "score": 3, "submitted_at": "2026-03-02T00:00:00Z"},
    ),
    "answer batch": lambda t, _: t.client.post(
        "/v1/responses/batch",
        json={
            "responses": [
                {"stakeholder_id": "dana", "score": 5, "submitted_at": "2026-03-03T00:00:00Z"}
            ]
        },
    ),
    "correct": lambda t, rid: _patch(t, f"/v1/responses/{rid}", {"score": 4}),
    "exclude": lambda t, rid: _patch(t, f"/v1/responses/{rid}", {"excluded": True, "reason": "x"}),
    "account": lambda t, _: t.client.put("/v1/accounts/acme", json={"name": "Acme 2"}),
    "account batch": lambda t, _: t.client.post(
        "/v1/accounts/batch", json={"accounts": [{"id": "acme", "name": "Acme 3"}]}
    ),
    "stakeholder": lambda t, _: t.client.put(
        "/v1/stakeholders/dana", json={"account_id": "acme", "role": "user"}
    ),
    "stakeholder batch": lambda t, _: t.client.post(
        "/v1/stakeholders/batch",
        json={"stakeholders": [{"id": "dana", "account_id": "acme", "role": "influencer"}]},
    ),
    "settings": lambda t, _: t.client.put("/v1/settings", json={"min_n": 3}),
    "settings patch": lambda t, _: t.client.patch(
        "/v1/settings", json={"low_n": 10}, headers={"Content-Type": "application/merge-patch+json"}
    ),
    "delete stakeholder": lambda t, _: t.client.delete("/v1/stakeholders/dana"),
    "delete account": lambda t, _: t.client.delete("/v1/accounts/acme"),
}
READS = (
    "/v1/nps",
    "/v1/responses",
    "/v1/accounts",
    "/v1/nps/trend",
    "/v1/settings",
    "/v1/stakeholders",
)


class TestDataVersion:
    @pytest.mark.parametrize("write", sorted(WRITES))
    async def test_each_write_a_score_reads_bumps_it(self, rig: Rig, write: str) -> None:
        response_id = await _seed(rig.a)
        before = await rig.version(rig.a)
        tag = (await _get(rig.a, "/v1/nps")).headers["etag"]

        r = await WRITES[write](rig.a, response_id)

        assert r.status_code < 300, r.text
        assert await rig.version(rig.a) > before
        assert (await _get(rig.a, "/v1/nps", **{"If-None-Match": tag})).status_code == 200

    async def test_including_again_bumps_it(self, rig: Rig) -> None:
        response_id = await _seed(rig.a)
        await set_excluded(rig.a.client, response_id)
        before = await rig.version(rig.a)
        await set_excluded(rig.a.client, response_id, excluded=False)
        assert await rig.version(rig.a) > before

    async def test_reads_do_not(self, rig: Rig) -> None:
        await _seed(rig.a)
        before = await rig.version(rig.a)
        for path in READS:
            assert (await rig.a.client.get(path)).status_code == 200, path
        assert await rig.version(rig.a) == before

    async def test_another_workspace_s_writes_do_not(self, rig: Rig) -> None:
        await _seed(rig.a)
        before = await rig.version(rig.a)
        await _seed(rig.b)
        assert await rig.version(rig.a) == before
        assert await rig.version(rig.b) > 0

    async def test_another_workspace_s_shards_are_not_visible(self, rig: Rig) -> None:
        await _seed(rig.a)
        async with session_scope(rig.sessionmaker) as session:
            await in_workspace(session, rig.b.id)
            # Under row-level security as the service: B's transaction sees none of A's rows.
            assert await data_version(session, rig.a.id) == 0
        assert await rig.version(rig.a) > 0


class TestCache:
    async def test_a_cached_body_is_what_a_fresh_computation_gives(
        self, rig: Rig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await _seed(rig.a)
        fresh = await _get(rig.a, "/v1/nps")
        monkeypatch.setattr("app.api.nps.count", _boom)  # only the cache can answer now

        cached = await _get(rig.a, "/v1/nps")

        assert cached.status_code == 200
        assert cached.content == fresh.content
        assert cached.headers["etag"] == fresh.headers["etag"]
        assert cached.headers["content-type"] == fresh.headers["content-type"]
        monkeypatch.undo()
        rig.app.state.report_cache = ReportCache(8)
        assert (await _get(rig.a, "/v1/nps")).content == fresh.content

    async def test_after_a_write_the_tag_changes_and_the_body_is_fresh(self, rig: Rig) -> None:
        await _seed(rig.a)  # one promoter
        first = await _get(rig.a, "/v1/nps")
        await respond(rig.a.client, "dana", 0, datetime(2026, 3, 5, tzinfo=UTC))

        second = await _get(rig.a, "/v1/nps")

        assert second.headers["etag"] != first.headers["etag"]
        # latest_per_stakeholder (the default): dana's latest answer, a detractor, counts alone.
        score = second.json()["score"]
        assert (score["n"], score["promoters"], score["detractors"]) == (1, 0, 1)
        assert first.json()["score"]["promoters"] == 1

    async def test_workspace_b_never_gets_a_s_body_or_304(self, rig: Rig) -> None:
        await _seed(rig.a, score=10)
        await _seed(rig.b, score=0)
        from_a = await _get(rig.a, "/v1/nps")

        from_b = await _get(rig.b, "/v1/nps", **{"If-None-Match": from_a.headers["etag"]})

        assert from_b.status_code == 200
        assert from_b.headers["etag"] != from_a.headers["etag"]
        assert from_b.json()["score"]["detractors"] == 1
        assert from_b.json()["score"]["promoters"] == 0

    async def test_disabled_it_keeps_nothing(
        self, rig: Rig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        rig.app.state.report_cache = ReportCache(0)
        await _seed(rig.a)
        await _get(rig.a, "/v1/nps")
        assert len(rig.app.state.report_cache) == 0
