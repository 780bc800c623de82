"""A batch of account or stakeholder upserts: the summary and each item's outcome."""

from collections.abc import Sequence

from app.schemas import RegisteredItem, RegistrationResult
from app.services.batches import ItemOutcome


def registration_result(outcomes: Sequence[ItemOutcome[str]]) -> RegistrationResult:
    created = sum(1 for o in outcomes if o.status == 201)
    replaced = sum(1 for o in outcomes if o.status == 200)
    return RegistrationResult(
        created=created,
        replaced=replaced,
        failed=len(outcomes) - created - replaced,
        results=[RegisteredItem.model_validate(o) for o in outcomes],
    )
