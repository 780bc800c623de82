"""Webhook endpoints (admin): register with the SSRF guard, list, read, change, delete, rotate
the secret; tenancy. Delivery is in test_webhook_delivery.py."""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings, key_pepper
from app.models import Scope
from tests.support.api import without_stamps
from tests.support.harness import TEST_SETTINGS, MakeTenant, Tenant, build_app, new_tenant
from tests.support.problems import REPLAYED, assert_forbidden, assert_invalid, assert_not_found
from tests.support.webhooks import PUBLIC_HOST, FakeDns, fake_dns, register, secret_bytes

URL = f"https://{PUBLIC_HOST}/nps"


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    return fake_dns(monkeypatch)


@pytest_asyncio.fixture(loop_scope="session")
async def configured(
    sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> AsyncIterator[Any]:
    """A tenant of an app run with the given settings (`await configured(**settings)`)."""
    made: list[Tenant] = []

    async def make(**settings: Any) -> Tenant:
        app = build_app(
            sessionmaker,
            engine,
            settings=Settings(**{**TEST_SETTINGS, **settings}),
        )
        made.append(await new_tenant(sessionmaker, app, "configured"))
        return made[-1]

    yield make
    for tenant in made:
        await tenant.client.aclose()


def refused(r: Any, msg: str) -> None:
    body = assert_invalid(r, ["body", "url"])
    assert body["errors"][0]["msg"] == msg
    assert body["detail"] == f"url is refused: {msg}"


def expected_read(url: str = URL, **fields: Any) -> dict[str, Any]:
    return {
        "url": url,
        "events": None,
        "description": None,
        "enabled": True,
        "disabled_reason": None,
        "failing_since": None,
        "previous_secret_expires_at": None,
        **fields,
    }


class TestCreateWebhook:
    async def test_registers_and_shows_the_secret_once(self, tenant: Tenant, dns: FakeDns) -> None:
        r = await tenant.client.post(
            "/v1/webhooks",
            json={"url": URL, "events": ["response.created"], "description": "CRM"},
        )
        assert r.status_code == 201, r.text
        body = without_stamps(r.json())
        endpoint_id, secret = body.pop("id"), body.pop("secret")
        assert body == expected_read(events=["response.created"], description="CRM")
        assert len(secret_bytes(secret)) == 32
        read = (await tenant.client.get(f"/v1/webhooks/{endpoint_id}")).json()
        assert "secret" not in read
        assert without_stamps(read) == {"id": endpoint_id, **body}

    async def test_every_type_when_events_is_omitted_or_null(
        self, tenant: Tenant, dns: FakeDns
    ) -> None:
        assert (await register(tenant.client))["events"] is None
        assert (await register(tenant.client, events=None))["events"] is None

    async def test_a_replay_does_not_show_the_secret_again(
        self, tenant: Tenant, dns: FakeDns
    ) -> None:
        headers = {"Idempotency-Key": "hook-1"}
        first = await tenant.client.post("/v1/webhooks", json={"url": URL}, headers=headers)
        assert first.status_code == 201
        again = await tenant.client.post("/v1/webhooks", json={"url": URL}, headers=headers)
        assert (again.status_code, again.headers[REPLAYED]) == (409, "true")
        assert first.json()["id"] in again.json()["detail"]
        listed = (await tenant.client.get("/v1/webhooks")).json()["data"]
        assert [e["id"] for e in listed] == [first.json()["id"]]

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"url": URL, "events": ["response.vanished"]}, ["body", "events", 0]),
            ({"url": URL, "events": []}, ["body", "events"]),
            ({"url": URL, "events": ["case.opened", "case.opened"]}, ["body", "events"]),
            ({"url": URL, "enabled": "true"}, ["body", "enabled"]),
            ({"url": URL, "secret": "whsec_mine"}, ["body", "secret"]),
            ({"events": None}, ["body", "url"]),
        ],
    )
    async def test_invalid_fields_are_refused(
        self, tenant: Tenant, dns: FakeDns, body: dict[str, Any], loc: list[Any]
    ) -> None:
        assert_invalid(await tenant.client.post("/v1/webhooks", json=body), loc)

    @pytest.mark.parametrize(
        ("url", "msg"),
        [
            ("ftp://hooks.example.com/x", "the URL must be http or https"),
            (
                "https://user:pw@hooks.example.com/x",
                "the URL must not carry credentials (user:password@)",
            ),
            ("https:///x", "the URL has no host"),
            (
                "https://127.0.0.1/x",
                "the host '127.0.0.1' resolves to 127.0.0.1 is not a public address",
            ),
            (
                "http://localhost:8080/x",
                "the host 'localhost' resolves to 127.0.0.1 is not a public address",
            ),
            (
                "https://intranet.example.com/x",
                "the host 'intranet.example.com' resolves to 10.1.2.3 is not a public address",
            ),
            (
                "https://mixed.example.com/x",
                "the host 'mixed.example.com' resolves to 192.168.1.10 is not a public address",
            ),
            (
                "https://[fe80::1]/x",
                "the host 'fe80::1' resolves to fe80::1 is not a public address",
            ),
            (
                "https://[::ffff:10.0.0.1]/x",
                "the host '::ffff:10.0.0.1' resolves to 10.0.0.1 is not a public address",
            ),
            ("https://nowhere.example.com/x", "the host 'nowhere.example.com' does not resolve"),
        ],
    )
    async def test_urls_that_reach_no_public_receiver_are_refused(
        self, tenant: Tenant, dns: FakeDns, url: str, msg: str
    ) -> None:
        refused(await tenant.client.post("/v1/webhooks", json={"url": url}), msg)
        assert (await tenant.client.get("/v1/webhooks")).json()["data"] == []

    async def test_allow_private_admits_loopback_and_private_addresses(
        self, configured: Any, dns: FakeDns
    ) -> None:
        tenant = await configured(webhooks_allow_private=True)
        await register(tenant.client, "http://127.0.0.1:9/x")
        await register(tenant.client, "https://intranet.example.com/x")

    @pytest.mark.parametrize(
        ("url", "address"),
        [
            ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
            ("http://metadata.example.com/", "169.254.169.254"),
            ("http://[fd00:ec2::254]/", "fd00:ec2::254"),
            ("http://100.100.100.200/", "100.100.100.200"),
            ("http://[::ffff:169.254.169.254]/", "169.254.169.254"),
        ],
    )
    async def test_metadata_addresses_are_refused_even_with_allow_private(
        self, configured: Any, dns: FakeDns, url: str, address: str
    ) -> None:
        tenant = await configured(webhooks_allow_private=True)
        r = await tenant.client.post("/v1/webhooks", json={"url": url})
        body = assert_invalid(r, ["body", "url"])
        assert body["errors"][0]["msg"].endswith(f"{address} is a cloud metadata address")

    async def test_production_requires_https(self, configured: Any, dns: FakeDns) -> None:
        # Production requires a pepper: the one this process's keys are hashed with.
        pepper = key_pepper(Settings()).decode()
        tenant = await configured(env="production", key_pepper=pepper)
        r = await tenant.client.post("/v1/webhooks", json={"url": f"http://{PUBLIC_HOST}/x"})
        refused(r, "the URL must be https")
        await register(tenant.client, URL)

    async def test_needs_the_admin_scope(self, tenant: Tenant, dns: FakeDns) -> None:
        write = {"Authorization": f"Bearer {await tenant.make_key(Scope.WRITE)}"}
        assert_forbidden(await tenant.client.post("/v1/webhooks", json={"url": URL}, headers=write))
        assert_forbidden(await tenant.client.get("/v1/webhooks", headers=write))


