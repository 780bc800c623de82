"""Running an import: the worker's task `imports.run` (queued by app.services.imports).

The file is read back from import_chunks one chunk (one short transaction) at a time and
parsed as it streams (app.services.import_files). Its rows are merged in bounded chunks
(NPS_IMPORT_CHUNK_ROWS rows, and at most MAX_PEOPLE stakeholders, whose chain locks the chunk
holds), each in one transaction with the import's counters and its rejected rows: a cancel, a
crash or a worker's death leaves whole chunks merged and nothing half-merged, and a job run
again resumes after the last chunk committed.

Response rows are merged as POST /v1/responses/batch would store them
(app.services.import_merge). An import emits no `response.created` events: history is not news
(no webhook, no case opened for a detractor of 2019).
"""

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import driver, in_workspace, session_scope
from app.jobs import JobContext, task
from app.models import (
    Import,
    ImportChunk,
    ImportFormat,
    ImportKind,
    ImportStatus,
)
from app.services.accounts import upsert_accounts
from app.services.batches import ItemOutcome
from app.services.import_files import (
    CsvRecords,
    FileRefused,
    Record,
    csv_record,
    lines,
    ndjson_record,
    raw_ndjson_record,
    resolve_columns,
    sniff_delimiter,
)
from app.services.import_merge import (
    ResponseChunk,
    Tally,
    flat_with_attributes,
    problem_fields,
)
from app.services.import_presets import PRESETS, Preset
from app.services.imports import LIVE, RUN_TASK
from app.services.stakeholders import upsert_stakeholders
from app.services.statistics import refresh_statistics

logger = logging.getLogger("app.imports")

MAX_PEOPLE = 1000
MAX_ATTEMPTS = 3


@task(RUN_TASK, max_attempts=MAX_ATTEMPTS)
async def run_import(ctx: JobContext) -> None:
    """Read the file, merge its rows chunk by chunk, and finish the import."""
    if ctx.sessionmaker is None or ctx.workspace_id is None:
        raise RuntimeError("an import runs in a workspace, on the worker's sessions")
    run = ImportRun(
        ctx.sessionmaker,
        ctx.workspace_id,
        uuid.UUID(str(ctx.payload["import_id"])),
        chunk_rows=ctx.settings.import_chunk_rows,
    )
    try:
        await run.run()
    except FileRefused as exc:
        await run.finish(ImportStatus.FAILED, str(exc))
    except Exception:
        if ctx.attempt >= MAX_ATTEMPTS:
            await run.finish(ImportStatus.FAILED, "the import stopped on an internal error")
        raise


