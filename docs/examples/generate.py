"""Writes the walk-through's sample history (accounts.json, stakeholders.json, history.json).

Deterministic: the same files on every run, so the README's sample outputs can be checked against
them (tests/integration/test_readme.py runs the walk-through). Run it again after changing it:

    .venv/bin/python docs/examples/generate.py
"""

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
START = datetime(2024, 12, 1, tzinfo=UTC)
QUARTERS = 8  # December 2024 to November 2026

# id, name, industry, segment, revenue, and each quarter's score range (low, high) for its people.
ACCOUNTS = [
    ("umbrella", "Umbrella Health", "technology", "enterprise", "3000000.00", [(8, 10)] * 8),
    ("globex", "Globex", "manufacturing", "mid-market", "850000.00", [(5, 9)] * 8),
    ("initech", "Initech", "professional services", "mid-market", "400000.00", [(7, 10)] * 6),
    ("acme", "Acme Corp", "technology", "enterprise", "1200000.00", [(8, 10)] * 6 + [(3, 7)] * 2),
    ("hooli", "Hooli", "technology", "smb", None, [(6, 10)] * 8),
]
PEOPLE = [
    ("decision_maker", "executive", "Management"),
    ("influencer", "director", "Engineering"),
    ("influencer", "manager", "Operations"),
    ("user", "individual_contributor", "Engineering"),
    ("user", "individual_contributor", "Operations"),
    ("user", "manager", "Finance"),
]
NAMES = ["alex", "blair", "casey", "drew", "emery", "finley"]
COMMENTS: dict[str, list[str | None]] = {
    "promoter": ["Support is quick", "The reports save us hours", "Great onboarding"],
    "passive": ["Fine, but pricing is high", "Does the job", None],
    "detractor": ["Too many outages lately", "Support takes days to answer", "Hard to use"],
}


def _category(score: int) -> str:
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def build() -> dict[str, str]:
    """Each file's name and text."""
    rng = random.Random(2026)
    accounts: list[dict[str, Any]] = []
    stakeholders: list[dict[str, Any]] = []
    responses: list[dict[str, Any]] = []
    for account_id, name, industry, segment, revenue, quarters in ACCOUNTS:
        account = {"id": account_id, "name": name, "industry": industry, "segment": segment}
        if revenue is not None:
            account |= {"annual_revenue": revenue, "currency": "EUR"}
        accounts.append(account)
        for who, (role, level, department) in zip(NAMES, PEOPLE, strict=True):
            person = f"{who}@{account_id}.example"
            stakeholders.append(
                {
                    "id": person,
                    "account_id": account_id,
                    "name": who.title(),
                    "role": role,
                    "job_level": level,
                    "department": department,
                }
            )
            for quarter, (low, high) in enumerate(quarters):
                if rng.random() < 0.2:
                    continue  # not everyone answers every survey
                start = START + timedelta(days=91 * quarter)
                submitted = start + timedelta(days=rng.randrange(88), hours=rng.randrange(8, 18))
                score = rng.randint(low, high)
                answer = {
                    "stakeholder_id": person,
                    "score": score,
                    "submitted_at": submitted.isoformat().replace("+00:00", "Z"),
                    "survey": f"relationship-{start.year}-q{(start.month - 1) // 3 + 1}",
                    "external_id": f"hist-{len(responses) + 1:04d}",
                }
                comment = rng.choice(COMMENTS[_category(score)])
                if comment is not None:
                    answer["comment"] = comment
                responses.append(answer)
    responses.sort(key=lambda r: r["submitted_at"])
    return {
        file: json.dumps({key: items}, indent=1, ensure_ascii=False) + "\n"
        for file, key, items in [
            ("accounts.json", "accounts", accounts),
            ("stakeholders.json", "stakeholders", stakeholders),
            ("history.json", "responses", responses),
        ]
    }


def main() -> None:
    for file, text in build().items():
        (HERE / file).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
