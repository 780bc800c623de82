"""`nps import FILE`: the job of POST /v1/imports, run by the command itself with a progress
bar, then its summary and where its rejected rows went.

The import is recorded as one made through the API (GET /v1/imports/{id} shows it), but no job
is queued for it: this process reads and merges the file itself, with the worker's engine."""

import argparse
import asyncio
import csv
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import get_settings
from app.db import create_sessionmaker, in_workspace, session_scope
from app.errors import NotFound, Unprocessable
from app.models import Import, ImportFormat, ImportKind, ImportRowError, ImportStatus, Workspace
from app.services import imports
from app.services.import_files import FileRefused, format_of, normalise_mapping
from app.services.import_presets import PRESETS
from app.services.import_runs import ImportRun
from app.services.keys import workspaces_matching
from app.worker import worker_engine


async def _file(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as given:
        while piece := given.read(imports.CHUNK_BYTES):
            yield piece


async def _workspace(session: AsyncSession, ref: str | None) -> Workspace:
    if ref is not None:
        found = await workspaces_matching(session, ref)
        if len(found) != 1:
            raise NotFound(f"no single workspace has the id or name {ref!r}")
        return found[0]
    first = await session.scalar(select(Workspace).order_by(Workspace.created_at).limit(1))
    if first is None:
        raise NotFound("there is no workspace yet: `nps create-workspace NAME` makes one")
    return first


def run_file_import(url: str, args: argparse.Namespace) -> None:
    if not Path(args.file).is_file():
        raise NotFound(f"no file {args.file}")
    asyncio.run(_run(url, args))


def _kind(args: argparse.Namespace) -> ImportKind:
    if args.preset:
        return PRESETS[args.preset].kind
    if not args.kind:
        raise Unprocessable("--kind is required (accounts, stakeholders or responses)")
    return ImportKind(args.kind)


async def _run(url: str, args: argparse.Namespace) -> None:
    path = Path(args.file)
    kind = _kind(args)
    fmt = ImportFormat(args.format) if args.format else format_of(None, path.name)
    if fmt is None:
        raise Unprocessable("say --format csv or ndjson (the file name does not)")
    try:
        mapping = normalise_mapping(kind, args.mapping or {})
    except FileRefused as exc:
        raise Unprocessable(str(exc)) from None
    settings = get_settings()
    engine = worker_engine(url, settings)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with session_scope(sessionmaker) as session:
            workspace = await _workspace(session, args.workspace)
            await in_workspace(session, workspace.id)
            job = await imports.create_import(
                session,
                workspace.id,
                _file(path),
                kind=kind,
                fmt=fmt,
                preset=args.preset,
                mapping=mapping,
                file_name=path.name[:300],
                max_bytes=settings.import_max_bytes,
                queue=False,
            )
        if job.duplicate_of is None:
            await _with_progress(sessionmaker, workspace.id, job, settings.import_chunk_rows)
        rejects = Path(args.rejects) if args.rejects else path.with_name(path.name + ".rejects.csv")
        await _summary(sessionmaker, workspace.id, job.id, rejects)
    finally:
        await engine.dispose()


async def _with_progress(
    sessionmaker: async_sessionmaker[AsyncSession],
    workspace_id: uuid.UUID,
    job: Import,
    rows: int,
) -> None:
    columns = (TextColumn("importing"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("import", total=job.size_bytes)
        run = ImportRun(
            sessionmaker,
            workspace_id,
            job.id,
            chunk_rows=rows,
            progress=lambda seen: bar.update(task, completed=seen),
        )
        try:
            await run.run()
        except FileRefused as exc:
            await run.finish(ImportStatus.FAILED, str(exc))
        except BaseException:
            await run.finish(ImportStatus.FAILED, "the import stopped: interrupted or an error")
            raise


async def _summary(
    sessionmaker: async_sessionmaker[AsyncSession],
    workspace_id: uuid.UUID,
    import_id: uuid.UUID,
    rejects: Path,
) -> None:
    async with session_scope(sessionmaker) as session:
        await in_workspace(session, workspace_id)
        job = await imports.get_import(session, workspace_id, import_id)
        print(f"import {job.id}: {job.status}")
        if job.duplicate_of is not None:
            print(f"the same file was imported as {job.duplicate_of}: nothing stored again")
        if job.error:
            print(f"error: {job.error}")
        print(
            f"rows read {job.rows_read}, stored {job.rows_stored}, "
            f"duplicates {job.rows_duplicate}, rejected {job.rows_rejected}"
        )
        if job.rows_rejected == 0:
            return
        errors = await session.scalars(
            select(ImportRowError)
            .where(ImportRowError.workspace_id == workspace_id, ImportRowError.import_id == job.id)
            .order_by(ImportRowError.row_number, ImportRowError.seq)
        )
        with rejects.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(["row", "field", "reason", "raw"])
            for e in errors:
                writer.writerow([e.row_number, e.field or "", e.reason, e.raw])
    print(f"rejected rows: {rejects} (and GET /v1/imports/{job.id}/errors)")
