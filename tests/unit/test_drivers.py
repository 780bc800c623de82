"""The key-driver math (app.analysis.drivers) against published examples and brute force.

Data sets: R's `mtcars` (Henderson & Velleman 1981) and `swiss` (Mosteller & Tukey 1977), public
domain, typed here column by column. Published figures reproduced:
- rwa (Martin Chan), vignette: rwa(mtcars, "mpg", c("cyl", "disp", "hp", "gear")): R² 0.7791896,
  raw weights cyl 0.2284797, disp 0.2221469, hp 0.2321744, gear 0.0963886; rescaled 29.32274,
  28.50999, 29.79691, 12.37037.
- relaimpo, as printed in the domir vignette: calc.relimp(mpg ~ am + vs + cyl, mtcars, "lmg"):
  R² 76.2 %, lmg am 0.1774892, vs 0.2027032, cyl 0.3817849.
- swiss: lm(Fertility ~ .) has R² 0.7067 and the coefficients of R's ?swiss example; its LMG
  is checked against an independent brute force, averaging each attribute's gain over all 5!
  orderings with R² from numpy's least squares.
"""

import itertools

import numpy as np
import pytest

from app.analysis.drivers import (
    Decomposition,
    bootstrap,
    correlations,
    independent_attributes,
    lmg,
    moments,
    r_squared,
    relative_weights,
)
from app.presenters.drivers import min_n, precision

MTCARS = """\
21.0 6 160.0 110 3.90 2.620 16.46 0 1 4 4
21.0 6 160.0 110 3.90 2.875 17.02 0 1 4 4
22.8 4 108.0 93 3.85 2.320 18.61 1 1 4 1
21.4 6 258.0 110 3.08 3.215 19.44 1 0 3 1
18.7 8 360.0 175 3.15 3.440 17.02 0 0 3 2
18.1 6 225.0 105 2.76 3.460 20.22 1 0 3 1
14.3 8 360.0 245 3.21 3.570 15.84 0 0 3 4
24.4 4 146.7 62 3.69 3.190 20.00 1 0 4 2
22.8 4 140.8 95 3.92 3.150 22.90 1 0 4 2
19.2 6 167.6 123 3.92 3.440 18.30 1 0 4 4
17.8 6 167.6 123 3.92 3.440 18.90 1 0 4 4
16.4 8 275.8 180 3.07 4.070 17.40 0 0 3 3
17.3 8 275.8 180 3.07 3.730 17.60 0 0 3 3
15.2 8 275.8 180 3.07 3.780 18.00 0 0 3 3
10.4 8 472.0 205 2.93 5.250 17.98 0 0 3 4
10.4 8 460.0 215 3.00 5.424 17.82 0 0 3 4
14.7 8 440.0 230 3.23 5.345 17.42 0 0 3 4
32.4 4 78.7 66 4.08 2.200 19.47 1 1 4 1
30.4 4 75.7 52 4.93 1.615 18.52 1 1 4 2
33.9 4 71.1 65 4.22 1.835 19.90 1 1 4 1
21.5 4 120.1 97 3.70 2.465 20.01 1 0 3 1
15.5 8 318.0 150 2.76 3.520 16.87 0 0 3 2
15.2 8 304.0 150 3.15 3.435 17.30 0 0 3 2
13.3 8 350.0 245 3.73 3.840 15.41 0 0 3 4
19.2 8 400.0 175 3.08 3.845 17.05 0 0 3 2
27.3 4 79.0 66 4.08 1.935 18.90 1 1 4 1
26.0 4 120.3 91 4.43 2.140 16.70 0 1 5 2
30.4 4 95.1 113 3.77 1.513 16.90 1 1 5 2
15.8 8 351.0 264 4.22 3.170 14.50 0 1 5 4
19.7 6 145.0 175 3.62 2.770 15.50 0 1 5 6
15.0 8 301.0 335 3.54 3.570 14.60 0 1 5 8
21.4 4 121.0 109 4.11 2.780 18.60 1 1 4 2
"""
SWISS = """\
80.2 17.0 15 12 9.96 22.2
83.1 45.1 6 9 84.84 22.2
92.5 39.7 5 5 93.40 20.2
85.8 36.5 12 7 33.77 20.3
76.9 43.5 17 15 5.16 20.6
76.1 35.3 9 7 90.57 26.6
83.8 70.2 16 7 92.85 23.6
92.4 67.8 14 8 97.16 24.9
82.4 53.3 12 7 97.67 21.0
82.9 45.2 16 13 91.38 24.4
87.1 64.5 14 6 98.61 24.5
64.1 62.0 21 12 8.52 16.5
66.9 67.5 14 7 2.27 19.1
68.9 60.7 19 12 4.43 22.7
61.7 69.3 22 5 2.82 18.7
68.3 72.6 18 2 24.20 21.2
71.7 34.0 17 8 3.30 20.0
55.7 19.4 26 28 12.11 20.2
54.3 15.2 31 20 2.15 10.8
65.1 73.0 19 9 2.84 20.0
65.5 59.8 22 10 5.23 18.0
65.0 55.1 14 3 4.52 22.4
56.6 50.9 22 12 15.14 16.7
57.4 54.1 20 6 4.20 15.3
72.5 71.2 12 1 2.40 21.0
74.2 58.1 14 8 5.23 23.8
72.0 63.5 6 3 2.56 18.0
60.5 60.8 16 10 7.72 16.3
58.3 26.8 25 19 18.46 20.9
65.4 49.5 15 8 6.10 22.5
75.5 85.9 3 2 99.71 15.1
69.3 84.9 7 6 99.68 19.8
77.3 89.7 5 2 100.00 18.3
70.5 78.2 12 6 98.96 19.4
79.4 64.9 7 3 98.22 20.2
65.0 75.9 9 9 99.06 17.8
92.2 84.6 3 3 99.46 16.3
79.3 63.1 13 13 96.83 18.1
70.4 38.4 26 12 5.62 20.3
65.7 7.7 29 11 13.79 20.5
72.7 16.7 22 13 11.22 18.9
64.4 17.6 35 32 16.92 23.0
77.6 37.6 15 7 4.97 20.0
67.6 18.7 25 7 8.65 19.5
35.0 1.2 37 53 42.34 18.0
44.7 46.6 16 29 50.43 18.2
42.8 27.7 22 29 58.33 19.3
"""


