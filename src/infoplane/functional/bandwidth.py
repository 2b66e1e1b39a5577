"""Kernel widths (sigma) for the Gaussian kernel, in infoplane's convention.

Every width here is the ``sigma`` of ``exp(-||a - b||^2 / (2 sigma^2))``. The authors' code of
Wickstrøm et al. (arXiv:1909.11396) used ``exp(-d^2 / sigma^2)``: divide their values by sqrt(2)
to get ours (their input width 8 on MNIST in [0, 1] is 8 / sqrt(2) ~ 5.657 here).

Rules:

* :func:`median_distance` -- the median pairwise distance (the "median heuristic").
* :func:`knn_distance` -- the mean distance to the k-th nearest neighbour.
* :func:`silverman` and :func:`scott` -- the multivariate rules of thumb (Silverman 1986,
  Scott 1992) with the pooled per-feature standard deviation of the sample.
* :func:`alignment_sigma` -- the paper's rule: the candidate maximizing the kernel alignment
  with the label Gram (Cristianini et al., NIPS 2001), over a grid of candidates.
* :class:`LabelAlignment` -- the same, smoothed across steps with an exponential moving average
  ``sigma_t = beta sigma_{t-1} + (1 - beta) sigma*_t`` (beta = 0.9, ``sigma_0 = sigma*_0``).

Each function returns a 0-d float64 tensor on the device of its input.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch

from infoplane.errors import InvalidInputError, InvalidParameterError
from infoplane.functional._validation import (
    check_gram,
    check_positive_scalar,
    check_same_device,
)
from infoplane.functional.kernels import _flatten_samples, _squared_distances

#: Elements of the [candidates, pairs] matrix evaluated at once by the alignment search.
_ALIGN_CHUNK_ELEMENTS = 1 << 22
_SQRT2 = math.sqrt(2.0)


def _upper_pairs(m: torch.Tensor) -> torch.Tensor:
    """Entries ``m[i, j]`` with ``i < j`` as a flat vector."""
    n = m.shape[-1]
    iu = torch.triu_indices(n, n, offset=1, device=m.device)
    return m[iu[0], iu[1]]


def _positive_or_fallback(value: torch.Tensor, rule: str) -> torch.Tensor:
    """Return ``value`` if > 0, else 1.0 with a warning (all samples coincide: any width works)."""
    if bool(value > 0) and bool(torch.isfinite(value)):
        return value
    warnings.warn(
        f"{rule}: all samples are identical (every pairwise distance is 0); using sigma = 1.0. "
        "Any width gives the same Gram (all ones, entropy 0).",
        UserWarning,
        stacklevel=3,
    )
    return torch.ones((), dtype=value.dtype, device=value.device)


# ----------------------------------------------------------------------------- rules on distances
def _median_from_sq(d2: torch.Tensor) -> torch.Tensor:
    return _positive_or_fallback(_upper_pairs(d2).sqrt().median(), "median_distance")


def _knn_from_sq(d2: torch.Tensor, k: int) -> torch.Tensor:
    n = d2.shape[0]
    masked = d2 + torch.diag(torch.full((n,), math.inf, dtype=d2.dtype, device=d2.device))
    kth = masked.kthvalue(k, dim=1).values.sqrt()
    return _positive_or_fallback(kth.mean(), "knn_distance")


def _pooled_std_from_sq(d2: torch.Tensor, dim: int) -> torch.Tensor:
    """sqrt(mean per-feature unbiased variance): sum_{i,j} ||x_i - x_j||^2 = 2 N^2 sum_d var_d."""
    n = d2.shape[0]
    total_var = d2.sum() / (2.0 * n * (n - 1))
    return (total_var / dim).sqrt()


def _silverman_from_sq(d2: torch.Tensor, dim: int) -> torch.Tensor:
    n = d2.shape[0]
    factor = (4.0 / ((dim + 2.0) * n)) ** (1.0 / (dim + 4.0))
    return _positive_or_fallback(_pooled_std_from_sq(d2, dim) * factor, "silverman")


def _scott_from_sq(d2: torch.Tensor, dim: int) -> torch.Tensor:
    n = d2.shape[0]
    return _positive_or_fallback(_pooled_std_from_sq(d2, dim) * n ** (-1.0 / (dim + 4.0)), "scott")


def candidate_grid(
    sq_dists: torch.Tensor, num: int = 100, *, low: float = 0.3, high: float = 10.0
) -> torch.Tensor:
    """The paper's candidate widths: ``linspace(low, high, num) * mean_distance / sqrt(2)``.

    The authors spaced candidates evenly from 0.3 to 10 times the mean pairwise distance in
    their convention ``exp(-d^2 / sigma^2)``; dividing by sqrt(2) gives the same kernels in ours.

    Args:
        sq_dists: ``[N, N]`` squared pairwise distances.
        num: number of candidates (the authors: 300 in the first 20 steps, 100 after).

    Returns:
        ``[num]`` float64 candidates (all 1.0-based if every distance is 0).
    """
    mean = _upper_pairs(sq_dists).sqrt().mean()
    mean = torch.where(mean > 0, mean, torch.ones_like(mean))
    grid = torch.linspace(low, high, num, dtype=sq_dists.dtype, device=sq_dists.device)
    return grid * (mean / _SQRT2)


def _alignment_from_sq(
    d2: torch.Tensor, y_gram: torch.Tensor, sigmas: torch.Tensor
) -> torch.Tensor:
    """Kernel alignment ``<K_s, K_Y>_F / (||K_s||_F ||K_Y||_F)`` for every candidate ``s``.

    Uses the symmetry of both Grams and ``K_s[i, i] = 1``: only the ``N (N - 1) / 2`` pairs are
    evaluated, O(N^2) per candidate, vectorized over chunks of candidates.
    """
    n = d2.shape[0]
    dist = _upper_pairs(d2)
    yv = _upper_pairs(y_gram).to(d2.dtype)
    y_diag = torch.diagonal(y_gram).to(d2.dtype)
    y_norm = (y_diag.square().sum() + 2.0 * yv.square().sum()).sqrt()
    chunk = max(1, _ALIGN_CHUNK_ELEMENTS // max(1, dist.numel()))
    out = []
    for s in sigmas.split(chunk):
        k = torch.exp(dist[None, :] / (-2.0 * s[:, None] * s[:, None]))
        inner = y_diag.sum() + 2.0 * (k @ yv)
        k_norm = (n + 2.0 * (k * k).sum(dim=1)).sqrt()
        out.append(inner / (k_norm * y_norm))
    return torch.cat(out)


# ----------------------------------------------------------------------------- public functions
def median_distance(x: Any) -> torch.Tensor:
    """Median pairwise Frobenius distance of the samples ``x`` ``[N, ...]``."""
    return _median_from_sq(_squared_distances(_flatten_samples(x, "median_distance")))


def knn_distance(x: Any, k: int = 10) -> torch.Tensor:
    """Mean over samples of the distance to the k-th nearest other sample.

    Args:
        x: samples ``[N, ...]``.
        k: neighbour rank, ``1 <= k <= N - 1`` (duplicates count as neighbours at distance 0).
    """
    who = "knn_distance"
    x2d = _flatten_samples(x, who)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= x2d.shape[0] - 1:
        raise InvalidParameterError(
            f"{who}: expected k as an integer in [1, N - 1] = [1, {x2d.shape[0] - 1}], got {k!r}."
        )
    return _knn_from_sq(_squared_distances(x2d), k)


def silverman(x: Any) -> torch.Tensor:
    """Silverman's rule ``s (4 / ((D + 2) N))^(1 / (D + 4))`` with the pooled feature std ``s``."""
    x2d = _flatten_samples(x, "silverman")
    return _silverman_from_sq(_squared_distances(x2d), x2d.shape[1])


