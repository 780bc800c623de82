"""The staff perception gap: the account team's predictions, and where its picture differs from
the clients' (issue 15, section 4)."""

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from fastapi import Response as HttpResponse

from app.api.accounts import AccountId
from app.api.auth import ReadAuth, WriteAuth
from app.api.report_tags import REVALIDATE, TAGGED_DOCS
from app.api.score_params import AccountCountingDep, FiltersDep, WindowDep
from app.bodies import StrictRoute
from app.buckets import Interval, buckets
from app.db import ReadSessionDep, SessionDep
from app.errors import invalid_query
from app.presenters.perception import perception_report, prediction_read
from app.schemas import ID_PATTERN
from app.schemas.perception import (
    PerceptionGapReport,
    PredictionHistory,
    PredictionRead,
    PredictionWrite,
)
from app.services import perception
from app.services.selection import Window

router = APIRouter(prefix="/v1", tags=["perception"], route_class=StrictRoute)

Author = Annotated[
    str,
    Path(
        pattern=ID_PATTERN,
        description="the member of the account team (staff, not a stakeholder), e.g. an email",
    ),
]
MAX_SERIES = 60


@router.put(
    "/accounts/{account_id}/predictions/{author}",
    response_model=PredictionRead,
    status_code=201,
    responses={
        200: {"model": PredictionRead, "description": "the same as the latest version: kept"}
    },
    operation_id="put_prediction",
)
async def put_prediction(
    account_id: AccountId,
    author: Author,
    body: PredictionWrite,
    session: SessionDep,
    auth: WriteAuth,
    response: HttpResponse,
) -> PredictionRead:
    """Record the author's prediction as a new version (201); a repeat of the latest is 200."""
    row, created = await perception.record_prediction(
        session, auth.workspace_id, account_id, author, body
    )
    response.status_code = 201 if created else 200
    return prediction_read(row)


@router.get(
    "/accounts/{account_id}/predictions/{author}",
    response_model=PredictionHistory,
    operation_id="get_prediction_history",
)
async def get_prediction_history(
    account_id: AccountId, author: Author, session: ReadSessionDep, auth: ReadAuth
) -> PredictionHistory:
    """Every version of the author's prediction for the account, oldest first."""
    rows = await perception.prediction_history(session, auth.workspace_id, account_id, author)
    return PredictionHistory(
        account_id=account_id, author=author, data=[prediction_read(r) for r in rows]
    )


@router.get(
    "/perception-gap",
    response_model=PerceptionGapReport,
    operation_id="get_perception_gap",
    dependencies=[REVALIDATE],
    responses=TAGGED_DOCS,
)
async def get_perception_gap(
    session: ReadSessionDep,
    auth: ReadAuth,
    filters: FiltersDep,
    counting: AccountCountingDep,
    requested: WindowDep,
    interval: Annotated[
        Interval,
        Query(description="the buckets (UTC) of each author's calibration series"),
    ] = Interval.QUARTER,
) -> PerceptionGapReport:
    """The team's predictions beside the clients' scores, per account, and each author's
    calibration; predictions made after the answers began never count."""
    counting.require_per_account()
    window = requested.resolve()
    bounds = buckets(window.start, window.end, interval, ZoneInfo("UTC"))
    if bounds is None or len(bounds) > MAX_SERIES:
        raise invalid_query(
            "interval", f"at most {MAX_SERIES} buckets: choose a longer interval or window"
        )
    series = [Window(max(s, window.start), min(e, window.end)) for s, e in bounds]
    data = await perception.gather(
        session,
        auth.workspace_id,
        windows=[window, *series],
        counting=counting,
        filters=filters,
    )
    return perception_report(data, counting, filters, interval=interval.value)
