"""Words that tell two sets of comments apart: the log-odds ratio with an informative Dirichlet
prior (Monroe, Colaresi & Quinn 2008, "Fightin' Words", section 3.5.1).

For a term w with counts y_i, y_j in corpora i and j of n_i, n_j terms, and the prior's
pseudo-counts a_w (a0 = their sum over the vocabulary), natural logarithms throughout:

    delta_w = ln((y_i + a_w) / (n_i + a0 - y_i - a_w)) - ln((y_j + a_w) / (n_j + a0 - y_j - a_w))
    var_w   = 1 / (y_i + a_w) + 1 / (y_j + a_w)
    z_w     = delta_w / sqrt(var_w)

The implementation often copied takes log10 for delta but the natural-log variance, which
shrinks every z by ln(10) ≈ 2.3: a term with z = 4.6 is shown at 2.0. Here both are natural.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LogOdds:
    delta: Floats
    variance: Floats
    z: Floats


def prior_counts(background: Floats, background_total: float, strength: float) -> Floats:
    """a_w = strength * y_w^background / n^background: the background shares scaled so that the
    whole vocabulary's pseudo-counts sum to `strength` (a0); zeros for an empty background."""
    if background_total <= 0:
        return np.zeros_like(background)
    return strength * background / background_total


def log_odds(y_i: Floats, n_i: float, y_j: Floats, n_j: float, a_w: Floats, a0: float) -> LogOdds:
    """delta, its variance and z for each term (arrays of one length), corpus i against j.

    Every a_w must be > 0 (so no log of 0); n_i + a0 > y_i + a_w holds whenever the term is not
    the whole corpus and the prior's other terms carry weight."""
    y_i = np.asarray(y_i, dtype=np.float64)
    y_j = np.asarray(y_j, dtype=np.float64)
    a_w = np.asarray(a_w, dtype=np.float64)
    i_term = y_i + a_w
    j_term = y_j + a_w
    delta = np.log(i_term / (n_i + a0 - i_term)) - np.log(j_term / (n_j + a0 - j_term))
    variance = 1.0 / i_term + 1.0 / j_term
    return LogOdds(delta, variance, delta / np.sqrt(variance))
