"""Themes in comments: the workspace's themes counted, and the terms that tell detractors'
comments from promoters'."""

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.auth import ReadAuth
from app.api.report_tags import REVALIDATE, TAGGED_DOCS
from app.api.score_params import CommentCountingDep, FiltersDep, ThemeCountingDep, WindowDep
from app.api.settings import WorkspaceSettingsDep
from app.bodies import StrictRoute
from app.db import ReadSessionDep
from app.presenters.themes import suggested_report, themes_report
from app.schemas.themes import SuggestedThemes, ThemesReport
from app.services import themes

router = APIRouter(prefix="/v1", tags=["scores"], route_class=StrictRoute)

DEFAULT_MIN_COUNT = 5
DEFAULT_LIMIT = 20
DEFAULT_PRIOR = 1000.0


@router.get(
    "/themes",
    response_model=ThemesReport,
    operation_id="get_themes",
    responses={
        200: {"description": "each of the workspace's themes: who mentions it, how they score"},
        **TAGGED_DOCS,
    },
    dependencies=[REVALIDATE],
)
async def get_themes(
    session: ReadSessionDep,
    auth: ReadAuth,
    settings: WorkspaceSettingsDep,
    filters: FiltersDep,
    counting: ThemeCountingDep,
    requested: WindowDep,
) -> ThemesReport:
    """Per theme (settings `themes`): mentions by category, mentioners' and others' NPS, impact."""
    window = requested.resolve()
    selection = counting.selection([window], filters)
    cells = await themes.theme_cells(session, auth.workspace_id, selection, settings.themes)
    return themes_report(cells, settings.themes, counting, window=window, filters=filters.echo())


@router.get(
    "/themes/suggested",
    response_model=SuggestedThemes,
    operation_id="get_suggested_themes",
    responses={
        200: {"description": "the terms most typical of detractors' and of promoters' comments"},
        **TAGGED_DOCS,
    },
    dependencies=[REVALIDATE],
)
async def get_suggested_themes(
    session: ReadSessionDep,
    auth: ReadAuth,
    filters: FiltersDep,
    counting: CommentCountingDep,
    requested: WindowDep,
    min_count: Annotated[
        int,
        Query(
            ge=1,
            le=1_000_000,
            description="leave out terms seen fewer times in detractors' and promoters' "
            "comments together",
        ),
    ] = DEFAULT_MIN_COUNT,
    limit: Annotated[int, Query(ge=1, le=200, description="terms listed per side")] = (
        DEFAULT_LIMIT
    ),
    prior_strength: Annotated[
        float,
        Query(
            gt=0,
            le=1e9,
            description="a0, the prior's total pseudo-count, shared out by the background "
            "frequencies: larger shrinks rare terms more",
        ),
    ] = DEFAULT_PRIOR,
) -> SuggestedThemes:
    """Words and two-word phrases by z of the log-odds ratio, detractors against promoters."""
    window = requested.resolve()
    selection = counting.selection([window], filters)
    totals, batches = await themes.term_counts(
        session, auth.workspace_id, selection, min_count=min_count
    )
    return await suggested_report(
        totals,
        batches,
        counting,
        window=window,
        filters=filters.echo(),
        min_count=min_count,
        limit=limit,
        strength=prior_strength,
    )
