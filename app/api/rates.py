"""Response rates: what became of the invitations sent in a window."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.auth import ReadAuth
from app.api.deps import utcnow
from app.api.score_params import Confidence, FiltersDep, WindowDep
from app.api.settings import WorkspaceSettingsDep
from app.bodies import StrictRoute
from app.db import ReadSessionDep
from app.models import InvitationChannel
from app.presenters.rates import RateOptions, rate_groups_read, response_rate_read
from app.schemas.rates import ResponseRateReport
from app.services import accounts
from app.services.rates import RateDimension, count_outcomes

router = APIRouter(prefix="/v1", tags=["invitations"], route_class=StrictRoute)

DESCRIPTION = """\
How many of the invitations sent in the window were opened, answered, dismissed, left to expire
or revoked, and the **response rate** `rate` = answered / invited (0 to 1; null when nothing was
sent) with its Wilson interval at `confidence` and a `precision` flag on n = invited, as scores
have (docs/scoring.md). Suppressed invitations were not sent: they are counted apart.

- **Window**: an invitation belongs to the window its `created_at` falls in (`from` inclusive,
  `to` exclusive); it counts under the status it has now, an open one past `expires_at` as
  expired, exactly as `GET /v1/invitations` shows it.
- **Cuts**: `account_id` is the account the invitation was sent at (invitations keep it);
  `role`, `job_level` and `department` are the stakeholder's current ones, `segment` and
  `industry` the account's current ones (invitations keep no snapshot of them); `survey` and
  `channel` the invitation's.
- `group_by` splits the figures by account, role, job level, survey or channel; the groups add
  up to the total, and account groups carry the account's profile."""


@router.get(
    "/response-rates",
    response_model=ResponseRateReport,
    operation_id="get_response_rates",
    description=DESCRIPTION,
)
async def get_response_rates(
    session: ReadSessionDep,
    auth: ReadAuth,
    settings: WorkspaceSettingsDep,
    filters: FiltersDep,
    requested: WindowDep,
    channel: Annotated[
        InvitationChannel | None, Query(description="only invitations sent by this channel")
    ] = None,
    group_by: RateDimension | None = None,
    confidence: Confidence = None,
) -> ResponseRateReport:
    """Invitations sent in the window and what became of them, with the response rate."""
    window = requested.resolve()
    found = await count_outcomes(
        session,
        auth.workspace_id,
        window=window,
        filters=filters,
        channel=channel,
        group_by=group_by,
        now=utcnow(),
    )
    options = RateOptions(
        confidence=settings.default_confidence if confidence is None else confidence,
        min_n=settings.min_n,
        low_n=settings.low_n,
    )
    groups = None
    if group_by is not None and found.groups is not None:
        profiles = None
        if group_by is RateDimension.ACCOUNT:
            profiles = await accounts.accounts_by_id(session, auth.workspace_id, found.groups)
        groups = rate_groups_read(group_by, found.groups, options, profiles)
    echoed = filters.echo() | ({} if channel is None else {"channel": channel.value})
    return ResponseRateReport(
        from_=window.start,
        to=window.end,
        filters=echoed,
        response_rate=response_rate_read(found.total, options),
        groups=groups,
    )
