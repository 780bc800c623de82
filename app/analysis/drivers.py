"""Key drivers: how much of the score's variance each rated attribute explains.

Everything works on *moment matrices*: for z = (1, y, x₁ … x_p) and weights w, M = Σ w·z·zᵀ.
One matrix per account is all the SQL ships; the model's matrix is their sum, and the cluster
bootstrap resamples accounts by summing their matrices with multinomial counts (an account drawn
twice counts twice), which is exactly resampling its rows together.

- `relative_weights`: Johnson (2000). Rxx = V Λ Vᵀ, Λ½ = V √Λ Vᵀ, β = Λ½⁺ r_xy, the raw weight
  of attribute j is Σ_k (Λ½)²_jk β_k²; the raw weights sum to R².
- `lmg`: the Shapley value of R² (Lindeman, Merenda & Gold 1980; equal to general dominance):
  φ_j = Σ_{S ∌ j} |S|!(p-|S|-1)!/p! · (R²(S + j) - R²(S)), exact over all 2^p subsets, so p
  is bounded by `SHAPLEY_MAX_ATTRIBUTES`.

R² of a subset is r_Sᵀ R_SS⁺ r_S with a pseudo-inverse, so a resample in which attributes are
collinear or constant gives finite weights (a constant attribute weighs 0), never NaN.
"""

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from math import factorial

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]

SHAPLEY_MAX_ATTRIBUTES = 10  # 2^10 = 1,024 subsets per resample
RELATIVE_WEIGHTS_MAX_ATTRIBUTES = 30
# Below this relative eigenvalue the attributes are taken as linearly dependent.
COLLINEAR_TOLERANCE = 1e-9
BOOTSTRAP_CHUNK = 125  # resamples decomposed at once


class Decomposition(StrEnum):
    RELATIVE_WEIGHTS = "relative_weights"
    SHAPLEY = "shapley"


MAX_ATTRIBUTES = {
    Decomposition.RELATIVE_WEIGHTS: RELATIVE_WEIGHTS_MAX_ATTRIBUTES,
    Decomposition.SHAPLEY: SHAPLEY_MAX_ATTRIBUTES,
}


def moments(
    y: Sequence[float], x: Sequence[Sequence[float]], w: Sequence[float] | None = None
) -> Array:
    """M = Σ w·z·zᵀ over rows, z = (1, y, x…); w defaults to 1."""
    z = np.column_stack([np.ones(len(y)), np.asarray(y, float), np.asarray(x, float)])
    weights = np.ones(len(y)) if w is None else np.asarray(w, float)
    return np.asarray((z * weights[:, None]).T @ z, dtype=np.float64)


def correlations(m: Array) -> Array:
    """The correlation matrix of (y, x…) from moment matrices (…, k+2, k+2): (…, k+1, k+1).

    A variable without variance gets correlation 0 with everything else (and 1 with itself)."""
    total = m[..., 0, 0][..., None, None]
    first = m[..., 0, 1:]
    cov = m[..., 1:, 1:] / total - first[..., :, None] * first[..., None, :] / total**2
    var = np.clip(np.diagonal(cov, axis1=-2, axis2=-1), 0.0, None)
    scale = np.sqrt(var)
    # Relative to the variable's size, so rounding in the moments does not pass for variance.
    size = np.abs(np.diagonal(m[..., 1:, 1:], axis1=-2, axis2=-1)) / m[..., 0, 0][..., None]
    alive = var > 1e-12 * np.maximum(size, 1.0)
    safe = np.where(alive, scale, 1.0)
    r = cov / safe[..., :, None] / safe[..., None, :]
    both = alive[..., :, None] & alive[..., None, :]
    r = np.where(both, np.clip(r, -1.0, 1.0), 0.0)
    eye = np.broadcast_to(np.eye(r.shape[-1], dtype=bool), r.shape)
    return np.asarray(np.where(eye, 1.0, r), dtype=np.float64)


def _half_power(rxx: Array) -> tuple[Array, Array]:
    """Λ½ = V √Λ Vᵀ and its pseudo-inverse, batched, eigenvalues below tolerance as 0."""
    values, vectors = np.linalg.eigh(rxx)
    values = np.clip(values, 0.0, None)
    top = np.max(values, axis=-1, keepdims=True)
    kept = values > COLLINEAR_TOLERANCE * np.maximum(top, 1e-300)
    root = np.sqrt(values)
    inverse_root = np.where(kept, 1.0 / np.where(kept, root, 1.0), 0.0)
    vt = np.swapaxes(vectors, -1, -2)
    half = (vectors * root[..., None, :]) @ vt
    half_inverse = (vectors * inverse_root[..., None, :]) @ vt
    return half, half_inverse


def relative_weights(r: Array) -> Array:
    """Johnson's raw relative weights from correlation matrices (…, p+1, p+1), y first: (…, p).

    Zero attributes give an empty array; the weights sum to R²."""
    rxx = r[..., 1:, 1:]
    rxy = r[..., 1:, 0]
    if rxx.shape[-1] == 0:
        return np.zeros(rxy.shape, dtype=np.float64)
    half, half_inverse = _half_power(rxx)
    beta = np.einsum("...jk,...k->...j", half_inverse, rxy)
    return np.asarray(np.einsum("...jk,...k->...j", half**2, beta**2), dtype=np.float64)


