"""POST /v1/imports and its job: files of responses, accounts and stakeholders read with the
API's rules, their progress, errors, duplicates, cancel, erasure and tenancy."""

import asyncio
import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import ImportChunk, ImportRowError
from app.services import import_merge, import_runs
from app.services.chain import chain_defects, lock_chains, relink
from tests.support.api import get_json, list_responses, put_account, put_stakeholder
from tests.support.clock import START, WINDOW
from tests.support.harness import TEST_SETTINGS, MakeTenant, Tenant, build_app, new_tenant
from tests.support.imports import (
    NDJSON,
    csv_bytes,
    import_errors,
    imported,
    run_imports,
    upload,
)

HEADER = ["external_id", "stakeholder_id", "score", "comment", "submitted_at"]


def day(n: float) -> str:
    return (START + timedelta(days=n)).isoformat().replace("+00:00", "Z")


async def people(tenant: Tenant, *ids: str, role: str = "decision_maker") -> None:
    await put_account(tenant.client, "acme")
    for who in ids:
        await put_stakeholder(tenant.client, who, "acme", role=role)


async def stored_count(tenant: Tenant) -> int:
    return len(await list_responses(tenant.client))


class TestResponsesFromCsv:
    async def test_valid_rows_are_stored_and_bad_ones_reported_by_row(self, tenant: Tenant) -> None:
        await people(tenant, "dana")
        body = csv_bytes(
            [
                HEADER,
                ["e1", "dana", "9", "great", day(1)],
                ["e2", "dana", "9.5", "", day(2)],
                ["e3", "dana", "yes", "", day(2)],
                ["e4", "dana", "", "", day(2)],
                ["e5", "nobody", "7", "", day(2)],
                ["e6", "dana", "3", "late", day(4)],
                ["e7", "dana", "11", "", day(4)],
                ["e8", "dana", " 9", "", day(4)],
            ]
        )
        job = await imported(tenant, body, kind="responses")
        assert job["status"] == "succeeded", job
        assert job["rows"] == {"read": 8, "stored": 2, "duplicates": 0, "rejected": 6}
        assert job["progress"] == 1.0
        errors = await import_errors(tenant.client, job["id"])
        assert [(e["row"], e["field"]) for e in errors] == [
            (2, "score"),
            (3, "score"),
            (4, "score"),
            (5, "stakeholder_id"),
            (7, "score"),
            (8, "score"),
        ]
        assert errors[0]["raw"] == f"e2,dana,9.5,,{day(2)}"
        stored = await list_responses(tenant.client)
        assert sorted((r["external_id"], r["score"], r["role"], r["channel"]) for r in stored) == [
            ("e1", 9, "decision_maker", "import"),
            ("e6", 3, "decision_maker", "import"),
        ]

    async def test_semicolons_a_bom_quoted_newlines_and_any_header_case(
        self, tenant: Tenant
    ) -> None:
        await people(tenant, "dana")
        body = csv_bytes(
            [
                ["External_ID", "STAKEHOLDER_ID", "Score", "Comment", "Submitted_At"],
                ["e1", "dana", "10", 'two\nlines; and "quotes"', day(1)],
            ],
            delimiter=";",
            bom=True,
        )
        job = await imported(tenant, body, kind="responses")
        assert job["rows"] == {"read": 1, "stored": 1, "duplicates": 0, "rejected": 0}, job
        [row] = await list_responses(tenant.client)
        assert row["comment"] == 'two\nlines; and "quotes"'

    async def test_a_mapping_names_their_columns(self, tenant: Tenant) -> None:
        await people(tenant, "dana")
        body = csv_bytes([["Ref", "Who", "NPS", "Notes"], ["r1", "dana", "8", "fine"]])
        mapping = {"ref": "external_id", "who": "stakeholder_id", "NPS": "score", "notes": None}
        job = await imported(tenant, body, kind="responses", mapping=json.dumps(mapping))
        assert job["rows"]["stored"] == 1, job
        [row] = await list_responses(tenant.client)
        assert (row["external_id"], row["score"], row["comment"]) == ("r1", 8, None)

    async def test_an_unknown_column_fails_the_import_and_stores_nothing(
        self, tenant: Tenant
    ) -> None:
        await people(tenant, "dana")
        body = csv_bytes([["stakeholder_id", "score", "scroe"], ["dana", "8", "x"]])
        job = await imported(tenant, body, kind="responses")
        assert job["status"] == "failed"
        assert "scroe" in job["error"]
        assert await stored_count(tenant) == 0

    async def test_a_file_that_is_not_utf8_fails(self, tenant: Tenant) -> None:
        job = await imported(
            tenant, "stakeholder_id,score\r\nj\xf6rg,9\r\n".encode("latin-1"), kind="responses"
        )
        assert job["status"] == "failed"
        assert "UTF-8" in job["error"]

    async def test_rows_of_inline_people_register_them_with_their_account(
        self, tenant: Tenant
    ) -> None:
        body = csv_bytes(
            [
                ["stakeholder_id", "account_id", "role", "account.name", "score", "submitted_at"],
                ["p1", "newco", "influencer", "New Co", "9", day(1)],
                ["p1", "newco", "user", "New Co", "4", day(2)],
                ["p2", "newco", "chief", "New Co", "4", day(2)],
            ]
        )
        job = await imported(tenant, body, kind="responses")
        assert job["rows"] == {"read": 3, "stored": 2, "duplicates": 0, "rejected": 1}, job
        rows = await list_responses(tenant.client, stakeholder_id="p1")
        # The role each answer was given with: the snapshot, not the person's last role.
        assert sorted((r["score"], r["role"]) for r in rows) == [(4, "user"), (9, "influencer")]
        account = await get_json(tenant.client, "/v1/accounts/newco")
        assert account["name"] == "New Co"
        [error] = await import_errors(tenant.client, job["id"])
        assert (error["row"], error["field"]) == (3, "role")


