"""Key drivers: which rated attributes explain the score, with account-bootstrap intervals."""

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query

from app.analysis.drivers import SHAPLEY_MAX_ATTRIBUTES, Decomposition
from app.api.auth import ReadAuth
from app.api.report_tags import REVALIDATE, TAGGED_DOCS
from app.api.score_params import DriverCountingDep, FiltersDep, WindowDep
from app.bodies import StrictRoute
from app.db import ReadSessionDep
from app.offload import off_loop
from app.presenters.drivers import Fit, GroupStanding, drivers_report
from app.presenters.scores import role_standing, score_read
from app.schemas.attributes import ATTRIBUTE_KEY_MAX_LENGTH
from app.schemas.drivers import DriversReport
from app.services import drivers
from app.services.cells import marginal
from app.services.counting import count
from app.services.selection import Dimension

router = APIRouter(prefix="/v1", tags=["scores"], route_class=StrictRoute)

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0


class DriverGroupBy(StrEnum):
    ROLE = Dimension.ROLE.value
    JOB_LEVEL = Dimension.JOB_LEVEL.value
    DEPARTMENT = Dimension.DEPARTMENT.value
    SEGMENT = Dimension.SEGMENT.value


@router.get(
    "/drivers",
    response_model=DriversReport,
    operation_id="get_drivers",
    responses={
        200: {"description": "the driver models: the total and, with group_by, each group"},
        **TAGGED_DOCS,
    },
    dependencies=[REVALIDATE],
)
async def get_drivers(
    session: ReadSessionDep,
    auth: ReadAuth,
    filters: FiltersDep,
    counting: DriverCountingDep,
    requested: WindowDep,
    group_by: DriverGroupBy | None = None,
    driver_method: Annotated[
        Decomposition,
        Query(
            description="how R² is shared out: relative_weights (Johnson 2000) or shapley (the "
            f"exact LMG decomposition, at most {SHAPLEY_MAX_ATTRIBUTES} attributes); `method` "
            "is the counting method, as in /v1/nps"
        ),
    ] = Decomposition.RELATIVE_WEIGHTS,
    attribute: Annotated[
        list[Annotated[str, Query(min_length=1, max_length=ATTRIBUTE_KEY_MAX_LENGTH)]] | None,
        Query(
            max_length=30,
            description="the attributes to analyse (repeatable); default: the survey's catalog "
            "with a `survey` filter naming a definition that has one, else every numeric "
            "attribute key on the answers",
        ),
    ] = None,
    resamples: Annotated[
        int, Query(ge=100, le=10_000, description="bootstrap resamples of accounts")
    ] = DEFAULT_RESAMPLES,
    seed: Annotated[
        int,
        Query(ge=0, le=2**32 - 1, description="the bootstrap's seed: same request, same answer"),
    ] = DEFAULT_SEED,
) -> DriversReport:
    """What drives the score: each rated attribute's share of R², with its interval."""
    window = requested.resolve()
    dimension = None if group_by is None else Dimension(group_by.value)
    selection = counting.selection([window], filters)
    catalog = await drivers.attribute_catalog(
        session, auth.workspace_id, selection, driver_method, attribute
    )
    slices = await drivers.gather(session, auth.workspace_id, selection, catalog, dimension)
    fit = Fit(driver_method, resamples, seed, counting.options.confidence)
    standings: dict[str | None, GroupStanding] = {}
    if dimension is not None:
        cells = await count(session, auth.workspace_id, selection, (dimension,))
        for key, cell in marginal(cells, 0).items():
            score = score_read(cell, counting.options)
            benchmark = None
            if dimension is Dimension.ROLE:
                benchmark = role_standing(
                    key,
                    filters.industry,
                    score.nps,
                    counting.role_benchmarks,
                    counting.benchmarks,
                )
            standings[key] = (score, benchmark)

    def report() -> DriversReport:
        return drivers_report(
            slices,
            catalog,
            fit,
            counting_method=counting.method.value,
            start=window.start,
            end=window.end,
            filters=filters.echo(),
            group_by=dimension,
            standings=standings,
        )

    return await off_loop(report)
