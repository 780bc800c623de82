"""PATCH /v1/settings (RFC 7396 merge patch) and the settings' ETag, If-Match and If-None-Match."""

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.models import Scope
from tests.integration.test_settings import BUILT_IN_BENCHMARKS, CUSTOM, DEFAULTS
from tests.support.api import get_json, put_settings
from tests.support.expected import DEFAULT_JOB_LEVEL_WEIGHTS, DEFAULT_ROLE_WEIGHTS
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_forbidden, assert_invalid, problem
from tests.support.processes import eventually

SETTINGS = "/v1/settings"
MERGE_PATCH = "application/merge-patch+json"
STALE = '"0123456789abcdef0123456789abcdef"'


async def patch(
    client: httpx.AsyncClient,
    body: Any,
    *,
    media: str = MERGE_PATCH,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.patch(
        SETTINGS,
        content=json.dumps(body).encode(),
        headers={"Content-Type": media, **(headers or {})},
    )


async def patched(client: httpx.AsyncClient, body: Any) -> dict[str, Any]:
    r = await patch(client, body)
    assert r.status_code == 200, r.text
    settings: dict[str, Any] = r.json()
    return settings


async def etag(client: httpx.AsyncClient) -> str:
    r = await client.get(SETTINGS)
    assert r.status_code == 200, r.text
    return r.headers["ETag"]


class TestPatchSettings:
    async def test_the_readme_case_weights_change_and_thresholds_stay(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, {"min_n": 3, "low_n": 20})

        body = await patched(tenant.client, {"role_weights": {"decision_maker": 4}})

        want = {
            **DEFAULTS,
            "min_n": 3,
            "low_n": 20,
            "role_weights": {**DEFAULT_ROLE_WEIGHTS, "decision_maker": 4.0},
        }
        assert body == want
        assert await get_json(tenant.client, SETTINGS) == want

    async def test_nested_objects_merge_member_by_member(self, tenant: Tenant) -> None:
        await put_settings(
            tenant.client,
            {
                "role_weights": {"decision_maker": 5},
                "benchmarks": {"retail": {"low": 0, "high": 10}},
                "at_risk": {"nps_below": -10, "silent_days": 60},
            },
        )

        body = await patched(
            tenant.client,
            {
                "role_weights": {"user": 0.5},
                "benchmarks": {"technology": {"low": 35, "high": 55}},
                "at_risk": {"silent_days": 30},
            },
        )

        assert body == {
            **DEFAULTS,
            "role_weights": {**DEFAULT_ROLE_WEIGHTS, "decision_maker": 5.0, "user": 0.5},
            "benchmarks": {
                **BUILT_IN_BENCHMARKS,
                "retail": {"low": 0.0, "high": 10.0},
                "technology": {"low": 35.0, "high": 55.0},
            },
            "at_risk": {"nps_below": -10.0, "silent_days": 30},
        }

    async def test_survey_rules_merge_and_null_goes_back_to_default(self, tenant: Tenant) -> None:
        await patched(tenant.client, {"survey_rules": {"max_per_account": 2}})

        body = await patched(
            tenant.client,
            {"survey_rules": {"resurvey_after_days": 120, "max_per_account": None}},
        )

        assert body["survey_rules"] == {**DEFAULTS["survey_rules"], "resurvey_after_days": 120}

    async def test_null_puts_a_member_back_to_its_default(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, CUSTOM)

        body = await patched(
            tenant.client,
            {
                "min_n": None,
                "low_n": None,
                "default_method": None,
                "role_weights": {"decision_maker": None},
                "job_level_weights": None,
                "benchmarks": {"retail": None},
            },
        )

        assert body == {
            **CUSTOM,
            "min_n": 5,
            "low_n": 30,
            "default_method": "latest_per_stakeholder",
            "role_weights": {**CUSTOM["role_weights"], "decision_maker": 3.0},
            "job_level_weights": DEFAULT_JOB_LEVEL_WEIGHTS,
            "benchmarks": BUILT_IN_BENCHMARKS,
        }
        assert await get_json(tenant.client, SETTINGS) == body

    async def test_null_on_an_overridden_built_in_industry_restores_the_built_in_range(
        self, tenant: Tenant
    ) -> None:
        await put_settings(
            tenant.client,
            {"benchmarks": {"technology": {"low": 0, "high": 1}, "manufacturing": None}},
        )

        body = await patched(tenant.client, {"benchmarks": {"Technology": None}})

        assert body["benchmarks"] == {
            "professional services": {"low": 40.0, "high": 60.0},
            "technology": {"low": 30.0, "high": 50.0},
        }

    async def test_an_empty_patch_changes_nothing(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, CUSTOM)

        assert await patched(tenant.client, {}) == CUSTOM

    async def test_application_json_is_read_as_a_merge_patch(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, {"low_n": 20})

        r = await patch(tenant.client, {"min_n": 2}, media="application/json; charset=utf-8")

        assert r.status_code == 200, r.text
        assert (r.json()["min_n"], r.json()["low_n"]) == (2, 20)

    @pytest.mark.parametrize(
        "media", ["application/json-patch+json", "text/plain", "application/x-www-form-urlencoded"]
    )
    async def test_another_media_type_is_415_and_nothing_is_stored(
        self, tenant: Tenant, media: str
    ) -> None:
        r = await patch(tenant.client, {"min_n": 2}, media=media)

        assert problem(r, 415)["type"] == "/problems/unsupported-media-type"
        assert r.headers["Accept-Patch"] == MERGE_PATCH
        assert await get_json(tenant.client, SETTINGS) == DEFAULTS

    async def test_no_content_type_is_415(self, tenant: Tenant) -> None:
        r = await tenant.client.patch(SETTINGS, content=b'{"min_n": 2}')

        assert problem(r, 415)["type"] == "/problems/unsupported-media-type"

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"min_n": 50}, ["body", "low_n"]),  # the merged result breaks min_n <= low_n
            ({"role_weights": {"ceo": 2}}, ["body", "role_weights", "ceo"]),
            ({"role_weights": {"user": 0}}, ["body", "role_weights", "user"]),
            ({"role_weights": {"user": "3"}}, ["body", "role_weights", "user"]),
            ({"role_weights": 3}, ["body", "role_weights"]),
            ({"min_n": True}, ["body", "min_n"]),
            ({"colour": "red"}, ["body", "colour"]),
            ({"benchmarks": {"technology": {"low": 60}}}, ["body", "benchmarks", "technology"]),
            ({"default_method": "bogus"}, ["body", "default_method"]),
        ],
    )
    async def test_an_invalid_result_is_422_naming_the_field_and_nothing_is_stored(
        self, tenant: Tenant, body: dict[str, Any], loc: list[str]
    ) -> None:
        await put_settings(tenant.client, CUSTOM)

        r = await patch(tenant.client, body)

        problem_body = assert_invalid(r)
        assert [e["loc"][: len(loc)] for e in problem_body["errors"]] == [loc], problem_body
        assert ".".join(loc) in problem_body["detail"]
        assert await get_json(tenant.client, SETTINGS) == CUSTOM

    async def test_the_merged_result_is_refused_with_the_errors_a_put_of_it_gets(
        self, tenant: Tenant
    ) -> None:
        await put_settings(tenant.client, {"low_n": 10})
        merged = {"low_n": 10, "min_n": 20, "role_weights": {"user": -1}}

        put = assert_invalid(await tenant.client.put(SETTINGS, json=merged))
        patch_body = assert_invalid(
            await patch(tenant.client, {"min_n": 20, "role_weights": {"user": -1}})
        )

        assert patch_body == put

    @pytest.mark.parametrize("body", [[{"min_n": 2}], "min_n", 5, None])
    async def test_a_patch_that_is_not_an_object_is_422(self, tenant: Tenant, body: Any) -> None:
        r = await patch(tenant.client, body)

        assert_invalid(r, ["body"])
        assert await get_json(tenant.client, SETTINGS) == DEFAULTS

    @pytest.mark.parametrize("raw", [b"{", b"", b'{"min_n": NaN}'])
    async def test_a_body_that_is_not_json_is_422(self, tenant: Tenant, raw: bytes) -> None:
        r = await tenant.client.patch(SETTINGS, content=raw, headers={"Content-Type": MERGE_PATCH})

        assert_invalid(r)
        assert await get_json(tenant.client, SETTINGS) == DEFAULTS

    @pytest.mark.parametrize("depth", [20, 5000])
    async def test_a_deeply_nested_patch_is_422(self, tenant: Tenant, depth: int) -> None:
        raw = b'{"role_weights": ' + b'{"a": ' * depth + b"{}" + b"}" * (depth + 1)

        r = await tenant.client.patch(SETTINGS, content=raw, headers={"Content-Type": MERGE_PATCH})

        assert_invalid(r, ["body"])
        assert await get_json(tenant.client, SETTINGS) == DEFAULTS

    async def test_a_body_that_is_not_utf8_is_400(self, tenant: Tenant) -> None:
        r = await tenant.client.patch(
            SETTINGS, content=b'{"min_n": "\xff"}', headers={"Content-Type": MERGE_PATCH}
        )

        assert problem(r, 400)["type"] == "/problems/invalid-encoding"

    @pytest.mark.parametrize("scope", [Scope.READ, Scope.WRITE])
    async def test_read_and_write_keys_are_403(self, tenant: Tenant, scope: Scope) -> None:
        key = await tenant.make_key(scope)

        r = await patch(tenant.client, {"min_n": 2}, headers={"Authorization": f"Bearer {key}"})

        assert_forbidden(r)
        assert await get_json(tenant.client, SETTINGS) == DEFAULTS

    async def test_without_key_is_401(self, tenant: Tenant) -> None:
        request = tenant.client.build_request(
            "PATCH", SETTINGS, content=b"{}", headers={"Content-Type": MERGE_PATCH}
        )
        del request.headers["Authorization"]

        assert problem(await tenant.client.send(request), 401)["type"] == "/problems/unauthorized"

    async def test_a_patch_changes_only_the_callers_workspace(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")
        await put_settings(other.client, CUSTOM)

        await patched(tenant.client, {"min_n": 2, "role_weights": {"user": 9}})

        assert await get_json(other.client, SETTINGS) == CUSTOM
        assert (await get_json(tenant.client, SETTINGS))["min_n"] == 2


class TestSettingsETag:
    async def test_get_put_and_patch_answer_with_the_tag_of_what_is_stored(
        self, tenant: Tenant
    ) -> None:
        first = await etag(tenant.client)
        put = await tenant.client.put(SETTINGS, json={"min_n": 3})
        after_put = await etag(tenant.client)
        patch_r = await patch(tenant.client, {"low_n": 10})
        after_patch = await etag(tenant.client)

        assert re.fullmatch(r'"[0-9a-f]{32}"', first)  # strong: no W/ prefix
        assert put.headers["ETag"] == after_put
        assert patch_r.headers["ETag"] == after_patch
        assert len({first, after_put, after_patch}) == 3

    async def test_the_same_settings_have_the_same_tag(self, tenant: Tenant) -> None:
        first = await etag(tenant.client)

        unchanged = await patch(tenant.client, {})
        put_defaults = await tenant.client.put(SETTINGS, json={})

        assert unchanged.headers["ETag"] == put_defaults.headers["ETag"] == first

    async def test_if_none_match_with_the_current_tag_is_304(self, tenant: Tenant) -> None:
        tag = await etag(tenant.client)

        for header in (tag, f"{STALE}, {tag}", f"W/{tag}", "*"):
            r = await tenant.client.get(SETTINGS, headers={"If-None-Match": header})
            assert r.status_code == 304, header
            assert r.content == b""
            assert r.headers["ETag"] == tag

    async def test_if_none_match_with_a_stale_tag_is_200(self, tenant: Tenant) -> None:
        tag = await etag(tenant.client)
        await put_settings(tenant.client, {"min_n": 3})

        r = await tenant.client.get(SETTINGS, headers={"If-None-Match": tag})

        assert r.status_code == 200, r.text
        assert r.json()["min_n"] == 3
        assert r.headers["ETag"] != tag

    @pytest.mark.parametrize("method", ["PUT", "PATCH"])
    async def test_a_stale_if_match_is_412_and_nothing_is_stored(
        self, tenant: Tenant, method: str
    ) -> None:
        stale = await etag(tenant.client)
        await put_settings(tenant.client, {"min_n": 3})
        current = await etag(tenant.client)

        r = await tenant.client.request(
            method,
            SETTINGS,
            content=b'{"low_n": 10}',
            headers={
                "If-Match": stale,
                "Content-Type": MERGE_PATCH if method == "PATCH" else "application/json",
            },
        )

        body = problem(r, 412)
        assert body["type"] == "/problems/precondition-failed"
        assert r.headers["ETag"] == current
        assert await get_json(tenant.client, SETTINGS) == {**DEFAULTS, "min_n": 3}

    @pytest.mark.parametrize("method", ["PUT", "PATCH"])
    async def test_the_current_tag_or_a_star_in_if_match_is_applied(
        self, tenant: Tenant, method: str
    ) -> None:
        media = MERGE_PATCH if method == "PATCH" else "application/json"
        for low_n, header in ((10, await etag(tenant.client)), (11, "*")):
            match = f"{STALE}, {header}" if header != "*" else header
            r = await tenant.client.request(
                method,
                SETTINGS,
                content=json.dumps({"low_n": low_n}).encode(),
                headers={"If-Match": match, "Content-Type": media},
            )
            assert r.status_code == 200, r.text
            assert (await get_json(tenant.client, SETTINGS))["low_n"] == low_n

    async def test_a_weak_tag_never_matches_if_match(self, tenant: Tenant) -> None:
        tag = await etag(tenant.client)

        r = await patch(tenant.client, {"min_n": 2}, headers={"If-Match": f"W/{tag}"})

        problem(r, 412)
        assert await get_json(tenant.client, SETTINGS) == DEFAULTS

    async def test_without_if_match_a_write_is_unconditional(self, tenant: Tenant) -> None:
        await put_settings(tenant.client, {"min_n": 3})

        assert (await patched(tenant.client, {"low_n": 10}))["min_n"] == 3

    async def test_a_tag_read_in_one_workspace_does_not_unlock_another(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")
        await put_settings(other.client, CUSTOM)
        ours = await etag(tenant.client)

        r = await patch(other.client, {"min_n": 2}, headers={"If-Match": ours})

        problem(r, 412)
        assert await get_json(other.client, SETTINGS) == CUSTOM


class TestConcurrentSettingsWrites:
    async def test_patches_sent_at_once_with_the_same_if_match_exactly_one_wins(
        self, committed: Tenant, engine: AsyncEngine
    ) -> None:
        client = committed.client
        tag = await etag(client)

        # Hold the workspace row so every patch is under way, and waiting, before any commits.
        async with engine.connect() as blocker:
            await blocker.execute(
                text("SELECT 1 FROM workspaces WHERE id = :id FOR UPDATE"), {"id": committed.id}
            )
            sent = [
                asyncio.create_task(
                    patch(client, {"min_n": n, "low_n": 10}, headers={"If-Match": tag})
                )
                for n in range(1, 11)
            ]
            await eventually(lambda: _waiting_for_locks(engine, 10), "10 patches waiting")
            await blocker.commit()
        replies = await asyncio.gather(*sent)

        statuses = sorted(r.status_code for r in replies)
        assert statuses == [200] + [412] * 9, [r.text for r in replies]
        [winner] = [r for r in replies if r.status_code == 200]
        stored = await get_json(client, SETTINGS)
        assert stored["min_n"] == winner.json()["min_n"]
        assert await etag(client) == winner.headers["ETag"]

    async def test_patches_of_different_fields_at_once_all_land(self, committed: Tenant) -> None:
        client = committed.client
        changes = [("role_weights", role) for role in DEFAULT_ROLE_WEIGHTS] + [
            ("job_level_weights", level) for level in DEFAULT_JOB_LEVEL_WEIGHTS
        ]

        replies = await asyncio.gather(
            *(patch(client, {group: {name: 7}}) for group, name in changes)
        )

        assert [r.status_code for r in replies] == [200] * len(changes)
        stored = await get_json(client, SETTINGS)
        for group, name in changes:
            assert stored[group][name] == 7.0, (group, name)


async def _waiting_for_locks(engine: AsyncEngine, count: int) -> bool:
    async with engine.connect() as connection:
        waiting = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting == count)
