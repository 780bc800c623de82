"""Scoring rules from SPEC.md, as tables of cases and as properties over random tallies."""

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.scoring import (
    PASSIVE_MIN,
    PROMOTER_MIN,
    SCORE_MAX,
    SCORE_MIN,
    Category,
    CIMethod,
    Interval,
    Precision,
    Tally,
    WeightedTally,
    classify,
    compare,
    compare_weighted,
    confidence_interval,
    precision,
    round_half_away,
    weighted_interval,
    z_value,
)

PROPERTY = settings(max_examples=200, deadline=None)

SPEC_EXAMPLE = Tally(promoters=5, passives=3, detractors=2)
Z_95 = 1.959963984540054

scores_st = st.integers(min_value=SCORE_MIN, max_value=SCORE_MAX)
counts_st = st.integers(min_value=0, max_value=500)
tallies_st = st.builds(Tally, counts_st, counts_st, counts_st)
nonempty_tallies_st = tallies_st.filter(lambda t: t.n > 0)
confidence_st = st.floats(min_value=0.5, max_value=0.999)


def _interval(t: Tally, method: CIMethod, confidence: float = 0.95) -> Interval:
    interval = confidence_interval(t, method=method, confidence=confidence)
    assert interval is not None
    return interval


def _rounded(interval: Interval) -> tuple[float, float]:
    return round_half_away(interval.low, 2), round_half_away(interval.high, 2)


class TestClassify:
    @pytest.mark.parametrize(
        ("score", "expected"),
        [
            (0, Category.DETRACTOR),
            (6, Category.DETRACTOR),
            (7, Category.PASSIVE),
            (8, Category.PASSIVE),
            (9, Category.PROMOTER),
            (10, Category.PROMOTER),
        ],
    )
    def test_boundaries(self, score: int, expected: Category) -> None:
        assert classify(score) is expected

    @pytest.mark.parametrize("value", [-1, 11, True, False, 6.5, 9.0, "9", None])
    def test_rejects_non_scores(self, value: Any) -> None:
        with pytest.raises(ValueError, match="score must be an integer"):
            classify(value)

    def test_thresholds(self) -> None:
        assert (SCORE_MIN, PASSIVE_MIN, PROMOTER_MIN, SCORE_MAX) == (0, 7, 9, 10)


class TestTally:
    def test_from_scores(self) -> None:
        tally = Tally.from_scores([10, 9, 9, 8, 7, 6, 0, 10])
        assert tally == Tally(promoters=4, passives=2, detractors=2)
        assert tally.n == 8
        assert tally.nps == 25.0

    def test_from_scores_rejects_bad_score(self) -> None:
        with pytest.raises(ValueError, match="score must be an integer"):
            Tally.from_scores([9, 11])

    def test_negative_count_rejected(self) -> None:
        with pytest.raises(ValueError, match="non-negative"):
            Tally(promoters=-1)

    def test_add(self) -> None:
        assert Tally(1, 2, 3) + Tally(4, 5, 6) == Tally(5, 7, 9)

    @pytest.mark.parametrize(
        ("tally", "nps"),
        [
            (Tally(promoters=7), 100.0),
            (Tally(detractors=7), -100.0),
            (Tally(passives=7), 0.0),
            (Tally(1, 0, 1), 0.0),
            (SPEC_EXAMPLE, 30.0),
        ],
    )
    def test_nps(self, tally: Tally, nps: float) -> None:
        assert tally.nps == nps


class TestEmpty:
    def test_tally(self) -> None:
        empty = Tally.from_scores([])
        assert empty == Tally()
        assert empty.n == 0
        assert empty.nps is None

    @pytest.mark.parametrize("method", list(CIMethod))
    def test_interval(self, method: CIMethod) -> None:
        assert confidence_interval(Tally(), method=method) is None

    @pytest.mark.parametrize(
        ("first", "second"), [(Tally(), SPEC_EXAMPLE), (SPEC_EXAMPLE, Tally())]
    )
    def test_compare(self, first: Tally, second: Tally) -> None:
        assert compare(first, second) is None

    def test_weighted(self) -> None:
        empty = WeightedTally.from_pairs([])
        assert empty == WeightedTally()
        assert empty.total == 0.0
        assert empty.nps is None
        assert empty.n_effective == 0.0
        assert weighted_interval(empty) is None