def _table(text: str) -> np.ndarray:
    return np.array([[float(v) for v in line.split()] for line in text.splitlines()])


CARS = _table(MTCARS)
MPG, CYL, DISP, HP, VS, AM, GEAR = 0, 1, 2, 3, 7, 8, 9
FERTILITY = _table(SWISS)


def _fit(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return correlations(moments(list(y), x.tolist()))


def _lstsq_r2(y: np.ndarray, x: np.ndarray) -> float:
    design = np.column_stack([np.ones(len(y)), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    return float(1 - residual @ residual / ((y - y.mean()) ** 2).sum())


class TestPublished:
    def test_rwa_mtcars(self) -> None:
        r = _fit(CARS[:, MPG], CARS[:, [CYL, DISP, HP, GEAR]])
        raw = relative_weights(r)
        assert raw.sum() == pytest.approx(0.7791896, abs=5e-8)
        assert raw == pytest.approx([0.2284797, 0.2221469, 0.2321744, 0.0963886], abs=5e-8)
        rescaled = 100 * raw / raw.sum()
        assert rescaled == pytest.approx([29.32274, 28.50999, 29.79691, 12.37037], abs=5e-6)

    def test_relaimpo_lmg_mtcars(self) -> None:
        r = _fit(CARS[:, MPG], CARS[:, [AM, VS, CYL]])
        assert lmg(r) == pytest.approx([0.1774892, 0.2027032, 0.3817849], abs=5e-8)
        assert round(float(r_squared(r)) * 100, 1) == 76.2

    def test_swiss_regression(self) -> None:
        y, x = FERTILITY[:, 0], FERTILITY[:, 1:]
        design = np.column_stack([np.ones(len(y)), x])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        published = [66.91518, -0.17211, -0.25801, -0.87094, 0.10412, 1.07705]
        assert coef == pytest.approx(published, abs=5e-6)
        assert round(float(r_squared(_fit(y, x))), 4) == 0.7067


class TestAgainstBruteForce:
    def test_swiss_lmg_is_the_mean_gain_over_orderings(self) -> None:
        y, x = FERTILITY[:, 0], FERTILITY[:, 1:]
        p = x.shape[1]
        expected = np.zeros(p)
        orderings = list(itertools.permutations(range(p)))
        for order in orderings:
            before = 0.0
            for k, j in enumerate(order):
                after = _lstsq_r2(y, x[:, list(order[: k + 1])])
                expected[j] += after - before
                before = after
        expected /= len(orderings)
        shares = lmg(_fit(y, x))
        assert shares == pytest.approx(expected, abs=1e-10)
        assert shares.sum() == pytest.approx(_lstsq_r2(y, x), abs=1e-12)

    def test_relative_weights_by_the_svd_route(self) -> None:
        # Johnson (2000) as written: Z = P Δ Qᵀ, the orthogonal Z* = P Qᵀ, weights Λ² β².
        y, x = FERTILITY[:, 0], FERTILITY[:, 1:]
        # Standardised and scaled by 1/√n, so that ZᵀZ is the correlation matrix.
        zx = (x - x.mean(0)) / x.std(0) / np.sqrt(len(y))
        zy = (y - y.mean()) / y.std() / np.sqrt(len(y))
        p_, _, qt = np.linalg.svd(zx, full_matrices=False)
        orthogonal = p_ @ qt
        beta, *_ = np.linalg.lstsq(orthogonal, zy, rcond=None)
        loadings, *_ = np.linalg.lstsq(orthogonal, zx, rcond=None)
        expected = (loadings.T**2) @ (beta**2)
        assert relative_weights(_fit(y, x)) == pytest.approx(expected, abs=1e-10)


class TestEdges:
    def test_collinear_attributes_give_finite_weights_and_are_found(self) -> None:
        y, x = FERTILITY[:, 0], FERTILITY[:, 1:3]
        doubled = np.column_stack([x, 2 * x[:, 0] + 1])
        r = _fit(y, doubled)
        assert independent_attributes(r) == [0, 1]
        for shares in (relative_weights(r), lmg(r)):
            assert np.isfinite(shares).all()
            assert shares.sum() == pytest.approx(_lstsq_r2(y, x), abs=1e-8)

    def test_a_constant_attribute_weighs_nothing(self) -> None:
        y, x = FERTILITY[:, 0], FERTILITY[:, 1:3]
        r = _fit(y, np.column_stack([x, np.full(len(y), 4.0)]))
        for shares in (relative_weights(r), lmg(r)):
            assert shares[2] == 0
            assert shares.sum() == pytest.approx(_lstsq_r2(y, x), abs=1e-10)

    def test_a_constant_outcome_explains_nothing(self) -> None:
        r = _fit(np.full(10, 9.0), np.arange(20.0).reshape(10, 2) % 7)
        assert relative_weights(r).tolist() == [0.0, 0.0]
        assert lmg(r).tolist() == [0.0, 0.0]


class TestClusterBootstrap:
    def test_resampling_account_moments_is_resampling_their_rows(self) -> None:
        """The moment route against the plain one: the same multinomial draw of accounts,
        each drawn account's rows repeated, the weights recomputed from the rows."""
        rng = np.random.default_rng(7)
        accounts = [
            rng.integers(1, 6, size=(int(rng.integers(2, 6)), 3)).astype(float) for _ in range(12)
        ]
        for rows in accounts:
            rows[:, 0] = rows[:, 1] + rows[:, 2] + rng.integers(0, 3, size=len(rows))
        stacked = np.array([moments(list(a[:, 0]), a[:, 1:].tolist()) for a in accounts])
        result = bootstrap(
            stacked, Decomposition.RELATIVE_WEIGHTS, resamples=200, seed=3, confidence=0.9
        )
        draws = np.random.default_rng(3).multinomial(12, np.full(12, 1 / 12), size=200)
        shares = []
        for counts in draws:
            rows = np.vstack([a for a, c in zip(accounts, counts, strict=True) for _ in range(c)])
            root = np.sqrt(len(rows))
            zx = (rows[:, 1:] - rows[:, 1:].mean(0)) / rows[:, 1:].std(0) / root
            zy = (rows[:, 0] - rows[:, 0].mean()) / rows[:, 0].std() / root
            p_, _, qt = np.linalg.svd(zx, full_matrices=False)
            beta, *_ = np.linalg.lstsq(p_ @ qt, zy, rcond=None)
            loadings, *_ = np.linalg.lstsq(p_ @ qt, zx, rcond=None)
            raw = (loadings.T**2) @ (beta**2)
            shares.append(100 * raw / raw.sum())
        low, high = np.quantile(np.array(shares), [0.05, 0.95], axis=0)
        assert result.used == 200
        assert result.low == pytest.approx(list(low), abs=1e-9)
        assert result.high == pytest.approx(list(high), abs=1e-9)

    def test_the_same_seed_gives_the_same_interval(self) -> None:
        stacked = np.array(
            [moments([9, 7, 3], [[5, 4], [4, 4], [2, 1]]), moments([10, 6], [[5, 5], [3, 2]])] * 3
        )
        first = bootstrap(stacked, Decomposition.SHAPLEY, resamples=50, seed=1, confidence=0.95)
        again = bootstrap(stacked, Decomposition.SHAPLEY, resamples=50, seed=1, confidence=0.95)
        assert first == again


class TestPrecision:
    @pytest.mark.parametrize(
        ("n", "accounts", "p", "expected"),
        [
            (39, 8, 3, "insufficient"),  # min_n(3) = 40
            (40, 8, 3, "low"),
            (73, 8, 3, "low"),  # 50 + 8·3 = 74 (Green 1991)
            (74, 8, 3, "ok"),
            (500, 4, 3, "insufficient"),  # too few accounts for the account bootstrap
            (10, 5, 0, "low"),
        ],
    )
    def test_thresholds(self, n: int, accounts: int, p: int, expected: str) -> None:
        assert min_n(p) == 10 * (p + 1)
        assert precision(n, accounts, p) == expected
