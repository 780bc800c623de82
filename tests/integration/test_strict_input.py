"""Strict input: ids in paths as strict as in bodies, and errors that never quote hostile input
verbatim."""

import pytest

from tests.support.harness import Tenant

QUOTED_MAX = 64  # app.errors.QUOTED_MAX: how much of a name an error quotes


class TestDotIdsInPaths:
    @pytest.mark.parametrize("encoded", ["%2E", "%2E%2E"])
    @pytest.mark.parametrize("path", ["/v1/accounts/{}", "/v1/stakeholders/{}", "/v1/surveys/{}"])
    async def test_a_dot_id_is_refused_as_in_a_body(
        self, tenant: Tenant, path: str, encoded: str
    ) -> None:
        r = await tenant.client.put(path.format(encoded), json={"account_id": "acme"})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["msg"] == "an id cannot be '.' or '..'"
        listed = await tenant.client.get("/v1/accounts")
        assert listed.json()["data"] == []

    async def test_a_dot_in_a_longer_id_is_fine(self, tenant: Tenant) -> None:
        r = await tenant.client.put("/v1/accounts/acme.eu", json={"name": "Acme"})
        assert r.status_code == 201, r.text


class TestNoEcho:
    async def test_an_unknown_parameter_is_quoted_cut_and_escaped(self, tenant: Tenant) -> None:
        name = "<script>\x07" + "x" * 500
        r = await tenant.client.get("/v1/accounts", params={name: "1"})
        assert r.status_code == 422, r.text
        [error] = r.json()["errors"]
        assert len(error["loc"][1]) == QUOTED_MAX + len("\\x07") - 1
        assert error["loc"][1].startswith("<script>\\x07xxx")
        assert error["loc"][1].endswith("…")
        assert "x" * 100 not in r.text
        assert "\x07" not in r.text

    async def test_a_hostile_member_name_is_not_echoed(self, tenant: Tenant) -> None:
        key = "k" * 300 + "\x1b[31m"
        r = await tenant.client.put("/v1/accounts/acme", json={"name": "Acme", key: 1})
        assert r.status_code == 422, r.text
        assert "k" * 100 not in r.text
        assert "\x1b" not in r.text