class TestSmallSamples:
    def test_all_promoters(self) -> None:
        tally = Tally(promoters=4)
        assert tally.nps == 100.0
        assert _interval(tally, CIMethod.SCORE).high == 100.0
        assert _interval(tally, CIMethod.ADJUSTED_WALD).high == 100.0

    def test_all_detractors(self) -> None:
        tally = Tally(detractors=4)
        assert tally.nps == -100.0
        assert _interval(tally, CIMethod.SCORE).low == -100.0
        assert _interval(tally, CIMethod.ADJUSTED_WALD).low == -100.0

    @pytest.mark.parametrize("method", list(CIMethod))
    @pytest.mark.parametrize("tally", [Tally(1, 0, 0), Tally(0, 1, 0), Tally(0, 0, 1)])
    def test_single_response(self, tally: Tally, method: CIMethod) -> None:
        interval = _interval(tally, method)
        assert -100.0 <= interval.low <= interval.high <= 100.0
        assert tally.nps is not None
        assert interval.low <= tally.nps <= interval.high or method is CIMethod.ADJUSTED_WALD

    def test_single_response_compare(self) -> None:
        change = compare(Tally(1, 0, 0), Tally(0, 0, 1))
        assert change is not None
        assert change.difference > 0
        assert 0.0 < change.p_value < 1.0


class TestSpecExamples:
    def test_adjusted_wald(self) -> None:
        assert _rounded(_interval(SPEC_EXAMPLE, CIMethod.ADJUSTED_WALD)) == (-19.05, 65.2)

    def test_adjusted_wald_is_default(self) -> None:
        assert confidence_interval(SPEC_EXAMPLE) == _interval(SPEC_EXAMPLE, CIMethod.ADJUSTED_WALD)

    def test_score(self) -> None:
        assert _rounded(_interval(SPEC_EXAMPLE, CIMethod.SCORE)) == (-21.66, 67.53)

    def test_wald_by_hand(self) -> None:
        p_promoter, p_detractor = 5 / 10, 2 / 10
        estimate = p_promoter - p_detractor
        half_width = Z_95 * math.sqrt((p_promoter + p_detractor - estimate**2) / 10)
        interval = _interval(SPEC_EXAMPLE, CIMethod.WALD)
        assert interval.low == pytest.approx(100 * (estimate - half_width))
        assert interval.high == pytest.approx(100 * (estimate + half_width))

    def test_wald_is_clipped(self) -> None:
        interval = _interval(Tally(promoters=9, detractors=1), CIMethod.WALD)
        assert interval.high == 100.0

    def test_compare(self) -> None:
        change = compare(Tally(8, 6, 4), Tally(14, 5, 3))
        assert change is not None
        assert round_half_away(change.z, 3) == -1.108
        assert round_half_away(change.p_value, 3) == 0.268
        assert change.significant is False
        assert change.confidence == 0.95
        # The point estimate is the plain difference of the scores shown: 22.2 - 50.
        assert change.difference == pytest.approx(100 * 4 / 18 - 100 * 11 / 22)
        assert round_half_away(change.difference, 1) == -27.8
        centre_first, centre_second = (8 - 4) / (18 + 3), (14 - 3) / (22 + 3)
        assert change.adjusted_difference == pytest.approx(100 * (centre_first - centre_second))
        assert change.low < change.adjusted_difference < change.high
        assert change.low < 0 < change.high

    def test_weighted(self) -> None:
        role_weight = {"decision_maker": 3.0, "influencer": 2.0, "user": 1.0}
        answers = [
            ("decision_maker", 10),
            ("decision_maker", 9),
            ("influencer", 9),
            ("influencer", 8),
            ("user", 7),
            ("user", 6),
            ("user", 3),
            ("user", 10),
        ]
        weighted = WeightedTally.from_pairs((score, role_weight[role]) for role, score in answers)
        assert weighted.nps == pytest.approx(50.0)
        assert round_half_away(weighted.n_effective, 2) == 6.53
        assert Tally.from_scores(score for _, score in answers).nps == 25.0
        interval = weighted_interval(weighted)
        assert interval is not None
        assert interval.low < 50.0 < interval.high


