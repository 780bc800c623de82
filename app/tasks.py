"""Every module that declares background tasks (app.jobs' @task), imported by the API and by the
worker, so both know the same tasks: the API to queue them, the worker to run them."""

from app import jobs, outbox
from app.services import (
    case_opening,
    deletions,
    deliveries,
    event_scores,
    idempotency,
    import_runs,
    rate_limits,
    risk_changes,
    stakeholder_moves,
    statistics,
    tallies,
)

# case_opening, stakeholder_moves and risk_changes declare outbox subscribers (cases opened,
# movements and at-risk changes announced, from the response events).
MODULES = (
    jobs,
    outbox,
    idempotency,
    deletions,
    import_runs,
    rate_limits,
    deliveries,
    event_scores,
    case_opening,
    stakeholder_moves,
    risk_changes,
    statistics,
    tallies,
)
