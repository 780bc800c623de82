"""POST /v1/imports and its job: files of responses, accounts and stakeholders read with the
API's rules, their progress, errors, duplicates and cancel."""

from tests.support.api import list_responses, put_account, put_stakeholder
from tests.support.harness import Tenant
from tests.support.imports import csv_bytes, import_errors, imported

HEADER = ["external_id", "stakeholder_id", "score", "comment", "submitted_at"]


class TestResponsesFromCsv:
    async def test_valid_rows_are_stored_and_bad_ones_reported_by_row(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")
        await put_stakeholder(tenant.client, "dana", "acme", role="decision_maker")
        body = csv_bytes(
            [
                HEADER,
                ["e1", "dana", "9", "great", "2026-01-02T10:00:00Z"],
                ["e2", "dana", "9.5", "", "2026-01-03T10:00:00Z"],
                ["e3", "dana", "yes", "", "2026-01-03T10:00:00Z"],
                ["e4", "dana", "", "", "2026-01-03T10:00:00Z"],
                ["e5", "nobody", "7", "", "2026-01-03T10:00:00Z"],
                ["e6", "dana", "3", "late", "2026-01-05T10:00:00Z"],
            ]
        )
        job = await imported(tenant, body, kind="responses")
        assert job["status"] == "succeeded", job
        assert job["rows"] == {"read": 6, "stored": 2, "duplicates": 0, "rejected": 4}
        errors = await import_errors(tenant.client, job["id"])
        assert [(e["row"], e["field"]) for e in errors] == [
            (2, "score"),
            (3, "score"),
            (4, "score"),
            (5, "stakeholder_id"),
        ]
        assert errors[0]["raw"] == "e2,dana,9.5,,2026-01-03T10:00:00Z"
        stored = await list_responses(tenant.client)
        assert sorted((r["external_id"], r["score"], r["role"], r["channel"]) for r in stored) == [
            ("e1", 9, "decision_maker", "import"),
            ("e6", 3, "decision_maker", "import"),
        ]