class ImportRun:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        workspace_id: uuid.UUID,
        import_id: uuid.UUID,
        *,
        chunk_rows: int,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.progress = progress  # told the bytes read after each chunk merged
        self.sessionmaker = sessionmaker
        self.workspace_id = workspace_id
        self.import_id = import_id
        self.chunk_rows = chunk_rows
        self.bytes_seen = 0

    def scope(self) -> Any:
        return _Scope(self.sessionmaker, self.workspace_id)

    async def run(self) -> None:
        async with self.scope() as session:
            job = await self._lock(session)
            if job is None or job.status not in LIVE:
                await self._drop_file(session)
                return
            await session.execute(
                update(Import)
                .where(Import.workspace_id == self.workspace_id, Import.id == self.import_id)
                .values(
                    status=ImportStatus.RUNNING.value,
                    started_at=func.coalesce(Import.started_at, func.now()),
                    updated_at=func.now(),
                )
            )
            kind, fmt = ImportKind(job.kind), ImportFormat(job.format)
            mapping: dict[str, str | None] = dict(job.mapping)
            preset = PRESETS[job.preset] if job.preset is not None else None
            done = job.rows_read
        merge = self._merger(kind)
        batch: list[Record] = []
        people: set[str] = set()
        seen = 0
        async for record in self._records(kind, fmt, mapping, preset):
            seen += 1
            if seen <= done:
                continue  # merged by an earlier attempt of this job
            batch.append(record)
            people.add(_person(kind, record))
            if len(batch) >= self.chunk_rows or len(people) >= MAX_PEOPLE:
                if not await self._commit_chunk(batch, merge):
                    return
                batch, people = [], set()
        if batch and not await self._commit_chunk(batch, merge):
            return
        await self.finish(ImportStatus.SUCCEEDED, None)
        # The reports read right after a large import are not planned blind (app.services
        # .statistics; the periodic task would see to it within STATISTICS_EVERY).
        async with self.scope() as session:
            await refresh_statistics(session)

    async def _lock(self, session: AsyncSession) -> Import | None:
        found: Import | None = await session.scalar(
            select(Import)
            .where(Import.workspace_id == self.workspace_id, Import.id == self.import_id)
            .with_for_update()
        )
        return found

    async def _drop_file(self, session: AsyncSession) -> None:
        await session.execute(
            delete(ImportChunk).where(
                ImportChunk.workspace_id == self.workspace_id,
                ImportChunk.import_id == self.import_id,
            )
        )

    async def finish(self, status: ImportStatus, error: str | None) -> None:
        """End the import (unless it was cancelled meanwhile) and delete its file."""
        async with self.scope() as session:
            await session.execute(
                update(Import)
                .where(
                    Import.workspace_id == self.workspace_id,
                    Import.id == self.import_id,
                    Import.status.in_(LIVE),
                )
                .values(
                    status=status.value,
                    error=error,
                    finished_at=func.now(),
                    updated_at=func.now(),
                    bytes_read=Import.size_bytes
                    if status is ImportStatus.SUCCEEDED
                    else Import.bytes_read,
                )
            )
            await self._drop_file(session)

    async def _commit_chunk(
        self, batch: list[Record], merge: Callable[[AsyncSession, list[Record]], Any]
    ) -> bool:
        """Merge one chunk in one transaction with its counters and rejects; False when the
        import was cancelled (then nothing of this chunk is merged)."""
        async with self.scope() as session:
            job = await self._lock(session)
            if job is None or job.status not in LIVE:
                await self._drop_file(session)
                return False
            tally: Tally = await merge(session, batch)
            await self._keep_rejects(session, tally)
            await session.execute(
                update(Import)
                .where(Import.workspace_id == self.workspace_id, Import.id == self.import_id)
                .values(
                    rows_read=Import.rows_read + len(batch),
                    rows_stored=Import.rows_stored + tally.stored,
                    rows_duplicate=Import.rows_duplicate + tally.duplicates,
                    rows_rejected=Import.rows_rejected
                    + len({r.number for r, _, _ in tally.rejected}),
                    bytes_read=self.bytes_seen,
                    updated_at=func.now(),
                )
            )
        if self.progress is not None:
            self.progress(self.bytes_seen)
        return True

    async def _keep_rejects(self, session: AsyncSession, tally: Tally) -> None:
        if not tally.rejected:
            return
        seqs: dict[int, int] = {}
        columns: list[list[Any]] = [[] for _ in range(8)]
        for record, where, reason in tally.rejected:
            seq = seqs[record.number] = seqs.get(record.number, -1) + 1
            who = _who(record)
            for column, value in zip(
                columns,
                (
                    record.number,
                    seq,
                    _clip(where, 300),
                    _text(reason),
                    _text(record.raw),
                    _clip(who[0], 128),
                    _clip(who[1], 128),
                    _clip(who[2], 320),
                ),
                strict=True,
            ):
                column.append(value)
        await (await driver(session)).execute(
            """
            INSERT INTO import_errors (workspace_id, import_id, row_number, seq, field, reason,
                                       raw, stakeholder_id, account_id, email)
            SELECT $1, $2, e.* FROM unnest($3::bigint[], $4::smallint[], $5::text[], $6::text[],
                                           $7::text[], $8::text[], $9::text[], $10::text[]) AS e
            ON CONFLICT DO NOTHING
            """,
            self.workspace_id,
            self.import_id,
            *columns,
        )

    # Reading

    async def _chunks(self) -> AsyncIterator[bytes]:
        seq = 0
        while True:
            async with self.scope() as session:
                data = await session.scalar(
                    select(ImportChunk.data).where(
                        ImportChunk.workspace_id == self.workspace_id,
                        ImportChunk.import_id == self.import_id,
                        ImportChunk.seq == seq,
                    )
                )
            if data is None:
                return
            self.bytes_seen += len(data)
            yield data
            seq += 1

    async def _records(
        self,
        kind: ImportKind,
        fmt: ImportFormat,
        mapping: dict[str, str | None],
        preset: Preset | None,
    ) -> AsyncIterator[Record]:
        if fmt is ImportFormat.NDJSON:
            number = 0
            async for line in lines(self._chunks()):
                number += 1
                if preset is not None:
                    record = raw_ndjson_record(number, line)
                    if record is not None:
                        yield preset.record(record, fmt)
                    continue
                record = ndjson_record(kind, number, line, mapping, lenient=False)
                if record is not None:
                    yield record
            return
        reader: CsvRecords | None = None
        targets: list[str | None] | None = None
        number = 0
        async for line in lines(self._chunks()):
            if reader is None:
                reader = CsvRecords(sniff_delimiter(line))
            reader.push(line)
            for cells, raw, problem in reader.records():
                if targets is None:
                    targets = _header(kind, cells, problem, mapping, preset)
                    continue
                number += 1
                if cells == []:
                    continue  # a blank line
                record = (
                    Record(number, raw, {}, (None, problem or "malformed CSV"))
                    if cells is None
                    else csv_record(number, raw, cells, targets, as_text=preset is not None)
                )
                yield preset.record(record, fmt) if preset is not None else record
        if reader is not None:
            reader.finish()
            for cells, raw, problem in reader.records():
                if targets is None:
                    targets = _header(kind, cells, problem, mapping, preset)
                    continue
                number += 1
                if cells == []:
                    continue
                record = (
                    Record(number, raw, {}, (None, problem or "malformed CSV"))
                    if cells is None
                    else csv_record(number, raw, cells, targets, as_text=preset is not None)
                )
                yield preset.record(record, fmt) if preset is not None else record
        if targets is None:
            raise FileRefused("the file has no header row")

    # Merging

    def _merger(self, kind: ImportKind) -> Callable[[AsyncSession, list[Record]], Any]:
        return {
            ImportKind.ACCOUNTS: self._accounts,
            ImportKind.STAKEHOLDERS: self._stakeholders,
            ImportKind.RESPONSES: self._responses,
        }[kind]

    async def _upserted(
        self,
        batch: list[Record],
        build: Callable[[dict[str, Any]], dict[str, Any]],
        upsert: Callable[[list[Any]], Any],
    ) -> Tally:
        tally = Tally(read=len(batch))
        readable: list[Record] = []
        for record in batch:
            if record.problem is not None:
                tally.reject(record, *record.problem)
            else:
                readable.append(record)
        outcomes: list[ItemOutcome[str]] = await upsert([build(r.values) for r in readable])
        for record, outcome in zip(readable, outcomes, strict=True):
            if outcome.problem is None:
                tally.stored += 1
            else:
                for where, reason in problem_fields(outcome.problem, depth=3):
                    tally.reject(record, where, reason)
        return tally

    async def _accounts(self, session: AsyncSession, batch: list[Record]) -> Tally:
        return await self._upserted(
            batch,
            flat_with_attributes,
            lambda items: upsert_accounts(session, self.workspace_id, items),
        )

    async def _stakeholders(self, session: AsyncSession, batch: list[Record]) -> Tally:
        return await self._upserted(
            batch,
            _stakeholder_item,
            lambda items: upsert_stakeholders(session, self.workspace_id, items),
        )

    async def _responses(self, session: AsyncSession, batch: list[Record]) -> Tally:
        return await ResponseChunk(session, self.workspace_id, batch).merge()


