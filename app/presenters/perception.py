"""The perception gap from gathered rows (app.services.perception): which predictions count, the
team's view beside the clients', the quadrant and each author's calibration."""

from collections import defaultdict

from app.models import AccountPrediction
from app.presenters.scores import score_read
from app.schemas.perception import (
    AccountGap,
    AuthorCalibration,
    CalibrationPoint,
    CalibrationRead,
    ClientView,
    PerceptionGapReport,
    PredictionRead,
    TeamView,
)
from app.scoring import classify_mean
from app.scoring.perception import Calibration, calibration, quadrant
from app.services.cells import Cell
from app.services.perception import RULE, Gathered, compare, predicted
from app.services.selection import Counting, Filters


def prediction_read(row: AccountPrediction) -> PredictionRead:
    return PredictionRead.model_validate(row)


def _calibration_read(c: Calibration) -> CalibrationRead:
    return CalibrationRead(n=c.n, mae=c.mae, bias=c.bias)


def perception_report(
    data: Gathered,
    counting: Counting,
    filters: Filters,
    *,
    interval: str,
) -> PerceptionGapReport:
    window, buckets = data.windows[0], data.windows[1:]
    role = None if filters.role is None else filters.role.value
    accounts = []
    # author -> window index -> (predicted, actual) pairs
    pairs: dict[str, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for index in range(len(data.windows)):
        for account in data.accounts:
            c = compare(data, index, account.id, role)
            if c.counted and c.clients is not None:
                for v in c.counted:
                    pairs[v.author][index].append((float(predicted(v, role)), c.clients))
            if index != 0:
                continue
            answered = data.answered.get((0, account.id))
            clients = ClientView(
                score=score_read(data.cells.get((0, account.id), Cell()), counting.options),
                mean_score=None if answered is None else answered.mean,
                first_answer_at=None if answered is None else answered.first_at,
            )
            team = None
            if c.counted and c.team is not None:
                team = TeamView(
                    predicted_score=c.team,
                    predicted_category=classify_mean(c.team),
                    authors=len(c.counted),
                    predictions=[prediction_read(v) for v in c.counted],
                )
            gap = None
            if c.team is not None and c.clients is not None:
                gap = c.team - c.clients
            accounts.append(
                AccountGap(
                    account_id=account.id,
                    name=account.name,
                    team=team,
                    clients=clients,
                    gap=gap,
                    quadrant=None
                    if c.team is None or c.clients is None
                    else quadrant(c.team, c.clients),
                    reason="no_answers"
                    if c.counted is None
                    else ("no_prediction_before_answers" if not c.counted else None),
                )
            )
    authors = [
        AuthorCalibration(
            author=author,
            overall=_calibration_read(calibration(by_index.get(0, []))),
            series=[
                CalibrationPoint(
                    from_=w.start, to=w.end, **_point(calibration(by_index.get(i + 1, [])))
                )
                for i, w in enumerate(buckets)
            ],
        )
        for author, by_index in sorted(pairs.items())
    ]
    return PerceptionGapReport(
        method=counting.method.value,
        from_=window.start,
        to=window.end,
        filters=filters.echo(),
        interval=interval,
        rule=RULE,
        accounts=accounts,
        authors=authors,
    )


def _point(c: Calibration) -> dict[str, float | int | None]:
    return {"n": c.n, "mae": c.mae, "bias": c.bias}
