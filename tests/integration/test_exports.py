"""GET /v1/exports/responses and /v1/exports/accounts: streamed files, their metadata, the
formula guard, filters, errors before any byte, tenancy."""

import csv
import io
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Scope
from app.scoring import Category
from app.services.exports import EXPORT_PAGE, response_pages
from app.services.responses import ResponseFilters
from tests.support.api import Answer, get_json
from tests.support.clock import WINDOW, at, utc
from tests.support.harness import MakeTenant, Tenant, as_service
from tests.support.problems import assert_invalid

RESPONSES = "/v1/exports/responses"
ACCOUNTS = "/v1/exports/accounts"
CSV = "text/csv; charset=utf-8"
NDJSON = "application/x-ndjson"


def rows_of(r: httpx.Response) -> list[dict[str, str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CSV
    return list(csv.DictReader(io.StringIO(r.content.decode("utf-8"), newline="")))


def lines_of(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == NDJSON
    if r.content == b"":
        return []
    assert r.text.endswith("\n")
    return [json.loads(line) for line in r.text.split("\n")[:-1]]


async def every_response(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """GET /v1/responses across all its pages: what an export must hold, as the API shows it."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await get_json(
            client, "/v1/responses", limit=200, **params, **({"cursor": cursor} if cursor else {})
        )
        out.extend(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def unguard(cell: str) -> str:
    """What an import does with a text cell: one leading quote removed."""
    return cell[1:] if cell.startswith("'") else cell


def parsed(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row of responses read back into the API's JSON values."""
    out: dict[str, Any] = {}
    for name, cell in row.items():
        if name == "score":
            out[name] = int(cell)
        elif name == "excluded":
            out[name] = {"true": True, "false": False}[cell]
        elif name == "attributes":
            out[name] = json.loads(unguard(cell))
        else:
            out[name] = None if cell == "" else unguard(cell)
    return out


class TestExportResponses:
    async def test_more_rows_than_a_page_in_csv_and_ndjson_match_the_api(
        self, tenant: Tenant
    ) -> None:
        total = 2 * EXPORT_PAGE + 37
        await tenant.db.answers(
            [Answer(f"p{i}", f"acct{i % 7}", i % 11, at(i / 100)) for i in range(total)]
        )
        expected = sorted(await every_response(tenant.client), key=lambda item: item["id"])
        assert len(expected) == total

        ndjson = lines_of(await tenant.client.get(RESPONSES, params={"format": "ndjson"}))
        assert ndjson == expected

        r = await tenant.client.get(RESPONSES)
        rows = rows_of(r)
        assert list(rows[0]) == list(expected[0])
        assert [parsed(row) for row in rows] == expected
        assert r.content.count(b"\r\n") == total + 1

    async def test_headers_name_the_file_and_what_it_holds(self, tenant: Tenant) -> None:
        r = await tenant.client.get(
            RESPONSES, params={"format": "ndjson", "account_id": "acme", **WINDOW}
        )
        assert r.status_code == 200
        assert r.content == b""
        stamp = r.headers["export-generated-at"]
        compact = stamp[:19].replace("-", "").replace(":", "")  # to the second
        assert r.headers["content-disposition"] == (
            f'attachment; filename="responses-{compact}Z.ndjson"'
        )
        assert r.headers["export-from"] == "2026-01-01T00:00:00Z"
        assert r.headers["export-to"] == "2026-04-01T00:00:00Z"
        assert r.headers["export-filters"] == (
            "account_id=acme&from=2026-01-01T00%3A00%3A00Z&to=2026-04-01T00%3A00%3A00Z"
        )
        assert "export-method" not in r.headers
        link = r.headers["link"]
        assert link.startswith(f"<{RESPONSES}/metadata?")
        assert link.endswith('>; rel="describedby"')

    async def test_an_empty_csv_is_its_header_row(self, tenant: Tenant) -> None:
        r = await tenant.client.get(RESPONSES, params={"format": "csv"})
        assert r.status_code == 200
        assert r.content == (
            b"id,external_id,stakeholder_id,account_id,role,job_level,department,score,"
            b"category,comment,submitted_at,survey,channel,attributes,excluded,"
            b"excluded_reason,created_at,updated_at\r\n"
        )

    async def test_filters_are_those_of_the_list(self, tenant: Tenant) -> None:
        answers = [
            Answer("a-u", "a", 10, utc(2026, 1, 5), role="user", survey="q1"),
            Answer("a-dm", "a", 3, utc(2026, 2, 5), role="decision_maker", survey="q1"),
            Answer("b-dm", "b", 9, utc(2026, 3, 5), role="decision_maker"),
            Answer("b-u", "b", 2, utc(2025, 12, 5), role="user"),
        ]
        await tenant.db.answers(answers, excluded=[2])
        for params in (
            {"account_id": "a"},
            {"role": "decision_maker"},
            {"category": "detractor"},
            {"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
            {"excluded": "false"},
            {"survey": "q1", "role": "user"},
            {"stakeholder_id": "b-u"},
        ):
            expected = sorted(await every_response(tenant.client, **params), key=lambda x: x["id"])
            assert expected, params
            got = lines_of(
                await tenant.client.get(RESPONSES, params={**params, "format": "ndjson"})
            )
            assert got == expected, params
        got = lines_of(
            await tenant.client.get(RESPONSES, params={"format": "ndjson", "role": "influencer"})
        )
        assert got == []

    async def test_text_cells_are_guarded_and_numbers_are_not(self, tenant: Tenant) -> None:
        comments = {
            '=HYPERLINK("http://x")': '\'=HYPERLINK("http://x")',
            "+1": "'+1",
            "-1": "'-1",
            "@SUM(A1)": "'@SUM(A1)",
            "\tcmd": "'\tcmd",
            "\rcmd": "'\rcmd",
            "   =1+1": "'   =1+1",
            "'quoted": "''quoted",
            "fine = good": "fine = good",
        }
        await tenant.db.account("-acme")
        await tenant.db.stakeholder("@bob", "-acme")
        for i, comment in enumerate(comments):
            await tenant.db.respond("@bob", (i % 3, at(i)), comment=comment)
        rows = rows_of(await tenant.client.get(RESPONSES))
        assert sorted(row["comment"] for row in rows) == sorted(comments.values())
        assert {row["account_id"] for row in rows} == {"'-acme"}
        assert {row["stakeholder_id"] for row in rows} == {"'@bob"}
        assert sorted(row["score"] for row in rows) == ["0", "0", "0", "1", "1", "1", "2", "2", "2"]
        # NDJSON is JSON, read as data: nothing in it is altered.
        lines = lines_of(await tenant.client.get(RESPONSES, params={"format": "ndjson"}))
        assert sorted(line["comment"] for line in lines) == sorted(comments)

    async def test_another_workspace_rows_never_appear(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("other")
        await other.db.answers([Answer("theirs", "acme", 10, at(1))])
        await tenant.db.answers([Answer("ours", "acme", 3, at(1))])
        for client, who in ((tenant.client, "ours"), (other.client, "theirs")):
            rows = rows_of(await client.get(RESPONSES))
            assert [row["stakeholder_id"] for row in rows] == [who]
            assert [
                x["stakeholder_id"]
                for x in lines_of(await client.get(RESPONSES, params={"format": "ndjson"}))
            ] == [who]

    async def test_a_read_key_may_export(self, tenant: Tenant) -> None:
        key = await tenant.make_key(Scope.READ)
        r = await tenant.client.get(RESPONSES, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200

    @pytest.mark.parametrize(
        ("params", "loc"),
        [
            ({"format": "xlsx"}, ["query", "format"]),
            ({"format": ""}, ["query", "format"]),
            ({"role": "boss"}, ["query", "role"]),
            ({"category": "fan"}, ["query", "category"]),
            ({"from": "yesterday"}, ["query", "from"]),
            ({"from": "2026-01-01T00:00:00"}, ["query", "from"]),
            ({"excluded": "maybe"}, ["query", "excluded"]),
            ({"account_id": "no spaces"}, ["query", "account_id"]),
            ({"limit": "10"}, ["query", "limit"]),
        ],
    )
    async def test_bad_input_is_a_problem_before_any_byte(
        self, tenant: Tenant, params: dict[str, str], loc: list[str]
    ) -> None:
        r = await tenant.client.get(RESPONSES, params=params)
        assert_invalid(r, loc)
        assert "content-disposition" not in r.headers

    async def test_the_sidecar_states_filters_and_columns(self, tenant: Tenant) -> None:
        meta = await get_json(
            tenant.client, f"{RESPONSES}/metadata", format="ndjson", role="user", excluded="false"
        )
        assert meta["kind"] == "responses"
        assert (meta["format"], meta["media_type"]) == ("ndjson", NDJSON)
        assert (meta["method"], meta["from"], meta["to"]) == (None, None, None)
        assert meta["filters"] == {"role": "user", "excluded": "false"}
        kinds = {c["name"]: c["type"] for c in meta["columns"]}
        assert kinds["score"] == "number"
        assert kinds["excluded"] == "boolean"
        assert kinds["attributes"] == "json"
        assert kinds["comment"] == "text"
        assert "generated_at" in meta
        assert "single quote" in meta["formula_guard"]


ADJUSTED_WALD_5_3_2 = (-19.05, 65.20)  # SPEC.md's example, P/Pa/D = 5/3/2 at 95 %


class TestExportAccounts:
    @pytest.fixture
    async def accounts(self, tenant: Tenant) -> Tenant:
        await tenant.db.account("good", industry="technology", annual_revenue="1200000.50")
        await tenant.db.account("=bad", name='=HYPERLINK("x")', segment="-smb")
        await tenant.db.account("unheard")
        scores = [10] * 5 + [8] * 3 + [3] * 2
        await tenant.db.answers(
            [Answer(f"g{i}", "good", s, at(i)) for i, s in enumerate(scores)]
            + [Answer(f"b{i}", "=bad", s, at(i)) for i, s in enumerate([10, 2, 6])]
        )
        return tenant

    async def test_each_account_with_its_score_standing_and_reasons(self, accounts: Tenant) -> None:
        r = await accounts.client.get(ACCOUNTS, params={**WINDOW, "method": "respondent"})
        rows = rows_of(r)
        assert r.headers["export-method"] == "respondent"
        assert r.headers["export-from"] == "2026-01-01T00:00:00Z"
        assert [row["account_id"] for row in rows] == ["'=bad", "good", "unheard"]
        bad, good, unheard = rows
        # good: 5/3/2 -> NPS 30 (100 x (5 - 2) / 10), within technology's 30..50.
        assert (good["nps"], good["n"], good["promoters"], good["passives"]) == (
            "30.0",
            "10",
            "5",
            "3",
        )
        assert good["detractors"] == "2"
        assert good["precision"] == "low"
        assert (round(float(good["ci_low"]), 2), round(float(good["ci_high"]), 2)) == (
            ADJUSTED_WALD_5_3_2
        )
        assert (good["ci_level"], good["ci_method"]) == ("0.95", "adjusted_wald")
        assert (good["benchmark_low"], good["benchmark_high"]) == ("30.0", "50.0")
        assert good["benchmark_position"] == "within"
        assert good["annual_revenue"] == "1200000.50"
        # =bad: 1/0/2 -> 100 x (1 - 2) / 3, a negative number written bare.
        assert float(bad["nps"]) == pytest.approx(-100 / 3)
        assert f",{bad['nps']}," in r.text
        assert bad["nps"].startswith("-")
        assert bad["name"] == '\'=HYPERLINK("x")'
        assert bad["segment"] == "'-smb"
        assert bad["precision"] == "insufficient"
        assert bad["benchmark_position"] == "unknown"
        assert (unheard["nps"], unheard["n"], unheard["ci_low"]) == ("", "0", "")
        # The reasons are the at-risk list's, for every account it flags.
        at_risk = await get_json(
            accounts.client, "/v1/accounts/at-risk", **WINDOW, method="respondent"
        )
        flagged = {
            item["account_id"]: " ".join(x["code"] for x in item["reasons"])
            for item in at_risk["data"]
        }
        assert {unguard(row["account_id"]): row["at_risk_reasons"] for row in rows} == {
            name: flagged.get(name, "") for name in ("=bad", "good", "unheard")
        }
        assert "silent" in unheard["at_risk_reasons"].split()

    async def test_ndjson_lines_are_the_at_risk_objects(self, accounts: Tenant) -> None:
        lines = lines_of(await accounts.client.get(ACCOUNTS, params={**WINDOW, "format": "ndjson"}))
        assert [line["account_id"] for line in lines] == ["=bad", "good", "unheard"]
        at_risk = await get_json(accounts.client, "/v1/accounts/at-risk", **WINDOW)
        for item in at_risk["data"]:
            assert next(x for x in lines if x["account_id"] == item["account_id"]) == item
        assert lines[1]["score"]["nps"] == 30.0

    async def test_filters_and_method_are_echoed(self, accounts: Tenant) -> None:
        r = await accounts.client.get(
            ACCOUNTS, params={**WINDOW, "segment": "-smb", "method": "role_weighted"}
        )
        assert [row["account_id"] for row in rows_of(r)] == ["'=bad"]
        assert r.headers["export-filters"] == "segment=-smb"
        assert r.headers["export-method"] == "role_weighted"
        meta = await get_json(accounts.client, f"{ACCOUNTS}/metadata", **WINDOW, confidence="0.9")
        assert (meta["kind"], meta["format"], meta["media_type"]) == ("accounts", "csv", CSV)
        assert (meta["from"], meta["to"]) == ("2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z")
        assert (meta["method"], meta["ci_method"], meta["confidence"]) == (
            "latest_per_stakeholder",
            "adjusted_wald",
            0.9,
        )
        assert [c["name"] for c in meta["columns"]][:3] == ["account_id", "name", "segment"]

    async def test_another_workspace_accounts_never_appear(
        self, accounts: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("other")
        await other.db.account("theirs")
        rows = rows_of(await other.client.get(ACCOUNTS, params=WINDOW))
        assert [row["account_id"] for row in rows] == ["theirs"]
        rows = rows_of(await accounts.client.get(ACCOUNTS, params=WINDOW))
        assert "theirs" not in {row["account_id"] for row in rows}

    @pytest.mark.parametrize(
        ("params", "loc"),
        [
            ({"format": "json"}, ["query", "format"]),
            ({"method": "account_as_unit"}, ["query", "method"]),
            ({"method": "loudest"}, ["query", "method"]),
            ({"from": "2026-05-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}, ["query", "from"]),
            ({"confidence": "0.2"}, ["query", "confidence"]),
            ({"segment": ""}, ["query", "segment"]),
        ],
    )
    async def test_bad_input_is_a_problem_before_any_byte(
        self, tenant: Tenant, params: dict[str, str], loc: list[str]
    ) -> None:
        r = await tenant.client.get(ACCOUNTS, params=params)
        assert_invalid(r, loc)
        assert "content-disposition" not in r.headers


class TestResponsePages:
    async def test_pages_are_bounded_and_in_id_order_in_the_workspace_only(
        self,
        tenant: Tenant,
        make_tenant: MakeTenant,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        other = await make_tenant("other")
        await other.db.answers([Answer(f"o{i}", "acme", 9, at(i)) for i in range(4)])
        ids = await tenant.db.answers([Answer(f"p{i}", "acme", i, at(i)) for i in range(7)])
        pages = [
            [row.id for row in page]
            async for page in response_pages(
                as_service(sessionmaker), tenant.id, ResponseFilters(), page_size=3
            )
        ]
        assert [len(page) for page in pages] == [3, 3, 1]
        assert [str(i) for page in pages for i in page] == sorted(ids)

    async def test_a_last_full_page_ends_the_export(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await tenant.db.answers([Answer(f"p{i}", "acme", i, at(i)) for i in range(6)])
        filters = ResponseFilters(category=Category.DETRACTOR)  # scores 0-5: all six
        pages = [
            len(page)
            async for page in response_pages(
                as_service(sessionmaker), tenant.id, filters, page_size=3
            )
        ]
        assert pages == [3, 3]

    async def test_head_sends_the_headers_only(self, tenant: Tenant) -> None:
        await tenant.db.answers([Answer("p", "acme", 9, at(1))])
        r = await tenant.client.head(RESPONSES)
        assert r.status_code == 200
        assert r.headers["content-type"] == CSV
        assert r.content == b""


def batch_item(row: dict[str, Any]) -> dict[str, Any]:
    """A response read back from the CSV, as POST /v1/responses/batch takes it."""
    item: dict[str, Any] = {
        "stakeholder": {
            "id": row["stakeholder_id"],
            "account_id": row["account_id"],
            "role": row["role"],
            "job_level": row["job_level"],
            "account": {"name": row["account_id"]},
        },
        "score": row["score"],
        "submitted_at": row["submitted_at"],
        "channel": row["channel"],
        "attributes": row["attributes"],
    }
    if row["department"] is not None:
        item["stakeholder"]["department"] = row["department"]
    for name in ("comment", "survey", "external_id"):
        if row[name] is not None:
            item[name] = row[name]
    return item


class TestRoundTrip:
    async def test_the_csv_read_back_and_recorded_elsewhere_gives_the_same_scores(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        answers = [
            Answer("dm1", "acme", 9, at(1), role="decision_maker", job_level="executive"),
            Answer("dm1", "acme", 4, at(20), role="decision_maker", job_level="executive"),
            Answer("inf", "acme", 8, at(3), role="influencer", department="=Finance"),
            Answer("u1", "acme", 10, at(4), role="user", survey="q1"),
            Answer("u1", "acme", 6, at(30), role="influencer", survey="q1"),
            Answer("u2", "-beta", 2, at(5), role="user"),
            Answer("u3", "-beta", 10, at(6), role="user"),
            Answer("u4", "-beta", 7, at(7), role="other"),
        ]
        await tenant.db.answers(answers, excluded=[7])
        rows = [parsed(row) for row in rows_of(await tenant.client.get(RESPONSES))]
        assert {row["account_id"] for row in rows} == {"acme", "-beta"}

        copy = await make_tenant("copy")
        ordered = sorted(rows, key=lambda row: row["submitted_at"])
        r = await copy.client.post(
            "/v1/responses/batch", json={"responses": [batch_item(row) for row in ordered]}
        )
        assert r.status_code == 200, r.text
        for row, result in zip(ordered, r.json()["results"], strict=True):
            if row["excluded"]:
                patch = {"excluded": True, "reason": row["excluded_reason"]}
                r = await copy.client.patch(f"/v1/responses/{result['id']}", json=patch)
                assert r.status_code == 200, r.text

        for params in (
            {"method": "respondent"},
            {"method": "latest_per_stakeholder", "group_by": "role"},
            {"method": "role_weighted", "group_by": "account"},
            {"method": "decision_maker_first", "group_by": "department"},
            {"method": "latest_per_stakeholder", "survey": "q1"},
        ):
            original = await get_json(tenant.client, "/v1/nps", **WINDOW, **params)
            copied = await get_json(copy.client, "/v1/nps", **WINDOW, **params)
            assert copied["score"] == original["score"], params
            assert [g["score"] for g in copied["groups"] or []] == [
                g["score"] for g in original["groups"] or []
            ], params
        # latest per stakeholder: dm1 4, inf 8, u1 6 (acme); u2 2, u3 10 (-beta; u4 excluded).
        score = (await get_json(copy.client, "/v1/nps", **WINDOW))["score"]
        assert (score["promoters"], score["passives"], score["detractors"]) == (1, 1, 3)