def scott(x: Any) -> torch.Tensor:
    """Scott's rule ``s N^(-1 / (D + 4))`` with the pooled per-feature standard deviation ``s``."""
    x2d = _flatten_samples(x, "scott")
    return _scott_from_sq(_squared_distances(x2d), x2d.shape[1])


def _check_y_gram(y_gram: Any, n: int, who: str) -> torch.Tensor:
    yg = check_gram(y_gram, who, "y_gram")
    if yg.dim() != 2 or yg.shape[0] != n:
        raise InvalidInputError(
            f"{who}: expected y_gram of shape ({n}, {n}) like the samples, got "
            f"{tuple(yg.shape)}. Build it with label_gram(y) on the same batch."
        )
    return yg


def kernel_alignment(x: Any, y_gram: Any, sigmas: Any) -> torch.Tensor:
    """Alignment of the Gaussian Gram of ``x`` with ``y_gram`` for each width in ``sigmas``.

    Args:
        x: samples ``[N, ...]``.
        y_gram: ``[N, N]`` target Gram (usually :func:`~infoplane.label_gram`).
        sigmas: ``[S]`` positive widths.

    Returns:
        ``[S]`` alignments in ``[0, 1]`` for non-negative Grams.
    """
    who = "kernel_alignment"
    x2d = _flatten_samples(x, who)
    yg = _check_y_gram(y_gram, x2d.shape[0], who)
    s = torch.as_tensor(sigmas, dtype=torch.float64, device=x2d.device).reshape(-1)
    if s.numel() == 0 or not bool(torch.isfinite(s).all()) or not bool((s > 0).all()):
        raise InvalidParameterError(
            f"{who}: expected sigmas as a non-empty list of positive finite widths, got {s}."
        )
    check_same_device([x2d, yg], ["x", "y_gram"], who)
    return _alignment_from_sq(_squared_distances(x2d), yg, s)