class TestCompare:
    def test_single_answers_differ_by_the_scores_shown(self) -> None:
        # A user at -100 (n 1) against a decision maker at +100 (n 1): -200, not the -50
        # between the adjusted centres (-1/4 and +1/4).
        change = compare(Tally(detractors=1), Tally(promoters=1))
        assert change is not None
        assert change.difference == -200.0
        assert change.adjusted_difference == pytest.approx(-50.0)
        assert change.low < change.adjusted_difference < change.high < 200.0
        assert not change.low <= change.difference <= change.high
        assert change.significant is False

    def test_trend_step_differs_by_the_scores_shown(self) -> None:
        # -85.7 (0/1/6) to -42.9 (0/4/3): +42.9 = 300/7, where the adjusted centres give +30.
        before, after = Tally(0, 1, 6), Tally(0, 4, 3)
        assert (round_half_away(before.nps or 0, 1), round_half_away(after.nps or 0, 1)) == (
            -85.7,
            -42.9,
        )
        change = compare(after, before)
        assert change is not None
        assert change.difference == pytest.approx(300 / 7)
        assert round_half_away(change.difference, 1) == 42.9
        assert change.adjusted_difference == pytest.approx(30.0)

    def test_weighted_differ_by_the_weighted_scores(self) -> None:
        # Decision maker 10 (weight 3) and user 0 (weight 1): weighted 50, plain 0; against an
        # influencer's 8 (weight 2): weighted 0.
        first = WeightedTally.from_pairs([(10, 3.0), (0, 1.0)])
        second = WeightedTally.from_pairs([(8, 2.0)])
        change = compare_weighted(first, second)
        assert change is not None
        assert change.difference == 50.0
        # Tested on the pseudo-counts: n_eff = 16/10, P* = 1.2, D* = 0.4; n_eff = 1, none.
        centre_first = (1.2 - 0.4) / (1.6 + 3)
        assert change.adjusted_difference == pytest.approx(100 * centre_first)
        assert change.significant is False

    def test_weighted_empty_side(self) -> None:
        full = WeightedTally.from_pairs([(10, 3.0)])
        assert compare_weighted(full, WeightedTally()) is None
        assert compare_weighted(WeightedTally(), full) is None

    def test_weighted_rejects_bad_confidence(self) -> None:
        with pytest.raises(ValueError, match="confidence"):
            compare_weighted(WeightedTally(), WeightedTally(), confidence=1.0)

    def test_significant(self) -> None:
        change = compare(Tally(promoters=20), Tally(detractors=20))
        assert change is not None
        assert change.significant is True
        assert change.p_value < 0.001
        assert 0 < change.low <= change.high <= 200.0

    def test_significance_uses_confidence(self) -> None:
        first, second = Tally(12, 4, 4), Tally(6, 6, 8)
        loose = compare(first, second, confidence=0.5)
        strict = compare(first, second, confidence=0.999)
        assert loose is not None
        assert strict is not None
        assert loose.p_value == strict.p_value
        assert loose.significant is True
        assert strict.significant is False
        assert strict.high - strict.low > loose.high - loose.low


class TestConfidence:
    def test_z_value(self) -> None:
        assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
        assert z_value(0.5) == pytest.approx(0.674490, abs=1e-6)

    @pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 1.5, math.nan, math.inf])
    def test_z_value_rejects(self, confidence: float) -> None:
        with pytest.raises(ValueError, match="confidence"):
            z_value(confidence)

    @pytest.mark.parametrize("method", list(CIMethod))
    def test_width_follows_confidence(self, method: CIMethod) -> None:
        def width(confidence: float) -> float:
            interval = _interval(SPEC_EXAMPLE, method, confidence)
            return interval.high - interval.low

        assert width(0.5) < width(0.95) < width(0.999)

    def test_interval_rejects_bad_confidence_even_when_empty(self) -> None:
        with pytest.raises(ValueError, match="confidence"):
            confidence_interval(Tally(), confidence=1.0)


@pytest.mark.parametrize(
    ("n", "min_n", "low_n", "expected"),
    [
        (0, 5, 30, Precision.INSUFFICIENT),
        (4, 5, 30, Precision.INSUFFICIENT),
        (4.99, 5, 30, Precision.INSUFFICIENT),
        (5, 5, 30, Precision.LOW),
        (29.9, 5, 30, Precision.LOW),
        (30, 5, 30, Precision.OK),
        (6.53, 10, 20, Precision.INSUFFICIENT),
        (10, 10, 20, Precision.LOW),
        (20, 10, 20, Precision.OK),
    ],
)
def test_precision(n: float, min_n: int, low_n: int, expected: Precision) -> None:
    assert precision(n, min_n=min_n, low_n=low_n) is expected


