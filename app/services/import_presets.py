"""Presets: the exports users bring, read into the service's fields (README "Import and export"
lists each column).

- `delighted` (kind `responses`): Delighted's response export, CSV (`Response ID`, `Score`,
  `Comment`, `Created At`, `Person ID`, `Name`, `Email`, `Survey Type`, `Company`, ...) or its
  API's JSON objects one a line (`id`, `score`, `comment`, `created_at` in Unix seconds,
  `survey_type`, `person` as an id or an object with `id`, `name`, `email`, and
  `person_properties`). Each row registers its person (the email is the stakeholder id) at an
  account: `Account ID`, `Company ID` or `Company` among the columns or person properties, else
  the email's domain.
- `crm` (kind `stakeholders`): a Salesforce or HubSpot contact export (`Contact ID`/`Record ID`,
  `First Name`, `Last Name`, `Email`, `Title`/`Job Title`, `Department`, `Contact Role`/
  `Buying Role`, `Account ID`/`Associated Company ID`, `Account Name`/`Company Name`, `Industry`,
  `Annual Revenue`, `Account Type`): contacts with their accounts, created when missing.

A preset reads only the columns it knows and leaves the rest; a value it cannot read (a naive
date, a role it does not know) is left to the API's rules or to the default, never guessed.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.models import ImportFormat, ImportKind
from app.services.import_files import Record, text_record


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    kind: ImportKind
    translate: Callable[[Mapping[str, str]], dict[str, str]]

    def record(self, record: Record, fmt: ImportFormat) -> Record:
        """The record's fields, from the export's columns (CSV text or JSON values)."""
        if record.problem is not None:
            return record
        source = _texts(record.values) if fmt is ImportFormat.NDJSON else dict(record.values)
        return text_record(record, self.translate(source))


def _texts(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """JSON values as the text a CSV export would hold, nested objects flattened with dots."""
    out: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{str(key).strip().lower()}"
        if isinstance(value, dict):
            out |= _texts(value, f"{name}.")
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, int | float | str):
            out[name] = str(value)
    return out


def _first(row: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = row.get(name, "").strip()
        if value:
            return value
    return ""


_NOT_ID = re.compile(r"[^A-Za-z0-9._:@-]+")


def slug(text: str) -> str:
    """Text as an id of the service's alphabet (`Acme Corp.` -> `acme-corp.`), at most 128."""
    return _NOT_ID.sub("-", text.strip().lower()).strip("-")[:128]


_ZONED = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)? ?([+-]\d{2}):?(\d{2})")


def instant(text: str) -> str:
    """Unix seconds, or a date-time with a zone (`2024-04-18 05:34:20 -0700`, `... UTC`), as RFC
    3339; anything else as it is (a naive time is refused, not guessed)."""
    value = text.strip()
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC).isoformat().replace("+00:00", "Z")
    if value.upper().endswith(" UTC"):
        value = value[:-4] + "Z"
    matched = _ZONED.fullmatch(value)
    if matched:
        day, clock, fraction, hours, minutes = matched.groups()
        return f"{day}T{clock}{fraction or ''}{hours}:{minutes}"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?Z", value):
        return value.replace(" ", "T")
    return value


def _delighted(row: Mapping[str, str]) -> dict[str, str]:
    email = _first(row, "email", "person.email", "person email")
    person = _first(row, "person id", "person.id", "person")
    response_id = _first(row, "response id", "id")
    company = _first(
        row,
        "account id",
        "company id",
        "person_properties.account id",
        "person_properties.company id",
    )
    company_name = _first(row, "company", "person_properties.company", "company name")
    account = company or slug(company_name) or (email.rsplit("@", 1)[-1] if "@" in email else "")
    survey_type = _first(row, "survey type", "survey_type") or "nps"
    out = {
        "external_id": f"delighted:{response_id}" if response_id else "",
        "stakeholder_id": email or (f"delighted:{person}" if person else ""),
        "score": _first(row, "score"),
        "comment": _first(row, "comment"),
        "submitted_at": instant(
            _first(row, "created at", "created_at", "response timestamp", "date", "responded at")
        ),
        "survey": f"delighted-{slug(survey_type)}",
        "channel": "import",
        "account_id": account,
        "stakeholder.name": _first(row, "name", "person.name"),
        "stakeholder.email": email,
    }
    if company_name:
        out["account.name"] = company_name
    return out


_ROLES = {
    "decision maker": "decision_maker",
    "decision_maker": "decision_maker",
    "economic buyer": "decision_maker",
    "economic decision maker": "decision_maker",
    "executive sponsor": "decision_maker",
    "budget holder": "decision_maker",
    "influencer": "influencer",
    "evaluator": "influencer",
    "technical buyer": "influencer",
    "champion": "influencer",
    "blocker": "influencer",
    "legal and compliance": "influencer",
    "business user": "user",
    "end user": "user",
    "user": "user",
    "other": "other",
}


def role_of(text: str) -> str:
    """A CRM contact role as the service's role; unknown ones are `other`."""
    return _ROLES.get(re.sub(r"\s+", " ", text.replace("&", "and")).strip().lower(), "other")


_LEVELS = (
    (
        re.compile(
            r"\b(chief|c[etofmir]o|president|founder|owner|partner|vp|vice president|svp|evp)\b"
        ),
        "executive",
    ),
    (re.compile(r"\b(director|head)\b"), "director"),
    (re.compile(r"\b(manager|lead|supervisor)\b"), "manager"),
)


def job_level_of(title: str) -> str:
    """A job title's level (a CEO is executive, a Head of IT a director, a Team Lead a manager,
    any other title an individual contributor; no title, other)."""
    text = title.strip().lower()
    if not text:
        return "other"
    for pattern, level in _LEVELS:
        if pattern.search(text):
            return level
    return "individual_contributor"


def _money(text: str) -> str:
    """`$1,200,000.00` as `1200000.00` (symbols, spaces and thousands separators removed)."""
    return re.sub(r"[^0-9.]", "", text) if re.search(r"[0-9]", text) else ""


def _crm(row: Mapping[str, str]) -> dict[str, str]:
    email = _first(row, "email", "email address")
    name = _first(row, "full name", "name") or " ".join(
        p
        for p in (_first(row, "first name", "firstname"), _first(row, "last name", "lastname"))
        if p
    )
    company = _first(row, "account name", "company name", "company", "associated company")
    account = _first(row, "account id", "associated company id", "company id", "account_id")
    out = {
        "id": _first(row, "contact id", "record id", "id", "contact_id") or email,
        "account_id": account or slug(company),
        "name": name,
        "email": email,
        "department": _first(row, "department"),
        "job_level": job_level_of(_first(row, "title", "job title", "jobtitle")),
        "role": role_of(_first(row, "contact role", "role", "buying role")),
        # Always given, so that a contact's account is created when missing.
        "account.name": company or account,
        "account.industry": _first(row, "industry", "account: industry"),
        "account.segment": _first(row, "account type", "segment", "type"),
        "account.annual_revenue": _money(_first(row, "annual revenue", "annualrevenue")),
        "account.currency": _first(row, "currency", "currency code", "annual revenue currency"),
    }
    return out


PRESETS: dict[str, Preset] = {
    "delighted": Preset("delighted", ImportKind.RESPONSES, _delighted),
    "crm": Preset("crm", ImportKind.STAKEHOLDERS, _crm),
}