def alignment_sigma(
    x: Any,
    y_gram: Any,
    *,
    num_candidates: int = 100,
    low: float = 0.3,
    high: float = 10.0,
) -> torch.Tensor:
    """The paper's width: the grid candidate that maximizes the alignment with ``y_gram``.

    The grid is ``linspace(low, high, num_candidates) * mean_pairwise_distance / sqrt(2)``
    (see :func:`candidate_grid`); ties go to the smallest width.
    """
    who = "alignment_sigma"
    x2d = _flatten_samples(x, who)
    yg = _check_y_gram(y_gram, x2d.shape[0], who)
    check_same_device([x2d, yg], ["x", "y_gram"], who)
    num = _check_count(num_candidates, "num_candidates", who)
    d2 = _squared_distances(x2d)
    grid = candidate_grid(d2, num, low=low, high=high)
    return grid[_alignment_from_sq(d2, yg, grid).argmax()]


def _check_count(value: Any, name: str, who: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameterError(f"{who}: expected {name} as an integer >= 1, got {value!r}.")
    return value


# ----------------------------------------------------------------------------- stateful rules
class WidthRule:
    """A kernel-width rule applied to one layer step after step.

    Call it with the squared pairwise distances ``[N, N]`` of the batch (float64), the feature
    dimension ``D`` and the label Gram; it returns a 0-d tensor. Stateless rules ignore the
    step; :class:`LabelAlignment` keeps a moving average. ``state_dict``/``load_state_dict``
    make a resumed run continue with the same widths.
    """

    name = "rule"

    def __call__(
        self, sq_dists: torch.Tensor, dim: int, y_gram: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state

    def describe(self) -> dict[str, Any]:
        """Configuration of the rule, for run records."""
        return {"rule": self.name}


class Fixed(WidthRule):
    """A constant width."""

    name = "fixed"

    def __init__(self, sigma: float) -> None:
        self.sigma = check_positive_scalar(sigma, "sigma", "Fixed")

    def __call__(self, sq_dists, dim, y_gram=None):
        return torch.tensor(self.sigma, dtype=sq_dists.dtype, device=sq_dists.device)

    def describe(self):
        return {"rule": self.name, "sigma": self.sigma}


class Median(WidthRule):
    """The median pairwise distance of each batch."""

    name = "median"

    def __call__(self, sq_dists, dim, y_gram=None):
        return _median_from_sq(sq_dists)


class KNN(WidthRule):
    """The mean distance to the k-th nearest neighbour in each batch."""

    name = "knn"

    def __init__(self, k: int = 10) -> None:
        self.k = _check_count(k, "k", "KNN")

    def __call__(self, sq_dists, dim, y_gram=None):
        return _knn_from_sq(sq_dists, min(self.k, sq_dists.shape[0] - 1))

    def describe(self):
        return {"rule": self.name, "k": self.k}


class Silverman(WidthRule):
    """Silverman's multivariate rule of thumb on each batch."""

    name = "silverman"

    def __call__(self, sq_dists, dim, y_gram=None):
        return _silverman_from_sq(sq_dists, dim)


class Scott(WidthRule):
    """Scott's multivariate rule of thumb on each batch."""

    name = "scott"

    def __call__(self, sq_dists, dim, y_gram=None):
        return _scott_from_sq(sq_dists, dim)


class LabelAlignment(WidthRule):
    """The paper's width rule: label alignment over a grid, smoothed by a moving average.

    At step t the candidate ``sigma*_t`` maximizing the alignment with the label Gram is found
    over ``warmup_candidates`` grid points during the first ``warmup_steps`` calls and over
    ``num_candidates`` after (the authors: 300, 20 and 100), then
    ``sigma_t = beta sigma_{t-1} + (1 - beta) sigma*_t`` with ``sigma_0 = sigma*_0``.
    """

    name = "alignment"

    def __init__(
        self,
        *,
        num_candidates: int = 100,
        warmup_candidates: int = 300,
        warmup_steps: int = 20,
        beta: float = 0.9,
        low: float = 0.3,
        high: float = 10.0,
    ) -> None:
        who = "LabelAlignment"
        self.num_candidates = _check_count(num_candidates, "num_candidates", who)
        self.warmup_candidates = _check_count(warmup_candidates, "warmup_candidates", who)
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise InvalidParameterError(
                f"{who}: expected warmup_steps as an integer >= 0, got {warmup_steps!r}."
            )
        self.warmup_steps = warmup_steps
        if not (isinstance(beta, (int, float)) and 0.0 <= beta < 1.0):
            raise InvalidParameterError(f"{who}: expected beta in [0, 1), got {beta!r}.")
        self.beta = float(beta)
        self.low = check_positive_scalar(low, "low", who)
        self.high = check_positive_scalar(high, "high", who)
        if self.high <= self.low:
            raise InvalidParameterError(
                f"{who}: expected low < high, got low = {low!r}, high = {high!r}."
            )
        self.steps = 0
        self.sigma: torch.Tensor | None = None

    def best_candidate(self, sq_dists: torch.Tensor, y_gram: torch.Tensor) -> torch.Tensor:
        """This step's ``sigma*``: the best grid candidate (no smoothing, no state change)."""
        num = self.warmup_candidates if self.steps < self.warmup_steps else self.num_candidates
        grid = candidate_grid(sq_dists, num, low=self.low, high=self.high)
        return grid[_alignment_from_sq(sq_dists, y_gram, grid).argmax()]

    def update(self, best: torch.Tensor) -> torch.Tensor:
        """Fold a candidate into the moving average and return the smoothed width."""
        if self.sigma is None:
            self.sigma = best.detach().clone()
        else:
            self.sigma = self.beta * self.sigma.to(best.device) + (1.0 - self.beta) * best
        self.steps += 1
        return self.sigma

    def __call__(self, sq_dists, dim, y_gram=None):
        if y_gram is None:
            raise InvalidInputError(
                "LabelAlignment: expected a label Gram, got None. Pass y to measure() or use "
                "another width rule (median, knn, silverman, scott, fixed)."
            )
        return self.update(self.best_candidate(sq_dists, y_gram))

    def state_dict(self):
        return {
            "steps": self.steps,
            "sigma": None if self.sigma is None else float(self.sigma),
        }

    def load_state_dict(self, state):
        self.steps = int(state["steps"])
        sigma = state.get("sigma")
        self.sigma = None if sigma is None else torch.tensor(float(sigma), dtype=torch.float64)

    def describe(self):
        return {
            "rule": self.name,
            "num_candidates": self.num_candidates,
            "warmup_candidates": self.warmup_candidates,
            "warmup_steps": self.warmup_steps,
            "beta": self.beta,
            "low": self.low,
            "high": self.high,
        }


_RULES: dict[str, Callable[[], WidthRule]] = {
    "alignment": LabelAlignment,
    "median": Median,
    "knn": KNN,
    "silverman": Silverman,
    "scott": Scott,
}


def make_width_rule(spec: Any) -> WidthRule:
    """Build a rule from a name (``"alignment"``, ``"median"``, ``"knn"``, ``"silverman"``,
    ``"scott"``), a positive number (a fixed width), or return a :class:`WidthRule` as is."""
    if isinstance(spec, WidthRule):
        return spec
    if isinstance(spec, str):
        if spec not in _RULES:
            raise InvalidParameterError(
                f"make_width_rule: expected a rule in {sorted(_RULES)} or a positive number, "
                f"got {spec!r}."
            )
        return _RULES[spec]()
    if isinstance(spec, (int, float, torch.Tensor)) and not isinstance(spec, bool):
        return Fixed(spec)
    raise InvalidParameterError(
        f"make_width_rule: expected a rule name, a positive number or a WidthRule, got "
        f"{type(spec).__name__}."
    )


__all__ = [
    "KNN",
    "Fixed",
    "LabelAlignment",
    "Median",
    "Scott",
    "Silverman",
    "WidthRule",
    "alignment_sigma",
    "candidate_grid",
    "kernel_alignment",
    "knn_distance",
    "make_width_rule",
    "median_distance",
    "scott",
    "silverman",
]
