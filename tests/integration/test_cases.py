"""GET /v1/cases, GET/PATCH /v1/cases/{id}, POST /v1/cases/{id}/notes: filters, the detail, the
forward-only status, outcomes by kind, every change kept with its event, and tenancy."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from app.models import Scope
from tests.support.api import get_json
from tests.support.cases import case_events, open_case
from tests.support.clock import ago, stamp
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_forbidden, assert_invalid, assert_not_found, problem

CASES = "/v1/cases"


async def _patch(tenant: Tenant, case_id: str, body: dict[str, Any], status: int = 200) -> Any:
    r = await tenant.client.patch(f"{CASES}/{case_id}", json=body)
    assert r.status_code == status, r.text
    return r.json()


async def _ids(tenant: Tenant, **params: Any) -> list[str]:
    body = await get_json(tenant.client, CASES, **params)
    return [c["id"] for c in body["data"]]


class TestListCases:
    async def test_a_case_as_listed(self, tenant: Tenant) -> None:
        case_id = await open_case(tenant, "p-1", 3, role="decision_maker")

        body = await get_json(tenant.client, CASES)

        [case] = body["data"]
        assert body["next_cursor"] is None
        assert {k: v for k, v in case.items() if not k.endswith("_at")} == {
            "id": case_id,
            "kind": "recovery",
            "rule": "detractor",
            "sla_hours": 48,
            "status": "open",
            "stakeholder_id": "p-1",
            "account_id": "acme",
            "role": "decision_maker",
            "job_level": "manager",
            "department": None,
            "owner": None,
            "overdue": False,
            "outcome": None,
            "root_cause": None,
        }
        assert (case["first_action_at"], case["closed_at"]) == (None, None)

    async def test_filters(self, tenant: Tenant) -> None:
        detractor = await open_case(tenant, "p-1", 3, role="user")
        passive = await open_case(tenant, "p-2", 8, account_id="globex", role="decision_maker")
        promoter = await open_case(tenant, "p-3", 10, role="influencer")
        await _patch(tenant, passive, {"owner": "jane", "status": "in_progress"})

        assert await _ids(tenant, kind="advocacy") == [promoter]
        assert set(await _ids(tenant, kind="recovery")) == {detractor, passive}
        assert await _ids(tenant, status="in_progress") == [passive]
        assert await _ids(tenant, owner="jane") == [passive]
        assert await _ids(tenant, account_id="globex") == [passive]
        assert await _ids(tenant, role="user") == [detractor]
        assert await _ids(tenant, rule="decision_maker_passive") == [passive]
        assert await _ids(tenant, rule="nope") == []

    async def test_overdue_is_past_due_and_not_closed(self, tenant: Tenant) -> None:
        late = await open_case(tenant, "p-1", 3)
        closed_late = await open_case(tenant, "p-2", 3)
        on_time = await open_case(tenant, "p-3", 3)
        await _patch(tenant, late, {"due_at": ago(minutes=1).isoformat()})
        await _patch(tenant, closed_late, {"due_at": ago(minutes=1).isoformat()})
        await _patch(tenant, closed_late, {"status": "closed", "outcome": "resolved"})

        assert await _ids(tenant, overdue="true") == [late]
        assert set(await _ids(tenant, overdue="false")) == {closed_late, on_time}
        listed = {c["id"]: c["overdue"] for c in (await get_json(tenant.client, CASES))["data"]}
        assert listed == {late: True, closed_late: False, on_time: False}

    async def test_pages_follow_the_cursor(self, tenant: Tenant) -> None:
        opened = {await open_case(tenant, f"p-{i}", 2) for i in range(3)}

        first = await get_json(tenant.client, CASES, limit=2)
        second = await get_json(tenant.client, CASES, limit=2, cursor=first["next_cursor"])

        assert len(first["data"]) == 2
        assert second["next_cursor"] is None
        assert {c["id"] for c in first["data"] + second["data"]} == opened

    @pytest.mark.parametrize(
        ("param", "value"),
        [
            ("status", "reopened"),
            ("kind", "rescue"),
            ("role", "boss"),
            ("overdue", "maybe"),
            ("rule", "Bad Rule"),
            ("cursor", "garbage"),
        ],
    )
    async def test_a_bad_filter_is_a_422(self, tenant: Tenant, param: str, value: str) -> None:
        r = await tenant.client.get(CASES, params={param: value})

        assert_invalid(r, ["query", param])

    async def test_another_workspace_sees_none(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        await open_case(tenant, "p-1", 3)
        other = await make_tenant("tenant-b")

        assert (await get_json(other.client, CASES))["data"] == []


class TestGetCase:
    async def test_the_answers_history_notes_and_changes(self, tenant: Tenant) -> None:
        await tenant.db.account("acme")
        await tenant.db.stakeholder("p-1", role="decision_maker")
        [earlier] = await tenant.db.respond("p-1", (10, ago(days=40)))
        await tenant.db.respond("p-1", (6, ago(days=35)), excluded=True)
        case_id = await open_case(tenant, "p-1", 8, comment="Slower lately")
        await tenant.client.post(f"{CASES}/{case_id}/notes", json={"body": "Called them"})

        body = await get_json(tenant.client, f"{CASES}/{case_id}")

        [trigger] = body["responses"]
        assert (trigger["score"], trigger["category"], trigger["comment"], trigger["rule"]) == (
            8,
            "passive",
            "Slower lately",
            "decision_maker_passive",
        )
        assert [(p["response_id"], p["score"]) for p in body["history"]] == [
            (earlier, 10),
            (trigger["response_id"], 8),
        ]
        [note] = body["notes"]
        assert (note["body"], note["author"]) == ("Called them", tenant.changed_by)
        assert [(c["action"], c["changed_by"]) for c in body["changes"]] == [
            ("opened", "rule:decision_maker_passive"),
            ("note_added", tenant.changed_by),
        ]
        assert body["first_action_at"] == note["created_at"]

    async def test_an_unknown_case_is_a_404(self, tenant: Tenant) -> None:
        assert_not_found(await tenant.client.get(f"{CASES}/{uuid.uuid4()}"))

    async def test_another_workspaces_case_is_a_404(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        case_id = await open_case(tenant, "p-1", 3)
        other = await make_tenant("tenant-b")

        assert_not_found(await other.client.get(f"{CASES}/{case_id}"))
        assert_not_found(await other.client.patch(f"{CASES}/{case_id}", json={"owner": "x"}))
        r = await other.client.post(f"{CASES}/{case_id}/notes", json={"body": "x"})
        assert_not_found(r)


class TestPatchCase:
    async def test_forward_then_closed_with_an_outcome_and_a_root_cause(
        self, tenant: Tenant
    ) -> None:
        case_id = await open_case(tenant, "p-1", 3)

        started = await _patch(tenant, case_id, {"status": "in_progress", "owner": "jane"})
        closed = await _patch(
            tenant, case_id, {"status": "closed", "outcome": "resolved", "root_cause": "billing"}
        )

        assert (started["status"], started["owner"]) == ("in_progress", "jane")
        assert started["first_action_at"] is not None
        assert (closed["status"], closed["outcome"], closed["root_cause"]) == (
            "closed",
            "resolved",
            "billing",
        )
        assert closed["closed_at"] is not None
        assert closed["first_action_at"] == started["first_action_at"]

    async def test_every_change_is_kept_and_emits_its_event(self, tenant: Tenant) -> None:
        case_id = await open_case(tenant, "p-1", 3)
        due = ago(minutes=-90).replace(microsecond=0)
        await _patch(tenant, case_id, {"owner": "jane", "due_at": due.isoformat()})
        await _patch(tenant, case_id, {"status": "closed", "outcome": "no_reply"})

        detail = await get_json(tenant.client, f"{CASES}/{case_id}")
        by = tenant.changed_by
        assert [(c["action"], c["changed_by"], c["changes"]) for c in detail["changes"][1:]] == [
            (
                "updated",
                by,
                {
                    "owner": {"from": None, "to": "jane"},
                    "due_at": {
                        "from": detail["changes"][1]["changes"]["due_at"]["from"],
                        "to": stamp(due),
                    },
                },
            ),
            (
                "updated",
                by,
                {
                    "status": {"from": "open", "to": "closed"},
                    "outcome": {"from": None, "to": "no_reply"},
                },
            ),
        ]
        events = await case_events(tenant)
        assert [(e.type, e.data["status"], e.data["changed_by"]) for e in events] == [
            ("case.opened", "open", "rule:detractor"),
            ("case.updated", "open", by),
            ("case.closed", "closed", by),
        ]
        assert events[2].data["outcome"] == "no_reply"

    async def test_open_may_close_directly(self, tenant: Tenant) -> None:
        case_id = await open_case(tenant, "p-1", 3)

        closed = await _patch(tenant, case_id, {"status": "closed", "outcome": "not_actionable"})

        assert closed["status"] == "closed"

    async def test_a_step_back_is_a_409(self, tenant: Tenant) -> None:
        case_id = await open_case(tenant, "p-1", 3)
        await _patch(tenant, case_id, {"status": "in_progress"})

        r = await tenant.client.patch(f"{CASES}/{case_id}", json={"status": "open"})

        body = problem(r, 409)
        assert body["type"] == "/problems/case-status-conflict"
        assert body["detail"] == (
            "the case is in_progress: its status only moves forward (open, in_progress, closed)"
        )
        assert (await get_json(tenant.client, f"{CASES}/{case_id}"))["status"] == "in_progress"

    async def test_a_closed_case_is_final(self, tenant: Tenant) -> None:
        case_id = await open_case(tenant, "p-1", 3)
        await _patch(tenant, case_id, {"status": "closed", "outcome": "resolved"})

        back = await tenant.client.patch(f"{CASES}/{case_id}", json={"status": "in_progress"})
        owner = await tenant.client.patch(f"{CASES}/{case_id}", json={"owner": "jane"})
        same = await _patch(tenant, case_id, {"status": "closed", "outcome": "resolved"})

        assert problem(back, 409)["type"] == "/problems/case-status-conflict"
        assert problem(owner, 409)["detail"] == (
            "the case is closed: a closed case is final (add a note instead)"
        )
        assert same["outcome"] == "resolved"
        assert [e.type for e in await case_events(tenant)] == ["case.opened", "case.closed"]

    async def test_advocacy_cases_close_with_their_own_outcomes(self, tenant: Tenant) -> None:
        case_id = await open_case(tenant, "p-1", 10, role="decision_maker")

        wrong = await tenant.client.patch(
            f"{CASES}/{case_id}", json={"status": "closed", "outcome": "resolved"}
        )
        right = await _patch(tenant, case_id, {"status": "closed", "outcome": "reference_agreed"})

        body = assert_invalid(wrong, ["body", "outcome"])
        assert body["errors"][0]["msg"] == (
            "one of reference_agreed, testimonial, declined, no_reply"
        )
        assert (right["kind"], right["outcome"]) == ("advocacy", "reference_agreed")

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"status": "closed"}, ["body", "outcome"]),
            ({"outcome": "resolved"}, ["body", "outcome"]),
            ({"root_cause": "billing"}, ["body", "root_cause"]),
            ({"status": "closed", "outcome": "testimonial"}, ["body", "outcome"]),
            ({"status": "closed", "outcome": "fixed"}, ["body", "outcome"]),
            (
                {"status": "closed", "outcome": "resolved", "root_cause": "Bad Code"},
                ["body", "root_cause"],
            ),
            ({"status": None}, ["body", "status"]),
            ({"due_at": None}, ["body", "due_at"]),
            ({"due_at": "tomorrow"}, ["body", "due_at"]),
            ({"due_at": "2026-12-01T10:00:00"}, ["body", "due_at"]),
            ({"owner": ""}, ["body", "owner"]),
            ({"owner": 7}, ["body", "owner"]),
            ({"status": "reopened"}, ["body", "status"]),
            ({"priority": "high"}, ["body", "priority"]),
            ({}, ["body"]),
        ],
    )
    async def test_an_invalid_patch_is_a_422_and_changes_nothing(
        self, tenant: Tenant, body: dict[str, Any], loc: list[str]
    ) -> None:
        case_id = await open_case(tenant, "p-1", 3)

        r = await tenant.client.patch(f"{CASES}/{case_id}", json=body)

        assert_invalid(r, loc)
        assert (await get_json(tenant.client, f"{CASES}/{case_id}"))["status"] == "open"
        assert [e.type for e in await case_events(tenant)] == ["case.opened"]

    async def test_a_patch_that_changes_nothing_keeps_nothing(self, tenant: Tenant) -> None:
        case_id = await open_case(tenant, "p-1", 3)

        same = await _patch(tenant, case_id, {"status": "open", "owner": None})

        assert same["first_action_at"] is None
        assert [e.type for e in await case_events(tenant)] == ["case.opened"]

    async def test_owner_null_unassigns(self, tenant: Tenant) -> None:
        case_id = await open_case(tenant, "p-1", 3)
        await _patch(tenant, case_id, {"owner": "jane"})

        assert (await _patch(tenant, case_id, {"owner": None}))["owner"] is None

    async def test_due_at_moves_the_deadline(self, tenant: Tenant) -> None:
        case_id = await open_case(tenant, "p-1", 3)
        opened = await get_json(tenant.client, f"{CASES}/{case_id}")
        assert opened["due_at"] == stamp(
            datetime.fromisoformat(opened["opened_at"]) + timedelta(hours=48)
        )

        moved = await _patch(tenant, case_id, {"due_at": "2027-01-04T09:00:00+01:00"})

        assert moved["due_at"] == "2027-01-04T08:00:00Z"

    async def test_a_read_key_cannot_work_a_case(self, tenant: Tenant) -> None:
        case_id = await open_case(tenant, "p-1", 3)
        key = await tenant.make_key(Scope.READ)

        r = await tenant.client.patch(
            f"{CASES}/{case_id}", json={"owner": "x"}, headers={"Authorization": f"Bearer {key}"}
        )

        assert_forbidden(r)


class TestAddCaseNote:
    async def test_a_note_is_stored_with_its_author_and_emits_case_updated(
        self, tenant: Tenant
    ) -> None:
        case_id = await open_case(tenant, "p-1", 3)

        r = await tenant.client.post(
            f"{CASES}/{case_id}/notes", json={"body": "  Left a voicemail "}
        )

        assert r.status_code == 201, r.text
        note = r.json()
        assert (note["body"], note["author"]) == ("Left a voicemail", tenant.changed_by)
        uuid.UUID(note["id"])
        events = await case_events(tenant)
        assert [(e.type, e.data["action"]) for e in events] == [
            ("case.opened", "opened"),
            ("case.updated", "note_added"),
        ]
        assert events[1].data["changes"] == {"note_id": {"from": None, "to": note["id"]}}
        assert "Left a voicemail" not in str(events[1].data)

    async def test_a_closed_case_takes_notes(self, tenant: Tenant) -> None:
        case_id = await open_case(tenant, "p-1", 3)
        await _patch(tenant, case_id, {"status": "closed", "outcome": "resolved"})

        r = await tenant.client.post(f"{CASES}/{case_id}/notes", json={"body": "They renewed"})

        assert r.status_code == 201, r.text

    async def test_a_retry_with_the_idempotency_key_adds_one_note(self, tenant: Tenant) -> None:
        case_id = await open_case(tenant, "p-1", 3)
        headers = {"Idempotency-Key": "note-1"}

        first = await tenant.client.post(
            f"{CASES}/{case_id}/notes", json={"body": "x"}, headers=headers
        )
        again = await tenant.client.post(
            f"{CASES}/{case_id}/notes", json={"body": "x"}, headers=headers
        )

        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        assert len((await get_json(tenant.client, f"{CASES}/{case_id}"))["notes"]) == 1

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"body": ""}, ["body", "body"]),
            ({"body": "   "}, ["body", "body"]),
            ({"body": "x" * 5001}, ["body", "body"]),
            ({"body": 5}, ["body", "body"]),
            ({}, ["body", "body"]),
            ({"body": "x", "pinned": True}, ["body", "pinned"]),
        ],
    )
    async def test_an_invalid_note_is_a_422(
        self, tenant: Tenant, body: dict[str, Any], loc: list[str]
    ) -> None:
        case_id = await open_case(tenant, "p-1", 3)

        r = await tenant.client.post(f"{CASES}/{case_id}/notes", json=body)

        assert_invalid(r, loc)

    async def test_an_unknown_case_is_a_404(self, tenant: Tenant) -> None:
        r = await tenant.client.post(f"{CASES}/{uuid.uuid4()}/notes", json={"body": "x"})

        assert_not_found(r)
