"""Kaplan-Meier with censoring and the two-share comparison, against hand computations."""

import pytest

from app.scoring.survival import kaplan_meier, share_difference, survival

# Hours to close; False = still open (censored at now).
#   t  at risk  events  S(t)
#   2     7       1     6/7              = 0.857
#   3  (censored: at risk 6 -> 5)
#   4     5       2     6/7 * 3/5 = 18/35 = 0.514
#   5  (censored: at risk 3 -> 2)
#   7     2       1     18/35 * 1/2 = 9/35 = 0.257   <- first S <= 0.5: the median
#   8  (censored)                                    S never <= 0.1: no p90
TABLE = [(2, True), (3, False), (4, True), (4, True), (5, False), (7, True), (8, False)]


class TestKaplanMeier:
    def test_steps_by_hand(self) -> None:
        steps = kaplan_meier(TABLE)
        assert [t for t, _ in steps] == [2, 4, 7]
        assert [s for _, s in steps] == pytest.approx([6 / 7, 18 / 35, 9 / 35])

    def test_median_with_censoring(self) -> None:
        result = survival(TABLE)
        assert (result.median, result.p90, result.n, result.censored) == (7, None, 7, 3)

    def test_dropping_the_censored_would_give_another_median(self) -> None:
        # Only the closed cases (2, 4, 4, 7): S = 3/4, 1/4 -> median 4. Censoring matters.
        assert survival([(t, True) for t, seen in TABLE if seen]).median == 4

    def test_a_censored_tie_is_at_risk_at_its_time(self) -> None:
        # t=1: 3 at risk, 1 event -> 2/3; t=2: 1 at risk, 1 event -> 0.
        steps = kaplan_meier([(1, True), (1, False), (2, True)])
        assert steps == [(1, pytest.approx(2 / 3)), (2, 0.0)]
        assert (survival([(1, True), (1, False), (2, True)]).p90) == 2

    def test_exact_half_is_the_median(self) -> None:
        assert survival([(1, True), (2, True)]).median == 1

    def test_nothing_observed(self) -> None:
        result = survival([(5, False), (6, False)])
        assert (result.median, result.p90, result.n, result.censored) == (None, None, 2, 2)
        assert survival([]) == survival([])
        assert survival([]).n == 0

    def test_negative_duration_refused(self) -> None:
        with pytest.raises(ValueError, match="durations"):
            kaplan_meier([(-1, True)])


class TestShareDifference:
    def test_by_hand(self) -> None:
        # 3/4 vs 1/4: d = 0.5; pooled 0.5, SE = sqrt(0.25 * (1/4 + 1/4)) = 0.35355, z = 1.41421,
        # p = 2 * Phi(-1.41421) = 0.15730. Wilson 95%: 3/4 -> (0.30064, 0.95441), 1/4 ->
        # (0.04559, 0.69936). Newcombe: low = 0.5 - sqrt(0.44936^2 + 0.44936^2) = -0.13549,
        # high = 0.5 + sqrt(0.20441^2 + 0.20441^2) = 0.78908.
        result = share_difference((3, 4), (1, 4))
        assert result is not None
        assert result.difference == 0.5
        assert result.low == pytest.approx(-0.13549, abs=1e-4)
        assert result.high == pytest.approx(0.78908, abs=1e-4)
        assert result.z == pytest.approx(1.41421, abs=1e-4)
        assert result.p_value == pytest.approx(0.15730, abs=1e-4)

    def test_no_variance_no_test(self) -> None:
        result = share_difference((2, 2), (3, 3))
        assert result is not None
        assert (result.difference, result.z, result.p_value) == (0.0, None, None)
        assert result.high <= 1.0
        assert result.low >= -1.0

    def test_an_empty_side_is_none(self) -> None:
        assert share_difference((0, 0), (1, 2)) is None
        assert share_difference((1, 2), (0, 0)) is None

    def test_bad_confidence(self) -> None:
        with pytest.raises(ValueError, match="confidence"):
            share_difference((1, 2), (1, 2), confidence=1.0)
