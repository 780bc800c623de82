"""Survey definitions: PUT (create or replace), GET one, list with paging, DELETE, tenancy, the
attribute catalog on responses (single, batch, corrections), and the `company` setting."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import session_scope
from app.models import Role, Scope
from app.services.surveys import company_name, find_definition, texts_for
from tests.support.api import get_json, ids, put_account, put_stakeholder, without_stamps
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_forbidden, assert_invalid, assert_not_found

RELATIONSHIP: dict[str, Any] = {
    "question": "How likely are you to recommend {company} to a peer?",
    "questions_by_role": {"decision_maker": "Would you recommend {company} to another executive?"},
    "attributes": [
        {"key": "support", "label": "Support", "scale": 5},
        {"key": "onboarding", "label": "Onboarding", "scale": 3},
    ],
    "follow_up": "What should we change first?",
    "thank_you": "Thank you!",
    "low_label": None,
    "high_label": None,
    "texts": {
        "de": {
            "question": "Würden Sie {company} weiterempfehlen?",
            "questions_by_role": {},
            "attributes": {"onboarding": "Einführung"},
            "follow_up": None,
            "thank_you": None,
            "low_label": None,
            "high_label": None,
        }
    },
}
EMPTY: dict[str, Any] = {
    "question": None,
    "questions_by_role": {},
    "attributes": [],
    "follow_up": None,
    "thank_you": None,
    "low_label": None,
    "high_label": None,
    "texts": {},
}
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


async def put_survey(
    tenant: Tenant, survey_id: str, body: dict[str, Any], status: int = 201
) -> None:
    r = await tenant.client.put(f"/v1/surveys/{survey_id}", json=body)
    assert r.status_code == status, r.text


async def register_kim(tenant: Tenant) -> None:
    await put_account(tenant.client, "acme")
    await put_stakeholder(tenant.client, "kim", "acme", role="user")


async def count_surveys(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with session_scope(sessionmaker) as session:
        return int(await session.scalar(text("SELECT count(*) FROM surveys")) or 0)


class TestPutSurvey:
    async def test_new_id_is_created_with_201_and_read_back(self, tenant: Tenant) -> None:
        r = await tenant.client.put("/v1/surveys/relationship-2026", json=RELATIONSHIP)
        assert r.status_code == 201, r.text
        assert r.headers["content-type"] == "application/json"
        assert without_stamps(r.json()) == {"id": "relationship-2026", **RELATIONSHIP}
        assert r.json()["created_at"] == r.json()["updated_at"]

        got = await get_json(tenant.client, "/v1/surveys/relationship-2026")
        assert got == r.json()

    async def test_known_id_is_replaced_with_200(self, tenant: Tenant) -> None:
        await put_survey(tenant, "nps", RELATIONSHIP)
        r = await tenant.client.put("/v1/surveys/nps", json={"thank_you": "Danke"})
        assert r.status_code == 200, r.text
        # PUT replaces: what the body leaves out is back to its default, not kept.
        assert without_stamps(r.json()) == {"id": "nps", **EMPTY, "thank_you": "Danke"}
        got = await get_json(tenant.client, "/v1/surveys/nps")
        assert without_stamps(got) == {"id": "nps", **EMPTY, "thank_you": "Danke"}

    async def test_an_empty_body_is_a_definition_with_the_defaults(self, tenant: Tenant) -> None:
        r = await tenant.client.put("/v1/surveys/plain", json={})
        assert r.status_code == 201
        assert without_stamps(r.json()) == {"id": "plain", **EMPTY}

    async def test_a_replace_moves_updated_at_and_keeps_created_at(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await put_survey(tenant, "nps", {})
        async with session_scope(sessionmaker) as session:
            await session.execute(
                text("UPDATE surveys SET created_at = :at, updated_at = :at WHERE id = 'nps'"),
                {"at": LONG_AGO},
            )
        r = await tenant.client.put("/v1/surveys/nps", json={"follow_up": "Why?"})
        assert r.status_code == 200
        assert r.json()["created_at"] == "2020-01-01T00:00:00Z"
        assert r.json()["updated_at"] != "2020-01-01T00:00:00Z"

    async def test_invalid_bodies_are_422_naming_the_field_and_nothing_is_stored(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        cases: list[tuple[dict[str, Any], list[Any]]] = [
            ({"question": "Hi {first_name}?"}, ["body", "question"]),
            ({"texts": {"de": {"thank_you": "{Firma}"}}}, ["body", "texts", "de", "thank_you"]),
            ({"colour": "red"}, ["body", "colour"]),
            (
                {"attributes": [{"key": "s", "label": "S", "scale": "5"}]},
                ["body", "attributes", 0, "scale"],
            ),
            (
                {"attributes": [{"key": "s", "label": "S"}, {"key": "s", "label": "T"}]},
                ["body", "attributes"],
            ),
            ({"questions_by_role": {"ceo": "Q?"}}, ["body", "questions_by_role", "ceo", "[key]"]),
            ({"texts": {"not a tag": {}}}, ["body", "texts", "not a tag", "[key]"]),
        ]
        for body, loc in cases:
            r = await tenant.client.put("/v1/surveys/nps", json=body)
            assert_invalid(r, loc)
        r = await tenant.client.put("/v1/surveys/nps", json={"question": "Hi {first_name}?"})
        assert "{company} is the only placeholder" in r.json()["errors"][0]["msg"]
        assert await count_surveys(sessionmaker) == 0

    async def test_an_invalid_replacement_keeps_the_stored_definition(self, tenant: Tenant) -> None:
        await put_survey(tenant, "nps", RELATIONSHIP)
        assert_invalid(await tenant.client.put("/v1/surveys/nps", json={"question": "{x}"}))
        got = await get_json(tenant.client, "/v1/surveys/nps")
        assert without_stamps(got) == {"id": "nps", **RELATIONSHIP}

    async def test_an_id_outside_the_alphabet_is_422(self, tenant: Tenant) -> None:
        for bad in ("has space", "x" * 101, "caf\u00e9"):
            assert_invalid(await tenant.client.put(f"/v1/surveys/{bad}", json={}))
        assert await get_json(tenant.client, "/v1/surveys") == {"data": [], "next_cursor": None}

    async def test_every_definable_id_names_a_survey_on_responses_and_invitations(
        self, tenant: Tenant
    ) -> None:
        await register_kim(tenant)
        for survey_id in ("x" * 100, "team@acme.example", "q4:relationship_2026.v-2"):
            await put_survey(tenant, survey_id, RELATIONSHIP)
            answer = {"stakeholder_id": "kim", "score": 9, "survey": survey_id}

            refused = {**answer, "attributes": {"support": 6}}
            assert_invalid(await tenant.client.post("/v1/responses", json=refused))
            r = await tenant.client.post("/v1/responses", json=answer)
            assert (r.status_code, r.json()["survey"]) == (201, survey_id), r.text
            invitation = {"stakeholder_id": "kim", "survey": survey_id, "channel": "link"}
            r = await tenant.client.post("/v1/invitations", json=invitation)
            assert r.status_code in (200, 201), r.text
            assert r.json()["survey"] == survey_id

    async def test_a_read_key_is_403_and_stores_nothing(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        read = tenant.client.headers.copy()
        read["Authorization"] = f"Bearer {await tenant.make_key(Scope.READ)}"
        assert_forbidden(await tenant.client.put("/v1/surveys/nps", json={}, headers=read))
        assert_forbidden(await tenant.client.delete("/v1/surveys/nps", headers=read))
        assert await count_surveys(sessionmaker) == 0
        r = await tenant.client.get("/v1/surveys", headers=read)
        assert r.status_code == 200


class TestGetAndDelete:
    async def test_an_id_without_a_definition_is_404(self, tenant: Tenant) -> None:
        assert_not_found(await tenant.client.get("/v1/surveys/nope"))
        assert_not_found(await tenant.client.delete("/v1/surveys/nope"))

    async def test_delete_is_204_then_404(self, tenant: Tenant) -> None:
        await put_survey(tenant, "nps", RELATIONSHIP)
        r = await tenant.client.delete("/v1/surveys/nps")
        assert r.status_code == 204
        assert r.content == b""
        assert_not_found(await tenant.client.get("/v1/surveys/nps"))
        assert_not_found(await tenant.client.delete("/v1/surveys/nps"))

    async def test_deleting_a_definition_keeps_its_responses_and_their_survey(
        self, tenant: Tenant
    ) -> None:
        await put_survey(tenant, "nps", RELATIONSHIP)
        await register_kim(tenant)
        r = await tenant.client.post(
            "/v1/responses",
            json={
                "stakeholder_id": "kim",
                "score": 9,
                "survey": "nps",
                "attributes": {"support": 5},
            },
        )
        assert r.status_code == 201, r.text
        stored = r.json()
        assert (await tenant.client.delete("/v1/surveys/nps")).status_code == 204

        assert await get_json(tenant.client, f"/v1/responses/{stored['id']}") == stored
        report = await get_json(tenant.client, "/v1/nps", survey="nps")
        assert report["score"]["n"] == 1
        # No definition now: the id is free again and its catalog is gone.
        r = await tenant.client.post(
            "/v1/responses",
            json={
                "stakeholder_id": "kim",
                "score": 8,
                "survey": "nps",
                "attributes": {"support": 9},
            },
        )
        assert r.status_code == 201, r.text


class TestListSurveys:
    async def test_pages_follow_the_cursor(self, tenant: Tenant) -> None:
        for survey_id in ("s1", "s2", "s3"):
            await put_survey(tenant, survey_id, {})
        first = await tenant.client.get("/v1/surveys", params={"limit": 2})
        assert ids(first) == ["s1", "s2"]
        assert first.json()["data"][0] == await get_json(tenant.client, "/v1/surveys/s1")
        second = await tenant.client.get(
            "/v1/surveys", params={"limit": 2, "cursor": first.json()["next_cursor"]}
        )
        assert ids(second) == ["s3"]
        assert second.json()["next_cursor"] is None

    async def test_updated_since(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await put_survey(tenant, "old", {})
        await put_survey(tenant, "new", {})
        async with session_scope(sessionmaker) as session:
            await session.execute(
                text("UPDATE surveys SET updated_at = :at WHERE id = 'old'"), {"at": LONG_AGO}
            )
        since = {"updated_since": "2021-01-01T00:00:00Z"}
        assert ids(await tenant.client.get("/v1/surveys", params=since)) == ["new"]
        assert ids(await tenant.client.get("/v1/surveys")) == ["old", "new"]

    async def test_a_bad_cursor_is_422(self, tenant: Tenant) -> None:
        assert_invalid(await tenant.client.get("/v1/surveys", params={"cursor": "nonsense"}))


class TestTenancy:
    async def test_another_workspace_sees_and_changes_nothing(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        await put_survey(tenant, "nps", RELATIONSHIP)
        other = await make_tenant("other")

        assert (await other.client.get("/v1/surveys")).json() == {"data": [], "next_cursor": None}
        assert_not_found(await other.client.get("/v1/surveys/nps"))
        assert_not_found(await other.client.delete("/v1/surveys/nps"))
        # The same id is the other workspace's own survey: created there, not replaced here.
        await put_survey(other, "nps", {"thank_you": "Other"}, status=201)
        assert (await get_json(other.client, "/v1/surveys/nps"))["thank_you"] == "Other"

        mine = await get_json(tenant.client, "/v1/surveys/nps")
        assert without_stamps(mine) == {"id": "nps", **RELATIONSHIP}
        assert ids(await tenant.client.get("/v1/surveys")) == ["nps"]

    async def test_another_workspaces_catalog_does_not_apply(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("other")
        await put_survey(other, "nps", RELATIONSHIP)
        await register_kim(tenant)
        r = await tenant.client.post(
            "/v1/responses",
            json={
                "stakeholder_id": "kim",
                "score": 9,
                "survey": "nps",
                "attributes": {"support": 99},
            },
        )
        assert r.status_code == 201, r.text


class TestCatalogOnResponses:
    async def test_a_catalog_rating_off_the_scale_is_422_and_nothing_is_stored(
        self, tenant: Tenant
    ) -> None:
        await put_survey(tenant, "nps", RELATIONSHIP)
        await register_kim(tenant)
        for value in (4, 0, 2.5, True, "3", None):
            r = await tenant.client.post(
                "/v1/responses",
                json={
                    "stakeholder_id": "kim",
                    "score": 9,
                    "survey": "nps",
                    "attributes": {"onboarding": value, "mood": "great"},
                },
            )
            body = assert_invalid(r, ["body", "attributes", "onboarding"])
            assert body["errors"][0]["msg"] == (
                "expected an integer from 1 to 3 (the survey's scale for 'onboarding')"
            )
        assert (await tenant.client.get("/v1/responses")).json()["data"] == []

    async def test_catalog_ratings_on_the_scale_and_free_keys_are_stored(
        self, tenant: Tenant
    ) -> None:
        await put_survey(tenant, "nps", RELATIONSHIP)
        await register_kim(tenant)
        attributes = {"support": 5, "onboarding": 1, "mood": "great", "nps_team": 9.5}
        r = await tenant.client.post(
            "/v1/responses",
            json={"stakeholder_id": "kim", "score": 9, "survey": "nps", "attributes": attributes},
        )
        assert r.status_code == 201, r.text
        assert r.json()["attributes"] == attributes

    async def test_an_inline_stakeholder_is_not_registered_when_the_catalog_refuses(
        self, tenant: Tenant
    ) -> None:
        await put_survey(tenant, "nps", RELATIONSHIP)
        await put_account(tenant.client, "acme")
        r = await tenant.client.post(
            "/v1/responses",
            json={
                "stakeholder": {"id": "new", "account_id": "acme"},
                "score": 9,
                "survey": "nps",
                "attributes": {"support": 6},
            },
        )
        assert_invalid(r, ["body", "attributes", "support"])
        assert_not_found(await tenant.client.get("/v1/stakeholders/new"))

    async def test_a_survey_key_with_a_slash_still_records(self, tenant: Tenant) -> None:
        # No definition can have this id (it would not fit a path): the defaults apply.
        await register_kim(tenant)
        body = {"stakeholder_id": "kim", "score": 9, "survey": "nps/2026", "attributes": {"a": 9}}

        r = await tenant.client.post("/v1/responses", json=body)

        assert (r.status_code, r.json()["survey"]) == (201, "nps/2026"), r.text

    async def test_a_survey_without_a_definition_keeps_attributes_free(
        self, tenant: Tenant
    ) -> None:
        await put_survey(tenant, "nps", RELATIONSHIP)
        await register_kim(tenant)
        for survey in ("other-survey", None):
            r = await tenant.client.post(
                "/v1/responses",
                json={
                    "stakeholder_id": "kim",
                    "score": 9,
                    "survey": survey,
                    "attributes": {"support": 42},
                },
            )
            assert r.status_code == 201, r.text

    async def test_the_batch_refuses_only_the_bad_items(self, tenant: Tenant) -> None:
        await put_survey(tenant, "nps", RELATIONSHIP)
        await put_survey(
            tenant, "support", {"attributes": [{"key": "speed", "label": "Speed", "scale": 10}]}
        )
        await register_kim(tenant)
        items = [
            {"stakeholder_id": "kim", "score": 9, "survey": "nps", "attributes": {"support": 4}},
            {"stakeholder_id": "kim", "score": 9, "survey": "nps", "attributes": {"support": 6}},
            {"stakeholder_id": "kim", "score": 9, "survey": "support", "attributes": {"speed": 10}},
            {"stakeholder_id": "kim", "score": 9, "survey": "support", "attributes": {"speed": 11}},
            {"stakeholder_id": "kim", "score": 9, "survey": "free", "attributes": {"speed": 11}},
            {
                "stakeholder": {"id": "new", "account_id": "acme"},
                "score": 9,
                "survey": "nps",
                "attributes": {"onboarding": 0},
            },
        ]
        r = await tenant.client.post("/v1/responses/batch", json={"responses": items})
        assert r.status_code == 207, r.text
        results = r.json()["results"]
        assert [x["status"] for x in results] == [201, 422, 201, 422, 201, 422]
        assert [e["loc"] for e in results[1]["problem"]["errors"]] == [
            ["body", "responses", 1, "attributes", "support"]
        ]
        assert [e["loc"] for e in results[3]["problem"]["errors"]] == [
            ["body", "responses", 3, "attributes", "speed"]
        ]
        assert [e["loc"] for e in results[5]["problem"]["errors"]] == [
            ["body", "responses", 5, "attributes", "onboarding"]
        ]
        assert len((await tenant.client.get("/v1/responses")).json()["data"]) == 3
        assert_not_found(await tenant.client.get("/v1/stakeholders/new"))

    async def test_a_correction_must_fit_the_catalog(self, tenant: Tenant) -> None:
        await put_survey(tenant, "nps", RELATIONSHIP)
        await register_kim(tenant)
        r = await tenant.client.post(
            "/v1/responses",
            json={
                "stakeholder_id": "kim",
                "score": 9,
                "survey": "nps",
                "attributes": {"support": 4},
            },
        )
        stored = r.json()
        path = f"/v1/responses/{stored['id']}"
        r = await tenant.client.patch(path, json={"attributes": {"support": 7}})
        assert_invalid(r, ["body", "attributes", "support"])
        assert await get_json(tenant.client, path) == stored
        assert len((await tenant.client.get(f"{path}/revisions")).json()["data"]) == 1

        r = await tenant.client.patch(path, json={"attributes": {"support": 2, "free": 70}})
        assert r.status_code == 200, r.text
        assert r.json()["attributes"] == {"support": 2, "free": 70}
        # A patch of other fields does not re-judge the stored attributes.
        r = await tenant.client.patch(path, json={"comment": "ok"})
        assert r.status_code == 200, r.text


class TestCompanySetting:
    async def test_company_defaults_to_the_workspace_name(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        async with session_scope(sessionmaker) as session:
            name = await session.scalar(
                text("SELECT name FROM workspaces WHERE id = :w"), {"w": tenant.id}
            )
            assert await company_name(session, tenant.id) == name
        assert (await get_json(tenant.client, "/v1/settings"))["company"] is None

    async def test_the_setting_fills_company_in_a_definitions_texts(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await put_survey(tenant, "nps", RELATIONSHIP)
        r = await tenant.client.patch(
            "/v1/settings",
            json={"company": "  Acme Corporation "},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["company"] == "Acme Corporation"
        async with session_scope(sessionmaker) as session:
            company = await company_name(session, tenant.id)
            definition = await find_definition(session, tenant.id, "nps")
            assert await find_definition(session, tenant.id, "unknown") is None
        assert company == "Acme Corporation"
        texts = texts_for(definition, role=Role.DECISION_MAKER, locale="de-DE", company=company)
        assert texts.locale == "de"
        assert texts.question == "Würden Sie Acme Corporation weiterempfehlen?"
        assert [a.label for a in texts.attributes] == ["Support", "Einführung"]
        en = texts_for(definition, role=Role.DECISION_MAKER, company=company)
        assert en.question == "Would you recommend Acme Corporation to another executive?"

    async def test_an_empty_or_long_company_is_422(self, tenant: Tenant) -> None:
        for bad in ("", "   ", "x" * 201, 5):
            r = await tenant.client.put("/v1/settings", json={"company": bad})
            assert_invalid(r, ["body", "company"])
        assert (await get_json(tenant.client, "/v1/settings"))["company"] is None

    async def test_the_company_is_the_callers_workspaces_own(
        self,
        tenant: Tenant,
        make_tenant: MakeTenant,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        other = await make_tenant("other")
        r = await other.client.put("/v1/settings", json={"company": "Globex"})
        assert r.status_code == 200
        async with session_scope(sessionmaker) as session:
            assert await company_name(session, tenant.id) != "Globex"
            assert await company_name(session, other.id) == "Globex"
        assert (await get_json(tenant.client, "/v1/settings"))["company"] is None