class TestListWebhooks:
    async def test_pages_through_the_workspaces_endpoints(
        self, tenant: Tenant, dns: FakeDns
    ) -> None:
        # One transaction, one updated_at: the ids decide the order.
        made = sorted([(await register(tenant.client, f"{URL}/{i}"))["id"] for i in range(3)])
        first = (await tenant.client.get("/v1/webhooks", params={"limit": 2})).json()
        assert [e["id"] for e in first["data"]] == made[:2]
        assert all("secret" not in e for e in first["data"])
        rest = await tenant.client.get(
            "/v1/webhooks", params={"limit": 2, "cursor": first["next_cursor"]}
        )
        assert ([e["id"] for e in rest.json()["data"]], rest.json()["next_cursor"]) == (
            made[2:],
            None,
        )

    async def test_another_workspace_sees_nothing(
        self, make_tenant: MakeTenant, dns: FakeDns
    ) -> None:
        mine, other = await make_tenant("mine"), await make_tenant("other")
        endpoint = await register(mine.client)
        assert (await other.client.get("/v1/webhooks")).json() == {"data": [], "next_cursor": None}
        path = f"/v1/webhooks/{endpoint['id']}"
        assert_not_found(await other.client.get(path))
        assert_not_found(await other.client.patch(path, json={"enabled": False}))
        assert_not_found(await other.client.post(f"{path}/rotate-secret"))
        assert_not_found(await other.client.delete(path))
        assert (await mine.client.get(path)).json()["enabled"] is True


