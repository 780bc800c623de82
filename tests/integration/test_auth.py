import pytest
from tests.integration.conftest import Tenant


async def test_probe(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    import app.errors as e
    seen = []
    orig = e.logger.error
    def rec(*a: object, **k: object) -> None:
        seen.append(a)
    monkeypatch.setattr(e.logger, "error", rec)
    c = tenant.client
    async def show(method: str, url: str, **kw: object) -> None:
        r = await c.request(method, url, **kw)  # type: ignore[arg-type]
        print(method, url, kw, r.status_code, r.headers.get("content-type"), r.text[:300])
    await show("GET", "/v1/accounts", params={"updated_since": "0001-01-01T00:00:00+05:00"})
    await show("GET", "/v1/stakeholders", params={"account_id": "a", "updated_since": "0001-01-01T00:00:00+05:00"})
    await show("PUT", "/v1/accounts/nul", json={"name": "a\u0000b"})
    for a in seen:
        print(type(a[1]), type(a[1].__cause__) if hasattr(a[1], "__cause__") else None)
    assert False