def r_squared(r: Array) -> Array:
    """R² of the regression of y on every x: r_xyᵀ Rxx⁺ r_xy (…)."""
    rxx = r[..., 1:, 1:]
    rxy = r[..., 1:, 0]
    if rxx.shape[-1] == 0:
        return np.zeros(r.shape[:-2], dtype=np.float64)
    _, half_inverse = _half_power(rxx)
    b = np.einsum("...jk,...k->...j", half_inverse, rxy)
    return np.asarray(np.clip(np.sum(b**2, axis=-1), 0.0, 1.0), dtype=np.float64)


def _subset_fits(r: Array) -> Array:
    """R² of every subset of the attributes (bit j of the index = attribute j), (…, 2^p).

    Subsets of one size are solved together. Where Rxx has full rank every subset matrix does
    (by eigenvalue interlacing) and a Cholesky-backed solve is exact; a resample where Rxx is
    rank-deficient takes the pseudo-inverse route instead."""
    p = r.shape[-1] - 1
    batch = r.shape[:-2]
    flat = r.reshape(-1, p + 1, p + 1)
    fit = np.zeros((flat.shape[0], 1 << p), dtype=np.float64)
    smallest = np.linalg.eigvalsh(flat[:, 1:, 1:])[:, 0]
    regular = smallest > COLLINEAR_TOLERANCE
    for size in range(1, p + 1):
        members = list(itertools.combinations(range(p), size))
        index = np.array(members) + 1  # (m, size), into (y, x…)
        codes = np.array([sum(1 << j for j in c) for c in members])
        if regular.any():
            good = flat[regular]
            rss = good[:, index[:, :, None], index[:, None, :]]  # (g, m, size, size)
            rs = good[:, index, 0]  # (g, m, size)
            solved = np.linalg.solve(rss, rs[..., None])[..., 0]
            fit[np.ix_(regular, codes)] = np.clip(np.sum(rs * solved, axis=-1), 0.0, 1.0)
        if (~regular).any():
            bad = flat[~regular]
            for code, idx in zip(codes, index, strict=True):
                full = [0, *idx]
                fit[~regular, code] = r_squared(bad[:, full][:, :, full])
    return fit.reshape(*batch, 1 << p)


def lmg(r: Array) -> Array:
    """The LMG (Shapley) shares of R² from correlation matrices (…, p+1, p+1), y first: (…, p).

    Exact over all 2^p subsets; they sum to R²."""
    p = r.shape[-1] - 1
    if p > SHAPLEY_MAX_ATTRIBUTES:
        raise ValueError(f"shapley takes at most {SHAPLEY_MAX_ATTRIBUTES} attributes, not {p}")
    subsets = 1 << p
    if p == 0:
        return np.zeros((*r.shape[:-2], 0), dtype=np.float64)
    fit = _subset_fits(r)
    sizes = np.array([bin(s).count("1") for s in range(subsets)])
    shares = np.zeros((*r.shape[:-2], p), dtype=np.float64)
    for j in range(p):
        without = np.array([s for s in range(subsets) if not s >> j & 1])
        weights = np.array(
            [factorial(k) * factorial(p - k - 1) / factorial(p) for k in sizes[without]]
        )
        gains = fit[..., without | (1 << j)] - fit[..., without]
        shares[..., j] = gains @ weights
    return shares


def decompose(r: Array, method: Decomposition) -> Array:
    return relative_weights(r) if method is Decomposition.RELATIVE_WEIGHTS else lmg(r)


def independent_attributes(r: Array, tolerance: float = 1e-8) -> list[int]:
    """The attributes (indices into x) kept, in order, each one that is (nearly) a linear
    combination of those kept before it left out: Rxx restricted to the kept ones has full rank."""
    kept: list[int] = []
    for j in range(r.shape[-1] - 1):
        trial = [i + 1 for i in (*kept, j)]
        smallest = np.linalg.eigvalsh(r[np.ix_(trial, trial)])[0]
        if smallest > tolerance:
            kept.append(j)
    return kept


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """Percentile intervals of each attribute's importance (its % of R²), accounts resampled."""

    low: list[float | None]
    high: list[float | None]
    used: int  # resamples whose R² was above 0 (the others have no shares to take)


def bootstrap(
    account_moments: Array,
    method: Decomposition,
    *,
    resamples: int,
    seed: int,
    confidence: float,
) -> Bootstrap:
    """Resample the accounts (the first axis of `account_moments`, (A, k+2, k+2)) with
    replacement `resamples` times; each resample's importance is 100·w_j/Σw."""
    accounts, size, _ = account_moments.shape
    p = size - 2
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(accounts, np.full(accounts, 1.0 / accounts), size=resamples)
    flat = account_moments.reshape(accounts, -1)
    # In chunks, so the subsets of a shapley resample set stay a few megabytes.
    raw = np.concatenate(
        [
            decompose(
                correlations((chunk.astype(np.float64) @ flat).reshape(-1, size, size)), method
            )
            for chunk in np.array_split(counts, max(1, resamples // BOOTSTRAP_CHUNK))
        ]
    )
    totals = raw.sum(axis=-1)
    valid = totals > 1e-12
    if not valid.any():
        return Bootstrap([None] * p, [None] * p, 0)
    shares = 100.0 * raw[valid] / totals[valid, None]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(shares, [alpha, 1.0 - alpha], axis=0)
    return Bootstrap([float(v) for v in low], [float(v) for v in high], int(valid.sum()))
