"""GET /v1/cases/metrics: counts, survival times, the share closed within SLA, and recovery."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.models import CaseKind


class DurationRead(BaseModel):
    """A Kaplan-Meier estimate over the cases; those still waiting are censored at now."""

    median_hours: float | None = Field(description="smallest t with S(t) <= 0.5; null: not yet")
    p90_hours: float | None = Field(description="smallest t with S(t) <= 0.1; null: not yet")
    n: int = Field(description="cases in the estimate")
    censored: int = Field(description="cases still waiting, counted up to now, not dropped")


class WithinSlaRead(BaseModel):
    share: float | None = Field(description="0..1: closed_at <= opened_at + sla_hours; null: n=0")
    n: int = Field(description="closed cases")


class RecoveryGroupRead(BaseModel):
    share: float | None = Field(description="recovered / n, 0..1; null when n = 0")
    recovered: int = Field(description="whose next answer was passive or promoter")
    n: int = Field(description="detractors who answered again")


class ShareIntervalRead(BaseModel):
    low: float = Field(description="-1..1, like `difference`")
    high: float
    level: float
    method: str = Field(description="newcombe: the hybrid score interval from two Wilson ones")


class RecoveryRead(BaseModel):
    """Scores regress to the mean on their own: only the difference between the groups says
    whether a closed case helps."""

    with_case: RecoveryGroupRead = Field(
        description="detractors whose case closed, by their first answer after closed_at"
    )
    without_case: RecoveryGroupRead = Field(
        description="detractor answers no case took up, by the stakeholder's next answer"
    )
    difference: float | None = Field(description="with_case.share - without_case.share")
    ci: ShareIntervalRead | None
    z: float | None = Field(description="pooled two-proportion z; null without variance")
    p_value: float | None = Field(description="two-sided")


class CaseMetricsRead(BaseModel):
    """About the cases of `kind` opened in [from, to) that match the filters."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    kind: CaseKind
    from_: datetime | None = Field(alias="from")
    to: datetime | None
    opened: int
    closed: int
    open_now: int = Field(description="not closed yet")
    overdue: int = Field(description="not closed and past due_at")
    time_to_first_action: DurationRead
    time_to_close: DurationRead
    closed_within_sla: WithinSlaRead
    recovery: RecoveryRead
