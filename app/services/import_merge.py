"""One chunk of an import's response rows, merged as POST /v1/responses/batch would store them
(app.services.import_runs reads the file and runs the chunks, each in its own transaction).

Each row is validated by the API's own model (strict scores); an external_id stored before (or
earlier in the chunk) is a duplicate when the content is the same and a rejected row when not
(app.services.repeats); inline people are registered as the API registers them
(app.services.stakeholders.register_inline), and the role, job level and department are stored
as they were when answering. The rows go in through COPY into a temporary staging table and one
INSERT ... SELECT that takes each snapshot from the stakeholders table. Each new row finds its
place in its person's chain by one probe of the chain's index (_LINKS), so a chunk costs its
rows, not the length of the chains it touches; the stored answers before them are relinked by
key, and the few chains a probe cannot place are walked (app.services.chain.relink).
"""

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import driver
from app.errors import ProblemError
from app.schemas import ResponseCreate
from app.schemas.responses import Reason
from app.services.chain import ORDER_OF_R, lock_chains, relink
from app.services.import_files import ATTRIBUTE, Record
from app.services.ingest import MAX_FUTURE, _by_external_ids
from app.services.repeats import differing_fields, judge_repeats
from app.services.response_rows import ANSWER_COLUMNS
from app.services.stakeholders import Snapshot, register_inline
from app.services.surveys import catalog_problem, definitions

_responses = TypeAdapter(list[ResponseCreate])
_response = TypeAdapter(ResponseCreate)
_reason = TypeAdapter(Reason)

# Where a problem of the API's model is reported: the file's field names.
_INLINE = {
    "stakeholder.id": "stakeholder_id",
    "stakeholder.account_id": "account_id",
    "stakeholder.role": "role",
    "stakeholder.job_level": "job_level",
    "stakeholder.department": "department",
}


@dataclass
class Tally:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[Record, str | None, str]] = field(default_factory=list)

    def reject(self, record: Record, where: str | None, reason: str) -> None:
        self.rejected.append((record, where, reason))


def problem_fields(problem: dict[str, Any], *, depth: int) -> list[tuple[str | None, str]]:
    """A problem's field errors as (field, reason), the loc's first `depth` parts (body, the
    batch's field, the index) dropped; its detail when it names no field."""
    errors = problem.get("errors") or []
    found: list[tuple[str | None, str]] = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", [])][depth:]
        where = ".".join(loc) or None
        found.append((_INLINE.get(where or "", where), f"{error.get('msg')}: {problem['detail']}"))
    return found or [(None, str(problem.get("detail")))]


def flat_with_attributes(values: dict[str, Any]) -> dict[str, Any]:
    """A row's fields as the API's JSON body: `attributes.<key>` columns into `attributes`,
    `account.<field>` into an `account` object."""
    item: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    account: dict[str, Any] = {}
    for name, value in values.items():
        if name.startswith(ATTRIBUTE):
            attributes[name[len(ATTRIBUTE) :]] = value
        elif name.startswith("account."):
            account[name[len("account.") :]] = value
        else:
            item[name] = value
    if attributes:
        base = item.get("attributes")
        item["attributes"] = {**base, **attributes} if isinstance(base, dict) else attributes
    if account:
        item["account"] = account
    return item


_PERSON = ("account_id", "role", "job_level", "department", "stakeholder.name", "stakeholder.email")


