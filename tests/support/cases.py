"""Follow-up cases in the tests: the case rules as the API shows them."""

from typing import Any

DEFAULT_CASE_RULES: list[dict[str, Any]] = [
    {"id": "detractor", "kind": "detractor", "sla_hours": 48, "roles": None},
    {
        "id": "decision_maker_passive",
        "kind": "passive_or_lower",
        "sla_hours": 48,
        "roles": ["decision_maker"],
    },
    {
        "id": "advocacy",
        "kind": "advocacy",
        "sla_hours": 168,
        "roles": ["decision_maker", "influencer"],
    },
]
# One rule of every kind, away from the defaults.
CUSTOM_CASE_RULES: list[dict[str, Any]] = [
    {
        "id": "churn-words",
        "kind": "keyword",
        "sla_hours": 4,
        "keywords": ["cancel", "too slow"],
        "roles": None,
    },
    {"id": "exec-detractor", "kind": "detractor", "sla_hours": 24, "roles": ["decision_maker"]},
    {
        "id": "key-passive",
        "kind": "passive_or_lower",
        "sla_hours": 72,
        "roles": ["decision_maker", "influencer", "user"],
    },
    {"id": "fell", "kind": "fell_category", "sla_hours": 96, "roles": None},
    {"id": "champions", "kind": "advocacy", "sla_hours": 336, "roles": ["decision_maker"]},
]