class TestResponsesFromNdjson:
    async def test_values_are_the_apis_json_values(self, tenant: Tenant) -> None:
        await people(tenant, "dana")
        lines = [
            {"external_id": "n1", "stakeholder_id": "dana", "score": 9, "submitted_at": day(1)},
            {"external_id": "n2", "stakeholder_id": "dana", "score": "9", "submitted_at": day(1)},
            {"external_id": "n3", "stakeholder_id": "dana", "score": True},
            {"external_id": "n4", "stakeholder_id": "dana", "score": 6.0},
        ]
        body = "".join(json.dumps(line) + "\n" for line in lines).encode() + b"\nnot json\n"
        job = await imported(tenant, body, kind="responses", content_type=NDJSON)
        assert job["rows"] == {"read": 5, "stored": 1, "duplicates": 0, "rejected": 4}, job
        errors = await import_errors(tenant.client, job["id"])
        assert [(e["row"], e["field"]) for e in errors] == [
            (2, "score"),
            (3, "score"),
            (4, "score"),
            (6, None),
        ]


class TestDuplicates:
    async def test_the_same_file_twice_is_recognised_and_stores_nothing(
        self, tenant: Tenant
    ) -> None:
        await people(tenant, "dana")
        body = csv_bytes([["stakeholder_id", "score", "submitted_at"], ["dana", "9", day(1)]])
        first = await imported(tenant, body, kind="responses")
        again = await upload(tenant.client, body, kind="responses")
        assert again["duplicate_of"] == first["id"]
        assert again["status"] == "succeeded"
        assert again["sha256"] == first["sha256"]
        assert await run_imports(tenant) == 0
        assert await stored_count(tenant) == 1

    async def test_a_rerun_after_fixing_rejected_rows_stores_only_those(
        self, tenant: Tenant
    ) -> None:
        await people(tenant, "dana", "erin")
        rows = [
            ["external_id", "stakeholder_id", "score", "submitted_at"],
            ["x1", "dana", "9", day(1)],
            ["", "erin", "7", day(1)],
            ["x3", "dana", "9.0", day(2)],
            ["", "erin", "", day(2)],
        ]
        first = await imported(tenant, csv_bytes(rows), kind="responses")
        assert first["rows"] == {"read": 4, "stored": 2, "duplicates": 0, "rejected": 2}
        rows[3][2], rows[4][2] = "10", "6"
        fixed = await imported(tenant, csv_bytes(rows), kind="responses")
        assert fixed["duplicate_of"] is None
        assert fixed["rows"] == {"read": 4, "stored": 2, "duplicates": 2, "rejected": 0}
        scores = sorted(r["score"] for r in await list_responses(tenant.client))
        assert scores == [6, 7, 9, 10]

    async def test_an_external_id_with_other_content_is_rejected(self, tenant: Tenant) -> None:
        await people(tenant, "dana")
        r = await tenant.client.post(
            "/v1/responses",
            json={
                "external_id": "x1",
                "stakeholder_id": "dana",
                "score": 9,
                "submitted_at": day(1),
            },
        )
        assert r.status_code == 201, r.text
        body = csv_bytes(
            [
                ["external_id", "stakeholder_id", "score", "submitted_at", "channel"],
                ["x1", "dana", "9", day(1), "api"],
                ["x1", "dana", "3", day(1), "api"],
                ["x2", "dana", "5", day(3), "api"],
                ["x2", "dana", "5", day(3), "api"],
                ["x2", "dana", "6", day(3), "api"],
            ]
        )
        job = await imported(tenant, body, kind="responses")
        assert job["rows"] == {"read": 5, "stored": 1, "duplicates": 2, "rejected": 2}, job
        errors = await import_errors(tenant.client, job["id"])
        assert [(e["row"], e["field"]) for e in errors] == [(2, "score"), (5, "score")]


