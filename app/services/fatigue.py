"""The fatigue rules, decided in memory from a few facts per stakeholder (read in bulk by
app.services.invitations), so a batch applies them between its own items as well.

A rule that suppresses names itself and the instant it stops applying (None: indefinitely).
When several apply, the first in RULES order is reported.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.schemas.settings import SurveyRules

RULES = (
    "unsubscribed",
    "open_invitation",
    "answered_recently",
    "dismissed_recently",
    "unanswered_recently",
    "max_per_account",
)


@dataclass(slots=True)
class PersonFacts:
    """What the rules need to know of one stakeholder, across surveys and channels."""

    unsubscribed: bool = False
    last_answered_at: datetime | None = None
    last_dismissed_at: datetime | None = None
    last_unanswered_expiry: datetime | None = None  # the latest expiry of an unanswered one
    open_until: datetime | None = None  # the latest expiry of an open (issued/opened) one


@dataclass(slots=True)
class AccountFacts:
    """The open invitations of one account and survey: their expiries."""

    open_expiries: list[datetime] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Verdict:
    rule: str
    until: datetime | None


def _after(moment: datetime | None, days: int, now: datetime) -> datetime | None:
    """The end of a rule counting `days` from `moment`, when that is still ahead."""
    if moment is None or days <= 0:
        return None
    until = moment + timedelta(days=days)
    return until if until > now else None


def suppression(
    person: PersonFacts, account: AccountFacts, rules: SurveyRules, *, now: datetime
) -> Verdict | None:
    """The rule that forbids inviting this person now, or None when none does."""
    if person.unsubscribed:
        return Verdict("unsubscribed", None)
    if person.open_until is not None and person.open_until > now:
        return Verdict("open_invitation", person.open_until)
    for rule, moment, days in (
        ("answered_recently", person.last_answered_at, rules.resurvey_after_days),
        ("dismissed_recently", person.last_dismissed_at, rules.after_dismissal_days),
        ("unanswered_recently", person.last_unanswered_expiry, rules.after_unanswered_days),
    ):
        until = _after(moment, days, now)
        if until is not None:
            return Verdict(rule, until)
    limit = rules.max_per_account
    if limit is not None:
        live = sorted(e for e in account.open_expiries if e > now)
        if len(live) >= limit:
            # A place frees when enough of the open ones have expired.
            return Verdict("max_per_account", live[len(live) - limit])
    return None


def issued(person: PersonFacts, account: AccountFacts, expires_at: datetime) -> None:
    """Record an invitation just issued, so the next items of a batch see it."""
    person.open_until = max(expires_at, person.open_until or expires_at)
    account.open_expiries.append(expires_at)
