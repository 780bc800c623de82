"""What an operator watches: the request id on every answer, and the Prometheus metrics."""

from collections.abc import AsyncIterator

import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_sessionmaker, session_scope
from app.models import Job
from app.observability import POOLS, watch_pool
from tests.support.harness import Tenant

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(tenant: Tenant) -> Samples:
    r = await tenant.client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def requests(samples: Samples, method: str, route: str, status: str) -> float:
    key = (
        "nps_http_requests_total",
        (("method", method), ("route", route), ("status", status)),
    )
    return samples.get(key, 0.0)


@pytest_asyncio.fixture(loop_scope="session")
async def due_job(engine: AsyncEngine) -> AsyncIterator[None]:
    """A queued job whose time has come, committed (the scrape reads the table as it stands)."""
    sessionmaker = create_sessionmaker(engine)
    async with session_scope(sessionmaker) as session:
        job = Job(task="observability.test", payload={})
        session.add(job)
        await session.flush()
        job_id = job.id
    yield
    async with session_scope(sessionmaker) as session:
        await session.execute(delete(Job).where(Job.id == job_id))


class TestRequestId:
    async def test_every_answer_has_a_new_one(self, tenant: Tenant) -> None:
        first = await tenant.client.get("/v1/accounts")
        second = await tenant.client.get("/v1/accounts/nobody")
        health = await tenant.client.get("/healthz")

        ids = [r.headers["x-request-id"] for r in (first, second, health)]
        assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)
        assert len(set(ids)) == 3

    async def test_a_sane_incoming_one_is_kept(self, tenant: Tenant) -> None:
        r = await tenant.client.get("/v1/accounts", headers={"X-Request-Id": "lb-7f3a.9:x_1"})
        assert r.headers["x-request-id"] == "lb-7f3a.9:x_1"

    async def test_an_odd_incoming_one_is_replaced(self, tenant: Tenant) -> None:
        for odd in ("a" * 65, "has space", 'quote"', ""):
            r = await tenant.client.get("/v1/accounts", headers={"X-Request-Id": odd})
            assert r.headers["x-request-id"] != odd
            assert len(r.headers["x-request-id"]) == 16


class TestMetrics:
    async def test_requests_are_counted_by_route_template_and_status(self, tenant: Tenant) -> None:
        before = await scrape(tenant)
        await tenant.client.get("/v1/accounts/acme-secret-id")
        await tenant.client.get("/v1/accounts/another-id")
        await tenant.client.get("/v1/accounts")
        await tenant.client.get("/no/such/path")
        after = await scrape(tenant)

        one = "/v1/accounts/{account_id}"
        assert requests(after, "GET", one, "404") - requests(before, "GET", one, "404") == 2
        assert (
            requests(after, "GET", "/v1/accounts", "200")
            - requests(before, "GET", "/v1/accounts", "200")
            == 1
        )
        assert (
            requests(after, "GET", "unmatched", "404") - requests(before, "GET", "unmatched", "404")
            == 1
        )
        labels = {dict(k[1]).get("route") for k in after}
        assert not any("secret" in (route or "") for route in labels)
        count = ("nps_http_request_duration_seconds_count", (("method", "GET"), ("route", one)))
        assert after[count] - before.get(count, 0) == 2

    async def test_pools_and_jobs_are_reported(
        self, tenant: Tenant, engine: AsyncEngine, due_job: None
    ) -> None:
        watch_pool("test", engine)
        try:
            samples = await scrape(tenant)
        finally:
            POOLS.engines.pop("test")

        names = {name for name, _ in samples}
        assert {
            "nps_db_pool_in_use",
            "nps_db_pool_idle",
            "nps_db_pool_size",
            "nps_db_pool_waiting",
        } <= names
        size = next(v for (n, labels), v in samples.items() if n == "nps_db_pool_size")
        assert size == engine.pool.size()  # type: ignore[attr-defined]
        assert samples["nps_jobs_up", ()] == 1
        assert samples["nps_jobs_due", ()] >= 1
        assert samples["nps_jobs", (("status", "queued"),)] >= 1