class TestAgreesWithTheApi:
    async def test_every_score_endpoint_agrees_with_the_same_rows_sent_through_the_api(
        self, make_tenant: MakeTenant
    ) -> None:
        api, imp = await make_tenant("via-api"), await make_tenant("via-import")
        roles = ["decision_maker", "influencer", "user", "other"]
        answers: list[dict[str, Any]] = []
        for n in range(60):
            who = f"p{n % 13}"
            answers.append(
                {
                    "external_id": f"r{n}",
                    "stakeholder": {
                        "id": who,
                        "account_id": f"acc{n % 4}",
                        "role": roles[(n // 7) % 4],
                        "department": ["Eng", "Ops"][n % 2],
                        "account": {},
                    },
                    "score": (n * 7) % 11,
                    "submitted_at": day(n * 1.3 % 80),
                    "survey": "q1" if n % 3 else "q2",
                    "channel": "import",
                }
            )
        r = await api.client.post("/v1/responses/batch", json={"responses": answers})
        assert r.status_code == 200, r.text
        header = ["external_id", "stakeholder_id", "account_id", "role", "department"]
        header += ["score", "submitted_at", "survey"]
        rows: list[list[Any]] = [header]
        for a in answers:
            s = a["stakeholder"]
            rows.append(
                [
                    a["external_id"],
                    s["id"],
                    s["account_id"],
                    s["role"],
                    s["department"],
                    str(a["score"]),
                    a["submitted_at"],
                    a["survey"],
                ]
            )
        job = await imported(imp, csv_bytes(rows), kind="responses", chunk_rows=7)
        assert job["rows"]["stored"] == 60, job
        for path, params in SCORE_CALLS:
            left = await get_json(api.client, path, **params)
            right = await get_json(imp.client, path, **params)
            assert _without_volatile(left) == _without_volatile(right), (path, params)
        async with imp.db.sessionmaker() as session:
            assert await chain_defects(session, imp.id) == 0


SCORE_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/nps", WINDOW),
    ("/v1/nps", {**WINDOW, "method": "respondent", "group_by": "role"}),
    ("/v1/nps", {**WINDOW, "method": "role_weighted", "group_by": "account"}),
    ("/v1/nps", {**WINDOW, "method": "decision_maker_first", "group_by": "department"}),
    ("/v1/nps", {**WINDOW, "method": "account_as_unit"}),
    ("/v1/nps", {**WINDOW, "group_by": "survey"}),
    ("/v1/accounts/acc1/nps", WINDOW),
    ("/v1/nps/trend", {**WINDOW, "interval": "month"}),
    ("/v1/nps/trend", {**WINDOW, "interval": "week", "group_by": "role"}),
]


def _without_volatile(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: _without_volatile(v) for k, v in body.items() if k not in ("generated_at",)}
    if isinstance(body, list):
        return [_without_volatile(v) for v in body]
    return body


class TestRoundTrip:
    async def test_an_export_imported_elsewhere_gives_the_same_scores(
        self, make_tenant: MakeTenant
    ) -> None:
        source, target = await make_tenant("rt-source"), await make_tenant("rt-target")
        comments = ["=SUM(A1)", "'quoted", "  -1 apples", "@home", "plain", None, "+1", "''x"]
        answers = []
        for n in range(24):
            answers.append(
                {
                    "stakeholder": {
                        "id": f"p{n % 9}",
                        "account_id": f"acc{n % 3}",
                        "role": ["decision_maker", "user"][n % 2],
                        "account": {},
                    },
                    "score": (n * 5) % 11,
                    "submitted_at": day(n * 2.5),
                    "attributes": {"support": n % 5 + 1},
                    **({"comment": comments[n % 8]} if comments[n % 8] is not None else {}),
                }
            )
        r = await source.client.post("/v1/responses/batch", json={"responses": answers})
        assert r.status_code == 200, r.text
        first = (await list_responses(source.client))[0]["id"]
        r = await source.client.patch(
            f"/v1/responses/{first}", json={"excluded": True, "reason": "test entry"}
        )
        assert r.status_code == 200, r.text
        export = await source.client.get("/v1/exports/responses", params={"format": "csv"})
        assert export.status_code == 200, export.text
        job = await imported(target, export.content, kind="responses", chunk_rows=5)
        assert job["rows"] == {"read": 24, "stored": 24, "duplicates": 0, "rejected": 0}, job
        for path, params in SCORE_CALLS:
            if "acc1" in path or "survey" in params.get("group_by", ""):
                continue
            left = await get_json(source.client, path, **params)
            right = await get_json(target.client, path, **params)
            assert _without_volatile(left) == _without_volatile(right), (path, params)
        key = lambda r: (r["stakeholder_id"], r["submitted_at"])  # noqa: E731
        was = sorted(await list_responses(source.client), key=key)
        now = sorted(await list_responses(target.client), key=key)
        fields = ("score", "comment", "attributes", "excluded", "excluded_reason", "role")
        assert [[r[f] for f in fields] for r in now] == [[r[f] for f in fields] for r in was]
        again = await imported(target, export.content, kind="responses")
        assert again["duplicate_of"] == job["id"]


class TestCancel:
    async def test_a_cancel_mid_import_leaves_whole_chunks_and_a_sound_chain(
        self, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await people(tenant, "dana", "erin")
        rows: list[list[str]] = [["stakeholder_id", "score", "submitted_at"]]
        rows += [["dana" if n % 2 else "erin", str(n % 11), day(n)] for n in range(10)]
        job = await upload(tenant.client, csv_bytes(rows), kind="responses")
        original = import_runs.ImportRun._commit_chunk
        calls = 0

        async def then_cancel(self: import_runs.ImportRun, *args: Any) -> bool:
            nonlocal calls
            calls += 1
            merged = await original(self, *args)
            if calls == 2:
                r = await tenant.client.delete(f"/v1/imports/{job['id']}")
                assert r.status_code == 200, r.text
                assert r.json()["status"] == "cancelled"
            return merged

        monkeypatch.setattr(import_runs.ImportRun, "_commit_chunk", then_cancel)
        await run_imports(tenant, chunk_rows=3)
        done = await get_json(tenant.client, f"/v1/imports/{job['id']}")
        assert done["status"] == "cancelled"
        assert done["rows"] == {"read": 6, "stored": 6, "duplicates": 0, "rejected": 0}
        assert calls == 3  # the third chunk found the cancel and merged nothing
        assert await stored_count(tenant) == 6
        async with tenant.db.sessionmaker() as session:
            assert await chain_defects(session, tenant.id) == 0
            left = await session.scalar(
                select(func.count())
                .select_from(ImportChunk)
                .where(ImportChunk.workspace_id == tenant.id)
            )
            assert left == 0
        r = await tenant.client.delete(f"/v1/imports/{job['id']}")
        assert r.status_code == 409

    async def test_a_queued_import_cancelled_never_runs(self, tenant: Tenant) -> None:
        await people(tenant, "dana")
        body = csv_bytes([["stakeholder_id", "score"], ["dana", "9"]])
        job = await upload(tenant.client, body, kind="responses")
        r = await tenant.client.delete(f"/v1/imports/{job['id']}")
        assert r.json()["status"] == "cancelled"
        await run_imports(tenant)
        assert await stored_count(tenant) == 0


async def test_an_import_and_api_writes_for_the_same_people_keep_the_chain_right(
    committed: Tenant,
) -> None:
    client = committed.client
    await client.put("/v1/accounts/a", json={})
    for who in ("p", "q"):
        await client.put(f"/v1/stakeholders/{who}", json={"account_id": "a"})
    rows: list[list[str]] = [["stakeholder_id", "score", "submitted_at"]]
    rows += [["p" if n % 2 else "q", str(n % 11), day(n * 0.4)] for n in range(200)]
    await upload(client, csv_bytes(rows), kind="responses")

    async def api(n: int) -> int:
        body = {"stakeholder_id": "p" if n % 2 else "q", "score": 5, "submitted_at": day(n + 0.25)}
        return (await client.post("/v1/responses", json=body)).status_code

    async def worker() -> None:
        await run_imports(committed, chunk_rows=10)

    _, *statuses = await asyncio.gather(worker(), *(api(n) for n in range(30)))
    assert set(statuses) == {201}
    async with committed.db.sessionmaker() as session:
        assert await chain_defects(session, committed.id) == 0
    score = (await get_json(client, "/v1/nps", **WINDOW, method="respondent"))["score"]
    assert score["n"] == 230


class TestAccountsAndStakeholders:
    async def test_accounts_are_upserted_with_their_fields(self, tenant: Tenant) -> None:
        body = csv_bytes(
            [
                ["id", "name", "industry", "annual_revenue", "currency", "attributes.tier"],
                ["acme", "Acme", "technology", "1200000.50", "EUR", "gold"],
                ["bad id", "Bad", "", "", "", ""],
                ["beta", "Beta", "", "12,5", "", ""],
            ]
        )
        job = await imported(tenant, body, kind="accounts")
        assert job["rows"] == {"read": 3, "stored": 1, "duplicates": 0, "rejected": 2}, job
        acme = await get_json(tenant.client, "/v1/accounts/acme")
        assert (acme["annual_revenue"], acme["attributes"]) == ("1200000.50", {"tier": "gold"})
        errors = await import_errors(tenant.client, job["id"])
        assert [(e["row"], e["field"]) for e in errors] == [(2, "id"), (3, "annual_revenue")]

    async def test_stakeholders_need_their_account_or_its_columns(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")
        body = csv_bytes(
            [
                ["id", "account_id", "role", "email", "account.name"],
                ["dana", "acme", "decision_maker", "dana@acme.example", ""],
                ["erin", "newco", "user", "", "New Co"],
                ["finn", "ghost", "user", "", ""],
            ]
        )
        job = await imported(tenant, body, kind="stakeholders")
        assert job["rows"] == {"read": 3, "stored": 2, "duplicates": 0, "rejected": 1}, job
        erin = await get_json(tenant.client, "/v1/stakeholders/erin")
        assert erin["account_id"] == "newco"
        [error] = await import_errors(tenant.client, job["id"])
        assert (error["row"], error["field"]) == (3, "account_id")


class TestPresets:
    async def test_delighted_csv(self, tenant: Tenant) -> None:
        body = csv_bytes(
            [
                [
                    "Response ID",
                    "Person ID",
                    "Name",
                    "Email",
                    "Score",
                    "Comment",
                    "Created At",
                    "Survey Type",
                    "Company",
                    "Tags",
                    "Notes",
                ],
                [
                    "101",
                    "7",
                    "Dana",
                    "dana@acme.example",
                    "9",
                    "Love it",
                    "1767268800",
                    "nps",
                    "Acme Corp",
                    "vip",
                    "",
                ],
                [
                    "102",
                    "8",
                    "Erin",
                    "erin@beta.example",
                    "3",
                    "=cmd",
                    "2026-01-02 09:00:00 -0500",
                    "nps",
                    "",
                    "",
                    "",
                ],
                [
                    "103",
                    "9",
                    "Finn",
                    "finn@beta.example",
                    "5",
                    "",
                    "2026-01-02 09:00:00",
                    "nps",
                    "",
                    "",
                    "",
                ],
            ]
        )
        job = await imported(tenant, body, preset="delighted")
        assert job["kind"] == "responses"
        assert job["rows"] == {"read": 3, "stored": 2, "duplicates": 0, "rejected": 1}, job
        rows = sorted(await list_responses(tenant.client), key=lambda r: r["external_id"])
        assert [
            (r["external_id"], r["stakeholder_id"], r["account_id"], r["score"], r["submitted_at"])
            for r in rows
        ] == [
            ("delighted:101", "dana@acme.example", "acme-corp", 9, "2026-01-01T12:00:00Z"),
            ("delighted:102", "erin@beta.example", "beta.example", 3, "2026-01-02T14:00:00Z"),
        ]
        assert rows[0]["survey"] == "delighted-nps"
        [error] = await import_errors(tenant.client, job["id"])
        assert (error["row"], error["field"]) == (3, "submitted_at")

    async def test_delighted_json(self, tenant: Tenant) -> None:
        lines = [
            {
                "id": "1",
                "person": {"id": "10", "email": "dana@acme.example", "name": "Dana"},
                "survey_type": "nps",
                "score": 0,
                "comment": None,
                "permalink": "https://app.delighted.com/r/x",
                "created_at": 1767268800,
                "updated_at": None,
                "person_properties": {"Company": "Acme Corp", "country": "USA"},
                "notes": [],
                "tags": [],
                "additional_answers": [],
            }
        ]
        body = "".join(json.dumps(line) + "\n" for line in lines).encode()
        job = await imported(tenant, body, preset="delighted", content_type=NDJSON)
        assert job["rows"]["stored"] == 1, job
        [row] = await list_responses(tenant.client)
        assert (row["external_id"], row["account_id"], row["score"]) == (
            "delighted:1",
            "acme-corp",
            0,
        )

    async def test_crm_contacts_with_their_accounts(self, tenant: Tenant) -> None:
        body = csv_bytes(
            [
                [
                    "Contact ID",
                    "First Name",
                    "Last Name",
                    "Email",
                    "Title",
                    "Department",
                    "Contact Role",
                    "Account ID",
                    "Account Name",
                    "Industry",
                    "Annual Revenue",
                    "Account Type",
                    "Lead Source",
                ],
                [
                    "003A1",
                    "Dana",
                    "Smith",
                    "dana@acme.example",
                    "Chief Technology Officer",
                    "IT",
                    "Decision Maker",
                    "001X",
                    "Acme Corp",
                    "technology",
                    "$1,200,000",
                    "Enterprise",
                    "Web",
                ],
                [
                    "003A2",
                    "Erin",
                    "Jones",
                    "erin@acme.example",
                    "Support Engineer",
                    "Support",
                    "Business User",
                    "001X",
                    "Acme Corp",
                    "technology",
                    "$1,200,000",
                    "Enterprise",
                    "",
                ],
            ]
        )
        job = await imported(tenant, body, preset="crm")
        assert job["kind"] == "stakeholders"
        assert job["rows"] == {"read": 2, "stored": 2, "duplicates": 0, "rejected": 0}, job
        dana = await get_json(tenant.client, "/v1/stakeholders/003A1")
        assert (dana["name"], dana["role"], dana["job_level"], dana["account_id"]) == (
            "Dana Smith",
            "decision_maker",
            "executive",
            "001X",
        )
        erin = await get_json(tenant.client, "/v1/stakeholders/003A2")
        assert (erin["role"], erin["job_level"]) == ("user", "individual_contributor")
        account = await get_json(tenant.client, "/v1/accounts/001X")
        assert (account["name"], account["annual_revenue"]) == ("Acme Corp", "1200000.00")


class TestErrorsFile:
    async def test_errors_as_csv_are_formula_guarded(self, tenant: Tenant) -> None:
        await people(tenant, "dana")
        body = csv_bytes([["stakeholder_id", "score", "comment"], ["dana", "x", "=HYPERLINK()"]])
        job = await imported(tenant, body, kind="responses")
        r = await tenant.client.get(f"/v1/imports/{job['id']}/errors", params={"format": "csv"})
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        rows = list(csv.reader(io.StringIO(r.text)))
        assert rows[0] == ["row", "field", "reason", "raw"]
        assert rows[1][:2] == ["1", "score"]
        assert rows[1][3] == "dana,x,=HYPERLINK()"  # does not start with a formula character


class TestErasure:
    async def test_deleting_a_stakeholder_deletes_the_rejected_rows_naming_them(
        self, tenant: Tenant
    ) -> None:
        await people(tenant, "dana@acme.example", "erin")
        body = csv_bytes(
            [
                ["stakeholder_id", "score"],
                ["dana@acme.example", "x"],
                ["erin", "x"],
                ['"dana@acme.example', "9"],
            ]
        )
        job = await imported(tenant, body, kind="responses")
        assert len(await import_errors(tenant.client, job["id"])) == 3
        r = await tenant.client.delete("/v1/stakeholders/dana@acme.example")
        assert r.status_code == 204, r.text
        assert [e["row"] for e in await import_errors(tenant.client, job["id"])] == [2]
        r = await tenant.client.delete("/v1/accounts/acme")
        assert r.status_code == 204, r.text
        assert await import_errors(tenant.client, job["id"]) == []


class TestUpload:
    async def test_kind_format_and_mapping_are_checked_before_anything_is_stored(
        self, tenant: Tenant
    ) -> None:
        body = b"stakeholder_id,score\r\n"
        r = await tenant.client.post(
            "/v1/imports", content=body, headers={"Content-Type": "text/csv"}
        )
        assert r.status_code == 422
        r = await tenant.client.post(
            "/v1/imports",
            params={"kind": "responses"},
            content=body,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 415
        r = await tenant.client.post(
            "/v1/imports",
            params={"kind": "responses", "mapping": json.dumps({"a": "scroe"})},
            content=body,
            headers={"Content-Type": "text/csv"},
        )
        assert r.status_code == 422
        r = await tenant.client.post(
            "/v1/imports",
            params={"kind": "responses"},
            content=b"",
            headers={"Content-Type": "text/csv"},
        )
        assert r.status_code == 422

    async def test_a_multipart_upload(self, tenant: Tenant) -> None:
        await people(tenant, "dana")
        files = {"file": ("answers.csv", b"stakeholder_id,score\r\ndana,9\r\n", "text/csv")}
        r = await tenant.client.post("/v1/imports", params={"kind": "responses"}, files=files)
        assert r.status_code == 202, r.text
        assert r.headers["location"] == f"/v1/imports/{r.json()['id']}"
        assert (r.json()["file_name"], r.json()["status"]) == ("answers.csv", "queued")
        await run_imports(tenant)
        assert await stored_count(tenant) == 1

    async def test_a_read_key_cannot_upload(self, tenant: Tenant) -> None:
        from app.models import Scope
        from tests.support.harness import client_for

        key = await tenant.make_key(Scope.READ)
        async with client_for(tenant.client._transport.app, key) as reader:  # type: ignore[attr-defined]
            r = await reader.post("/v1/imports", params={"kind": "responses"}, content=b"a")
        assert r.status_code == 403

    async def test_over_the_size_limit_is_413_and_stores_nothing(
        self, sessionmaker: async_sessionmaker[AsyncSession], engine: AsyncEngine
    ) -> None:
        settings = Settings(**TEST_SETTINGS, import_max_bytes=2048)
        app = build_app(sessionmaker, engine, settings=settings)
        tenant = await new_tenant(sessionmaker, app, "small")
        body = b"stakeholder_id,score\r\n" + b"dana,9\r\n" * 400
        r = await tenant.client.post(
            "/v1/imports",
            params={"kind": "responses"},
            content=body,
            headers={"Content-Type": "text/csv"},
        )
        assert r.status_code == 413
        await tenant.client.aclose()


class TestTenancy:
    async def test_another_workspace_sees_nothing_of_an_import(
        self, make_tenant: MakeTenant
    ) -> None:
        mine, theirs = await make_tenant("imp-mine"), await make_tenant("imp-theirs")
        await people(mine, "dana")
        job = await imported(
            mine, csv_bytes([["stakeholder_id", "score"], ["dana", "x"]]), kind="responses"
        )
        for path in (f"/v1/imports/{job['id']}", f"/v1/imports/{job['id']}/errors"):
            assert (await theirs.client.get(path)).status_code == 404
        assert (await theirs.client.delete(f"/v1/imports/{job['id']}")).status_code == 404
        async with theirs.db.sessionmaker() as session:
            seen = await session.scalar(
                select(func.count())
                .select_from(ImportRowError)
                .where(ImportRowError.workspace_id == theirs.id)
            )
        assert seen == 0


async def test_an_upload_may_be_larger_than_other_bodies(tenant: Tenant) -> None:
    """NPS_MAX_BODY_BYTES (2 MiB) bounds every body but the import's (NPS_IMPORT_MAX_BYTES)."""
    body = b"stakeholder_id,score\r\n" + b"dana,9\r\n" * (3 * 1024 * 1024 // 8)
    job = await upload(tenant.client, body, kind="responses")
    assert job["size_bytes"] == len(body) > 2 * 1024 * 1024
    r = await tenant.client.post(
        "/v1/responses", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413


# Stored answers of each person (days), and the rows of the file, in no particular order: before
# all of them, between, at the same instant as a stored one (twice), after all, and people with
# no stored answer at all.
STORED_DAYS = (10, 20, 20, 30, 40)
IMPORTED_DAYS = (45, 5, 20, 15, 35, 20, 25, 45, 31, 1)


async def _stored_chains(tenant: Tenant) -> None:
    client = tenant.client
    await client.put("/v1/accounts/a", json={})
    for who in ("p0", "p1", "p2", "p3", "fresh"):
        await client.put(f"/v1/stakeholders/{who}", json={"account_id": "a"})
    answers = [
        {"stakeholder_id": f"p{k}", "score": (k + n) % 11, "submitted_at": day(d)}
        for k in range(4)
        for n, d in enumerate((*STORED_DAYS, 25))
    ]
    r = await client.post("/v1/responses/batch", json={"responses": answers})
    assert r.status_code == 200, r.text
    # One stored answer excluded (day 25): no link runs through it.
    for stored in await list_responses(client):
        if stored["submitted_at"] == day(25):
            r = await client.patch(
                f"/v1/responses/{stored['id']}", json={"excluded": True, "reason": "test entry"}
            )
            assert r.status_code == 200, r.text


def _keep_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    """These imports commit: the ANALYZE each runs at its end would leave the shared test
    database's statistics describing this tenant's rows (deleted afterwards), and the plan tests
    that run later would be planned on them."""

    async def no_analyze(session: Any) -> None:
        return None

    monkeypatch.setattr("app.services.import_runs.refresh_statistics", no_analyze)


def _file() -> bytes:
    rows: list[list[str]] = [["external_id", "stakeholder_id", "score", "submitted_at"]]
    n = 0
    for d in IMPORTED_DAYS:
        for who in ("p0", "p1", "p2", "p3", "fresh"):
            n += 1
            rows.append([f"imp-{n}", who, str(n % 11), day(d + n / 1000 if n % 3 else d)])
    return csv_bytes(rows)


@pytest.mark.parametrize("chunk_rows", [1, 3, 100])
async def test_rows_filed_anywhere_in_stored_chains_keep_every_link(
    committed: Tenant, chunk_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _keep_statistics(monkeypatch)
    await _stored_chains(committed)
    job = await imported(committed, _file(), kind="responses", chunk_rows=chunk_rows)
    assert job["rows"] == {"read": 50, "stored": 50, "duplicates": 0, "rejected": 0}, job
    async with committed.db.sessionmaker() as session:
        assert await chain_defects(session, committed.id) == 0
    latest = await get_json(committed.client, "/v1/nps", **WINDOW, method="latest_per_stakeholder")
    assert latest["score"]["n"] == 5  # each person once, by their latest answer


async def test_answers_committed_meanwhile_send_their_people_down_the_walk(
    committed: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer of the same instant committed after the chunk's transaction began sorts after
    the chunk's rows (a later created_at), and a row whose external_id another writer stored
    meanwhile does not go in: the probes cannot place those people's rows, so their chains are
    walked (relink), and every link still holds."""
    _keep_statistics(monkeypatch)
    await _stored_chains(committed)
    client = committed.client
    original_store = import_merge.ResponseChunk._store
    walked: list[set[str]] = []

    async def same_instant_first(session: Any, workspace_id: Any, people: Any) -> None:
        # The chunk's transaction has begun (its now() is fixed); p1's chain is not locked yet.
        if not walked:
            body = {"stakeholder_id": "p1", "score": 2, "submitted_at": day(20)}
            r = await client.post("/v1/responses", json=body)
            assert r.status_code == 201, r.text
        await lock_chains(session, workspace_id, people)

    async def taken_meanwhile(self: import_merge.ResponseChunk, rows: Any) -> None:
        # imp-1 is p0's row in the file; p3 has no row in this chunk, so no lock waits.
        if not walked:
            body = {"stakeholder_id": "p3", "score": 4, "external_id": "imp-1"}
            r = await client.post("/v1/responses", json=body)
            assert r.status_code == 201, r.text
        await original_store(self, rows)

    async def spy(session: Any, workspace_id: Any, since: Any, **kwargs: Any) -> None:
        walked.append(set(since))
        await relink(session, workspace_id, since, **kwargs)

    monkeypatch.setattr("app.services.import_merge.lock_chains", same_instant_first)
    monkeypatch.setattr(import_merge.ResponseChunk, "_store", taken_meanwhile)
    monkeypatch.setattr("app.services.import_merge.relink", spy)
    rows: list[list[str]] = [["external_id", "stakeholder_id", "score", "submitted_at"]]
    rows += [["imp-1", "p0", "9", day(15)], ["imp-2", "p1", "8", day(20)]]
    rows += [["imp-3", "p2", "7", day(20)]]
    job = await imported(committed, csv_bytes(rows), kind="responses", chunk_rows=100)
    assert job["rows"] == {"read": 3, "stored": 2, "duplicates": 1, "rejected": 0}, job
    assert walked == [{"p0", "p1"}]  # p2's stored answers of day 20 were all there before
    async with committed.db.sessionmaker() as session:
        assert await chain_defects(session, committed.id) == 0
