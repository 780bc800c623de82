"""docs/deploy/nginx.conf, run by real nginx in front of a real `nps serve`: API calls pass
through it, it closes a connection whose headers stall (uvicorn cannot), and the service sees
the client's address as nginx forwarded it."""

import asyncio
import socket
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.nginx import running_nginx
from tests.support.processes import eventually, free_port, started_nps, until_ready

ADMIN_KEY = "nps_proxy-test-0123456789abcdefghijklmnopqrstuvwxyz"
# nginx's client_header_timeout is 5 s; the test gives up well after it.
GIVE_UP = 20.0
# The test's connections to nginx come from this loopback address; nginx itself reaches the
# service from 127.0.0.1, so an address the service sees as 127.0.0.2 came from X-Forwarded-For.
CLIENT = "127.0.0.2"


async def _ip_windows(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            # The addresses' counters (an API key's is `key:<hash>`).
            rows = await conn.execute(
                text("SELECT key FROM rate_limit_windows WHERE key LIKE '%ip:%'")
            )
            return {str(key) for (key,) in rows}
    finally:
        await engine.dispose()


def _half_headers_then_wait(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=GIVE_UP) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:  # reset_timedout_connection: closed with a reset
            pass
        return received  # a socket timeout (GIVE_UP) instead fails the test


class TestBehindNginx:
    async def test_calls_pass_stalled_headers_are_closed_and_the_client_ip_is_forwarded(
        self, empty_database_url: str, tmp_path: Path
    ) -> None:
        service, proxy = free_port(), free_port()
        with (
            started_nps(
                empty_database_url,
                "serve",
                NPS_PORT=str(service),
                NPS_LOG_LEVEL="warning",
                NPS_BOOTSTRAP_API_KEY=ADMIN_KEY,
                # Each call shares its rate-limit counts at once (app.local_limits).
                NPS_RATE_LIMIT_FLUSH_SECONDS="0.001",
            ),
            running_nginx(tmp_path, listen=proxy, upstream=service),
        ):
            await until_ready(service)
            transport = httpx.AsyncHTTPTransport(local_address=CLIENT)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{proxy}", transport=transport
            ) as client:

                async def proxying() -> bool:
                    try:
                        return (await client.get("/readyz")).status_code == 200
                    except httpx.TransportError:
                        return False

                await eventually(proxying, "nginx to pass requests on", every=0.2)

                # A normal API call, through nginx.
                auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
                put = await client.put("/v1/accounts/acme", json={"name": "Acme"}, headers=auth)
                assert put.status_code == 201, put.text
                got = await client.get("/v1/accounts/acme", headers=auth)
                assert (got.status_code, got.json()["name"]) == (200, "Acme")
                assert (await client.get("/metrics")).status_code == 404

                # The service counts the client nginx saw, not nginx nor what the client claims.
                spoofed = {"X-Forwarded-For": "198.51.100.1"}
                r = await client.get("/v1/public/invitation", headers=spoofed)
                assert r.status_code == 401, r.text
                windows = await _ip_windows(empty_database_url)
                assert f"ip:{CLIENT}" in windows  # the public calls' count
                assert {key.rsplit(":", 1)[1] for key in windows} == {CLIENT}  # and the API's

            # Half the headers, then nothing: nginx closes the connection (uvicorn never would).
            answer = await asyncio.to_thread(_half_headers_then_wait, proxy)
            assert not answer.startswith(b"HTTP/1.1 200")
