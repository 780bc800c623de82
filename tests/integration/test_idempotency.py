"""Idempotency-Key on POST /v1/responses and POST /v1/responses/batch."""

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api import idempotency
from app.api.auth import ApiKeySubject, InvitationSubject
from app.db import driver, session_scope
from app.models import IdempotencyRecord
from app.services.idempotency import purge_expired
from app.services.invitation_tokens import hash_token
from app.services.keys import key_hashes
from app.services.lookups import caller_lookup
from tests.support.api import list_responses, put_account, put_stakeholder
from tests.support.harness import MakeTenant, Tenant, as_service
from tests.support.invitations import invite, public_call
from tests.support.problems import PROBLEM_JSON, REPLAYED, assert_reused

ONE = "/v1/responses"
BATCH = "/v1/responses/batch"


async def _setup(client: httpx.AsyncClient) -> None:
    await put_account(client, "acme", name="Acme")
    await put_stakeholder(client, "dana", role="user")


async def _rows(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    return await list_responses(client, stakeholder_id="dana")


def _key(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


class TestIdempotentResponse:
    async def test_a_retry_replays_the_stored_result(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        body = {"stakeholder_id": "dana", "score": 9, "comment": "great"}
        first = await tenant.client.post(ONE, json=body, headers=_key("k-1"))
        assert first.status_code == 201, first.text
        assert REPLAYED not in first.headers
        again = await tenant.client.post(ONE, json=body, headers=_key("k-1"))
        assert again.status_code == 201, again.text
        assert again.headers[REPLAYED] == "true"
        assert again.headers["content-type"] == "application/json"
        assert again.content == first.content
        assert [row["id"] for row in await _rows(tenant.client)] == [first.json()["id"]]

    async def test_the_same_json_written_differently_is_the_same_request(
        self, tenant: Tenant
    ) -> None:
        await _setup(tenant.client)
        json_headers = {"Content-Type": "application/json", **_key("k-1")}
        first = await tenant.client.post(
            ONE, content=b'{"stakeholder_id":"dana","score":9}', headers=json_headers
        )
        assert first.status_code == 201, first.text
        again = await tenant.client.post(
            ONE, content=b'{\n  "score": 9,\n  "stakeholder_id": "dana"\n}\n', headers=json_headers
        )
        assert again.status_code == 201, again.text
        assert again.headers[REPLAYED] == "true"
        assert again.content == first.content
        assert len(await _rows(tenant.client)) == 1

    async def test_a_replayed_200_stays_a_200(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        body = {"stakeholder_id": "dana", "score": 9, "external_id": "crm-1"}
        stored = await tenant.client.post(ONE, json=body)
        assert stored.status_code == 201, stored.text
        first = await tenant.client.post(ONE, json=body, headers=_key("k-1"))
        assert first.status_code == 200, first.text
        again = await tenant.client.post(ONE, json=body, headers=_key("k-1"))
        assert (again.status_code, again.headers[REPLAYED]) == (200, "true")
        assert again.content == first.content
        assert again.json()["id"] == stored.json()["id"]

    async def test_the_same_key_with_another_body_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        first = await tenant.client.post(
            ONE, json={"stakeholder_id": "dana", "score": 9}, headers=_key("k-1")
        )
        assert first.status_code == 201, first.text
        r = await tenant.client.post(
            ONE, json={"stakeholder_id": "dana", "score": 8}, headers=_key("k-1")
        )
        assert_reused(r)
        assert [row["id"] for row in await _rows(tenant.client)] == [first.json()["id"]]

    async def test_the_same_key_on_another_path_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        item = {"stakeholder_id": "dana", "score": 9}
        first = await tenant.client.post(ONE, json=item, headers=_key("k-1"))
        assert first.status_code == 201, first.text
        r = await tenant.client.post(BATCH, json={"responses": [item]}, headers=_key("k-1"))
        assert_reused(r)
        assert [row["id"] for row in await _rows(tenant.client)] == [first.json()["id"]]

    async def test_a_key_of_255_characters_is_accepted(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        body = {"stakeholder_id": "dana", "score": 9}
        first = await tenant.client.post(ONE, json=body, headers=_key("k" * 255))
        assert first.status_code == 201, first.text
        again = await tenant.client.post(ONE, json=body, headers=_key("k" * 255))
        assert (again.status_code, again.headers[REPLAYED]) == (201, "true")

    async def test_a_key_over_255_characters_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post(
            ONE, json={"stakeholder_id": "dana", "score": 9}, headers=_key("k" * 256)
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == PROBLEM_JSON
        assert r.json()["errors"] == [
            {"loc": ["header", "Idempotency-Key"], "msg": "invalid idempotency key"}
        ]
        assert await _rows(tenant.client) == []

    async def test_an_empty_key_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        r = await tenant.client.post(
            ONE, json={"stakeholder_id": "dana", "score": 9}, headers=_key("")
        )
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == PROBLEM_JSON
        assert await _rows(tenant.client) == []

    async def test_keys_belong_to_one_workspace(
        self, tenant: Tenant, make_tenant: MakeTenant
    ) -> None:
        other = await make_tenant("b")
        await _setup(tenant.client)
        await _setup(other.client)
        body = {"stakeholder_id": "dana", "score": 9}
        mine = await tenant.client.post(ONE, json=body, headers=_key("shared"))
        assert mine.status_code == 201, mine.text
        theirs = await other.client.post(ONE, json=body, headers=_key("shared"))
        assert theirs.status_code == 201, theirs.text
        assert REPLAYED not in theirs.headers
        assert theirs.json()["id"] != mine.json()["id"]
        assert [row["id"] for row in await _rows(other.client)] == [theirs.json()["id"]]
        assert [row["id"] for row in await _rows(tenant.client)] == [mine.json()["id"]]

    async def test_a_refused_request_does_not_use_up_its_key(self, tenant: Tenant) -> None:
        # Only a successful answer is kept, so a corrected retry under the same key runs.
        await _setup(tenant.client)
        bad = await tenant.client.post(
            ONE, json={"stakeholder_id": "dana", "score": 11}, headers=_key("k-1")
        )
        assert bad.status_code == 422, bad.text
        assert await _rows(tenant.client) == []
        fixed = await tenant.client.post(
            ONE, json={"stakeholder_id": "dana", "score": 10}, headers=_key("k-1")
        )
        assert fixed.status_code == 201, fixed.text
        assert REPLAYED not in fixed.headers
        assert [row["score"] for row in await _rows(tenant.client)] == [10]

    async def test_a_refused_request_is_not_replayed(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        body = {"stakeholder_id": "ghost", "score": 9}
        first = await tenant.client.post(ONE, json=body, headers=_key("k-1"))
        assert first.status_code == 422, first.text
        r = await tenant.client.put("/v1/stakeholders/ghost", json={"account_id": "acme"})
        assert r.status_code == 201, r.text
        again = await tenant.client.post(ONE, json=body, headers=_key("k-1"))
        assert again.status_code == 201, again.text
        assert REPLAYED not in again.headers


class TestIdempotentBatch:
    async def test_a_retry_replays_the_stored_result(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        payload = {
            "responses": [
                {"stakeholder_id": "dana", "score": 9},
                {"stakeholder_id": "dana", "score": 3},
            ]
        }
        first = await tenant.client.post(BATCH, json=payload, headers=_key("b-1"))
        assert first.status_code == 200, first.text
        assert REPLAYED not in first.headers
        again = await tenant.client.post(BATCH, json=payload, headers=_key("b-1"))
        assert (again.status_code, again.headers[REPLAYED]) == (200, "true")
        assert again.content == first.content
        ids = {result["id"] for result in first.json()["results"]}
        assert {row["id"] for row in await _rows(tenant.client)} == ids
        assert len(ids) == 2

    async def test_a_partial_result_is_replayed_as_207(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        payload = {
            "responses": [
                {"stakeholder_id": "dana", "score": 9},
                {"stakeholder_id": "dana", "score": 12},
            ]
        }
        first = await tenant.client.post(BATCH, json=payload, headers=_key("b-1"))
        assert first.status_code == 207, first.text
        again = await tenant.client.post(BATCH, json=payload, headers=_key("b-1"))
        assert (again.status_code, again.headers[REPLAYED]) == (207, "true")
        assert again.content == first.content
        assert len(await _rows(tenant.client)) == 1

    async def test_the_same_key_with_another_batch_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        item = {"stakeholder_id": "dana", "score": 9}
        first = await tenant.client.post(BATCH, json={"responses": [item]}, headers=_key("b-1"))
        assert first.status_code == 200, first.text
        r = await tenant.client.post(BATCH, json={"responses": [item, item]}, headers=_key("b-1"))
        assert_reused(r)
        assert len(await _rows(tenant.client)) == 1

    async def test_a_batch_key_reused_on_the_single_path_is_refused(self, tenant: Tenant) -> None:
        await _setup(tenant.client)
        item = {"stakeholder_id": "dana", "score": 9}
        first = await tenant.client.post(BATCH, json={"responses": [item]}, headers=_key("b-1"))
        assert first.status_code == 200, first.text
        r = await tenant.client.post(ONE, json=item, headers=_key("b-1"))
        assert_reused(r)
        assert len(await _rows(tenant.client)) == 1


class TestConcurrentDuplicates:
    async def test_one_key_sent_fifty_times_at_once_is_done_once(self, committed: Tenant) -> None:
        await _setup(committed.client)
        body = {"stakeholder_id": "dana", "score": 9, "comment": "at once"}
        replies = await asyncio.gather(
            *(committed.client.post(ONE, json=body, headers=_key("burst")) for _ in range(50))
        )
        assert {r.status_code for r in replies} <= {201, 409}, [r.text for r in replies]
        executed = [r for r in replies if r.status_code == 201 and REPLAYED not in r.headers]
        assert len(executed) == 1
        first = executed[0]
        for r in replies:
            if r.status_code == 201:
                assert r.content == first.content
            else:
                assert r.headers["content-type"] == PROBLEM_JSON
                assert (r.json()["type"], r.json()["status"]) == ("/problems/conflict", 409)
        assert [row["id"] for row in await _rows(committed.client)] == [first.json()["id"]]

        later = await committed.client.post(ONE, json=body, headers=_key("burst"))
        assert (later.status_code, later.headers[REPLAYED]) == (201, "true")
        assert later.content == first.content

    async def test_fifty_retries_at_once_of_a_finished_request_all_replay(
        self, committed: Tenant
    ) -> None:
        await _setup(committed.client)
        body = {"stakeholder_id": "dana", "score": 9, "comment": "done before"}
        first = await committed.client.post(ONE, json=body, headers=_key("finished"))
        assert first.status_code == 201, first.text
        replies = await asyncio.gather(
            *(committed.client.post(ONE, json=body, headers=_key("finished")) for _ in range(50))
        )
        assert [(r.status_code, r.headers.get(REPLAYED)) for r in replies] == [(201, "true")] * 50
        assert {r.content for r in replies} == {first.content}
        assert [row["id"] for row in await _rows(committed.client)] == [first.json()["id"]]

    async def test_a_holder_that_committed_after_the_look_up_is_replayed_not_redone(
        self, committed: Tenant, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # As if the first request committed between this one's look-up and its lock: the
        # look-up sees no record, the lock is free.
        await _setup(committed.client)
        body = {"stakeholder_id": "dana", "score": 9}
        first = await committed.client.post(ONE, json=body, headers=_key("raced"))
        assert first.status_code == 201, first.text
        monkeypatch.setattr(
            idempotency, "_FIND", idempotency._FIND.replace("r.key = $2", "r.key = $2 AND false")
        )
        again = await committed.client.post(ONE, json=body, headers=_key("raced"))
        assert (again.status_code, again.headers.get(REPLAYED)) == (201, "true")
        assert again.content == first.content
        assert [row["id"] for row in await _rows(committed.client)] == [first.json()["id"]]

    async def test_one_external_id_sent_fifty_times_at_once_is_stored_once(
        self, committed: Tenant
    ) -> None:
        await _setup(committed.client)
        body = {"stakeholder_id": "dana", "score": 9, "external_id": "crm-burst"}
        replies = await asyncio.gather(*(committed.client.post(ONE, json=body) for _ in range(50)))
        statuses = sorted(r.status_code for r in replies)
        assert statuses == [200] * 49 + [201], [r.text for r in replies if r.status_code >= 300]
        ids = {r.json()["id"] for r in replies}
        assert len(ids) == 1
        assert [row["id"] for row in await _rows(committed.client)] == list(ids)


class TestExpiry:
    """Keys are kept 48 hours by default (at least the 24 the contract promises)."""

    async def _age(
        self, sessionmaker: async_sessionmaker[AsyncSession], tenant: Tenant, hours: int
    ) -> None:
        async with session_scope(sessionmaker) as session:
            await session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.workspace_id == tenant.id)
                .values(created_at=func.now() - timedelta(hours=hours))
            )

    async def test_a_key_is_still_replayed_after_47_hours(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await _setup(tenant.client)
        body = {"stakeholder_id": "dana", "score": 9}
        first = await tenant.client.post(ONE, json=body, headers=_key("k-1"))
        await self._age(sessionmaker, tenant, 47)
        again = await tenant.client.post(ONE, json=body, headers=_key("k-1"))
        assert (again.status_code, again.headers.get(REPLAYED)) == (201, "true")
        assert again.content == first.content
        assert len(await _rows(tenant.client)) == 1

    async def test_an_expired_key_is_forgotten_and_can_be_used_again(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await _setup(tenant.client)
        first = await tenant.client.post(
            ONE, json={"stakeholder_id": "dana", "score": 9}, headers=_key("k-1")
        )
        await self._age(sessionmaker, tenant, 49)
        other = await tenant.client.post(
            ONE, json={"stakeholder_id": "dana", "score": 3}, headers=_key("k-1")
        )
        assert other.status_code == 201, other.text
        assert REPLAYED not in other.headers
        assert other.json()["id"] != first.json()["id"]
        assert len(await _rows(tenant.client)) == 2

    async def test_purge_removes_only_expired_records(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        await _setup(tenant.client)
        await tenant.client.post(
            ONE, json={"stakeholder_id": "dana", "score": 9}, headers=_key("old")
        )
        await self._age(sessionmaker, tenant, 49)
        await tenant.client.post(
            ONE, json={"stakeholder_id": "dana", "score": 8}, headers=_key("new")
        )
        async with session_scope(sessionmaker) as session:
            assert await purge_expired(session, hours=48) >= 1
            keys = await session.scalars(
                select(IdempotencyRecord.key).where(IdempotencyRecord.workspace_id == tenant.id)
            )
            assert list(keys) == ["new"]


class TestIdempotentKeyCreation:
    async def test_a_retried_key_creation_creates_nothing_and_shows_no_secret(
        self, tenant: Tenant
    ) -> None:
        body = {"scopes": ["read"], "label": "dashboard"}
        first = await tenant.client.post("/v1/api-keys", json=body, headers=_key("key-1"))
        assert first.status_code == 201, first.text
        secret = first.json()["key"]
        again = await tenant.client.post("/v1/api-keys", json=body, headers=_key("key-1"))
        assert again.status_code == 409
        assert again.headers["content-type"] == PROBLEM_JSON
        assert again.headers[REPLAYED] == "true"
        assert first.json()["prefix"] in again.json()["detail"]
        assert secret not in again.text
        listed = (await tenant.client.get("/v1/api-keys")).json()
        assert [k["label"] for k in listed].count("dashboard") == 1

    async def test_the_secret_is_not_kept_for_replays(
        self, tenant: Tenant, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        first = await tenant.client.post(
            "/v1/api-keys", json={"scopes": ["write"]}, headers=_key("key-2")
        )
        secret = first.json()["key"].encode()
        async with sessionmaker() as session:
            bodies = await session.scalars(
                select(IdempotencyRecord.body).where(IdempotencyRecord.workspace_id == tenant.id)
            )
            assert all(stored is None or secret not in stored for stored in bodies)


class TestTheLookupFindsTheKey:
    """The key's lock and record ride on the caller's look-up (app.services.lookups): where SQL
    keeps each kind of caller's keys must be where Python keeps them, or a retry would look in
    the wrong place (and only the fallbacks would save it)."""

    @pytest.fixture
    def probes(self, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any] | None]:
        seen: list[dict[str, Any] | None] = []
        real = idempotency._settle

        async def settle(*args: Any) -> Any:
            probe = args[-1]
            seen.append(None if probe is None else probe.record())
            return await real(*args)

        monkeypatch.setattr(idempotency, "_settle", settle)
        return seen

    async def test_with_an_api_key(
        self, tenant: Tenant, probes: list[dict[str, Any] | None]
    ) -> None:
        await _setup(tenant.client)
        body = {"stakeholder_id": "dana", "score": 9}
        for _ in range(2):
            await tenant.client.post(ONE, json=body, headers=_key("probe-1"))

        first, again = probes
        assert first is not None
        assert again is not None
        assert (first["locked"], first["created_at"]) == (True, None)
        assert again["locked"] is True
        assert again["created_at"] is not None  # the record the first stored
        assert again["status_code"] == 201

    async def test_with_an_invitation_token(
        self, tenant: Tenant, probes: list[dict[str, Any] | None]
    ) -> None:
        await tenant.db.account("acme")
        await tenant.db.stakeholder("p1", "acme")
        token = (await invite(tenant.client, "p1"))["token"]
        for _ in range(2):
            r = await public_call(
                tenant.client, "POST", "answers", token, json={"score": 9}, headers=_key("a")
            )
            assert r.status_code == 201, r.text

        first, again = probes[-2:]
        assert first is not None
        assert again is not None
        assert first["created_at"] is None
        assert again["created_at"] is not None
        assert again["reread"] == "public_answer"


class TestTheAnswersStatementKeepsTheRecord:
    """A new answer's Idempotency-Key record is written by the statement that stores it
    (Idempotency.kept_with_answer), not by a statement after it."""

    @pytest.fixture
    def kept(self, monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, object]]:
        seen: list[tuple[object, object]] = []
        real = idempotency._keep

        async def keep(session: AsyncSession, record: idempotency.Idempotency) -> None:
            seen.append((record.kept, record.stored))
            await real(session, record)

        monkeypatch.setattr(idempotency, "_keep", keep)
        return seen

    async def test_a_single_response(
        self, tenant: Tenant, kept: list[tuple[object, object]]
    ) -> None:
        await _setup(tenant.client)
        body = {"stakeholder_id": "dana", "score": 9, "external_id": "crm-1"}
        first = await tenant.client.post(ONE, json=body, headers=_key("s-1"))
        # The same external_id again, under another key: a 200 repeat stores nothing new, so
        # its record is written after it, as before.
        repeat = await tenant.client.post(ONE, json=body, headers=_key("s-2"))
        again = await tenant.client.post(ONE, json=body, headers=_key("s-1"))

        assert (first.status_code, repeat.status_code, again.status_code) == (201, 200, 201)
        assert again.headers[REPLAYED] == "true"
        assert again.content == first.content
        assert kept[0] == ((201, "response", None), None)
        assert kept[1][0] is None
        assert kept[1][1] is not None

    async def test_a_public_answer(self, tenant: Tenant, kept: list[tuple[object, object]]) -> None:
        await tenant.db.account("acme")
        await tenant.db.stakeholder("p1", "acme")
        made = await invite(tenant.client, "p1")
        answers = [
            await public_call(
                tenant.client,
                "POST",
                "answers",
                made["token"],
                json={"score": 7},
                headers=_key("p-1"),
            )
            for _ in range(2)
        ]

        assert [r.status_code for r in answers] == [201, 201]
        assert answers[1].headers[REPLAYED] == "true"
        assert answers[1].content == answers[0].content
        # The last request to get that far was the answer (the replay stopped before it).
        assert kept[-1] == ((201, "public_answer", made["id"]), None)

    async def test_a_record_stored_since_the_lookup_is_replayed_and_the_work_undone(
        self, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await _setup(tenant.client)
        body = {"stakeholder_id": "dana", "score": 9}
        first = await tenant.client.post(ONE, json=body, headers=_key("race-1"))
        # As when the first request commits between this one's look-up (its snapshot) and its
        # lock: the look-up saw no record, and the answer's statement finds one.
        unseen = dict.fromkeys(idempotency._PROBE_COLUMNS) | {"locked": True}
        monkeypatch.setattr(idempotency.Probe, "record", lambda self: unseen)
        again = await tenant.client.post(ONE, json=body, headers=_key("race-1"))

        assert again.status_code == 201
        assert again.headers[REPLAYED] == "true"
        assert again.content == first.content
        assert [row["id"] for row in await _rows(tenant.client)] == [first.json()["id"]]


class TestTheProbesPlan:
    """The probe finds the record by the whole primary key, whatever the workspace holds: its
    key compared in the join's condition once kept the index to the workspace column, and every
    call read all the workspace's keys (7 ms a call after 20,000 answers in make bench)."""

    @pytest.mark.parametrize("kind", ["api key", "invitation token"])
    async def test_the_generic_plan_uses_the_whole_primary_key(
        self, tenant: Tenant, kind: str
    ) -> None:
        subject: type[ApiKeySubject | InvitationSubject]
        if kind == "api key":
            lookup, subject = "live_api_key($1)", ApiKeySubject
            credential = f"ARRAY['\\x{key_hashes(tenant.admin_key)[0].hex()}'::bytea]"
        else:
            await tenant.db.account("acme")
            await tenant.db.stakeholder("p1", "acme")
            token = (await invite(tenant.client, "p1"))["token"]
            lookup, subject = "invitation_holder($1)", InvitationSubject
            credential = f"'\\x{hash_token(token).hex()}'::bytea"
        rider = ("probe", idempotency._PROBES[subject], idempotency._PROBE_SELECT, 1)
        sql = caller_lookup(lookup, "k.workspace_id, k.id", rider=rider)
        # As the service's role: row-level security is what kept the key out of the index.
        async with session_scope(as_service(tenant.db.sessionmaker)) as session:
            conn = await driver(session)
            await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            kinds = "bytea[]" if kind == "api key" else "bytea"
            await conn.execute(f"PREPARE probe_plan ({kinds}, text) AS {sql}")
            try:
                rows = await conn.fetch(f"EXPLAIN EXECUTE probe_plan({credential}, 'k-1')")
            finally:
                await conn.execute("DEALLOCATE probe_plan")
        shown = "\n".join(row[0] for row in rows)
        assert "pk_idempotency_keys" in shown, shown
        [condition] = [
            line for line in shown.splitlines() if "Index Cond" in line and "key" in line
        ]
        assert "workspace_id" in condition, shown
        assert "(key)::text" in condition, shown
