"""The sidecar of an export: what its rows were made of, so exported figures stay readable."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ExportColumn(BaseModel):
    name: str
    type: Literal["text", "number", "boolean", "json"] = Field(
        description="text cells carry the formula guard; number cells are never altered"
    )
    description: str


class ExportMetadata(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    kind: Literal["responses", "accounts"]
    format: Literal["csv", "ndjson"]
    media_type: str
    method: str | None = Field(
        description="how responses were counted into scores (accounts); null for responses, "
        "where every stored response that passes the filters is one row"
    )
    ci_method: str | None = Field(description="the scores' interval method (accounts)")
    confidence: float | None = Field(description="the scores' interval level (accounts)")
    from_: datetime | None = Field(
        alias="from", description="window start, inclusive; null: unbounded"
    )
    to: datetime | None = Field(description="window end, exclusive; null: unbounded")
    filters: dict[str, str] = Field(description="the filters given, as sent")
    generated_at: datetime
    columns: list[ExportColumn] = Field(
        description="the CSV's columns in order; an NDJSON line holds the API's JSON object"
    )
    formula_guard: str = Field(description="how text cells were neutralised for spreadsheets")