def response_body(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A responses row as the body of POST /v1/responses (a row carrying the person's account
    registers them inline, with their account created when missing), and the exclusion
    fields beside it. A row without a channel was imported: channel `import`."""
    flat = flat_with_attributes(
        {k: v for k, v in values.items() if k not in _PERSON and k not in ("excluded",)}
    )
    flat.pop("excluded_reason", None)
    account = flat.pop("account", None)
    flat.setdefault("channel", "import")
    if "account_id" in values:
        person: dict[str, Any] = {"account_id": values["account_id"]}
        if "stakeholder_id" in flat:
            person["id"] = flat.pop("stakeholder_id")
        for name in ("role", "job_level", "department"):
            if name in values:
                person[name] = values[name]
        for name in ("name", "email"):
            if f"stakeholder.{name}" in values:
                person[name] = values[f"stakeholder.{name}"]
        person["account"] = account if isinstance(account, dict) else {}
        flat["stakeholder"] = person
    exclusion: dict[str, Any] = {
        k: values[k] for k in ("excluded", "excluded_reason") if k in values
    }
    return flat, exclusion


@dataclass
class _Row:
    record: Record
    item: ResponseCreate
    excluded: bool
    reason: str | None
    planned: dict[str, Any] | None = None
    who: Snapshot | None = None


# Dropped at commit; dropped first too, in case the connection still has one (a transaction
# that only released a savepoint, as the tests' do).
_STAGE = """
    DROP TABLE IF EXISTS pg_temp.import_stage;
    CREATE TEMPORARY TABLE import_stage (
        number bigint, id uuid, external_id text, stakeholder_id text, account_id text,
        role text, job_level text, department text, score smallint, comment text,
        submitted_at timestamptz, survey text, channel text, attributes jsonb,
        excluded boolean, excluded_reason text
    ) ON COMMIT DROP;
    DROP TABLE IF EXISTS pg_temp.import_links;
    CREATE TEMPORARY TABLE import_links (
        id uuid, stakeholder_id text, submitted_at timestamptz, predecessor uuid,
        successor_at timestamptz, tie boolean
    ) ON COMMIT DROP
"""
_STAGE_COLUMNS = ("number", *ANSWER_COLUMNS, "attributes", "excluded", "excluded_reason")
_UNKNOWN = """
    SELECT s.number FROM import_stage AS s
    LEFT JOIN stakeholders AS st ON st.workspace_id = $1 AND st.id = s.stakeholder_id
    WHERE s.account_id IS NULL AND st.id IS NULL
"""
# Where each new counted row falls in its person's stored chain, found by one probe of the
# chain's index, never by walking it: the chain's links partition the person's time, so the
# stored answer whose link spans the row's submitted_at is the one with the least
# superseded_at after it (the earliest in the answers' order among equals). That answer is the
# row's stored predecessor, its link the submitted_at of the row's stored successor; or, when
# it was submitted after the row, there is no predecessor and it is the successor itself. New
# rows' created_at is the transaction's now(), after every stored answer's, unless an answer
# committed since this transaction began carries the same instant (`tie`): those people's
# chains are walked instead (relink).
_LINKS = f"""
    INSERT INTO import_links (id, stakeholder_id, submitted_at, predecessor, successor_at, tie)
    SELECT s.id, s.stakeholder_id, s.submitted_at,
           CASE WHEN p.submitted_at <= s.submitted_at THEN p.id END,
           CASE WHEN p.id IS NULL THEN 'infinity'
                WHEN p.submitted_at <= s.submitted_at THEN p.superseded_at
                ELSE p.submitted_at END,
           coalesce(p.submitted_at = s.submitted_at AND p.created_at >= now(), false)
    FROM import_stage AS s
    LEFT JOIN LATERAL (
        SELECT r.id, r.submitted_at, r.created_at, r.superseded_at FROM responses AS r
        WHERE r.workspace_id = $1 AND r.stakeholder_id = s.stakeholder_id
          AND r.superseded_at > s.submitted_at AND NOT r.excluded
        ORDER BY r.superseded_at, {ORDER_OF_R}
        LIMIT 1
    ) AS p ON true
    WHERE NOT s.excluded
"""
# Each row's snapshot of its stakeholder (as registered now, after this chunk's inline
# registrations), unless the row brought its own (an inline person, as they were on it). Each
# new counted row is linked as it goes in: its superseded_at is the submitted_at of the next
# counted answer of its person, the earlier of the next new row's and its stored successor's
# (import_links); the stored predecessors are relinked next (_PREDECESSORS).
_MERGE = """
    WITH staged AS (
        SELECT s.number, s.id, s.external_id, s.stakeholder_id,
               coalesce(s.account_id, st.account_id) AS account_id,
               CASE WHEN s.account_id IS NULL THEN st.role ELSE s.role END AS role,
               CASE WHEN s.account_id IS NULL THEN st.job_level ELSE s.job_level END AS job_level,
               CASE WHEN s.account_id IS NULL THEN st.department ELSE s.department END
                   AS department,
               s.score, s.comment, s.submitted_at, s.survey, s.channel, s.attributes,
               s.excluded, s.excluded_reason
        FROM import_stage AS s
        LEFT JOIN stakeholders AS st
          ON s.account_id IS NULL AND st.workspace_id = $1 AND st.id = s.stakeholder_id
        WHERE s.account_id IS NOT NULL OR st.id IS NOT NULL
    ), linked AS (
        SELECT id, least(coalesce(lead(submitted_at) OVER (
            PARTITION BY stakeholder_id ORDER BY submitted_at, id  -- one created_at: now()
        ), 'infinity'), successor_at) AS next
        FROM import_links
    )
    INSERT INTO responses (workspace_id, id, external_id, stakeholder_id, account_id, role,
                           job_level, department, score, comment, submitted_at, survey, channel,
                           attributes, excluded, excluded_reason, superseded_at)
    SELECT $1, s.id, s.external_id, s.stakeholder_id, s.account_id, s.role, s.job_level,
           s.department, s.score, s.comment, s.submitted_at, s.survey, s.channel, s.attributes,
           s.excluded, s.excluded_reason, coalesce(l.next, 'infinity')
    FROM staged AS s LEFT JOIN linked AS l ON l.id = s.id
    ORDER BY s.number
    ON CONFLICT (workspace_id, external_id) DO NOTHING
    RETURNING id, stakeholder_id, submitted_at, excluded
"""
# A stored predecessor now links to the earliest new row after it (the rows after it up to its
# old successor all found it). By primary key: the chunk's statements run without nested loops.
# The people in $2 (a tie, or a row that did not go in) are relinked by walking instead.
_PREDECESSORS = """
    WITH first AS (
        SELECT predecessor AS id, min(submitted_at) AS next FROM import_links
        WHERE predecessor IS NOT NULL AND stakeholder_id <> ALL($2::text[])
        GROUP BY predecessor
    )
    UPDATE responses AS r SET superseded_at = first.next
    FROM first
    WHERE r.workspace_id = $1 AND r.id = ANY(ARRAY(SELECT id FROM first)) AND r.id = first.id
      AND r.superseded_at <> first.next
"""
_TIES = "SELECT DISTINCT stakeholder_id FROM import_links WHERE tie"
# A row without external_id that repeats a stored answer of the same stakeholder, instant,
# score, comment and survey (a re-run of the same rows) is a duplicate.
_SAME_ANSWER = """
    SELECT s.n FROM unnest($2::bigint[], $3::text[], $4::timestamptz[], $5::smallint[],
                           $6::text[], $7::text[]) AS s (n, stakeholder_id, submitted_at,
                                                         score, comment, survey)
    WHERE EXISTS (
        SELECT FROM responses AS r
        WHERE r.workspace_id = $1 AND r.stakeholder_id = s.stakeholder_id
          AND r.submitted_at = s.submitted_at AND r.score = s.score
          AND r.comment IS NOT DISTINCT FROM s.comment AND r.survey IS NOT DISTINCT FROM s.survey
    )
"""


class ResponseChunk:
    """One chunk of response rows, merged as POST /v1/responses/batch would store them."""

    def __init__(self, session: AsyncSession, workspace_id: uuid.UUID, batch: list[Record]):
        self.session = session
        self.workspace_id = workspace_id
        self.batch = batch
        self.tally = Tally(read=len(batch))
        self.now = datetime.now(UTC)

    async def merge(self) -> Tally:
        rows = self._validated()
        rows = await self._catalogs(rows)
        # The chain locks first, as a single answer takes them (before any stakeholder row is
        # written), so an import and API writes for the same people cannot deadlock.
        await lock_chains(self.session, self.workspace_id, {r.item.stakeholder_key for r in rows})
        rows = await self._not_repeats(rows)
        rows = await self._registered(rows)
        await self._store(rows)
        return self.tally

    def _validated(self) -> list[_Row]:
        records: list[Record] = []
        bodies: list[dict[str, Any]] = []
        exclusions: list[dict[str, Any]] = []
        for record in self.batch:
            if record.problem is not None:
                self.tally.reject(record, *record.problem)
                continue
            body, exclusion = response_body(record.values)
            records.append(record)
            bodies.append(body)
            exclusions.append(exclusion)
        try:
            items: list[ResponseCreate | None] = list(_responses.validate_python(bodies))
        except ValidationError:
            items = []
            for record, body in zip(records, bodies, strict=True):
                try:
                    items.append(_response.validate_python(body))
                except ValidationError as exc:
                    items.append(None)
                    for error in exc.errors():
                        where = ".".join(str(p) for p in error["loc"]) or None
                        self.tally.reject(record, _INLINE.get(where or "", where), error["msg"])
        rows: list[_Row] = []
        for record, item, exclusion in zip(records, items, exclusions, strict=True):
            if item is None:
                continue
            if item.submitted_at is not None and item.submitted_at > self.now + MAX_FUTURE:
                self.tally.reject(record, "submitted_at", "more than 5 minutes in the future")
                continue
            excluded = exclusion.get("excluded", False)
            if not isinstance(excluded, bool):
                self.tally.reject(record, "excluded", "must be true or false")
                continue
            reason = exclusion.get("excluded_reason")
            if reason is not None:
                try:
                    reason = _reason.validate_python(reason)
                except ValidationError as exc:
                    self.tally.reject(record, "excluded_reason", exc.errors()[0]["msg"])
                    continue
            rows.append(_Row(record, item, excluded, reason if excluded else None))
        return rows

    async def _catalogs(self, rows: list[_Row]) -> list[_Row]:
        rated = [r for r in rows if r.item.attributes and r.item.survey is not None]
        if not rated:
            return rows
        found = await definitions(self.session, self.workspace_id, [r.item.survey for r in rated])
        kept: list[_Row] = []
        for row in rows:
            survey = row.item.survey
            if row.item.attributes and survey is not None and survey in found:
                problem = catalog_problem(row.item.attributes, found[survey], ())
                if problem is not None:
                    self._refuse(row.record, problem)
                    continue
            kept.append(row)
        return kept

    def _refuse(self, record: Record, problem: ProblemError) -> None:
        for where, reason in problem_fields(problem.body(), depth=0):
            self.tally.reject(record, where, reason)

    async def _not_repeats(self, rows: list[_Row]) -> list[_Row]:
        """Rows repeating a stored external_id or a stored answer: duplicates (the same
        content) or rejected (other content), settled before anything is written for them."""
        wanted = sorted({r.item.external_id for r in rows if r.item.external_id is not None})
        stored = {}
        if wanted:
            stored = await _by_external_ids(self.session, self.workspace_id, wanted)
        repeats = [r for r in rows if r.item.external_id in stored]
        judged = await judge_repeats(
            self.session,
            self.workspace_id,
            [(r.item, stored[r.item.external_id or ""], ()) for r in repeats],
        )
        settled = {id(r) for r in repeats}
        for row, conflict in zip(repeats, judged, strict=True):
            if conflict is None:
                self.tally.duplicates += 1
            else:
                self._refuse(row.record, conflict)
        rows = [r for r in rows if id(r) not in settled]
        dated = [r for r in rows if r.item.external_id is None and r.item.submitted_at is not None]
        if dated:
            same = await (await driver(self.session)).fetch(
                _SAME_ANSWER,
                self.workspace_id,
                [r.record.number for r in dated],
                [r.item.stakeholder_key for r in dated],
                [r.item.submitted_at for r in dated],
                [r.item.score for r in dated],
                [r.item.comment for r in dated],
                [r.item.survey for r in dated],
            )
            again = {record["n"] for record in same}
            self.tally.duplicates += sum(1 for r in dated if r.record.number in again)
            rows = [r for r in rows if r.record.number not in again]
        return rows

    async def _registered(self, rows: list[_Row]) -> list[_Row]:
        """Inline people registered, in row order, each row keeping the person as it left
        them; a row whose external_id (or answer) an earlier row of the chunk carries waits
        for that row's fate instead."""
        first: dict[Any, _Row] = {}
        standing: list[_Row] = []
        self.later: list[tuple[_Row, _Row]] = []
        for row in rows:
            key = _answer_key(row.item)
            if key is not None and key in first:
                self.later.append((row, first[key]))
                continue
            if key is not None:
                first[key] = row
            standing.append(row)
        inline = [r for r in standing if r.item.stakeholder is not None]
        registered = await register_inline(
            self.session,
            self.workspace_id,
            [(("body",), r.item.stakeholder) for r in inline if r.item.stakeholder is not None],
        )
        refused: set[int] = set()
        for row, result in zip(inline, registered, strict=True):
            if isinstance(result, ProblemError):
                self._refuse(row.record, result)
                refused.add(id(row))
            else:
                row.who = result
        return [r for r in standing if id(r) not in refused]

    async def _store(self, rows: list[_Row]) -> None:
        conn = await driver(self.session)
        await conn.execute(_STAGE)
        records = []
        for row in rows:
            item, who = row.item, row.who
            row.planned = {
                "id": uuid.uuid4(),
                "stakeholder_id": item.stakeholder_key,
                "score": item.score,
                "comment": item.comment,
                "survey": item.survey,
                "channel": item.channel.value,
                "attributes": item.attributes,
                "submitted_at": item.submitted_at or self.now,
            }
            records.append(
                (
                    row.record.number,
                    row.planned["id"],
                    item.external_id,
                    item.stakeholder_key,
                    who.account_id if who else None,
                    who.role if who else None,
                    who.job_level if who else None,
                    who.department if who else None,
                    item.score,
                    item.comment,
                    row.planned["submitted_at"],
                    item.survey,
                    item.channel.value,
                    json.dumps(item.attributes),
                    row.excluded,
                    row.reason,
                )
            )
        if records:
            await conn.copy_records_to_table(
                "import_stage", records=records, columns=_STAGE_COLUMNS
            )
        # The estimates of a staging table and of an unnest are a few dozen rows whatever a
        # chunk holds; on them PostgreSQL picked nested loops over thousands of rows each (the
        # relink's join of its changed links back to their rows: 0.9 s for 1,745 links,
        # measured). Hash joins only for the chunk's statements; each person's chain is still
        # walked by its index (the LATERAL subqueries are not flattened).
        await conn.execute("SET LOCAL enable_nestloop TO off")
        unknown = {r["number"] for r in await conn.fetch(_UNKNOWN, self.workspace_id)}
        went_in: set[uuid.UUID] = set()
        if records:
            await conn.execute(_LINKS, self.workspace_id)
            went_in = {r["id"] for r in await conn.fetch(_MERGE, self.workspace_id)}
            await self._settle_links(conn, rows, went_in, unknown)
        await conn.execute("SET LOCAL enable_nestloop TO on")
        self.tally.stored += len(went_in)
        for row in rows:
            assert row.planned is not None
            if row.record.number in unknown:
                self.tally.reject(
                    row.record,
                    "stakeholder_id",
                    f"stakeholder {row.item.stakeholder_key!r} does not exist; register it "
                    "first or give the row its account_id to register it",
                )
            elif row.planned["id"] not in went_in:
                self.tally.duplicates += 1  # stored meanwhile by another writer
        for row, earlier in self.later:
            assert earlier.planned is not None
            if earlier.planned["id"] not in went_in:
                self.tally.reject(
                    row.record,
                    "external_id",
                    f"repeats row {earlier.record.number}, which was not stored",
                )
            elif differing := differing_fields(row.item, earlier.planned):
                self.tally.reject(
                    row.record,
                    differing[0],
                    f"repeats row {earlier.record.number} with other content "
                    f"({', '.join(differing)})",
                )
            else:
                self.tally.duplicates += 1

    async def _settle_links(
        self, conn: Any, rows: list[_Row], went_in: set[uuid.UUID], unknown: set[int]
    ) -> None:
        """The stored predecessors relinked; the people whose probes cannot be trusted (an
        answer of the same instant committed since this transaction began, or a row of theirs
        that did not go in, stored meanwhile by another writer) relinked by walking their
        chains from their earliest row of the chunk."""
        walk = {r["stakeholder_id"] for r in await conn.fetch(_TIES)}
        earliest: dict[str, datetime] = {}
        for row in rows:
            assert row.planned is not None
            if row.excluded:
                continue
            who, when = row.planned["stakeholder_id"], row.planned["submitted_at"]
            earliest[who] = min(when, earliest.get(who, when))
            if row.planned["id"] not in went_in and row.record.number not in unknown:
                walk.add(who)
        await conn.execute(_PREDECESSORS, self.workspace_id, sorted(walk))
        since = {who: earliest[who] for who in walk if who in earliest}
        await relink(self.session, self.workspace_id, since, locked=True)


def _answer_key(item: ResponseCreate) -> Any:
    if item.external_id is not None:
        return ("external", item.external_id)
    if item.submitted_at is not None:
        return (
            "answer",
            item.stakeholder_key,
            item.submitted_at,
            item.score,
            item.comment,
            item.survey,
        )
    return None
