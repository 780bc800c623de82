"""Trends over calendar buckets and comparisons of two periods or segments."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.scores import AccountProfile, ChangeRead, ScoreRead, WeightsRead


class TrendPoint(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    start: datetime = Field(description="the bucket's start")
    end: datetime = Field(description="the bucket's end (exclusive)")
    from_: datetime = Field(alias="from", description="the counting window's start")
    to: datetime = Field(description="the counting window's end (exclusive): the bucket's end")
    score: ScoreRead
    change: ChangeRead | None = Field(
        description="versus the previous non-empty point, when the two windows are disjoint"
    )


class TrendSeries(BaseModel):
    key: dict[str, str | None]
    account: AccountProfile | None = Field(None, description="with group_by=account")
    points: list[TrendPoint]


class TrendReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    method: str
    weights: WeightsRead | None = None
    interval: Literal["week", "month", "quarter", "year"]
    tz: str
    rolling_days: int | None
    from_: datetime = Field(alias="from", description="the first bucket's start")
    to: datetime = Field(description="the last bucket's end")
    filters: dict[str, str]
    points: list[TrendPoint]
    series: list[TrendSeries] | None = Field(None, description="one series per group_by value")


class CompareSide(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: datetime = Field(alias="from")
    to: datetime
    filters: dict[str, str]
    score: ScoreRead


class CompareReport(BaseModel):
    method: str
    weights: WeightsRead | None = None
    dimension: str | None = Field(description="the dimension whose values a and b are compared")
    a: CompareSide
    b: CompareSide
    change: ChangeRead | None = Field(description="a minus b; null when either side is empty")
