"""Deletion schemas from the tombstone rows of app.services.deletions."""

from app.models import Deletion, DeletionKind
from app.schemas.deletions import DeletionRead


def deletion_read(row: Deletion) -> DeletionRead:
    return DeletionRead(
        kind=DeletionKind(row.kind),
        id=row.object_id,
        external_id=row.external_id,
        deleted_at=row.deleted_at,
    )
