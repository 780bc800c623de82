"""The allowed_origins setting: exact origins as browsers send them, refused (never rewritten)
when they are not, through PUT and PATCH /v1/settings."""

import pytest

from tests.support.api import get_json, put_settings
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_invalid

SETTINGS = "/v1/settings"
ORIGINS = [
    "https://app.example.com",
    "http://localhost:3000",
    "https://[::1]:8443",
    "http://127.0.0.1:8080",
    "https://xn--bcher-kva.example",
]


class TestPutAllowedOrigins:
    async def test_exact_origins_are_stored_as_given(self, tenant: Tenant) -> None:
        body = await put_settings(tenant.client, {"allowed_origins": ORIGINS})

        assert body["allowed_origins"] == ORIGINS
        assert (await get_json(tenant.client, SETTINGS))["allowed_origins"] == ORIGINS

    @pytest.mark.parametrize(
        ("origin", "msg"),
        [
            ("https://*.example.com", "wildcards are not supported: list each origin"),
            ("*", "wildcards are not supported: list each origin"),
            (
                "ftp://files.example.com",
                "an origin is https://host or http://host, with an optional :port",
            ),
            ("app.example.com", "an origin is https://host or http://host, with an optional :port"),
            ("null", "an origin is https://host or http://host, with an optional :port"),
            ("https://", "an origin is https://host or http://host, with an optional :port"),
            (
                "https://app..example.com",
                "an origin is https://host or http://host, with an optional :port",
            ),
            (
                "https://app.example.com/",
                "an origin has no path, query or fragment (nor a trailing slash)",
            ),
            (
                "https://app.example.com/survey",
                "an origin has no path, query or fragment (nor a trailing slash)",
            ),
            (
                "https://app.example.com?x=1",
                "an origin has no path, query or fragment (nor a trailing slash)",
            ),
            ("https://user:pass@app.example.com", "an origin has no user name or password"),
            (
                "https://bücher.example",
                "write an internationalised domain name in its punycode (xn--) form",
            ),
            (
                "https://App.Example.com",
                "write the origin in lower case, as browsers send it: https://app.example.com",
            ),
            (
                "https://app.example.com:443",
                "browsers leave the default port out of an origin: write https://app.example.com",
            ),
            (
                "http://app.example.com:80",
                "browsers leave the default port out of an origin: write http://app.example.com",
            ),
            ("https://app.example.com:0", "the port must be a number from 1 to 65535"),
            ("https://app.example.com:65536", "the port must be a number from 1 to 65535"),
            ("https://app.example.com:https", "the port must be a number from 1 to 65535"),
        ],
    )
    async def test_anything_but_an_exact_origin_is_422(
        self, tenant: Tenant, origin: str, msg: str
    ) -> None:
        r = await tenant.client.put(
            SETTINGS, json={"allowed_origins": ["https://ok.example.com", origin]}
        )

        body = assert_invalid(r, ["body", "allowed_origins", 1])
        assert body["errors"][0]["msg"] == msg
        assert (await get_json(tenant.client, SETTINGS))["allowed_origins"] == []

    @pytest.mark.parametrize(
        ("value", "loc"),
        [
            ("https://a.example", ["body", "allowed_origins"]),
            ([443], ["body", "allowed_origins", 0]),
            ([f"https://a{i}.example" for i in range(101)], ["body", "allowed_origins"]),
            (["https://" + "a" * 300 + ".example"], ["body", "allowed_origins", 0]),
        ],
    )
    async def test_a_list_of_distinct_origin_strings_up_to_100(
        self, tenant: Tenant, value: object, loc: list[str | int]
    ) -> None:
        r = await tenant.client.put(SETTINGS, json={"allowed_origins": value})

        assert_invalid(r, loc)

    async def test_a_repeated_origin_is_named(self, tenant: Tenant) -> None:
        r = await tenant.client.put(
            SETTINGS, json={"allowed_origins": ["https://a.example", "https://a.example"]}
        )

        body = assert_invalid(r, ["body", "allowed_origins"])
        assert body["errors"][0]["msg"] == "https://a.example is listed twice"

    async def test_another_workspace_keeps_its_own_list(self, make_tenant: MakeTenant) -> None:
        ours, theirs = await make_tenant("ours"), await make_tenant("theirs")

        await put_settings(ours.client, {"allowed_origins": ["https://ours.example"]})

        assert (await get_json(theirs.client, SETTINGS))["allowed_origins"] == []


class TestPatchAllowedOrigins:
    async def test_a_patch_replaces_the_list_and_null_empties_it(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, {"allowed_origins": ORIGINS})
        patch = {"allowed_origins": ["https://new.example"]}

        replaced = await tenant.client.patch(SETTINGS, json=patch)
        emptied = await tenant.client.patch(SETTINGS, json={"allowed_origins": None})

        assert replaced.json()["allowed_origins"] == ["https://new.example"]
        assert emptied.json()["allowed_origins"] == []

    async def test_a_bad_origin_in_a_patch_is_422_and_nothing_changes(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, {"allowed_origins": ORIGINS})

        r = await tenant.client.patch(SETTINGS, json={"allowed_origins": ["https://A.example"]})

        body = assert_invalid(r, ["body", "allowed_origins", 0])
        assert body["errors"][0]["msg"] == (
            "write the origin in lower case, as browsers send it: https://a.example"
        )
        assert (await get_json(tenant.client, SETTINGS))["allowed_origins"] == ORIGINS
