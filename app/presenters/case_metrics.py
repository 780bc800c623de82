"""GET /v1/cases/metrics from the counted figures and app.scoring.survival."""

from app.schemas.case_metrics import (
    CaseMetricsRead,
    DurationRead,
    RecoveryGroupRead,
    RecoveryRead,
    ShareIntervalRead,
    WithinSlaRead,
)
from app.scoring import rate
from app.scoring.survival import Survival, share_difference
from app.services.case_metrics import CaseMetrics, Filters

CONFIDENCE = 0.95


def _duration(s: Survival) -> DurationRead:
    return DurationRead(median_hours=s.median, p90_hours=s.p90, n=s.n, censored=s.censored)


def _group(recovered: int, n: int) -> RecoveryGroupRead:
    return RecoveryGroupRead(share=rate(recovered, n), recovered=recovered, n=n)


def _recovery(m: CaseMetrics) -> RecoveryRead:
    test = share_difference(m.with_case, m.without_case, confidence=CONFIDENCE)
    return RecoveryRead(
        with_case=_group(*m.with_case),
        without_case=_group(*m.without_case),
        difference=None if test is None else test.difference,
        ci=None
        if test is None
        else ShareIntervalRead(low=test.low, high=test.high, level=CONFIDENCE, method="newcombe"),
        z=None if test is None else test.z,
        p_value=None if test is None else test.p_value,
    )


def case_metrics_read(m: CaseMetrics, filters: Filters) -> CaseMetricsRead:
    return CaseMetricsRead(
        kind=filters.kind,
        from_=filters.from_,
        to=filters.to,
        opened=m.opened,
        closed=m.closed,
        open_now=m.open_now,
        overdue=m.overdue,
        time_to_first_action=_duration(m.first_action),
        time_to_close=_duration(m.close),
        closed_within_sla=WithinSlaRead(share=rate(m.closed_within_sla, m.closed), n=m.closed),
        recovery=_recovery(m),
    )
