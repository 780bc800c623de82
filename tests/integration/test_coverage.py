"""GET /v1/accounts/{id}/coverage and GET /v1/coverage: who was heard from, and how much of the
portfolio."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Scope
from app.services.coverage import decision_maker_answered, last_answered_by_account
from app.services.selection import Window
from tests.support.api import put_account, put_stakeholder, report, respond
from tests.support.clock import END, START, WINDOW, at, stamp, stamp_at
from tests.support.harness import MakeTenant, Tenant
from tests.support.invitations import add_invitation
from tests.support.problems import error_locs, problem

ROLES = ("decision_maker", "influencer", "user", "other")
JOB_LEVELS = ("executive", "director", "manager", "individual_contributor", "other")


def group(
    name: str, key: str | None, registered: int, answered: int, responses: int, last: float | None
) -> dict[str, Any]:
    return {
        name: key,
        "registered": registered,
        "answered": answered,
        "responses": responses,
        "last_answered_at": None if last is None else stamp_at(last),
    }


def activity(
    stakeholder_id: str,
    role: str,
    job_level: str,
    department: str | None,
    last: float | None,
    answered: bool,
    name: str | None = None,
    last_invitation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "stakeholder_id": stakeholder_id,
        "name": name,
        "role": role,
        "job_level": job_level,
        "department": department,
        "last_answered_at": None if last is None else stamp_at(last),
        "answered_in_window": answered,
        "last_invitation": last_invitation,
    }


def invitation_shown(
    invitation_id: str,
    created: float,
    status: str,
    *,
    survey: str = "relationship",
    channel: str = "email",
    expires_at: datetime | None = None,
    **stamps: float,
) -> dict[str, Any]:
    """A last_invitation as coverage shows it; `stamps` are days of opened_at, answered_at..."""
    moments = ("opened_at", "answered_at", "dismissed_at", "revoked_at")
    return {
        "id": invitation_id,
        "survey": survey,
        "channel": channel,
        "status": status,
        "created_at": stamp_at(created),
        "expires_at": None if expires_at is None else stamp(expires_at),
        **{m: stamp_at(stamps[m]) if m in stamps else None for m in moments},
    }


@pytest.fixture
def client(tenant: Tenant) -> httpx.AsyncClient:
    return tenant.client


class TestAccountCoverage:
    @pytest.fixture
    async def seeded(self, tenant: Tenant) -> None:
        """Registered at acme now: dana (decision maker, heard before the window only), lee
        (user, twice in the window), kim (answered as an influencer, since made a decision
        maker), max (an excluded answer in the window, one after it), nia (never answered).
        ex answered at acme as a user in sales, then moved to globex."""
        db = tenant.db
        await db.account("acme")
        await db.account("globex")
        await db.stakeholder(
            "dana", "acme", role="decision_maker", job_level="executive", department="Engineering"
        )
        await db.stakeholder(
            "lee", "acme", role="user", job_level="individual_contributor", department="ENGINEERING"
        )
        await db.stakeholder(
            "kim", "acme", role="influencer", job_level="manager", department="Finance"
        )
        await db.stakeholder("max", "acme", role="user", job_level="manager", name="Max")
        await db.stakeholder(
            "nia", "acme", role="other", job_level="other", department="Procurement", name="Nia"
        )
        await db.stakeholder("ex", "acme", role="user", job_level="manager", department=" Sales")
        await db.stakeholder(
            "gus", "globex", role="decision_maker", job_level="executive", department="Sales"
        )
        await db.respond("dana", (9, at(-100)))
        await db.respond("lee", (6, at(10)), (8, at(40)))
        await db.respond("kim", (10, at(20)))
        await db.respond("max", (7, at(30)), excluded=True)
        await db.respond("max", (3, at(100)))
        await db.respond("ex", (5, at(50)))
        await db.respond("gus", (9, at(60)))
        # Moved after answering: over HTTP, as a stakeholder's profile changes.
        client = tenant.client
        await put_stakeholder(
            client,
            "kim",
            "acme",
            role="decision_maker",
            job_level="director",
            department="Finance",
            status=200,
        )
        await put_stakeholder(
            client, "ex", "globex", role="user", job_level="manager", department="Sales", status=200
        )

    async def test_coverage_by_role_job_level_and_department(
        self, client: httpx.AsyncClient, seeded: None
    ) -> None:
        body = await report(client, "/v1/accounts/acme/coverage")

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
                {"role": "decision_maker", "registered": 2, "last_answered_at": stamp_at(-100)},
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

    async def test_each_stakeholders_last_invitation_with_its_status_now(
        self, tenant: Tenant, seeded: None, make_tenant: MakeTenant
    ) -> None:
        """dana: answered one, then a newer one opened and still open; lee: one left to lapse,
        and a newer one created at `to` (after the window); kim: revoked; max: only a suppressed
        one (never sent); nia: none, though another workspace invited its own nia."""
        live = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
        lapsed = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
        await add_invitation(tenant, "dana", at(5), status="answered", answered_at=at(6))
        dana = await add_invitation(
            tenant,
            "dana",
            at(30),
            channel="link",
            status="opened",
            opened_at=at(31),
            expires_at=live,
        )
        lee = await add_invitation(
            tenant, "lee", at(50), survey="support", status="issued", expires_at=lapsed
        )
        await add_invitation(tenant, "lee", END, status="issued", expires_at=live)
        kim = await add_invitation(
            tenant, "kim", at(60), channel="widget", status="revoked", revoked_at=at(61)
        )
        await add_invitation(tenant, "max", at(70), status="suppressed")
        other = await make_tenant("other")
        await other.db.account("acme")
        await other.db.stakeholder("nia", "acme")
        await add_invitation(other, "nia", at(10), status="issued", expires_at=live)

        body = await report(tenant.client, "/v1/accounts/acme/coverage")

        shown = {a["stakeholder_id"]: a["last_invitation"] for a in body["stakeholder_activity"]}
        assert shown == {
            "dana": invitation_shown(
                dana, 30, "opened", channel="link", expires_at=live, opened_at=31
            ),
            "lee": invitation_shown(lee, 50, "expired", survey="support", expires_at=lapsed),
            "kim": invitation_shown(kim, 60, "revoked", channel="widget", revoked_at=61),
            "max": None,
            "nia": None,
        }

    async def test_the_last_invitation_is_the_last_before_to(
        self, tenant: Tenant, seeded: None
    ) -> None:
        first = await add_invitation(tenant, "nia", at(10), status="answered", answered_at=at(11))
        await add_invitation(tenant, "nia", at(40), status="dismissed", dismissed_at=at(41))

        body = await report(
            tenant.client, "/v1/accounts/acme/coverage", **{"from": stamp_at(0), "to": stamp_at(40)}
        )

        (nia,) = [a for a in body["stakeholder_activity"] if a["stakeholder_id"] == "nia"]
        assert nia["last_invitation"] == invitation_shown(first, 10, "answered", answered_at=11)

    async def test_a_later_window_hears_other_people(
        self, client: httpx.AsyncClient, seeded: None
    ) -> None:
        # [day 45, day 105): ex (day 50) and max (day 100) answered; lee last did on day 40.
        body = await report(
            client, "/v1/accounts/acme/coverage", **{"from": stamp_at(45), "to": stamp_at(105)}
        )

        assert body["stakeholders"] == {"registered": 5, "answered": 1}
        assert body["by_role"] == [
            group("role", "decision_maker", 2, 0, 0, -100),
            group("role", "influencer", 0, 0, 0, 20),
            group("role", "user", 2, 1, 2, 100),
            group("role", "other", 1, 0, 0, None),
        ]
        assert body["silent_roles"] == [
            {"role": "decision_maker", "registered": 2, "last_answered_at": stamp_at(-100)},
            {"role": "influencer", "registered": 0, "last_answered_at": stamp_at(20)},
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

        body = await report(client, "/v1/accounts/acme/coverage")

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


async def seed_portfolio(tenant: Tenant) -> None:
    """acme: a decision maker answered; globex: a user; hooli (no revenue): a decision
    maker; initech: only before the window; umbrella (revenue 0): only an excluded answer."""
    accounts = {
        "acme": ("enterprise", "technology", "1000000.00", "EUR"),
        "globex": ("enterprise", "manufacturing", "500000.50", "EUR"),
        "hooli": ("enterprise", "technology", None, "GBP"),
        "initech": ("smb", "technology", "250000", "USD"),
        "umbrella": ("smb", None, "0", None),
    }
    db = tenant.db
    for account_id, (segment, industry, revenue, currency) in accounts.items():
        await db.account(
            account_id,
            segment=segment,
            industry=industry,
            annual_revenue=revenue,
            currency=currency,
        )
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
        await db.stakeholder(person, account_id, role=role, job_level="other")
    await db.respond("acme-dm", (9, at(10)))
    await db.respond("acme-user", (3, at(20)))
    await db.respond("globex-user", (8, at(30)))
    await db.respond("globex-dm", (2, at(40)), excluded=True)
    await db.respond("globex-dm", (2, at(95)))
    await db.respond("hooli-dm", (10, at(50)))
    await db.respond("initech-dm", (6, at(-30)))
    await db.respond("umbrella-user", (9, at(60)), excluded=True)


class TestPortfolioCoverage:
    @pytest.fixture
    async def seeded(self, tenant: Tenant) -> None:
        await seed_portfolio(tenant)

    async def test_shares_of_accounts_and_revenue(
        self, client: httpx.AsyncClient, seeded: None
    ) -> None:
        body = await report(client, "/v1/coverage")

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
                "total": "1750000.50",
                "answered": "1500000.50",
                "answered_pct": pytest.approx(100 * 1500000.5 / 1750000.5),
                "decision_maker_answered": "1000000.00",
                "decision_maker_answered_pct": pytest.approx(100 * 1000000 / 1750000.5),
                "accounts_without_revenue": 1,
                "currencies": ["EUR", "USD"],
            },
        }

    async def test_segment_filter(self, client: httpx.AsyncClient, seeded: None) -> None:
        body = await report(client, "/v1/coverage", segment="enterprise")

        assert body["filters"] == {"segment": "enterprise"}
        assert body["accounts"] == {
            "total": 3,
            "answered": 3,
            "answered_pct": 100.0,
            "decision_maker_answered": 2,
            "decision_maker_answered_pct": pytest.approx(200 / 3),
        }
        assert body["revenue"] == {
            "total": "1500000.50",
            "answered": "1500000.50",
            "answered_pct": 100.0,
            "decision_maker_answered": "1000000.00",
            "decision_maker_answered_pct": pytest.approx(100 * 1000000 / 1500000.5),
            "accounts_without_revenue": 1,
            "currencies": ["EUR"],
        }

    async def test_segment_and_industry_filters(
        self, client: httpx.AsyncClient, seeded: None
    ) -> None:
        body = await report(client, "/v1/coverage", segment="smb", industry="technology")

        assert body["filters"] == {"segment": "smb", "industry": "technology"}
        assert body["accounts"] == {
            "total": 1,
            "answered": 0,
            "answered_pct": 0.0,
            "decision_maker_answered": 0,
            "decision_maker_answered_pct": 0.0,
        }
        assert body["revenue"] == {
            "total": "250000.00",
            "answered": "0.00",
            "answered_pct": 0.0,
            "decision_maker_answered": "0.00",
            "decision_maker_answered_pct": 0.0,
            "accounts_without_revenue": 0,
            "currencies": ["USD"],
        }

    async def test_a_later_window(self, client: httpx.AsyncClient, seeded: None) -> None:
        # [day 45, day 100): hooli's decision maker (day 50) and globex's (day 95).
        body = await report(client, "/v1/coverage", **{"from": stamp_at(45), "to": stamp_at(100)})

        assert body["accounts"]["answered"] == 2
        assert body["accounts"]["decision_maker_answered"] == 2
        assert body["revenue"]["answered"] == "500000.50"
        assert body["revenue"]["decision_maker_answered"] == "500000.50"

    async def test_nothing_to_cover(self, client: httpx.AsyncClient, seeded: None) -> None:
        body = await report(client, "/v1/coverage", industry="retail")

        assert body["accounts"] == {
            "total": 0,
            "answered": 0,
            "answered_pct": None,
            "decision_maker_answered": 0,
            "decision_maker_answered_pct": None,
        }
        assert body["revenue"] == {
            "total": "0.00",
            "answered": "0.00",
            "answered_pct": None,
            "decision_maker_answered": "0.00",
            "decision_maker_answered_pct": None,
            "accounts_without_revenue": 0,
            "currencies": [],
        }

    async def test_only_accounts_without_revenue(self, client: httpx.AsyncClient) -> None:
        await put_account(client, "acme", currency="EUR")
        await put_stakeholder(
            client, "dana", "acme", role="decision_maker", job_level="executive", status=(200, 201)
        )
        await respond(client, "dana", 9, at(10))

        body = await report(client, "/v1/coverage")

        assert body["accounts"]["answered_pct"] == 100.0
        assert body["revenue"] == {
            "total": "0.00",
            "answered": "0.00",
            "answered_pct": None,
            "decision_maker_answered": "0.00",
            "decision_maker_answered_pct": None,
            "accounts_without_revenue": 1,
            "currencies": [],
        }

    async def test_another_workspace_sees_nothing(
        self, client: httpx.AsyncClient, seeded: None, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("other")

        body = await report(other.client, "/v1/coverage")

        assert (body["accounts"]["total"], body["revenue"]["total"]) == (0, "0.00")

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
            assert r.json() == await report(client, path)


class TestCoverageServices:
    async def test_last_answer_per_account_and_decision_makers_heard(
        self,
        tenant: Tenant,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        await seed_portfolio(tenant)

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

        r = await tenant.client.get(path, params={"to": stamp_at(60)})

        assert r.status_code == 200, r.text
        assert (r.json()["from"], r.json()["to"]) == (stamp_at(30), stamp_at(60))
