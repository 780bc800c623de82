"""Response-rate reports from counted outcomes: the rate, its Wilson interval, its precision."""

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from app.models import Account
from app.presenters.scores import account_profile
from app.schemas.rates import RateGroupRead, RateIntervalRead, ResponseRateRead
from app.scoring import precision, rate, wilson_interval
from app.services.rates import Outcomes, RateDimension, key_name


@dataclass(frozen=True, slots=True)
class RateOptions:
    """The interval's level and the precision thresholds, from the request and the workspace."""

    confidence: float = 0.95
    min_n: int = 5
    low_n: int = 30


def response_rate_read(outcomes: Outcomes, options: RateOptions) -> ResponseRateRead:
    interval = wilson_interval(outcomes.answered, outcomes.invited, confidence=options.confidence)
    return ResponseRateRead(
        **asdict(outcomes),
        rate=rate(outcomes.answered, outcomes.invited),
        ci=None
        if interval is None
        else RateIntervalRead(
            low=interval.low, high=interval.high, level=options.confidence, method="wilson"
        ),
        precision=precision(outcomes.invited, min_n=options.min_n, low_n=options.low_n),
    )


def rate_groups_read(
    dimension: RateDimension,
    groups: Mapping[str, Outcomes],
    options: RateOptions,
    accounts: Mapping[str, Account] | None = None,
) -> list[RateGroupRead]:
    """Groups in key order (every key is known: invitations name their account, survey and
    channel, and a stakeholder always has a role and job level); with `accounts`, account groups
    carry the account's profile (null for an account deleted since)."""
    name = key_name(dimension)
    return [
        RateGroupRead(
            key={name: key},
            response_rate=response_rate_read(outcomes, options),
            account=None if accounts is None else account_profile(accounts.get(key)),
        )
        for key, outcomes in sorted(groups.items())
    ]
