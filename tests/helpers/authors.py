"""The authors' per-step pipeline, re-implemented naively from its description (METHOD.md and
``python/network.py`` of Wickstrom/InformationTheoryExperiment), in float64 and in *their*
conventions: kernel ``exp(-d^2 / sigma^2)``, widths from ``linspace(0.3, 10 * mean(d), K)`` with
the mean over all N^2 distances, K = 300 for their iterations 0..20 then 100, the first maximum
of the alignment score, a 0.9 moving average, and the von Neumann entropy of ``K / N``.
Slow on purpose: every line is checkable by eye against the description.
"""

from __future__ import annotations

import math

import numpy as np


def their_distances(x) -> np.ndarray:
    xf = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    return np.sqrt(((xf[:, None, :] - xf[None, :, :]) ** 2).sum(-1))  # N x N, zero diagonal


def their_sigma_star(x, y, num: int):
    """One call of their search: ``(best sigma, candidates, scores)``, their convention."""
    d = their_distances(x)
    n = d.shape[0]
    y = np.asarray(y)
    k_y = (y[:, None] == y[None, :]).astype(np.float64)
    sigma_vals = np.linspace(0.3, 10.0 * d.mean(), num)
    scores = []
    for sig in sigma_vals:
        k_l = np.exp(-(d**2) / sig**2) / n
        scores.append(
            2.0 * math.log2(np.trace(k_l @ k_y) / (np.linalg.norm(k_l) * np.linalg.norm(k_y)))
        )
    return float(sigma_vals[scores.index(max(scores))]), sigma_vals, np.array(scores)


def their_gram(x, sigma: float) -> np.ndarray:
    return np.exp(-(their_distances(x) ** 2) / sigma**2)


def von_neumann(k: np.ndarray) -> float:
    """``-sum lambda log2 lambda`` of ``K / tr(K)``."""
    lam = np.linalg.eigvalsh(k / np.trace(k))
    lam = lam[lam > 0]
    return float(-(lam * np.log2(lam)).sum())


def their_mi(k_a: np.ndarray, k_b: np.ndarray) -> float:
    return von_neumann(k_a) + von_neumann(k_b) - von_neumann(k_a * k_b)


class TheirLayerWidth:
    """Their moving average of one layer's width over iterations 0, 1, 2, ..."""

    def __init__(self) -> None:
        self.sigma: float | None = None
        self.iteration = 0

    def update(self, t, y) -> float:
        best, _, _ = their_sigma_star(t, y, 300 if self.iteration <= 20 else 100)
        self.sigma = best if self.sigma is None else 0.9 * self.sigma + 0.1 * best
        self.iteration += 1
        return self.sigma