class TestWeightedTally:
    @pytest.mark.parametrize("weight", [0.0, -1.0, math.inf, math.nan, True, "2"])
    def test_rejects_bad_weight(self, weight: Any) -> None:
        with pytest.raises(ValueError, match="weight"):
            WeightedTally.from_pairs([(9, weight)])

    def test_rejects_bad_score(self) -> None:
        with pytest.raises(ValueError, match="score"):
            WeightedTally.from_pairs([(11, 1.0)])

    def test_integer_weights(self) -> None:
        weighted = WeightedTally.from_pairs([(10, 2), (0, 1)])
        assert weighted == WeightedTally(promoters=2.0, detractors=1.0, sum_sq=5.0)
        assert weighted.n_effective == pytest.approx(9 / 5)


@pytest.mark.parametrize(
    ("x", "ndigits", "expected"),
    [
        (2.5, 0, 3.0),
        (-2.5, 0, -3.0),
        (0.5, 0, 1.0),
        (1.5, 0, 2.0),
        (0.125, 2, 0.13),
        (-0.125, 2, -0.13),
        (2.675, 2, 2.68),
        (65.20446, 2, 65.2),
        (-19.05061, 2, -19.05),
        (1250.0, -2, 1300.0),
        (30.0, 1, 30.0),
    ],
)
def test_round_half_away(x: float, ndigits: int, expected: float) -> None:
    assert round_half_away(x, ndigits) == expected


def test_round_half_away_never_negative_zero() -> None:
    assert math.copysign(1.0, round_half_away(-0.4)) == 1.0


