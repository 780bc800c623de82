"""GET /v1/movements and GET /v1/accounts/{id}/movements: category changes between answers."""

import re
import uuid
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import session_scope
from app.models import Role, Scope
from app.pagination import encode_key
from app.scoring import classify
from app.services.movements import MovementFilters, downward_by_account, movements_page
from app.services.selection import Window
from tests.support.api import post_responses, put_account, put_stakeholder, report, set_excluded
from tests.support.clock import END, START, WINDOW, at, stamp_at
from tests.support.harness import MakeTenant, Tenant
from tests.support.problems import error_locs, problem

EMPTY_PAGE: dict[str, Any] = {"data": [], "next_cursor": None}

# An answer as stored: (response id, score, day after START).
Given = tuple[str, int, float]


# Stakeholders of these tests are users at manager level unless they say otherwise.
register = partial(put_stakeholder, role="user", job_level="manager", status=(200, 201))


async def answer(
    client: httpx.AsyncClient, stakeholder_id: str, *scores: tuple[int, float], survey: str = ""
) -> list[Given]:
    """Store (score, day) answers of one stakeholder in one batch; what was stored."""
    items = [
        {"stakeholder_id": stakeholder_id, "score": score, "submitted_at": at(day).isoformat()}
        | ({"survey": survey} if survey else {})
        for score, day in scores
    ]
    ids = await post_responses(client, items)
    return [(rid, score, day) for rid, (score, day) in zip(ids, scores, strict=True)]


def side(given: Given) -> dict[str, Any]:
    response_id, score, day = given
    return {
        "response_id": response_id,
        "score": score,
        "category": classify(score).value,
        "submitted_at": stamp_at(day),
    }


def movement(
    stakeholder_id: str,
    direction: str,
    before: Given,
    after: Given,
    *,
    account_id: str = "acme",
    role: str = "user",
    job_level: str = "manager",
) -> dict[str, Any]:
    return {
        "stakeholder_id": stakeholder_id,
        "account_id": account_id,
        "role": role,
        "job_level": job_level,
        "direction": direction,
        "from": side(before),
        "to": side(after),
    }