class _Scope:
    """A unit of work acting in the import's workspace."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], workspace_id: uuid.UUID
    ) -> None:
        self._inner = session_scope(sessionmaker)
        self._workspace_id = workspace_id

    async def __aenter__(self) -> AsyncSession:
        session = await self._inner.__aenter__()
        await in_workspace(session, self._workspace_id)
        return session

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._inner.__aexit__(*exc)


def _header(
    kind: ImportKind,
    cells: list[str] | None,
    problem: str | None,
    mapping: dict[str, str | None],
    preset: Preset | None,
) -> list[str | None]:
    if cells is None or not cells:
        raise FileRefused(f"the header row cannot be read: {problem or 'it is empty'}")
    if preset is not None:
        return [cell.strip().lower() or None for cell in cells]
    return resolve_columns(kind, cells, mapping, lenient=False)


def _person(kind: ImportKind, record: Record) -> str:
    key = "stakeholder_id" if kind is ImportKind.RESPONSES else "id"
    value = record.values.get(key)
    return value if isinstance(value, str) else ""


def _who(record: Record) -> tuple[str | None, str | None, str | None]:
    """The stakeholder, account and email a row names (what an erasure looks for)."""
    values = record.values

    def text(*names: str) -> str | None:
        for name in names:
            value = values.get(name)
            if isinstance(value, str):
                return value
        return None

    return (
        text("stakeholder_id", "id"),
        text("account_id"),
        text("email", "stakeholder.email"),
    )


def _text(value: str) -> str:
    return value.replace("\x00", "\\u0000")


def _clip(value: str | None, length: int) -> str | None:
    return None if value is None else _text(value)[:length]


def _stakeholder_item(values: dict[str, Any]) -> dict[str, Any]:
    return flat_with_attributes(values)
