"""API keys are stored as HMAC-SHA256 under the server's pepper; keys stored before it (their
plain SHA-256) still work and are stored peppered from their first use."""

import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings, key_pepper
from app.models import ApiKey
from app.services.keys import generate_key
from tests.support.harness import Tenant
from tests.support.problems import assert_unauthorized


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def peppered(raw: str, pepper: bytes | None = None) -> bytes:
    return hmac.new(pepper or key_pepper(Settings()), raw.encode(), hashlib.sha256).digest()


async def add_key(
    sessionmaker: async_sessionmaker[AsyncSession], tenant: Tenant, raw: str, key_hash: bytes
) -> None:
    async with sessionmaker() as session, session.begin():
        session.add(
            ApiKey(workspace_id=tenant.id, prefix=raw[:12], key_hash=key_hash, scopes=["read"])
        )


async def stored_hash(sessionmaker: async_sessionmaker[AsyncSession], raw: str) -> bytes | None:
    async with sessionmaker() as session:
        return await session.scalar(select(ApiKey.key_hash).where(ApiKey.prefix == raw[:12]))


class TestKeyHashing:
    async def test_a_new_key_is_stored_peppered(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        r = await tenant.client.post("/v1/api-keys", json={"scopes": ["read"]})
        assert r.status_code == 201, r.text
        raw = r.json()["key"]

        stored = await stored_hash(sessionmaker, raw)
        assert stored == peppered(raw)
        assert stored != hashlib.sha256(raw.encode()).digest()

    async def test_a_key_stored_before_the_pepper_works_and_is_stored_peppered(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        raw = generate_key()
        await add_key(sessionmaker, tenant, raw, hashlib.sha256(raw.encode()).digest())

        first = await tenant.client.get("/v1/workspace", headers=bearer(raw))
        assert await stored_hash(sessionmaker, raw) == peppered(raw)
        again = await tenant.client.get("/v1/workspace", headers=bearer(raw))

        assert (first.status_code, again.status_code) == (200, 200)

    async def test_a_key_hashed_under_another_pepper_is_unknown(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        raw = generate_key()
        await add_key(sessionmaker, tenant, raw, peppered(raw, b"another pepper, another server"))

        assert_unauthorized(await tenant.client.get("/v1/workspace", headers=bearer(raw)))
