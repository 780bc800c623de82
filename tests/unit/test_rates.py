"""Response rates and their Wilson interval: a published table, edge cases, and properties."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.schemas.rates import RESPONSE_RATE_REPORT_EXAMPLE, ResponseRateReport
from app.scoring import Interval, rate, round_half_away, wilson_interval

PROPERTY = settings(max_examples=200, deadline=None)
confidence_st = st.floats(min_value=0.5, max_value=0.999)


@st.composite
def counts_st(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(st.integers(min_value=1, max_value=5_000))
    return draw(st.integers(min_value=0, max_value=n)), n


def _wilson(successes: int, n: int, confidence: float = 0.95) -> Interval:
    interval = wilson_interval(successes, n, confidence=confidence)
    assert interval is not None
    return interval


# Newcombe (1998), "Two-sided confidence intervals for the single proportion: comparison of
# seven methods", Statistics in Medicine 17, Table II, method 3 (the score method without
# continuity correction), 95 %.
NEWCOMBE = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (29, 29, 0.8830, 1.0),
]


@pytest.mark.parametrize(("successes", "n", "low", "high"), NEWCOMBE)
def test_newcombes_table(successes: int, n: int, low: float, high: float) -> None:
    interval = _wilson(successes, n)

    assert (round_half_away(interval.low, 4), round_half_away(interval.high, 4)) == (low, high)


def test_the_bounds_are_where_the_score_test_just_rejects() -> None:
    # Wilson's bounds are the proportions P the score test puts exactly z standard errors from
    # the observed share: the roots of (p - P)^2 = z^2 P (1 - P) / n. 3 of 12 at 0.9.
    z, p, n = 1.6448536269514722, 0.25, 12

    interval = _wilson(3, 12, 0.9)

    for bound in (interval.low, interval.high):
        assert (p - bound) ** 2 == pytest.approx(z * z * bound * (1 - bound) / n, abs=1e-12)
    assert (round_half_away(interval.low, 4), round_half_away(interval.high, 4)) == (
        0.1047,
        0.4873,
    )


def test_no_invitations_is_no_rate_and_no_interval() -> None:
    assert rate(0, 0) is None
    assert wilson_interval(0, 0) is None


def test_the_rate_is_the_share() -> None:
    assert rate(3, 12) == 0.25
    assert rate(0, 7) == 0.0
    assert rate(7, 7) == 1.0


def test_none_and_all_reach_the_ends_exactly() -> None:
    assert _wilson(0, 3).low == 0.0
    assert _wilson(3, 3).high == 1.0


@pytest.mark.parametrize(("successes", "n"), [(-1, 3), (4, 3), (1, 0)])
def test_impossible_counts_are_refused(successes: int, n: int) -> None:
    with pytest.raises(ValueError, match="successes <= n"):
        wilson_interval(successes, n)
    with pytest.raises(ValueError, match="successes <= n"):
        rate(successes, n)


@pytest.mark.parametrize("confidence", [0.0, 1.0, math.nan])
def test_a_level_outside_zero_one_is_refused(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 2, confidence=confidence)


class TestProperties:
    @PROPERTY
    @given(counts_st(), confidence_st)
    def test_within_zero_one_and_around_the_rate(
        self, counts: tuple[int, int], confidence: float
    ) -> None:
        successes, n = counts
        interval = _wilson(successes, n, confidence)
        share = rate(successes, n)
        assert share is not None
        assert 0.0 <= interval.low <= share <= interval.high <= 1.0

    @PROPERTY
    @given(counts_st(), confidence_st)
    def test_symmetric_in_success_and_failure(
        self, counts: tuple[int, int], confidence: float
    ) -> None:
        successes, n = counts
        interval = _wilson(successes, n, confidence)
        mirrored = _wilson(n - successes, n, confidence)
        assert interval.low == pytest.approx(1 - mirrored.high, abs=1e-12)
        assert interval.high == pytest.approx(1 - mirrored.low, abs=1e-12)

    @PROPERTY
    @given(counts_st(), confidence_st, confidence_st)
    def test_intervals_nest(self, counts: tuple[int, int], a: float, b: float) -> None:
        successes, n = counts
        narrow = _wilson(successes, n, min(a, b))
        wide = _wilson(successes, n, max(a, b))
        assert wide.low <= narrow.low + 1e-12
        assert narrow.high <= wide.high + 1e-12

    @PROPERTY
    @given(st.integers(min_value=1, max_value=200), confidence_st)
    def test_more_invitations_narrow_the_interval(self, n: int, confidence: float) -> None:
        # The same share of four times the invitations: half-width shrinks.
        small = _wilson(n, 2 * n, confidence)
        large = _wilson(4 * n, 8 * n, confidence)
        assert large.high - large.low < small.high - small.low


def test_the_openapi_example_is_what_the_code_computes() -> None:
    report = ResponseRateReport.model_validate(RESPONSE_RATE_REPORT_EXAMPLE)
    assert report.groups is not None
    for shown in [report.response_rate, *(g.response_rate for g in report.groups)]:
        interval = _wilson(shown.answered, shown.invited)
        assert shown.ci is not None
        assert (shown.ci.low, shown.ci.high) == (
            round_half_away(interval.low, 4),
            round_half_away(interval.high, 4),
        )
        assert shown.rate == rate(shown.answered, shown.invited)
        outcomes = shown.answered + shown.dismissed + shown.expired + shown.revoked
        assert outcomes + shown.pending == shown.invited
    total = report.response_rate
    assert total.invited == sum(g.response_rate.invited for g in report.groups)
    assert total.answered == sum(g.response_rate.answered for g in report.groups)
