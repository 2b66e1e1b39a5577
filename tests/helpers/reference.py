"""Naive float64 numpy reference of the estimator (the oracle of the tests).

Written from the textbook definitions in METHOD.md, independently of ``infoplane``: explicit
difference tensors for distances (``[N, N, D]``, so small data only), ``numpy.linalg.eigvalsh``,
and the entropy formulas as printed. Slow and memory-hungry on purpose: every line should be
checkable by eye.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

LN2 = math.log(2.0)


def as_samples(x) -> np.ndarray:
    """Samples ``[N, ...]`` as a float64 ``[N, D]`` array."""
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(x.shape[0], -1)


# ---------------------------------------------------------------------------------- kernels
def squared_distances(x) -> np.ndarray:
    """``||x_i - x_j||^2`` from the explicit ``[N, N, D]`` difference tensor."""
    x = as_samples(x)
    diff = x[:, None, :] - x[None, :, :]
    return np.sum(diff * diff, axis=-1)


def distances(x) -> np.ndarray:
    return np.sqrt(squared_distances(x))


def gaussian_gram(x, sigma: float) -> np.ndarray:
    """``exp(-||x_i - x_j||^2 / (2 sigma^2))`` (METHOD.md's convention)."""
    return np.exp(-squared_distances(x) / (2.0 * sigma**2))


def label_gram(y) -> np.ndarray:
    """``K_ij = 1`` if ``y_i == y_j`` else 0, by a double loop."""
    y = list(np.asarray(y).tolist())
    n = len(y)
    k = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            k[i, j] = 1.0 if y[i] == y[j] else 0.0
    return k


def normalize(k: np.ndarray) -> np.ndarray:
    """``A_ij = K_ij / (N sqrt(K_ii K_jj))``."""
    k = np.asarray(k, dtype=np.float64)
    n = k.shape[-1]
    d = np.sqrt(np.diagonal(k, axis1=-2, axis2=-1))
    return k / (n * d[..., :, None] * d[..., None, :])


# ---------------------------------------------------------------------------------- entropies
def eigenvalues(a: np.ndarray) -> np.ndarray:
    """Eigenvalues of a trace-one symmetric matrix; those below the numerical-rank tolerance of
    ``numpy.linalg.matrix_rank`` (``N * eps * lambda_max``) and negative round-off are zero."""
    lam = np.linalg.eigvalsh(a)
    tol = lam.max() * a.shape[-1] * np.finfo(np.float64).eps
    return np.where(lam > tol, lam, 0.0)


def renyi_of_eigenvalues(lam: np.ndarray, alpha: float) -> float:
    """``log2(sum lambda^alpha) / (1 - alpha)``; von Neumann ``-sum lambda log2 lambda`` at 1."""
    lam = lam[lam > 0]
    if alpha == 1.0:
        return float(-np.sum(lam * np.log2(lam)))
    return float(np.log2(np.sum(lam**alpha)) / (1.0 - alpha))


def renyi_of_eigenvalues_mp(lam, alpha: float, digits: int = 60) -> float:
    """Rényi entropy (bits) of the distribution ``lam / sum(lam)`` over the positive entries,
    in ``digits``-digit arithmetic (mpmath): the textbook formulas, with the float64 inputs
    taken as exact. ``alpha`` may be ``inf`` (``-log2 max``) or 1 (von Neumann)."""
    import mpmath

    with mpmath.workdps(digits):
        mu = [mpmath.mpf(float(v)) for v in np.asarray(lam).ravel() if v > 0]
        total = mpmath.fsum(mu)
        mu = [v / total for v in mu]
        if math.isinf(alpha):
            return float(-mpmath.log(max(mu), 2))
        if alpha == 1.0:
            return float(-mpmath.fsum(v * mpmath.log(v, 2) for v in mu))
        a = mpmath.mpf(alpha)
        return float(mpmath.log(mpmath.fsum(v**a for v in mu), 2) / (1 - a))


def renyi_entropy(k: np.ndarray, alpha: float) -> float:
    """Matrix-based Rényi entropy (bits) of one Gram matrix ``[N, N]`` (normalized first)."""
    return renyi_of_eigenvalues(eigenvalues(normalize(k)), alpha)


def renyi_entropy_frobenius(k: np.ndarray) -> float:
    """The alpha = 2 entropy as ``-log2 ||A||_F^2``."""
    a = normalize(k)
    return float(-np.log2(np.sum(a * a)))


def hadamard_normalized(grams: Sequence[np.ndarray]) -> np.ndarray:
    """``A_1 o ... o A_L / tr(A_1 o ... o A_L)`` of the normalized Grams."""
    prod = normalize(grams[0])
    for g in grams[1:]:
        prod = prod * normalize(g)
    return prod / np.trace(prod)


def joint_entropy(*grams: np.ndarray, alpha: float) -> float:
    return renyi_entropy(hadamard_normalized(grams), alpha)


def conditional_entropy(a: np.ndarray, b: np.ndarray, alpha: float) -> float:
    return joint_entropy(a, b, alpha=alpha) - renyi_entropy(b, alpha)


def mutual_information(a: np.ndarray, b: np.ndarray, alpha: float) -> float:
    return renyi_entropy(a, alpha) + renyi_entropy(b, alpha) - joint_entropy(a, b, alpha=alpha)


def total_correlation(*grams: np.ndarray, alpha: float) -> float:
    return sum(renyi_entropy(g, alpha) for g in grams) - joint_entropy(*grams, alpha=alpha)


# ---------------------------------------------------------------------------------- plug-in
def plugin_renyi(values, alpha: float) -> float:
    """Rényi entropy (bits) of the empirical distribution of discrete ``values``."""
    _, counts = np.unique(np.asarray(values), return_counts=True)
    return renyi_of_eigenvalues(counts / counts.sum(), alpha)


# ---------------------------------------------------------------------------------- widths
def upper_distances(x) -> np.ndarray:
    """The ``N (N - 1) / 2`` distances ``||x_i - x_j||`` with ``i < j``, by a double loop."""
    d = distances(x)
    n = d.shape[0]
    return np.array([d[i, j] for i in range(n) for j in range(i + 1, n)])


def median_distance(x) -> float:
    return float(np.median(upper_distances(x)))


def knn_distance(x, k: int) -> float:
    """Mean over samples of the distance to the k-th nearest other sample."""
    d = distances(x)
    n = d.shape[0]
    kth = [np.sort(np.delete(d[i], i))[k - 1] for i in range(n)]
    return float(np.mean(kth))


def pooled_std(x) -> float:
    """sqrt of the mean over features of the unbiased per-feature variance."""
    return float(np.sqrt(np.mean(np.var(as_samples(x), axis=0, ddof=1))))


def silverman(x) -> float:
    x2 = as_samples(x)
    n, d = x2.shape
    return pooled_std(x2) * (4.0 / ((d + 2.0) * n)) ** (1.0 / (d + 4.0))


def scott(x) -> float:
    x2 = as_samples(x)
    n, d = x2.shape
    return pooled_std(x2) * n ** (-1.0 / (d + 4.0))


def candidate_grid(x, num: int, low: float = 0.3, high: float = 10.0) -> np.ndarray:
    """``linspace(low, high, num) * mean pairwise distance / sqrt(2)``."""
    return np.linspace(low, high, num) * np.mean(upper_distances(x)) / math.sqrt(2.0)


def alignment(k: np.ndarray, l: np.ndarray) -> float:
    """``<K, L>_F / (||K||_F ||L||_F)`` from explicit Frobenius inner products."""
    return float(np.sum(k * l) / math.sqrt(np.sum(k * k) * np.sum(l * l)))


def alignment_sigma(x, y_gram: np.ndarray, num: int, low: float = 0.3, high: float = 10.0):
    """The grid candidate of largest alignment (the first one on ties) and all alignments."""
    grid = candidate_grid(x, num, low, high)
    scores = np.array([alignment(gaussian_gram(x, s), y_gram) for s in grid])
    return float(grid[int(np.argmax(scores))]), scores
