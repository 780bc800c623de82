"""Import jobs as the API shows them."""

from datetime import datetime

from app.models import Import, ImportRowError
from app.schemas.imports import ImportCounts, ImportRead, ImportRowErrorRead
from app.services.imports import progress_of

ERROR_COLUMNS = ("row", "field", "reason", "raw")


def import_read(job: Import, now: datetime) -> ImportRead:
    progress, eta = progress_of(job, now)
    return ImportRead(
        id=job.id,
        kind=job.kind,
        format=job.format,
        status=job.status,
        preset=job.preset,
        mapping=job.mapping,
        file_name=job.file_name,
        size_bytes=job.size_bytes,
        sha256=job.sha256.hex(),
        duplicate_of=job.duplicate_of,
        rows=ImportCounts(
            read=job.rows_read,
            stored=job.rows_stored,
            duplicates=job.rows_duplicate,
            rejected=job.rows_rejected,
        ),
        progress=progress,
        eta_seconds=eta,
        error=job.error,
        errors_url=f"/v1/imports/{job.id}/errors",
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        updated_at=job.updated_at,
    )


def row_error_read(row: ImportRowError) -> ImportRowErrorRead:
    return ImportRowErrorRead(row=row.row_number, field=row.field, reason=row.reason, raw=row.raw)