class TestGetWebhook:
    async def test_an_unknown_id_is_404(self, tenant: Tenant) -> None:
        assert_not_found(
            await tenant.client.get("/v1/webhooks/00000000-0000-4000-8000-000000000000")
        )

    async def test_an_id_that_is_no_uuid_is_422(self, tenant: Tenant) -> None:
        assert_invalid(await tenant.client.get("/v1/webhooks/nope"), ["path", "webhook_id"])


class TestUpdateWebhook:
    async def test_changes_only_the_fields_sent(self, tenant: Tenant, dns: FakeDns) -> None:
        endpoint = await register(tenant.client, events=["case.opened"], description="CRM")
        path = f"/v1/webhooks/{endpoint['id']}"
        r = await tenant.client.patch(path, json={"events": None, "enabled": False})
        assert r.status_code == 200, r.text
        assert without_stamps(r.json()) == {
            "id": endpoint["id"],
            **expected_read(description="CRM", enabled=False),
        }
        r = await tenant.client.patch(
            path, json={"url": "https://crm.example.com/in", "description": None}
        )
        assert (r.json()["url"], r.json()["description"]) == ("https://crm.example.com/in", None)

    async def test_a_new_url_is_checked_again(self, tenant: Tenant, dns: FakeDns) -> None:
        endpoint = await register(tenant.client)
        path = f"/v1/webhooks/{endpoint['id']}"
        r = await tenant.client.patch(path, json={"url": "http://10.0.0.1/x"})
        refused(r, "the host '10.0.0.1' resolves to 10.0.0.1 is not a public address")
        assert (await tenant.client.get(path)).json()["url"] == URL

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"url": None}, ["body", "url"]),
            ({"enabled": None}, ["body", "enabled"]),
            ({"events": ["nope"]}, ["body", "events", 0]),
            ({"secret": "x"}, ["body", "secret"]),
        ],
    )
    async def test_invalid_changes_are_refused(
        self, tenant: Tenant, dns: FakeDns, body: dict[str, Any], loc: list[Any]
    ) -> None:
        endpoint = await register(tenant.client)
        r = await tenant.client.patch(f"/v1/webhooks/{endpoint['id']}", json=body)
        assert_invalid(r, loc)


class TestDeleteWebhook:
    async def test_deletes_it(self, tenant: Tenant, dns: FakeDns) -> None:
        endpoint = await register(tenant.client)
        path = f"/v1/webhooks/{endpoint['id']}"
        r = await tenant.client.delete(path)
        assert (r.status_code, r.content) == (204, b"")
        assert_not_found(await tenant.client.get(path))
        assert_not_found(await tenant.client.delete(path))


class TestRotateWebhookSecret:
    async def test_a_new_secret_and_the_old_one_for_24_hours(
        self, tenant: Tenant, dns: FakeDns
    ) -> None:
        endpoint = await register(tenant.client)
        r = await tenant.client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret")
        assert r.status_code == 200, r.text
        rotated = r.json()
        assert rotated["secret"] != endpoint["secret"]
        assert len(secret_bytes(rotated["secret"])) == 32
        expires = datetime.fromisoformat(rotated["previous_secret_expires_at"])
        assert expires - datetime.fromisoformat(rotated["updated_at"]) == timedelta(hours=24)
        assert {k: v for k, v in rotated.items() if k not in ("secret",)} == (
            await tenant.client.get(f"/v1/webhooks/{endpoint['id']}")
        ).json()

    async def test_a_replay_does_not_show_the_new_secret_again(
        self, tenant: Tenant, dns: FakeDns
    ) -> None:
        endpoint = await register(tenant.client)
        path, headers = f"/v1/webhooks/{endpoint['id']}/rotate-secret", {"Idempotency-Key": "r"}
        assert (await tenant.client.post(path, headers=headers)).status_code == 200
        again = await tenant.client.post(path, headers=headers)
        assert (again.status_code, again.headers[REPLAYED]) == (409, "true")
