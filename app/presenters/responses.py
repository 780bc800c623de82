"""A batch's result from app.services.ingest's outcomes."""

from collections.abc import Sequence

from app.schemas import BatchItemResult, BatchResult
from app.services.ingest import BatchOutcome


def batch_result(outcomes: Sequence[BatchOutcome]) -> BatchResult:
    stored = sum(1 for o in outcomes if o.status == 201)
    duplicates = sum(1 for o in outcomes if o.duplicate)
    return BatchResult(
        stored=stored,
        duplicates=duplicates,
        failed=len(outcomes) - stored - duplicates,
        results=[BatchItemResult.model_validate(o) for o in outcomes],
    )
