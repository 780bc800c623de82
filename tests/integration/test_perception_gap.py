"""The staff perception gap (issue 15, section 4): PUT/GET /v1/accounts/{id}/predictions/{author}
and GET /v1/perception-gap. Expected figures are worked out by hand in the comments."""

from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import update

from app.db import session_scope
from app.models import AccountPrediction, Scope
from tests.support.api import Answer, report
from tests.support.clock import at
from tests.support.harness import MakeTenant, Tenant


async def predict(tenant: Tenant, account: str, author: str, body: dict[str, Any]) -> Any:
    r = await tenant.client.put(f"/v1/accounts/{account}/predictions/{author}", json=body)
    assert r.status_code in (200, 201), r.text
    return r


async def backdate(tenant: Tenant, account: str, author: str, version: int, when: datetime) -> None:
    """Predictions are stamped by the server's clock; the tests place them on the timeline."""
    async with session_scope(tenant.db.sessionmaker) as session:
        await session.execute(
            update(AccountPrediction)
            .where(
                AccountPrediction.workspace_id == tenant.id,
                AccountPrediction.account_id == account,
                AccountPrediction.author == author,
                AccountPrediction.version == version,
            )
            .values(predicted_at=when)
        )


# Answers (day of 2026 after Jan 1): acme 6 (day 9), 5 (day 19): mean 5.5, first Jan 10;
# globex 9 (day 11), 8 (day 13), 10 (day 55, Feb 25): mean 9.0, first Jan 12;
# initech 10 (day 14).
ANSWERS = [
    Answer("a1", "acme", 6, at(9)),
    Answer("a2", "acme", 5, at(19)),
    Answer("g1", "globex", 9, at(11)),
    Answer("g2", "globex", 8, at(13)),
    Answer("g3", "globex", 10, at(55)),
    Answer("i1", "initech", 10, at(14)),
]


@pytest_asyncio.fixture(loop_scope="session")
async def team(tenant: Tenant) -> Tenant:
    await tenant.db.answers(ANSWERS)
    # kim: acme 9 (day 0), then 4 (day 50, after acme's answers began: never counts here);
    # globex 3 (day 1). lee: acme 8 (day 4); initech 9 (day 83, after initech's answer).
    for account, author, score, day in (
        ("acme", "kim", 9, 0),
        ("acme", "kim", 4, 50),
        ("globex", "kim", 3, 1),
        ("acme", "lee", 8, 4),
        ("initech", "lee", 9, 83),
    ):
        body = (await predict(tenant, account, author, {"predicted_score": score})).json()
        await backdate(tenant, account, author, body["version"], at(day))
    return tenant


def by_id(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["account_id"]: a for a in body["accounts"]}


