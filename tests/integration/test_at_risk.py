"""GET /v1/accounts/at-risk: each rule with its evidence, revenue order, filters, pages, tenancy."""

import base64
from typing import Any

import httpx
import pytest

from app.scoring import Tally, compare
from tests.support.api import Answer, report
from tests.support.cases import open_case, set_case
from tests.support.clock import ago, stamp, utc
from tests.support.expected import approx
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import assert_invalid, problem

PATH = "/v1/accounts/at-risk"
# WINDOW is 2026-01-01..2026-04-01 (90 days); the previous period is 2025-10-03..2026-01-01.
PREVIOUS_START = utc(2025, 10, 3)


def answers() -> list[Answer]:
    out = [
        # big (1,000,000): users 3, 4, 5, 9, 10 and a decision maker who fell from 9 to 2.
        *(
            Answer(f"big-u{i}", "big", s, utc(2026, 2, 1, i), role="user")
            for i, s in enumerate([3, 4, 5, 9, 10])
        ),
        Answer("big-dm", "big", 9, utc(2025, 12, 1), role="decision_maker"),
        Answer("big-dm", "big", 2, utc(2026, 2, 10), role="decision_maker"),
        # fine (2,000,000): everyone content, the decision maker included.
        Answer("fine-dm", "fine", 10, utc(2026, 3, 1), role="decision_maker"),
        Answer("fine-i", "fine", 9, utc(2026, 3, 1), role="influencer"),
        *(
            Answer(f"fine-u{i}", "fine", s, utc(2026, 3, 2, i), role="user")
            for i, s in enumerate([9, 10, 8])
        ),
        # small (100): two unhappy users are too few for low_nps; the decision maker is happy.
        Answer("small-dm", "small", 10, utc(2026, 1, 15), role="decision_maker"),
        Answer("small-u1", "small", 0, utc(2026, 1, 15), role="user"),
        Answer("small-u2", "small", 0, utc(2026, 1, 15), role="user"),
        # quiet (no revenue): one answer, before the window.
        Answer("quiet-u", "quiet", 10, utc(2025, 11, 1), role="user"),
    ]
    # mid (500,000): ten users, promoters last period, detractors now; no decision maker.
    for i in range(10):
        out.append(Answer(f"mid-u{i}", "mid", 10, utc(2025, 11, 1, i), role="user"))
        out.append(Answer(f"mid-u{i}", "mid", 0, utc(2026, 2, 1, i), role="user"))
    return out


@pytest.fixture
async def flagged(tenant: Tenant) -> Tenant:
    for account, revenue, segment in (
        ("big", "1000000", "enterprise"),
        ("fine", "2000000", "enterprise"),
        ("small", "100", "smb"),
        ("mid", "500000", "mid-market"),
        ("quiet", None, "smb"),
    ):
        await tenant.db.account(
            account, annual_revenue=revenue, segment=segment, industry="technology"
        )
    await tenant.db.stakeholder("quiet-dm", "quiet", role="decision_maker")
    await tenant.db.answers(answers())
    return tenant


