from tests.integration.conftest import Tenant


async def test_account_roundtrip(tenant: Tenant) -> None:
    r = await tenant.client.put("/v1/accounts/acme", json={"name": "Acme"})
    assert r.status_code == 201, r.text
    r = await tenant.client.get("/v1/accounts/acme")
    assert r.json()["name"] == "Acme"