class TestPutPrediction:
    async def test_each_put_adds_a_version_and_a_repeat_adds_none(self, tenant: Tenant) -> None:
        await tenant.db.account("acme")
        first = await predict(tenant, "acme", "kim@vendor.example", {"predicted_score": 8})
        assert first.status_code == 201
        assert first.json()["version"] == 1
        body = {"predicted_score": 6, "role_predictions": {"user": 4}, "note": "importer"}
        second = await predict(tenant, "acme", "kim@vendor.example", body)
        assert second.status_code == 201
        again = await predict(tenant, "acme", "kim@vendor.example", body)
        assert again.status_code == 200
        assert again.json() == second.json()

        r = await tenant.client.get("/v1/accounts/acme/predictions/kim@vendor.example")
        assert r.status_code == 200
        history = r.json()
        assert history["account_id"] == "acme"
        assert [
            (v["version"], v["predicted_score"], v["role_predictions"], v["note"])
            for v in history["data"]
        ] == [(1, 8, {}, None), (2, 6, {"user": 4}, "importer")]

    @pytest.mark.parametrize(
        "body",
        [
            {"predicted_score": 11},
            {"predicted_score": -1},
            {"predicted_score": "9"},
            {"predicted_score": 9.5},
            {"predicted_score": True},
            {"predicted_score": None},
            {},
            {"predicted_score": 9, "role_predictions": {"buyer": 3}},
            {"predicted_score": 9, "role_predictions": {"user": 12}},
            {"predicted_score": 9, "extra": 1},
        ],
    )
    async def test_invalid_bodies_are_422(self, tenant: Tenant, body: dict[str, Any]) -> None:
        await tenant.db.account("acme")
        r = await tenant.client.put("/v1/accounts/acme/predictions/kim", json=body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"

    async def test_unknown_account_and_no_history_are_404(self, tenant: Tenant) -> None:
        r = await tenant.client.put(
            "/v1/accounts/nobody/predictions/kim", json={"predicted_score": 5}
        )
        assert r.status_code == 404
        await tenant.db.account("acme")
        assert (await tenant.client.get("/v1/accounts/acme/predictions/kim")).status_code == 404

    async def test_a_read_key_cannot_write(self, tenant: Tenant) -> None:
        await tenant.db.account("acme")
        key = await tenant.make_key(Scope.READ)
        r = await tenant.client.put(
            "/v1/accounts/acme/predictions/kim",
            json={"predicted_score": 5},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert r.status_code == 403


class TestPerceptionGap:
    async def test_accounts_compare_only_predictions_made_before_the_answers(
        self, team: Tenant
    ) -> None:
        body = await report(team.client, "/v1/perception-gap")
        accounts = by_id(body)
        assert list(accounts) == ["acme", "globex", "initech"]

        acme = accounts["acme"]
        # kim's v1 (9) and lee's (8), both before Jan 10; kim's v2 (day 50) is hindsight.
        assert acme["team"]["predicted_score"] == 8.5
        assert acme["team"]["predicted_category"] == "passive"
        assert [(p["author"], p["version"]) for p in acme["team"]["predictions"]] == [
            ("kim", 1),
            ("lee", 1),
        ]
        assert acme["clients"]["mean_score"] == 5.5
        assert acme["clients"]["score"]["nps"] == -100.0
        assert acme["clients"]["score"]["n"] == 2
        assert acme["clients"]["first_answer_at"] == "2026-01-10T00:00:00Z"
        assert acme["gap"] == 3.0
        assert acme["quadrant"] == "blind_spot"

        globex = accounts["globex"]
        assert globex["team"]["predicted_score"] == 3.0
        assert globex["team"]["predicted_category"] == "detractor"
        assert globex["clients"]["mean_score"] == 9.0
        assert globex["gap"] == -6.0
        assert globex["quadrant"] == "undervalued"

        initech = accounts["initech"]
        assert initech["team"] is None
        assert initech["gap"] is None
        assert initech["quadrant"] is None
        assert initech["reason"] == "no_prediction_before_answers"

    async def test_authors_calibration_overall_and_by_month(self, team: Tenant) -> None:
        body = await report(team.client, "/v1/perception-gap", interval="month")
        authors = {a["author"]: a for a in body["authors"]}
        # kim: acme 9 - 5.5 = +3.5, globex 3 - 9 = -6: MAE 4.75, bias -1.25.
        assert authors["kim"]["overall"] == {"n": 2, "mae": 4.75, "bias": -1.25}
        # January: acme +3.5, globex 3 - 8.5 = -5.5; February: globex 3 - 10 = -7; March: none.
        assert [(p["from"], p["n"], p["mae"], p["bias"]) for p in authors["kim"]["series"]] == [
            ("2026-01-01T00:00:00Z", 2, 4.5, -1.0),
            ("2026-02-01T00:00:00Z", 1, 7.0, -7.0),
            ("2026-03-01T00:00:00Z", 0, None, None),
        ]
        # lee: acme 8 - 5.5 = +2.5; initech's prediction came after its answer.
        assert authors["lee"]["overall"] == {"n": 1, "mae": 2.5, "bias": 2.5}

    async def test_a_window_after_a_late_prediction_counts_it(self, team: Tenant) -> None:
        # From March on, only globex... no: no answers after day 55. From Feb 1: globex's 10
        # (Feb 25) compared with kim's 3 (Jan 2): gap -7; acme has no answers: no_answers.
        body = await report(team.client, "/v1/perception-gap", **{"from": "2026-02-01T00:00:00Z"})
        accounts = by_id(body)
        assert accounts["globex"]["gap"] == -7.0
        assert accounts["acme"]["reason"] == "no_answers"
        assert accounts["acme"]["clients"]["score"]["n"] == 0

    async def test_filters_narrow_the_accounts(self, team: Tenant) -> None:
        body = await report(team.client, "/v1/perception-gap", account_id="globex")
        assert [a["account_id"] for a in body["accounts"]] == ["globex"]
        assert body["filters"] == {"account_id": "globex"}

    async def test_role_predictions_are_used_for_a_role_filter(self, tenant: Tenant) -> None:
        await tenant.db.answers(
            [Answer("u1", "acme", 2, at(9), role="user"), Answer("d1", "acme", 10, at(9))]
        )
        body = await predict(
            tenant, "acme", "kim", {"predicted_score": 9, "role_predictions": {"user": 3}}
        )
        await backdate(tenant, "acme", "kim", body.json()["version"], at(1))
        users = by_id(await report(tenant.client, "/v1/perception-gap", role="user"))["acme"]
        # kim's user prediction 3 against the user's 2.
        assert users["team"]["predicted_score"] == 3.0
        assert users["gap"] == 1.0
        assert users["quadrant"] == "agreed_weakness"
        everyone = by_id(await report(tenant.client, "/v1/perception-gap"))["acme"]
        # 9 against the mean of 2 and 10 = 6: blind spot.
        assert everyone["gap"] == 3.0
        assert everyone["quadrant"] == "blind_spot"

    async def test_predictions_never_enter_a_score(self, team: Tenant) -> None:
        # The answers alone: 6, 5, 9, 8, 10, 10: P3 Pa1 D2 of 6.
        body = await report(team.client)
        score = body["score"]
        assert (score["n"], score["promoters"], score["passives"], score["detractors"]) == (
            6,
            3,
            1,
            2,
        )
        account = await report(team.client, "/v1/accounts/acme/nps")
        assert account["score"]["n"] == 2
        assert account["score"]["nps"] == -100.0

    async def test_account_as_unit_is_refused(self, team: Tenant) -> None:
        r = await team.client.get("/v1/perception-gap", params={"method": "account_as_unit"})
        assert r.status_code == 422

    async def test_another_workspace_sees_nothing(
        self, team: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("perception-b")
        await other.db.account("acme")
        body = await report(other.client, "/v1/perception-gap")
        assert body["accounts"] == []
        assert body["authors"] == []
        r = await other.client.get("/v1/accounts/acme/predictions/kim")
        assert r.status_code == 404


class TestTagged:
    async def test_a_prediction_changes_the_tag(self, team: Tenant) -> None:
        params = {"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
        first = await team.client.get("/v1/perception-gap", params=params)
        tag = first.headers["etag"]
        same = await team.client.get(
            "/v1/perception-gap", params=params, headers={"If-None-Match": tag}
        )
        assert same.status_code == 304
        await predict(team, "globex", "lee", {"predicted_score": 7})
        after = await team.client.get(
            "/v1/perception-gap", params=params, headers={"If-None-Match": tag}
        )
        assert after.status_code == 200
        assert after.headers["etag"] != tag


class TestAtRisk:
    async def test_a_blind_spot_is_an_at_risk_reason(self, team: Tenant) -> None:
        body = await report(team.client, "/v1/accounts/at-risk")
        flagged = {a["account_id"]: a for a in body["data"]}
        blind = [r for r in flagged["acme"]["reasons"] if r["code"] == "blind_spot"]
        # acme: the team's 8.5 against its clients' 5.5.
        assert blind == [
            {
                "code": "blind_spot",
                "detail": "the team predicts 8.5, its clients average 5.5",
                "predicted_score": 8.5,
                "mean_score": 5.5,
                "gap": 3.0,
                "authors": 2,
            }
        ]
        assert body["summary"]["by_reason"]["blind_spot"] == 1
        # globex is undervalued, not a blind spot.
        codes = [r["code"] for r in flagged.get("globex", {"reasons": []})["reasons"]]
        assert "blind_spot" not in codes
