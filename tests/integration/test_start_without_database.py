"""`nps serve` started while its database is down serves at once (/healthz 200, /readyz and the
API 503 with Retry-After) and becomes ready, without a restart, once the database is up."""

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.config import async_database_url
from app.embedded import _package, embedded_postgres
from tests.support.processes import eventually, free_port, started_nps

ADMIN_KEY = "nps_start-later-0123456789abcdefghijklmnopqrstuvwxyz"
PROBLEM_JSON = "application/problem+json"


@contextmanager
def restarted(pgdata: Path) -> Iterator[None]:
    """The stopped server of `pgdata` running again, on the same socket, while the block runs
    (embedded_postgres keeps one server object per directory, which believes it still runs)."""
    package, _ = _package()
    user = package.get_server(pgdata, cleanup_mode=None).system_user
    start = ["-w", "-o", '-h ""', "-o", f"-k {pgdata}", "-l", str(pgdata / "restart.log"), "start"]
    package.pg_ctl(start, pgdata=pgdata, user=user)
    try:
        yield
    finally:
        package.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


@pytest.fixture
def pgdata() -> Iterator[Path]:
    """A private PostgreSQL's data directory (a short path: its socket lives there)."""
    parent = Path(tempfile.mkdtemp(prefix="nps-pg-"))
    try:
        yield parent / "pg"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


class TestStartWithoutDatabase:
    async def test_serves_503_until_the_database_comes_then_ready_without_restart(
        self, pgdata: Path
    ) -> None:
        # Made once (initdb, the database), then stopped: the service starts against nothing.
        with embedded_postgres(pgdata) as plain:
            url = async_database_url(plain)
        port = free_port()
        with started_nps(
            url,
            "serve",
            NPS_PORT=str(port),
            NPS_LOG_LEVEL="warning",
            NPS_BOOTSTRAP_API_KEY=ADMIN_KEY,
            # As the owner, as development runs on a server of its own: the service's role
            # cannot be readied while the server is down.
            NPS_DATABASE_URL=url,
        ) as serve:
            auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

                async def alive() -> bool:
                    try:
                        return (await client.get("/healthz")).status_code == 200
                    except httpx.TransportError:
                        return serve.poll() is not None  # exited: fail below, not by waiting

                await eventually(alive, "the service to answer /healthz", every=0.2)
                assert serve.poll() is None, "nps serve exited with its database down"

                ready = await client.get("/readyz")
                assert ready.status_code == 503
                assert ready.headers["content-type"] == PROBLEM_JSON
                assert ready.headers["retry-after"] == "5"
                assert ready.json()["type"] == "/problems/service-unavailable"
                assert ready.json()["detail"] == "the database is unreachable"

                call = await client.get("/v1/accounts", headers=auth)
                assert call.status_code == 503, call.text
                assert call.headers["content-type"] == PROBLEM_JSON
                assert "retry-after" in call.headers
                assert call.json()["type"] == "/problems/service-unavailable"

                assert f"host={pgdata}" in plain or str(pgdata) in plain  # its socket's place
                with restarted(pgdata):

                    async def ready_now() -> bool:
                        return (await client.get("/readyz")).status_code == 200

                    await eventually(ready_now, "the service to become ready", every=0.3)

                    # The gate looks again within a second, and opens once the bootstrap
                    # has stored the key: never a 401 for it meanwhile.
                    async def stored() -> bool:
                        put = await client.put(
                            "/v1/accounts/acme", json={"name": "Acme"}, headers=auth
                        )
                        assert put.status_code in (201, 503), put.text
                        return put.status_code == 201

                    await eventually(stored, "a call to succeed", every=0.3)
                    listed = await client.get("/v1/accounts", headers=auth)
                    assert [a["id"] for a in listed.json()["data"]] == ["acme"]
                    serve.terminate()
                    assert await asyncio.to_thread(serve.wait, 30) == 0