async def movements(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    return await report(client, "/v1/movements", **params)


def page(*data: dict[str, Any]) -> dict[str, Any]:
    return {"data": list(data), "next_cursor": None}


@pytest.fixture
def client(tenant: Tenant) -> httpx.AsyncClient:
    return tenant.client


class TestMovementChain:
    async def test_each_change_of_category_is_a_movement(self, client: httpx.AsyncClient) -> None:
        await put_account(client, "acme")
        await register(client, "s")
        a, b, c, d, e, f = await answer(
            client, "s", (6, 5), (7, 10), (8, 15), (9, 20), (10, 25), (3, 30)
        )

        # 6 -> 7 rises to passive, 8 -> 9 to promoter; 7 -> 8 and 9 -> 10 stay where they were.
        assert await movements(client) == page(
            movement("s", "down", e, f), movement("s", "up", c, d), movement("s", "up", a, b)
        )

    async def test_a_late_older_answer_reorders_the_chain(self, client: httpx.AsyncClient) -> None:
        await put_account(client, "acme")
        await register(client, "s")
        first, third = await answer(client, "s", (10, 10), (3, 30))
        assert await movements(client) == page(movement("s", "down", first, third))

        [second] = await answer(client, "s", (8, 20))

        assert await movements(client) == page(
            movement("s", "down", second, third), movement("s", "down", first, second)
        )

    async def test_excluding_an_answer_relinks_the_chain(self, client: httpx.AsyncClient) -> None:
        await put_account(client, "acme")
        await register(client, "s")
        a, b, c = await answer(client, "s", (10, 5), (3, 10), (8, 15))
        assert await movements(client) == page(
            movement("s", "up", b, c), movement("s", "down", a, b)
        )

        await set_excluded(client, b[0], True)
        assert await movements(client) == page(movement("s", "down", a, c))

        await set_excluded(client, b[0], False)
        assert await movements(client) == page(
            movement("s", "up", b, c), movement("s", "down", a, b)
        )

    async def test_excluding_removes_a_movement(self, client: httpx.AsyncClient) -> None:
        await put_account(client, "acme")
        await register(client, "s")
        _, b, _ = await answer(client, "s", (3, 5), (9, 10), (4, 15))

        await set_excluded(client, b[0], True)

        assert await movements(client) == EMPTY_PAGE

    async def test_the_previous_answer_may_precede_the_window(
        self, client: httpx.AsyncClient
    ) -> None:
        await put_account(client, "acme")
        await register(client, "s")
        await register(client, "first-time")
        before, inside = await answer(client, "s", (9, -40), (5, 10))
        await answer(client, "first-time", (2, 10))

        assert await movements(client) == page(movement("s", "down", before, inside))

    async def test_window_is_from_inclusive_to_exclusive(self, client: httpx.AsyncClient) -> None:
        await put_account(client, "acme")
        await register(client, "s")
        a, b, c = await answer(client, "s", (9, -1), (3, 0), (10, 90))

        # The movement at `to` is not in the window; the one at `from` is.
        assert at(90) == END
        assert await movements(client) == page(movement("s", "down", a, b))
        later = await movements(client, to="2026-04-01T00:00:01Z")
        assert later == page(movement("s", "up", b, c), movement("s", "down", a, b))

    async def test_an_answer_after_the_window_does_not_change_the_past(
        self, client: httpx.AsyncClient
    ) -> None:
        await put_account(client, "acme")
        await register(client, "s")
        a, b, _ = await answer(client, "s", (9, 10), (8, 20), (0, 100))

        assert await movements(client) == page(movement("s", "down", a, b))

    async def test_role_and_account_are_those_of_the_new_answer(
        self, client: httpx.AsyncClient
    ) -> None:
        await put_account(client, "old")
        await put_account(client, "new")
        await register(client, "s", "old", role="user", job_level="manager")
        [before] = await answer(client, "s", (10, 10))
        await register(client, "s", "new", role="decision_maker", job_level="director")
        [after] = await answer(client, "s", (4, 20))

        expected = movement(
            "s",
            "down",
            before,
            after,
            account_id="new",
            role="decision_maker",
            job_level="director",
        )
        assert await movements(client) == page(expected)
        assert await movements(client, account_id="new", role="decision_maker") == page(expected)
        assert await movements(client, account_id="old") == EMPTY_PAGE
        assert await movements(client, role="user") == EMPTY_PAGE


class TestMovementFilters:
    @pytest.fixture
    async def seeded(self, client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
        """u: a user at acme falls; d: a decision maker at globex climbs; x: survey answers."""
        await put_account(client, "acme")
        await put_account(client, "globex")
        await register(client, "u", "acme", role="user")
        await register(client, "d", "globex", role="decision_maker", job_level="executive")
        await register(client, "x", "acme", role="influencer", job_level="director")
        u = await answer(client, "u", (9, 10), (6, 20))
        d = await answer(client, "d", (2, 15), (9, 25))
        # x: q1 answers 10 then 7 (down within q1); another survey's 0 sits between them.
        [x1] = await answer(client, "x", (10, 30), survey="q1")
        [x2] = await answer(client, "x", (0, 35), survey="q2")
        [x3] = await answer(client, "x", (7, 40), survey="q1")
        x = {"role": "influencer", "job_level": "director"}
        return {
            "u": movement("u", "down", *u),
            "d": movement(
                "d", "up", *d, account_id="globex", role="decision_maker", job_level="executive"
            ),
            "x_down": movement("x", "down", x1, x2, **x),
            "x_up": movement("x", "up", x2, x3, **x),
            "x_q1": movement("x", "down", x1, x3, **x),
        }

    async def test_no_filter(
        self, client: httpx.AsyncClient, seeded: dict[str, dict[str, Any]]
    ) -> None:
        assert await movements(client) == page(
            seeded["x_up"], seeded["x_down"], seeded["d"], seeded["u"]
        )

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"account_id": "acme"}, ["x_up", "x_down", "u"]),
            ({"account_id": "globex"}, ["d"]),
            ({"account_id": "nobody"}, []),
            ({"role": "decision_maker"}, ["d"]),
            ({"role": "influencer"}, ["x_up", "x_down"]),
            ({"role": "other"}, []),
            ({"direction": "up"}, ["x_up", "d"]),
            ({"direction": "down"}, ["x_down", "u"]),
            ({"account_id": "acme", "direction": "up"}, ["x_up"]),
            ({"survey": "q1"}, ["x_q1"]),
            ({"survey": "q2"}, []),
            ({"from": "2026-01-21T00:00:00Z", "to": "2026-02-06T00:00:00Z"}, ["x_down", "d", "u"]),
            ({"from": "2026-01-21T00:00:01Z", "to": "2026-02-05T00:00:00Z"}, ["d"]),
        ],
    )
    async def test_filter(
        self,
        client: httpx.AsyncClient,
        seeded: dict[str, dict[str, Any]],
        params: dict[str, str],
        expected: list[str],
    ) -> None:
        assert await movements(client, **params) == page(*(seeded[k] for k in expected))