async def at_risk(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    return await report(client, PATH, **params)


def codes(item: dict[str, Any]) -> list[str]:
    return [reason["code"] for reason in item["reasons"]]


class TestAtRisk:
    async def test_flags_each_account_for_its_reasons_in_revenue_order(
        self, flagged: Tenant
    ) -> None:
        body = await at_risk(flagged.client)

        assert [a["account_id"] for a in body["data"]] == ["big", "mid", "quiet"]
        big, mid, quiet = body["data"]
        assert codes(big) == ["low_nps", "decision_maker_detractor", "key_stakeholder_downgrade"]
        assert codes(mid) == ["low_nps", "significant_decline", "no_decision_maker_answer"]
        assert codes(quiet) == ["silent", "no_decision_maker_answer"]
        assert body["summary"] == {
            "accounts": 3,
            "revenue_at_risk": "1500000.00",
            "by_reason": {
                "low_nps": 2,
                "decision_maker_detractor": 1,
                "significant_decline": 1,
                "key_stakeholder_downgrade": 1,
                "silent": 1,
                "no_decision_maker_answer": 2,
                "blind_spot": 0,
            },
        }
        assert body["next_cursor"] is None
        assert body["method"] == "latest_per_stakeholder"

    async def test_evidence_of_each_reason(self, flagged: Tenant) -> None:
        big, mid, quiet = (await at_risk(flagged.client))["data"]

        # big: users 3, 4, 5, 9, 10 and the decision maker's latest 2 -> P 2, D 4 of 6.
        low = big["reasons"][0]
        assert low | {"detail": None} == {
            "code": "low_nps",
            "detail": None,
            "nps": approx(100 * (2 - 4) / 6),
            "threshold": 0.0,
            "n": 6,
        }
        assert big["score"]["n"] == 6
        assert big["annual_revenue"] == "1000000.00"
        assert big["benchmark"]["position"] == "below"
        detractor = big["reasons"][1]
        assert [(a["stakeholder_id"], a["score"]) for a in detractor["answers"]] == [("big-dm", 2)]
        assert detractor["answers"][0]["submitted_at"] == stamp(utc(2026, 2, 10))
        (fall,) = big["reasons"][2]["movements"]
        assert (fall["stakeholder_id"], fall["direction"]) == ("big-dm", "down")
        assert (fall["from"]["score"], fall["to"]["score"]) == (9, 2)

        decline = mid["reasons"][1]
        expected = compare(Tally(0, 0, 10), Tally(10, 0, 0))
        assert expected is not None
        assert expected.significant
        assert decline["previous_from"] == stamp(PREVIOUS_START)
        assert decline["previous_to"] == stamp(utc(2026, 1, 1))
        assert decline["previous_nps"] == 100.0
        # From +100 to -100: the scores shown fell 200 points (the adjusted centres 153.8).
        assert decline["change"]["difference"] == -200.0
        assert decline["change"]["adjusted_difference"] == approx(100 * (-10 / 13 - 10 / 13))
        assert decline["detail"] == (
            f"NPS fell 200.0 points against the previous period (p = {expected.p_value:.3f})"
        )
        assert decline["change"]["p_value"] == approx(expected.p_value)
        assert decline["change"]["significant"] is True
        assert mid["reasons"][2]["registered_decision_makers"] == 0

        silent, no_decision_maker = quiet["reasons"]
        assert silent["last_answered_at"] == stamp(utc(2025, 11, 1))
        assert silent["silent_days"] == 90
        assert no_decision_maker["registered_decision_makers"] == 1
        assert quiet["score"]["n"] == 0
        assert quiet["annual_revenue"] is None

    async def test_open_recovery_cases_as_evidence(self, flagged: Tenant) -> None:
        # Answers of today, after the window: they change no finding. An advocacy case and a
        # closed recovery case are no open_case evidence.
        first = await open_case(flagged, "big-x", 3, account_id="big")
        second = await open_case(flagged, "big-y", 2, account_id="big")
        await set_case(flagged, first, opened_at=ago(hours=2))
        await set_case(flagged, second, opened_at=ago(hours=1))
        await open_case(flagged, "big-z", 10, account_id="big", role="decision_maker")
        closed = await open_case(flagged, "mid-x", 1, account_id="mid")
        r = await flagged.client.patch(
            f"/v1/cases/{closed}", json={"status": "closed", "outcome": "resolved"}
        )
        assert r.status_code == 200, r.text

        by_id = {a["account_id"]: a for a in (await at_risk(flagged.client))["data"]}

        assert by_id["big"]["open_case"] == {"count": 2, "case_ids": [first, second]}
        assert by_id["mid"]["open_case"] == {"count": 0, "case_ids": []}
        assert codes(by_id["big"]) == [
            "low_nps",
            "decision_maker_detractor",
            "key_stakeholder_downgrade",
        ]

    async def test_thresholds_come_from_the_settings(self, flagged: Tenant) -> None:
        r = await flagged.client.put(
            "/v1/settings", json={"at_risk": {"nps_below": -50, "silent_days": 200}}
        )
        assert r.status_code == 200, r.text

        body = await at_risk(flagged.client)

        # big's -33.3 is no longer below the bar; quiet answered within 200 days.
        by_id = {a["account_id"]: codes(a) for a in body["data"]}
        assert by_id == {
            "big": ["decision_maker_detractor", "key_stakeholder_downgrade"],
            "mid": ["low_nps", "significant_decline", "no_decision_maker_answer"],
            "quiet": ["no_decision_maker_answer"],
        }

    async def test_filter_by_reason(self, flagged: Tenant) -> None:
        body = await at_risk(flagged.client, reason=["silent", "decision_maker_detractor"])

        assert [a["account_id"] for a in body["data"]] == ["big", "quiet"]
        assert body["summary"]["accounts"] == 2

    async def test_filter_by_segment(self, flagged: Tenant) -> None:
        body = await at_risk(flagged.client, segment="smb")

        assert [a["account_id"] for a in body["data"]] == ["quiet"]

    async def test_pages_follow_the_revenue_order(self, flagged: Tenant) -> None:
        seen = []
        cursor = None
        for _ in range(4):
            params = {"limit": "1"} | ({} if cursor is None else {"cursor": cursor})
            body = await at_risk(flagged.client, **params)
            seen += [a["account_id"] for a in body["data"]]
            assert body["summary"]["accounts"] == 3
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == ["big", "mid", "quiet"]

    async def test_an_invalid_cursor_is_422(self, flagged: Tenant) -> None:
        r = await flagged.client.get(PATH, params={"cursor": "bm90IG91cnM"})

        assert_invalid(r, ["query", "cursor"])

    async def test_a_cursor_with_an_unreadable_number_is_422(self, flagged: Tenant) -> None:
        cursor = base64.urlsafe_b64encode(b"[1" + b"0" * 400 + b', "x"]').decode().rstrip("=")

        r = await flagged.client.get(PATH, params={"cursor": cursor})

        assert_invalid(r, ["query", "cursor"])

    async def test_a_window_without_a_period_before_it_is_422(self, flagged: Tenant) -> None:
        params = {"from": "1900-01-02T00:00:00Z", "to": "8999-01-01T00:00:00Z"}

        r = await flagged.client.get(PATH, params=params)

        assert_invalid(r, ["query", "from"])

    async def test_account_as_unit_is_422(self, flagged: Tenant) -> None:
        r = await flagged.client.get(PATH, params={"method": "account_as_unit"})

        assert_invalid(r, ["query", "method"])

    async def test_unknown_reason_is_422(self, flagged: Tenant) -> None:
        r = await flagged.client.get(PATH, params={"reason": "grumpy"})

        assert_invalid(r, ["query", "reason", 0])

    async def test_another_workspace_sees_none(
        self, flagged: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("other")

        body = await at_risk(other.client)

        assert body["data"] == []
        assert body["summary"]["accounts"] == 0

    async def test_needs_a_key(self, flagged: Tenant) -> None:
        r = await httpx.AsyncClient(
            transport=flagged.client._transport, base_url="http://test"
        ).get(PATH)

        problem(r, 401)
