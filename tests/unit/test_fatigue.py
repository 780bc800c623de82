"""The fatigue rules and invitation tokens, without a database."""

import hashlib
import string
from datetime import UTC, datetime, timedelta

import pytest

from app.schemas.settings import SurveyRules
from app.services.fatigue import AccountFacts, PersonFacts, Verdict, issued, suppression
from app.services.invitation_tokens import generate_token, hash_token, is_invitation_token
from app.services.keys import generate_key

NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
RULES = SurveyRules()


class TestTokens:
    def test_prefix_and_at_least_128_random_bits(self) -> None:
        token = generate_token()

        assert token.startswith("npsi_")
        body = token.removeprefix("npsi_")
        assert set(body) <= set(string.ascii_letters + string.digits + "-_")
        assert len(body) * 6 >= 128

    def test_tokens_and_api_keys_tell_apart(self) -> None:
        assert is_invitation_token(generate_token())
        assert not is_invitation_token(generate_key())

    def test_hash_is_sha256(self) -> None:
        token = generate_token()

        assert hash_token(token) == hashlib.sha256(token.encode()).digest()
        assert generate_token() != token


@pytest.mark.parametrize(
    ("person", "verdict"),
    [
        (PersonFacts(), None),
        (PersonFacts(unsubscribed=True, open_until=NOW + DAY), Verdict("unsubscribed", None)),
        (PersonFacts(open_until=NOW + DAY), Verdict("open_invitation", NOW + DAY)),
        (PersonFacts(open_until=NOW), None),
        (PersonFacts(last_answered_at=NOW - DAY), Verdict("answered_recently", NOW + 89 * DAY)),
        (PersonFacts(last_answered_at=NOW - 90 * DAY), None),
        (
            PersonFacts(last_dismissed_at=NOW - DAY),
            Verdict("dismissed_recently", NOW + 29 * DAY),
        ),
        (PersonFacts(last_dismissed_at=NOW - 30 * DAY), None),
        (
            PersonFacts(last_unanswered_expiry=NOW - DAY),
            Verdict("unanswered_recently", NOW + 29 * DAY),
        ),
        (
            PersonFacts(last_answered_at=NOW - DAY, last_dismissed_at=NOW - DAY),
            Verdict("answered_recently", NOW + 89 * DAY),
        ),
    ],
)
def test_person_rules(person: PersonFacts, verdict: Verdict | None) -> None:
    assert suppression(person, AccountFacts(), RULES, now=NOW) == verdict


def test_zero_days_turns_a_rule_off() -> None:
    rules = SurveyRules(resurvey_after_days=0, after_dismissal_days=0, after_unanswered_days=0)
    person = PersonFacts(
        last_answered_at=NOW, last_dismissed_at=NOW, last_unanswered_expiry=NOW - DAY
    )

    assert suppression(person, AccountFacts(), rules, now=NOW) is None


def test_max_per_account_frees_a_place_when_enough_have_expired() -> None:
    rules = SurveyRules(max_per_account=2)
    account = AccountFacts([NOW + 3 * DAY, NOW + DAY, NOW + 2 * DAY, NOW - DAY])

    assert suppression(PersonFacts(), account, rules, now=NOW) == Verdict(
        "max_per_account", NOW + 2 * DAY
    )
    assert suppression(PersonFacts(), AccountFacts([NOW + DAY]), rules, now=NOW) is None


def test_an_issued_invitation_is_seen_by_the_next_item() -> None:
    person, account = PersonFacts(), AccountFacts()

    issued(person, account, NOW + 30 * DAY)

    assert suppression(person, account, RULES, now=NOW) == Verdict(
        "open_invitation", NOW + 30 * DAY
    )
    assert account.open_expiries == [NOW + 30 * DAY]
