"""The log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008) against
values worked by hand with natural logarithms, and the folding and words of app.text."""

import math

import numpy as np
import pytest

from app.analysis.themes import log_odds, prior_counts
from app.text import fold, phrase_pattern, words


class TestLogOdds:
    def test_hand_computed_case(self) -> None:
        # y_i = 10 of n_i = 100, y_j = 2 of n_j = 100, a_w = 1, a0 = 10:
        # delta = ln(11/99) - ln(3/107) = -2.1972246 + 3.5742165 = 1.3769920
        # var = 1/11 + 1/3 = 0.4242424; z = 1.3769920 / 0.6513389 = 2.1140943
        got = log_odds(np.array([10.0]), 100, np.array([2.0]), 100, np.array([1.0]), 10)
        assert got.delta[0] == pytest.approx(1.3769920, abs=1e-6)
        assert got.variance[0] == pytest.approx(0.4242424, abs=1e-6)
        assert got.z[0] == pytest.approx(2.1140943, abs=1e-6)
        # The popular implementation's log10 delta over the natural-log variance: 0.918, which
        # is z / ln(10) and would pass under no test above.
        mixed = (math.log10(11 / 99) - math.log10(3 / 107)) / math.sqrt(1 / 11 + 1 / 3)
        assert mixed == pytest.approx(2.1140943 / math.log(10), abs=1e-6)
        assert abs(got.z[0] - mixed) > 1

    def test_a_promoter_leaning_term_and_unequal_corpora(self) -> None:
        # y_i = 2 of 50, y_j = 11 of 200, a_w = 1.5, a0 = 20:
        # delta = ln(3.5/66.5) - ln(12.5/207.5) = -2.9444390 + 2.8094027 = -0.1350363
        # var = 1/3.5 + 1/12.5 = 0.3657143; z = -0.2232953
        got = log_odds(np.array([2.0]), 50, np.array([11.0]), 200, np.array([1.5]), 20)
        assert got.delta[0] == pytest.approx(-0.1350363, abs=1e-6)
        assert got.z[0] == pytest.approx(-0.2232953, abs=1e-6)

    def test_symmetry_and_prior(self) -> None:
        a = log_odds(np.array([5.0, 3.0]), 80, np.array([3.0, 5.0]), 80, np.ones(2), 10)
        assert a.z[0] == pytest.approx(-a.z[1])
        shares = prior_counts(np.array([2.0, 6.0]), 8.0, 100.0)
        assert list(shares) == [25.0, 75.0]
        assert list(prior_counts(np.array([0.0]), 0.0, 100.0)) == [0.0]


class TestText:
    def test_fold_and_words(self) -> None:
        assert fold("Café PREIS Ölpreis") == "cafe preis olpreis"
        assert words("Too   expensive; e-mail!") == ["too", "expensive", "e", "mail"]
        assert words("--") == []

    def test_phrase_pattern(self) -> None:
        assert phrase_pattern([["price"], ["too", "high"]]) == (
            "(?<![[:alnum:]])(?:price|too[^[:alnum:]]+high)(?![[:alnum:]])"
        )
