"""GET /v1/accounts/{id}/coverage and GET /v1/coverage: who was heard from, and how much of the
portfolio."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Scope
from app.services.coverage import decision_maker_answered, last_answered_by_account
from app.services.nps import Window
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import error_locs, problem

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)
WINDOW = {"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"}
ROLES = ("decision_maker", "influencer", "user", "other")
JOB_LEVELS = ("executive", "director", "manager", "individual_contributor", "other")


def at(days: float) -> datetime:
    return START + timedelta(days=days)


def stamp(days: float) -> str:
    return at(days).isoformat().replace("+00:00", "Z")


async def put_account(client: httpx.AsyncClient, account_id: str, **fields: str) -> None:
    r = await client.put(f"/v1/accounts/{account_id}", json={"name": account_id, **fields})
    assert r.status_code == 201, r.text


async def put_stakeholder(
    client: httpx.AsyncClient,
    stakeholder_id: str,
    account_id: str,
    role: str,
    job_level: str,
    department: str | None = None,
    name: str | None = None,
) -> None:
    body = {"account_id": account_id, "role": role, "job_level": job_level}
    body |= {k: v for k, v in (("department", department), ("name", name)) if v is not None}
    r = await client.put(f"/v1/stakeholders/{stakeholder_id}", json=body)
    assert r.status_code in (200, 201), r.text


async def answer(client: httpx.AsyncClient, stakeholder_id: str, score: int, day: float) -> str:
    r = await client.post(
        "/v1/responses",
        json={
            "stakeholder_id": stakeholder_id,
            "score": score,
            "submitted_at": at(day).isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    response_id: str = r.json()["id"]
    return response_id


async def exclude(client: httpx.AsyncClient, response_id: str) -> None:
    r = await client.patch(
        f"/v1/responses/{response_id}", json={"excluded": True, "reason": "test answer"}
    )
    assert r.status_code == 200, r.text


async def get(client: httpx.AsyncClient, path: str, **params: str) -> dict[str, Any]:
    r = await client.get(path, params={**WINDOW, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def group(
    name: str, key: str | None, registered: int, answered: int, responses: int, last: float | None
) -> dict[str, Any]:
    return {
        name: key,
        "registered": registered,
        "answered": answered,
        "responses": responses,
        "last_answered_at": None if last is None else stamp(last),
    }


def activity(
    stakeholder_id: str,
    role: str,
    job_level: str,
    department: str | None,
    last: float | None,
    answered: bool,
    name: str | None = None,
) -> dict[str, Any]:
    return {
        "stakeholder_id": stakeholder_id,
        "name": name,
        "role": role,
        "job_level": job_level,
        "department": department,
        "last_answered_at": None if last is None else stamp(last),
        "answered_in_window": answered,
    }


@pytest.fixture
def client(tenant: Tenant) -> httpx.AsyncClient:
    return tenant.client


class TestAccountCoverage:
    @pytest.fixture
    async def seeded(self, client: httpx.AsyncClient) -> None:
        """Registered at acme now: dana (decision maker, heard before the window only), lee
        (user, twice in the window), kim (answered as an influencer, since made a decision
        maker), max (an excluded answer in the window, one after it), nia (never answered).
        ex answered at acme as a user in sales, then moved to globex."""
        await put_account(client, "acme")
        await put_account(client, "globex")
        await put_stakeholder(client, "dana", "acme", "decision_maker", "executive", "Engineering")
        await put_stakeholder(
            client, "lee", "acme", "user", "individual_contributor", "ENGINEERING"
        )
        await put_stakeholder(client, "kim", "acme", "influencer", "manager", "Finance")
        await put_stakeholder(client, "max", "acme", "user", "manager", name="Max")
        await put_stakeholder(client, "nia", "acme", "other", "other", "Procurement", "Nia")
        await put_stakeholder(client, "ex", "acme", "user", "manager", " Sales")
        await put_stakeholder(client, "gus", "globex", "decision_maker", "executive", "Sales")
        await answer(client, "dana", 9, -100)
        await answer(client, "lee", 6, 10)
        await answer(client, "lee", 8, 40)
        await answer(client, "kim", 10, 20)
        await exclude(client, await answer(client, "max", 7, 30))
        await answer(client, "max", 3, 100)
        await answer(client, "ex", 5, 50)
        await answer(client, "gus", 9, 60)
        await put_stakeholder(client, "kim", "acme", "decision_maker", "director", "Finance")
        await put_stakeholder(client, "ex", "globex", "user", "manager", "Sales")

    async def test_coverage_by_role_job_level_and_department(
        self, client: httpx.AsyncClient, seeded: None
    ) -> None:
        body = await get(client, "/v1/accounts/acme/coverage")

        assert body == {
            "account_id": "acme",
            "from": "2026-01-01T00:00:00Z",
            "to": "2026-04-01T00:00:00Z",
            "stakeholders": {"registered": 5, "answered": 2},
            "by_role": [
                group("role", "decision_maker", 2, 1, 0, -100),
                group("role", "influencer", 0, 0, 1, 20),
                group("role", "user", 2, 1, 3, 50),
                group("role", "other", 1, 0, 0, None),
            ],
            "by_job_level": [
                group("job_level", "executive", 1, 0, 0, -100),
                group("job_level", "director", 1, 1, 0, None),
                group("job_level", "manager", 1, 0, 2, 50),
                group("job_level", "individual_contributor", 1, 1, 2, 40),
                group("job_level", "other", 1, 0, 0, None),
            ],
            "by_department": [
                group("department", "engineering", 2, 1, 2, 40),
                group("department", "finance", 1, 1, 1, 20),
                group("department", "procurement", 1, 0, 0, None),
                group("department", "sales", 0, 0, 1, 50),
                group("department", None, 1, 0, 0, None),
            ],
            "silent_roles": [
                {"role": "decision_maker", "registered": 2, "last_answered_at": stamp(-100)},
                {"role": "other", "registered": 1, "last_answered_at": None},
            ],
            "stakeholder_activity": [
                activity("lee", "user", "individual_contributor", "ENGINEERING", 40, True),
                activity("kim", "decision_maker", "director", "Finance", 20, True),
                activity("dana", "decision_maker", "executive", "Engineering", -100, False),
                activity("max", "user", "manager", None, None, False, "Max"),
                activity("nia", "other", "other", "Procurement", None, False, "Nia"),
            ],
        }

    async def test_a_later_window_hears_other_people(
        self, client: httpx.AsyncClient, seeded: None
    ) -> None:
        # [day 45, day 105): ex (day 50) and max (day 100) answered; lee last did on day 40.
        body = await get(
            client, "/v1/accounts/acme/coverage", **{"from": stamp(45), "to": stamp(105)}
        )

        assert body["stakeholders"] == {"registered": 5, "answered": 1}
        assert body["by_role"] == [
            group("role", "decision_maker", 2, 0, 0, -100),
            group("role", "influencer", 0, 0, 0, 20),
            group("role", "user", 2, 1, 2, 100),
            group("role", "other", 1, 0, 0, None),
        ]
        assert body["silent_roles"] == [
            {"role": "decision_maker", "registered": 2, "last_answered_at": stamp(-100)},
            {"role": "influencer", "registered": 0, "last_answered_at": stamp(20)},
            {"role": "other", "registered": 1, "last_answered_at": None},
        ]
        assert [
            (a["stakeholder_id"], a["answered_in_window"]) for a in body["stakeholder_activity"]
        ] == [
            ("max", True),
            ("lee", False),
            ("kim", False),
            ("dana", False),
            ("nia", False),
        ]

    async def test_account_without_stakeholders(self, client: httpx.AsyncClient) -> None:
        await put_account(client, "acme")

        body = await get(client, "/v1/accounts/acme/coverage")

        assert body == {
            "account_id": "acme",
            "from": "2026-01-01T00:00:00Z",
            "to": "2026-04-01T00:00:00Z",
            "stakeholders": {"registered": 0, "answered": 0},
            "by_role": [group("role", r, 0, 0, 0, None) for r in ROLES],
            "by_job_level": [group("job_level", j, 0, 0, 0, None) for j in JOB_LEVELS],
            "by_department": [],
            "silent_roles": [{"role": r, "registered": 0, "last_answered_at": None} for r in ROLES],
            "stakeholder_activity": [],
        }

    async def test_default_window_is_the_trailing_365_days(self, client: httpx.AsyncClient) -> None:
        await put_account(client, "acme")

        r = await client.get("/v1/accounts/acme/coverage")

        assert r.status_code == 200, r.text
        body = r.json()
        start, end = (datetime.fromisoformat(body[k]) for k in ("from", "to"))
        assert end - start == timedelta(days=365)

    async def test_unknown_account_is_404(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/v1/accounts/nope/coverage", params=WINDOW)

        assert problem(r, 404) == {
            "type": "/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "account 'nope' does not exist",
        }

    async def test_another_workspaces_account_is_404(
        self, client: httpx.AsyncClient, seeded: None, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("other")

        r = await other.client.get("/v1/accounts/acme/coverage", params=WINDOW)

        problem(r, 404)

    @pytest.mark.parametrize(
        ("name", "value"), [("from", "2026-04-01T00:00:00Z"), ("to", "tomorrow")]
    )
    async def test_invalid_window_is_422(
        self, client: httpx.AsyncClient, name: str, value: str
    ) -> None:
        await put_account(client, "acme")

        r = await client.get("/v1/accounts/acme/coverage", params={**WINDOW, name: value})

        assert error_locs(problem(r, 422)) == [["query", name]]

    async def test_invalid_account_id_is_422(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/v1/accounts/no%20spaces/coverage", params=WINDOW)

        assert error_locs(problem(r, 422)) == [["path", "account_id"]]


async def seed_portfolio(client: httpx.AsyncClient) -> None:
    """acme: a decision maker answered; globex: a user; hooli (no revenue): a decision
    maker; initech: only before the window; umbrella (revenue 0): only an excluded answer."""
    accounts = {
        "acme": ("enterprise", "technology", "1000000.00", "EUR"),
        "globex": ("enterprise", "manufacturing", "500000.50", "EUR"),
        "hooli": ("enterprise", "technology", None, "GBP"),
        "initech": ("smb", "technology", "250000", "USD"),
        "umbrella": ("smb", None, "0", None),
    }
    for account_id, (segment, industry, revenue, currency) in accounts.items():
        fields = {"segment": segment, "industry": industry}
        fields |= {"annual_revenue": revenue, "currency": currency}
        await put_account(client, account_id, **{k: v for k, v in fields.items() if v is not None})
    people = {
        "acme-dm": ("acme", "decision_maker"),
        "acme-user": ("acme", "user"),
        "globex-user": ("globex", "user"),
        "globex-dm": ("globex", "decision_maker"),
        "hooli-dm": ("hooli", "decision_maker"),
        "initech-dm": ("initech", "decision_maker"),
        "umbrella-user": ("umbrella", "user"),
    }
    for person, (account_id, role) in people.items():
        await put_stakeholder(client, person, account_id, role, "other")
    await answer(client, "acme-dm", 9, 10)
    await answer(client, "acme-user", 3, 20)
    await answer(client, "globex-user", 8, 30)
    await exclude(client, await answer(client, "globex-dm", 2, 40))
    await answer(client, "globex-dm", 2, 95)
    await answer(client, "hooli-dm", 10, 50)
    await answer(client, "initech-dm", 6, -30)
    await exclude(client, await answer(client, "umbrella-user", 9, 60))


class TestPortfolioCoverage:
    @pytest.fixture
    async def seeded(self, client: httpx.AsyncClient) -> None:
        await seed_portfolio(client)

    async def test_shares_of_accounts_and_revenue(
        self, client: httpx.AsyncClient, seeded: None
    ) -> None:
        body = await get(client, "/v1/coverage")

        # Revenue: 1,000,000 + 500,000.50 + 250,000 + 0 (hooli has none).
        assert body == {
            "from": "2026-01-01T00:00:00Z",
            "to": "2026-04-01T00:00:00Z",
            "filters": {},
            "accounts": {
                "total": 5,
                "answered": 3,
                "answered_pct": 60.0,
                "decision_maker_answered": 2,
                "decision_maker_answered_pct": 40.0,
            },
            "revenue": {
                "total": 1750000.5,
                "answered": 1500000.5,
                "answered_pct": pytest.approx(100 * 1500000.5 / 1750000.5),
                "decision_maker_answered": 1000000.0,
                "decision_maker_answered_pct": pytest.approx(100 * 1000000 / 1750000.5),
                "accounts_without_revenue": 1,
                "currencies": ["EUR", "USD"],
            },
        }

    async def test_segment_filter(self, client: httpx.AsyncClient, seeded: None) -> None:
        body = await get(client, "/v1/coverage", segment="enterprise")

        assert body["filters"] == {"segment": "enterprise"}
        assert body["accounts"] == {
            "total": 3,
            "answered": 3,
            "answered_pct": 100.0,
            "decision_maker_answered": 2,
            "decision_maker_answered_pct": pytest.approx(200 / 3),
        }
        assert body["revenue"] == {
            "total": 1500000.5,
            "answered": 1500000.5,
            "answered_pct": 100.0,
            "decision_maker_answered": 1000000.0,
            "decision_maker_answered_pct": pytest.approx(100 * 1000000 / 1500000.5),
            "accounts_without_revenue": 1,
            "currencies": ["EUR"],
        }

    async def test_segment_and_industry_filters(
        self, client: httpx.AsyncClient, seeded: None
    ) -> None:
        body = await get(client, "/v1/coverage", segment="smb", industry="technology")

        assert body["filters"] == {"segment": "smb", "industry": "technology"}
        assert body["accounts"] == {
            "total": 1,
            "answered": 0,
            "answered_pct": 0.0,
            "decision_maker_answered": 0,
            "decision_maker_answered_pct": 0.0,
        }
        assert body["revenue"] == {
            "total": 250000.0,
            "answered": 0.0,
            "answered_pct": 0.0,
            "decision_maker_answered": 0.0,
            "decision_maker_answered_pct": 0.0,
            "accounts_without_revenue": 0,
            "currencies": ["USD"],
        }

    async def test_a_later_window(self, client: httpx.AsyncClient, seeded: None) -> None:
        # [day 45, day 100): hooli's decision maker (day 50) and globex's (day 95).
        body = await get(client, "/v1/coverage", **{"from": stamp(45), "to": stamp(100)})

        assert body["accounts"]["answered"] == 2
        assert body["accounts"]["decision_maker_answered"] == 2
        assert body["revenue"]["answered"] == 500000.5
        assert body["revenue"]["decision_maker_answered"] == 500000.5

    async def test_nothing_to_cover(self, client: httpx.AsyncClient, seeded: None) -> None:
        body = await get(client, "/v1/coverage", industry="retail")

        assert body["accounts"] == {
            "total": 0,
            "answered": 0,
            "answered_pct": None,
            "decision_maker_answered": 0,
            "decision_maker_answered_pct": None,
        }
        assert body["revenue"] == {
            "total": 0.0,
            "answered": 0.0,
            "answered_pct": None,
            "decision_maker_answered": 0.0,
            "decision_maker_answered_pct": None,
            "accounts_without_revenue": 0,
            "currencies": [],
        }

    async def test_only_accounts_without_revenue(self, client: httpx.AsyncClient) -> None:
        await put_account(client, "acme", currency="EUR")
        await put_stakeholder(client, "dana", "acme", "decision_maker", "executive")
        await answer(client, "dana", 9, 10)

        body = await get(client, "/v1/coverage")

        assert body["accounts"]["answered_pct"] == 100.0
        assert body["revenue"] == {
            "total": 0.0,
            "answered": 0.0,
            "answered_pct": None,
            "decision_maker_answered": 0.0,
            "decision_maker_answered_pct": None,
            "accounts_without_revenue": 1,
            "currencies": [],
        }

    async def test_another_workspace_sees_nothing(
        self, client: httpx.AsyncClient, seeded: None, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("other")

        body = await get(other.client, "/v1/coverage")

        assert (body["accounts"]["total"], body["revenue"]["total"]) == (0, 0.0)

    @pytest.mark.parametrize(
        ("name", "value"),
        [("from", "2026-04-01T00:00:00Z"), ("to", "2026-13-01T00:00:00Z"), ("segment", "")],
    )
    async def test_invalid_query_is_422(
        self, client: httpx.AsyncClient, name: str, value: str
    ) -> None:
        r = await client.get("/v1/coverage", params={**WINDOW, name: value})

        assert error_locs(problem(r, 422)) == [["query", name]]

    async def test_without_a_key_is_401_and_a_read_key_is_enough(self, tenant: Tenant) -> None:
        client = tenant.client
        await put_account(client, "acme")
        for path in ("/v1/coverage", "/v1/accounts/acme/coverage"):
            request = client.build_request("GET", path, params=WINDOW)
            del request.headers["Authorization"]
            r = await client.send(request)
            assert problem(r, 401)["title"] == "Unauthorized"

            read = {"Authorization": f"Bearer {await tenant.make_key(Scope.READ)}"}
            r = await client.get(path, params=WINDOW, headers=read)
            assert r.status_code == 200
            assert r.json() == await get(client, path)


class TestCoverageServices:
    async def test_last_answer_per_account_and_decision_makers_heard(
        self,
        tenant: Tenant,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        await seed_portfolio(tenant.client)

        async with sessionmaker() as session:
            last = await last_answered_by_account(session, tenant.id, before=at(90))
            heard = await decision_maker_answered(session, tenant.id, window=Window(START, END))

        # globex's day-40 answer is excluded, its day-95 one after `before`; umbrella's excluded.
        assert last == {"acme": at(20), "globex": at(30), "hooli": at(50), "initech": at(-30)}
        assert heard == {"acme", "hooli"}


class TestDefaultWindow:
    @pytest.mark.parametrize(
        "path", ["/v1/coverage", "/v1/accounts/acme/coverage", "/v1/accounts/acme/movements"]
    )
    async def test_follows_the_workspace_setting(self, tenant: Tenant, path: str) -> None:
        await put_account(tenant.client, "acme")
        r = await tenant.client.put("/v1/settings", json={"default_window_days": 30})
        assert r.status_code == 200, r.text

        r = await tenant.client.get(path, params={"to": stamp(60)})

        assert r.status_code == 200, r.text
        assert (r.json()["from"], r.json()["to"]) == (stamp(30), stamp(60))