class TestMovementPages:
    async def test_cursor_walks_every_movement_once_newest_first(
        self, client: httpx.AsyncClient
    ) -> None:
        await put_account(client, "acme")
        for name in ("a", "b", "c"):
            await register(client, name)
        a = await answer(client, "a", (9, 1), (3, 10), (9, 20))
        b = await answer(client, "b", (3, 2), (9, 21), (3, 30))
        c = await answer(client, "c", (7, 3), (10, 5))
        newest_first = [
            movement("b", "down", b[1], b[2]),
            movement("b", "up", b[0], b[1]),
            movement("a", "up", a[1], a[2]),
            movement("a", "down", a[0], a[1]),
            movement("c", "up", *c),
        ]

        pages: list[list[dict[str, Any]]] = []
        cursors: list[str | None] = []
        params: dict[str, str] = {"limit": "2"}
        for _ in range(3):
            body = await movements(client, **params)
            pages.append(body["data"])
            cursors.append(body["next_cursor"])
            params = {"limit": "2", "cursor": body["next_cursor"] or ""}

        assert pages == [newest_first[:2], newest_first[2:4], newest_first[4:]]
        assert [c is None for c in cursors] == [False, False, True]

    async def test_ties_on_time_go_to_the_greater_id(self, client: httpx.AsyncClient) -> None:
        await put_account(client, "acme")
        await register(client, "a")
        await register(client, "b")
        r = await client.post(
            "/v1/responses/batch",
            json={
                "responses": [
                    {"stakeholder_id": s, "score": score, "submitted_at": at(day).isoformat()}
                    for s in ("a", "b")
                    for score, day in ((10, 1), (0, 20))
                ]
            },
        )
        assert r.status_code == 200, r.text
        a1, a2, b1, b2 = [x["id"] for x in r.json()["results"]]
        expected = [
            movement("a", "down", (a1, 10, 1), (a2, 0, 20)),
            movement("b", "down", (b1, 10, 1), (b2, 0, 20)),
        ]
        # Same submitted_at and created_at (one transaction): the greater response id first.
        expected.sort(key=lambda m: uuid.UUID(m["to"]["response_id"]), reverse=True)

        first = await movements(client, limit="1")
        second = await movements(client, limit="1", cursor=first["next_cursor"])

        assert first["data"] + second["data"] == expected
        assert second["next_cursor"] is None

    async def test_limit_equal_to_the_count_has_no_next_page(
        self, client: httpx.AsyncClient
    ) -> None:
        await put_account(client, "acme")
        await register(client, "s")
        a, b = await answer(client, "s", (9, 1), (0, 2))

        assert await movements(client, limit="1") == page(movement("s", "down", a, b))