class TestProperties:
    @PROPERTY
    @given(nonempty_tallies_st)
    def test_nps_in_range(self, tally: Tally) -> None:
        assert tally.nps is not None
        assert -100.0 <= tally.nps <= 100.0

    @PROPERTY
    @given(nonempty_tallies_st, st.sampled_from(list(CIMethod)), confidence_st)
    def test_interval_in_range(self, tally: Tally, method: CIMethod, confidence: float) -> None:
        interval = _interval(tally, method, confidence)
        assert -100.0 <= interval.low <= interval.high <= 100.0

    @PROPERTY
    @given(nonempty_tallies_st, confidence_st)
    def test_adjusted_wald_contains_adjusted_centre(self, tally: Tally, confidence: float) -> None:
        centre = 100 * (tally.promoters - tally.detractors) / (tally.n + 3)
        interval = _interval(tally, CIMethod.ADJUSTED_WALD, confidence)
        assert interval.low <= centre <= interval.high

    @PROPERTY
    @given(nonempty_tallies_st, st.sampled_from([CIMethod.SCORE, CIMethod.WALD]), confidence_st)
    def test_contains_raw_nps(self, tally: Tally, method: CIMethod, confidence: float) -> None:
        interval = _interval(tally, method, confidence)
        assert tally.nps is not None
        assert interval.low <= tally.nps <= interval.high

    @PROPERTY
    @given(
        nonempty_tallies_st,
        st.sampled_from(list(CIMethod)),
        confidence_st,
        confidence_st,
    )
    def test_intervals_nest(self, tally: Tally, method: CIMethod, a: float, b: float) -> None:
        narrow = _interval(tally, method, min(a, b))
        wide = _interval(tally, method, max(a, b))
        assert wide.low <= narrow.low + 1e-9
        assert narrow.high <= wide.high + 1e-9

    @PROPERTY
    @given(st.data(), st.lists(scores_st, max_size=60))
    def test_order_invariance(self, data: st.DataObject, scores: list[int]) -> None:
        shuffled = data.draw(st.permutations(scores))
        assert Tally.from_scores(shuffled) == Tally.from_scores(scores)

    @PROPERTY
    @given(st.lists(scores_st, max_size=60), st.lists(scores_st, max_size=60))
    def test_tallies_add_up(self, first: list[int], second: list[int]) -> None:
        tally = Tally.from_scores(first)
        assert tally.promoters + tally.passives + tally.detractors == len(first)
        assert tally.n == len(first)
        assert tally + Tally.from_scores(second) == Tally.from_scores(first + second)

    @PROPERTY
    @given(st.lists(scores_st, min_size=1, max_size=80))
    def test_unit_weights_match_unweighted(self, scores: list[int]) -> None:
        tally = Tally.from_scores(scores)
        weighted = WeightedTally.from_pairs((score, 1.0) for score in scores)
        assert tally.nps is not None
        assert weighted.nps == pytest.approx(tally.nps)
        assert weighted.n_effective == pytest.approx(tally.n)
        assert weighted.total == tally.n
        interval = weighted_interval(weighted)
        expected = _interval(tally, CIMethod.ADJUSTED_WALD)
        assert interval is not None
        assert interval.low == pytest.approx(expected.low)
        assert interval.high == pytest.approx(expected.high)

    @PROPERTY
    @given(
        st.lists(
            st.tuples(scores_st, st.floats(min_value=0.01, max_value=1000.0)),
            min_size=1,
            max_size=40,
        ),
        st.floats(min_value=0.01, max_value=100.0),
    )
    def test_weights_are_scale_free(self, pairs: list[tuple[int, float]], scale: float) -> None:
        weighted = WeightedTally.from_pairs(pairs)
        scaled = WeightedTally.from_pairs((score, weight * scale) for score, weight in pairs)
        assert weighted.nps is not None
        assert scaled.nps == pytest.approx(weighted.nps, abs=1e-9)
        assert scaled.n_effective == pytest.approx(weighted.n_effective)
        assert 1.0 - 1e-9 <= weighted.n_effective <= len(pairs) + 1e-9
        interval = weighted_interval(weighted)
        assert interval is not None
        assert -100.0 <= interval.low <= interval.high <= 100.0

    @PROPERTY
    @given(nonempty_tallies_st, confidence_st)
    def test_compare_with_itself(self, tally: Tally, confidence: float) -> None:
        change = compare(tally, tally, confidence=confidence)
        assert change is not None
        assert change.difference == 0.0
        assert change.adjusted_difference == 0.0
        assert change.z == 0.0
        assert change.p_value == 1.0
        assert change.significant is False
        assert change.low == -change.high

    @PROPERTY
    @given(nonempty_tallies_st, nonempty_tallies_st, confidence_st)
    def test_compare_is_antisymmetric(self, first: Tally, second: Tally, confidence: float) -> None:
        forward = compare(first, second, confidence=confidence)
        backward = compare(second, first, confidence=confidence)
        assert forward is not None
        assert backward is not None
        assert forward.difference == pytest.approx(-backward.difference, abs=1e-9)
        assert forward.adjusted_difference == pytest.approx(-backward.adjusted_difference, abs=1e-9)
        assert forward.p_value == pytest.approx(backward.p_value)
        assert 0.0 <= forward.p_value <= 1.0
        assert forward.significant == (forward.p_value < 1 - confidence)
        assert -200.0 <= forward.low <= forward.adjusted_difference <= forward.high <= 200.0

    @PROPERTY
    @given(nonempty_tallies_st, nonempty_tallies_st, confidence_st)
    def test_compare_reports_the_scores_difference(
        self, first: Tally, second: Tally, confidence: float
    ) -> None:
        change = compare(first, second, confidence=confidence)
        assert change is not None
        assert first.nps is not None
        assert second.nps is not None
        assert change.difference == first.nps - second.nps
        # Each adjusted centre is the score pulled toward 0 by n / (n + 3).
        adjusted = first.nps * first.n / (first.n + 3) - second.nps * second.n / (second.n + 3)
        assert change.adjusted_difference == pytest.approx(adjusted, abs=1e-9)
        assert (change.z > 0) == (change.adjusted_difference > 0)

    @PROPERTY
    @given(
        st.lists(scores_st, min_size=1, max_size=40), st.lists(scores_st, min_size=1, max_size=40)
    )
    def test_unit_weights_compare_like_unweighted(
        self, first: list[int], second: list[int]
    ) -> None:
        plain = compare(Tally.from_scores(first), Tally.from_scores(second))
        weighted = compare_weighted(
            WeightedTally.from_pairs((s, 1.0) for s in first),
            WeightedTally.from_pairs((s, 1.0) for s in second),
        )
        assert plain is not None
        assert weighted is not None
        assert weighted.difference == pytest.approx(plain.difference, abs=1e-9)
        assert weighted.adjusted_difference == pytest.approx(plain.adjusted_difference, abs=1e-9)
        assert weighted.p_value == pytest.approx(plain.p_value, abs=1e-9)

    @PROPERTY
    @given(
        st.floats(min_value=0, max_value=1000),
        st.floats(min_value=0, max_value=1000),
        st.integers(min_value=0, max_value=50),
        st.integers(min_value=0, max_value=50),
    )
    def test_precision_monotone(self, a: float, b: float, min_n: int, extra: int) -> None:
        rank = [Precision.INSUFFICIENT, Precision.LOW, Precision.OK]
        low_n = min_n + extra
        smaller = precision(min(a, b), min_n=min_n, low_n=low_n)
        larger = precision(max(a, b), min_n=min_n, low_n=low_n)
        assert rank.index(smaller) <= rank.index(larger)
