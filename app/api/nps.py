"""Scores: the workspace or a filtered slice, with breakdowns, and one account's score."""

from fastapi import APIRouter
from fastapi.responses import Response

from app.api.accounts import AccountId
from app.api.auth import ReadAuth
from app.api.bodies import present
from app.api.report_tags import REVALIDATE, TAGGED_DOCS
from app.api.score_params import AccountCountingDep, CountingDep, FiltersDep, Text, WindowDep
from app.bodies import StrictRoute
from app.db import ReadSessionDep
from app.presenters.scores import benchmark_standing, groups_read, score_read, weights_read
from app.schemas import AccountNpsReport, NpsReport
from app.schemas.cases import OpenCases
from app.services import accounts
from app.services.cases import open_recovery_cases
from app.services.cells import marginal, total
from app.services.counting import count
from app.services.selection import Dimension, Filters

router = APIRouter(prefix="/v1", tags=["scores"], route_class=StrictRoute)


@router.get(
    "/nps",
    response_model=NpsReport,
    operation_id="get_nps",
    dependencies=[REVALIDATE],
    responses=TAGGED_DOCS,
)
async def get_nps(
    session: ReadSessionDep,
    auth: ReadAuth,
    filters: FiltersDep,
    counting: CountingDep,
    requested: WindowDep,
    group_by: Dimension | None = None,
) -> NpsReport | Response:
    """The score over a window and filters, optionally broken down by one dimension."""
    counting.require_portfolio(filters, group_by)
    window = requested.resolve()
    dimensions = () if group_by is None else (group_by,)
    cells = await count(
        session, auth.workspace_id, counting.selection([window], filters), dimensions
    )
    options = counting.options
    by_key = marginal(cells, 0) if group_by is not None else {}
    profiles = None
    if group_by is Dimension.ACCOUNT:
        profiles = await accounts.accounts_by_id(session, auth.workspace_id, by_key)

    def report() -> NpsReport:
        score = score_read(total(cells), options)
        return NpsReport(
            method=counting.method.value,
            weights=weights_read(counting, cells),
            from_=window.start,
            to=window.end,
            filters=filters.echo(),
            score=score,
            benchmark=None
            if filters.industry is None
            else benchmark_standing(filters.industry, score.nps, counting.benchmarks),
            groups=None
            if group_by is None
            else groups_read(
                group_by,
                by_key,
                options,
                counting.benchmarks,
                profiles,
                roles=counting.role_benchmarks,
                industry=filters.industry,
            ),
        )

    return await present(report, items=len(by_key))


BREAKDOWNS = (Dimension.ROLE, Dimension.JOB_LEVEL, Dimension.DEPARTMENT)


@router.get(
    "/accounts/{account_id}/nps",
    response_model=AccountNpsReport,
    operation_id="get_account_nps",
    dependencies=[REVALIDATE],
    responses=TAGGED_DOCS,
    tags=["accounts"],
)
async def get_account_nps(
    account_id: AccountId,
    session: ReadSessionDep,
    auth: ReadAuth,
    counting: AccountCountingDep,
    requested: WindowDep,
    survey: Text = None,
) -> AccountNpsReport:
    """One account's score, its breakdown by role, job level and department, its open cases."""
    counting.require_per_account()
    account = await accounts.get_account(session, auth.workspace_id, account_id)
    window = requested.resolve()
    options = counting.options
    selection = counting.selection([window], Filters(account_id=account_id, survey=survey))
    # One statement for the total and every breakdown, so they come from one snapshot.
    cells = await count(session, auth.workspace_id, selection, BREAKDOWNS)
    score = score_read(total(cells), options)
    open_cases = await open_recovery_cases(session, auth.workspace_id, account_id=account_id)
    case_ids = open_cases.get(account_id, [])
    return AccountNpsReport(
        account_id=account_id,
        method=counting.method.value,
        weights=weights_read(counting, cells),
        from_=window.start,
        to=window.end,
        score=score,
        benchmark=benchmark_standing(account.industry, score.nps, counting.benchmarks),
        breakdowns={
            dim.value: groups_read(
                dim,
                marginal(cells, i),
                options,
                counting.benchmarks,
                roles=counting.role_benchmarks,
                industry=account.industry,
            )
            for i, dim in enumerate(BREAKDOWNS)
        },
        open_case=OpenCases(count=len(case_ids), case_ids=case_ids),
    )