class TestMovementErrors:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("limit", "0"),
            ("limit", "201"),
            ("direction", "sideways"),
            ("role", "ceo"),
            ("account_id", "no spaces"),
            ("survey", ""),
            ("cursor", "not-a-cursor"),
            ("cursor", "WyIyMDI2LTAxLTAxIiwiMjAyNi0wMS0wMSIsIngiXQ"),  # naive times, bad id
            ("from", "yesterday"),
        ],
    )
    async def test_invalid_query_is_422(
        self, client: httpx.AsyncClient, name: str, value: str
    ) -> None:
        r = await client.get("/v1/movements", params={**WINDOW, name: value})

        body = problem(r, 422)
        assert body["type"] == "/problems/validation-error"
        assert error_locs(body) == [["query", name]]

    async def test_from_not_before_to_is_422(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/v1/movements", params={"from": WINDOW["to"], "to": WINDOW["to"]})

        assert error_locs(problem(r, 422)) == [["query", "from"]]

    async def test_without_a_key_is_401(self, tenant: Tenant) -> None:
        await put_account(tenant.client, "acme")
        for path in ("/v1/movements", "/v1/accounts/acme/movements"):
            request = tenant.client.build_request("GET", path, params=WINDOW)
            del request.headers["Authorization"]
            r = await tenant.client.send(request)
            assert problem(r, 401)["title"] == "Unauthorized"
            assert r.headers["www-authenticate"] == "Bearer"

    async def test_revoked_key_is_401(self, tenant: Tenant) -> None:
        key = await tenant.make_key(Scope.READ)
        r = await tenant.client.delete(f"/v1/api-keys/{key[:12]}")
        assert r.status_code == 204, r.text

        r = await tenant.client.get("/v1/movements", headers={"Authorization": f"Bearer {key}"})

        problem(r, 401)

    async def test_a_read_key_is_enough(self, tenant: Tenant) -> None:
        client = tenant.client
        await put_account(client, "acme")
        await register(client, "s")
        a, b = await answer(client, "s", (9, 1), (0, 2))
        read = {"Authorization": f"Bearer {await tenant.make_key(Scope.READ)}"}

        r = await client.get("/v1/movements", params=WINDOW, headers=read)

        assert r.status_code == 200
        assert r.json() == page(movement("s", "down", a, b))
        r = await client.get("/v1/accounts/acme/movements", params=WINDOW, headers=read)
        assert r.status_code == 200

    async def test_another_workspace_sees_nothing(
        self, client: httpx.AsyncClient, make_tenant: MakeTenant
    ) -> None:
        await put_account(client, "acme")
        await register(client, "s")
        await answer(client, "s", (9, 1), (0, 2))
        other = await make_tenant("other")

        assert await movements(other.client) == EMPTY_PAGE
        r = await other.client.get("/v1/accounts/acme/movements", params=WINDOW)
        assert problem(r, 404)["detail"] == "account 'acme' does not exist"


def mover(stakeholder_id: str, role: str, before: Given, after: Given) -> dict[str, Any]:
    return {"stakeholder_id": stakeholder_id, "role": role, "from": side(before), "to": side(after)}


def transition(before: str, after: str, count: int) -> dict[str, Any]:
    return {"from": before, "to": after, "count": count}


async def summary(client: httpx.AsyncClient, account_id: str, **params: str) -> dict[str, Any]:
    return await report(client, f"/v1/accounts/{account_id}/movements", **params)


class TestAccountMovements:
    @pytest.fixture
    async def seeded(self, client: httpx.AsyncClient) -> dict[str, list[Given]]:
        """At acme: a falls (and becomes a decision maker), b climbs, c ends where they began,
        d answered once, f moved in from globex and fell; e's movements are at globex."""
        await put_account(client, "acme")
        await put_account(client, "globex")
        for name, role in (("a", "user"), ("b", "user"), ("c", "influencer"), ("d", "user")):
            await register(client, name, "acme", role=role)
        await register(client, "e", "globex")
        await register(client, "f", "globex")
        a = await answer(client, "a", (10, -10), (7, 10))
        await register(client, "a", "acme", role="decision_maker", job_level="executive")
        a += await answer(client, "a", (3, 20))
        f = await answer(client, "f", (9, 5))
        await register(client, "f", "acme")
        f += await answer(client, "f", (2, 15))
        return {
            "a": a,
            "b": await answer(client, "b", (3, 5), (10, 15), (8, 25), (10, 35)),
            "c": await answer(client, "c", (9, 5), (5, 15), (10, 25)),
            "d": await answer(client, "d", (9, 5)),
            "e": await answer(client, "e", (9, 5), (0, 10)),
            "f": f,
        }

    async def test_counts_transitions_climbers_and_fallers(
        self, client: httpx.AsyncClient, seeded: dict[str, list[Given]]
    ) -> None:
        a, b, f = seeded["a"], seeded["b"], seeded["f"]

        # a: promoter>passive, passive>detractor; b: detractor>promoter, promoter>passive,
        # passive>promoter; c: promoter>detractor, detractor>promoter; f: promoter>detractor.
        assert await summary(client, "acme") == {
            "account_id": "acme",
            "from": "2026-01-01T00:00:00Z",
            "to": "2026-04-01T00:00:00Z",
            "up": 3,
            "down": 5,
            "transitions": [
                transition("detractor", "promoter", 2),
                transition("passive", "detractor", 1),
                transition("passive", "promoter", 1),
                transition("promoter", "detractor", 2),
                transition("promoter", "passive", 2),
            ],
            "climbers": [mover("b", "user", b[0], b[3])],
            "fallers": [mover("a", "decision_maker", a[0], a[2]), mover("f", "user", f[0], f[1])],
        }

    async def test_first_movement_in_the_window_gives_the_start(
        self, client: httpx.AsyncClient, seeded: dict[str, list[Given]]
    ) -> None:
        a, b, f = seeded["a"], seeded["b"], seeded["f"]

        body = await summary(client, "acme", **{"from": "2026-01-12T00:00:00Z"})

        # a's fall to passive (day 10) is before the window: a starts from passive.
        assert (body["up"], body["down"]) == (3, 4)
        assert body["transitions"] == [
            transition("detractor", "promoter", 2),
            transition("passive", "detractor", 1),
            transition("passive", "promoter", 1),
            transition("promoter", "detractor", 2),
            transition("promoter", "passive", 1),
        ]
        assert body["climbers"] == [mover("b", "user", b[0], b[3])]
        assert body["fallers"] == [
            mover("a", "decision_maker", a[1], a[2]),
            mover("f", "user", f[0], f[1]),
        ]

    async def test_other_accounts_movements(
        self, client: httpx.AsyncClient, seeded: dict[str, list[Given]]
    ) -> None:
        e = seeded["e"]

        body = await summary(client, "globex")

        assert (body["up"], body["down"]) == (0, 1)
        assert body["transitions"] == [transition("promoter", "detractor", 1)]
        assert (body["climbers"], body["fallers"]) == ([], [mover("e", "user", e[0], e[1])])

    async def test_survey_takes_both_answers_from_that_survey(
        self, client: httpx.AsyncClient
    ) -> None:
        await put_account(client, "acme")
        await register(client, "s")
        [q1_first] = await answer(client, "s", (10, 5), survey="q1")
        await answer(client, "s", (0, 10), survey="q2")
        [q1_second] = await answer(client, "s", (7, 15), survey="q1")

        body = await summary(client, "acme", survey="q1")

        assert (body["up"], body["down"]) == (0, 1)
        assert body["transitions"] == [transition("promoter", "passive", 1)]
        assert body["fallers"] == [mover("s", "user", q1_first, q1_second)]
        assert (await summary(client, "acme"))["transitions"] == [
            transition("detractor", "passive", 1),
            transition("promoter", "detractor", 1),
        ]

    async def test_account_without_movements(self, client: httpx.AsyncClient) -> None:
        await put_account(client, "acme")

        assert await summary(client, "acme") == {
            "account_id": "acme",
            "from": "2026-01-01T00:00:00Z",
            "to": "2026-04-01T00:00:00Z",
            "up": 0,
            "down": 0,
            "transitions": [],
            "climbers": [],
            "fallers": [],
        }

    async def test_unknown_account_is_404(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/v1/accounts/nope/movements", params=WINDOW)

        assert problem(r, 404) == {
            "type": "/problems/not-found",
            "title": "Not found",
            "status": 404,
            "detail": "account 'nope' does not exist",
        }

    @pytest.mark.parametrize(
        ("name", "value"), [("from", "2026-04-01T00:00:00Z"), ("to", "2026-01-01"), ("survey", "")]
    )
    async def test_invalid_query_is_422(
        self, client: httpx.AsyncClient, name: str, value: str
    ) -> None:
        await put_account(client, "acme")

        r = await client.get("/v1/accounts/acme/movements", params={**WINDOW, name: value})

        assert error_locs(problem(r, 422)) == [["query", name]]


class TestDownwardByAccount:
    async def test_down_movements_of_the_roles_per_account_newest_first(
        self,
        tenant: Tenant,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        client = tenant.client
        await put_account(client, "acme")
        await put_account(client, "globex")
        await register(client, "dm", "acme", role="decision_maker")
        await register(client, "inf", "acme", role="influencer")
        await register(client, "user", "acme", role="user")
        await register(client, "g", "globex", role="decision_maker")
        dm = await answer(client, "dm", (10, 1), (7, 10), (2, 20), (9, 30))
        inf = await answer(client, "inf", (9, 1), (0, 15))
        await answer(client, "user", (9, 1), (0, 15))
        g = await answer(client, "g", (8, 1), (5, 40), (4, 95))

        async with sessionmaker() as session:
            found = await downward_by_account(
                session,
                tenant.id,
                window=Window(START, END),
                roles={Role.DECISION_MAKER, Role.INFLUENCER},
            )

        def down(stakeholder_id: str, before: Given, after: Given) -> tuple[Any, ...]:
            return (stakeholder_id, before[0], after[0])

        assert {
            account: [
                (m.stakeholder_id, str(m.before.response_id), str(m.after.response_id))
                for m in moves
            ]
            for account, moves in found.items()
        } == {
            "acme": [down("dm", dm[1], dm[2]), down("inf", *inf), down("dm", dm[0], dm[1])],
            "globex": [down("g", g[0], g[1])],
        }
        assert {m.direction.value for moves in found.values() for m in moves} == {"down"}


class TestMovementsPagePlan:
    """A page of movements reads the window's answers newest first from the window's index and
    looks up each one's predecessor; it never numbers and sorts every movement of the window
    (the statement that was the slowest common read: p50 5.6 s with about 1M answers)."""

    @pytest.mark.parametrize("survey", [None, "relationship"])
    async def test_reads_the_index_in_page_order(
        self,
        tenant: Tenant,
        sessionmaker: async_sessionmaker[AsyncSession],
        survey: str | None,
    ) -> None:
        statement = movements_page(
            tenant.id,
            window=Window(START, END),
            filters=MovementFilters(survey=survey),
            limit=51,
            cursor=encode_key([START.isoformat(), START.isoformat(), str(uuid.uuid4())]),
        )
        async with session_scope(sessionmaker) as session:
            dialect = (await session.connection()).dialect
            sql = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
            # With no other way out than the indexes (a test's tables are too small for the
            # planner to prefer them otherwise), a plan that needs a sort still shows one.
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            await session.execute(text("SET LOCAL enable_bitmapscan = off"))
            await session.execute(text("SET LOCAL enable_sort = off"))
            shown = "\n".join(row[0] for row in await session.execute(text(f"EXPLAIN {sql}")))
        outer = (
            "Index Only Scan Backward using ix_responses_workspace_submitted on responses answer"
        )
        assert outer in shown, shown
        assert "WindowAgg" not in shown, shown
        # The only sort is the predecessor's, of one stakeholder's answers, inside the lateral.
        assert not re.search(r"Sort Key: answer\.", shown), shown
        assert "Incremental Sort" not in shown, shown
