"""`nps serve` as it runs in production writes an access line for the hosted page with the token
redacted, both when it hands the process to uvicorn (NPS_WORKER=off) and when it runs uvicorn
beside its worker."""

import asyncio
import json
import secrets
import signal

import httpx
import pytest

from app import migrate
from tests.support.processes import free_port, started_nps, until_ready


async def issue_token(base_url: str, key: str) -> str:
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        for path, body in (
            ("/v1/accounts/acme", {"name": "Acme"}),
            ("/v1/stakeholders/p1", {"account_id": "acme"}),
        ):
            assert (await client.put(path, json=body)).status_code == 201
        r = await client.post(
            "/v1/invitations", json={"stakeholder_id": "p1", "survey": "s", "channel": "email"}
        )
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        return token


class TestAccessLog:
    @pytest.mark.parametrize("worker", ["off", "on"])
    async def test_the_hosted_pages_access_line_shows_no_token(
        self, empty_database_url: str, worker: str
    ) -> None:
        await asyncio.to_thread(migrate.upgrade, empty_database_url)
        port, key = free_port(), "nps_" + secrets.token_urlsafe(32)
        base_url = f"http://127.0.0.1:{port}"
        with started_nps(
            empty_database_url,
            "serve",
            NPS_PORT=str(port),
            NPS_BOOTSTRAP_API_KEY=key,
            NPS_LOG_LEVEL="info",
            NPS_WORKER=worker,
        ) as serve:
            await until_ready(port)
            token = await issue_token(base_url, key)
            async with httpx.AsyncClient(base_url=base_url) as browser:
                assert (await browser.get(f"/s/{token}?score=9")).status_code == 200
                assert (await browser.post(f"/s/{token}/opened")).status_code == 204
            serve.send_signal(signal.SIGTERM)
            await asyncio.to_thread(serve.wait, 30)
            assert serve.stdout is not None
            output = serve.stdout.read()

        # JSON lines (app.logs), each access line with its request id.
        entries = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        access = [
            (e["method"], e["path"], e["status"])
            for e in entries
            if e["logger"] == "uvicorn.access" and e["path"].startswith("/s/")
        ]
        assert access == [
            ("GET", "/s/[redacted]?score=9", 200),
            ("POST", "/s/[redacted]/opened", 204),
        ]
        assert all(
            len(e["request_id"]) == 16 for e in entries if e["logger"] == "uvicorn.access"
        ), output
        assert token not in output
        assert token[5:15] not in output
        assert key not in output
        assert key[4:20] not in output
