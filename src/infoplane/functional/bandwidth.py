"""Kernel widths (sigma) for the Gaussian kernel, in infoplane's convention.

Every width here is the ``sigma`` of ``exp(-||a - b||^2 / (2 sigma^2))``. The authors' code of
Wickstrøm et al. (arXiv:1909.11396) used ``exp(-d^2 / sigma^2)``: divide their values by sqrt(2)
to get ours (their input width 8 on MNIST in [0, 1] is 8 / sqrt(2) ~ 5.657 here).

Rules:

* :func:`median_distance` -- the median pairwise distance (the "median heuristic"; for an even
  number of pairs the mean of the two middle distances, as ``numpy.median``).
* :func:`knn_distance` -- the mean distance to the k-th nearest neighbour.
* :func:`silverman` and :func:`scott` -- the multivariate rules of thumb (Silverman 1986,
  Scott 1992) with the pooled per-feature standard deviation of the sample.
* :func:`alignment_sigma` -- the paper's rule: the candidate maximizing the kernel alignment
  with the label Gram (Cristianini et al., NIPS 2001), over a grid of candidates.
* :class:`LabelAlignment` -- the same, smoothed across steps with an exponential moving average
  ``sigma_t = beta sigma_{t-1} + (1 - beta) sigma*_t`` (beta = 0.9, ``sigma_0 = sigma*_0``).

Each function returns a 0-d float64 tensor on the device of its input. When a rule gives 0 (many
duplicated samples), the mean pairwise distance is used instead, and 1.0 when every sample is the
same; both with a warning.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import torch

from infoplane.errors import InvalidInputError, InvalidParameterError
from infoplane.functional._validation import (
    as_tensor,
    check_gram,
    check_integer,
    check_positive_scalar,
    check_same_device,
)
from infoplane.functional.kernels import _flatten_samples, _squared_distances

#: Elements of the [candidates, pairs] matrix evaluated at once by the alignment search.
_ALIGN_CHUNK_ELEMENTS = 1 << 22
#: The same on CPU: cache-sized chunks (1 MiB of float64), whose temporaries are reused from
#: the allocator's cache instead of being fresh pages every call.
_CPU_ALIGN_CHUNK_ELEMENTS = 1 << 17
_SQRT2 = math.sqrt(2.0)


def _upper_pairs(m: torch.Tensor) -> torch.Tensor:
    """Entries ``m[i, j]`` with ``i < j`` as a flat vector."""
    n = m.shape[-1]
    iu = torch.triu_indices(n, n, offset=1, device=m.device)
    return m[iu[0], iu[1]]


def _positive_or_fallback(
    value: torch.Tensor, rule: str, d2: torch.Tensor, why: str
) -> torch.Tensor:
    """Return ``value`` if it is a positive finite width, else a fallback with a warning.

    If the samples are not all identical the fallback is the mean pairwise distance (a rule can
    give 0 when many samples are duplicates, e.g. a mostly dead ReLU layer); if they are, every
    width gives the same all-ones Gram and the fallback is 1.0.
    """
    if bool(value > 0) and bool(torch.isfinite(value)):
        return value
    mean = _upper_pairs(d2).sqrt().mean()
    if bool(mean > 0) and bool(torch.isfinite(mean)):
        warnings.warn(
            f"{rule}: {why}, so the rule gives sigma = 0; using the mean pairwise distance "
            f"{float(mean):.6g} instead.",
            UserWarning,
            stacklevel=3,
        )
        return mean
    warnings.warn(
        f"{rule}: all samples are identical (every pairwise distance is 0); using sigma = 1.0. "
        "Any width gives the same Gram (all ones, entropy 0).",
        UserWarning,
        stacklevel=3,
    )
    return torch.ones((), dtype=value.dtype, device=value.device)


# ----------------------------------------------------------------------------- rules on distances
def _median(values: torch.Tensor) -> torch.Tensor:
    """Median of a flat tensor; the mean of the two middle values for an even count.

    ``torch.median`` returns the lower middle value instead, and ``torch.quantile`` refuses
    inputs above 2^24 elements (N > 5793 samples here), so the two order statistics are taken
    with ``kthvalue``.
    """
    m = values.numel()
    upper = values.kthvalue(m // 2 + 1).values
    if m % 2:
        return upper
    return 0.5 * (values.kthvalue(m // 2).values + upper)


def _median_from_sq(d2: torch.Tensor) -> torch.Tensor:
    return _positive_or_fallback(
        _median(_upper_pairs(d2).sqrt()),
        "median_distance",
        d2,
        "at least half of the sample pairs are duplicates (distance 0)",
    )


def _knn_from_sq(d2: torch.Tensor, k: int) -> torch.Tensor:
    n = d2.shape[0]
    masked = d2 + torch.diag(torch.full((n,), math.inf, dtype=d2.dtype, device=d2.device))
    kth = masked.kthvalue(k, dim=1).values.sqrt()
    return _positive_or_fallback(
        kth.mean(),
        "knn_distance",
        d2,
        f"the k = {k} nearest neighbour of every sample is a duplicate (distance 0)",
    )


def _pooled_std_from_sq(d2: torch.Tensor, dim: int) -> torch.Tensor:
    """sqrt(mean per-feature unbiased variance): sum_{i,j} ||x_i - x_j||^2 = 2 N^2 sum_d var_d."""
    n = d2.shape[0]
    total_var = d2.sum() / (2.0 * n * (n - 1))
    return (total_var / dim).sqrt()


def _silverman_from_sq(d2: torch.Tensor, dim: int) -> torch.Tensor:
    n = d2.shape[0]
    factor = (4.0 / ((dim + 2.0) * n)) ** (1.0 / (dim + 4.0))
    why = "the pooled standard deviation underflows to 0"
    return _positive_or_fallback(_pooled_std_from_sq(d2, dim) * factor, "silverman", d2, why)


def _scott_from_sq(d2: torch.Tensor, dim: int) -> torch.Tensor:
    n = d2.shape[0]
    why = "the pooled standard deviation underflows to 0"
    std = _pooled_std_from_sq(d2, dim)
    return _positive_or_fallback(std * n ** (-1.0 / (dim + 4.0)), "scott", d2, why)


def candidate_grid(
    sq_dists: torch.Tensor, num: int = 100, *, low: float = 0.3, high: float = 10.0
) -> torch.Tensor:
    """The paper's candidate widths: ``linspace(low, high, num) * mean_distance / sqrt(2)``.

    The authors spaced candidates evenly from 0.3 to 10 times the mean pairwise distance in
    their convention ``exp(-d^2 / sigma^2)``; dividing by sqrt(2) gives the same kernels in ours.

    Args:
        sq_dists: ``[N, N]`` squared pairwise distances (see :func:`~infoplane.squared_distances`).
        num: number of candidates (the authors: 300 in the first 20 steps, 100 after).
        low, high: the grid's ends as multiples of the mean distance, ``0 < low <= high``.

    Returns:
        ``[num]`` candidates in the dtype of ``sq_dists`` (the mean distance is taken as 1.0 if
        every distance is 0).
    """
    who = "candidate_grid"
    sq_dists = _check_sq_dists(sq_dists, who)
    num = check_integer(num, "num", who)
    low, high = _check_range(low, high, who)
    return _candidate_grid(sq_dists, num, low, high)


def _check_range(low: Any, high: Any, who: str) -> tuple[float, float]:
    low = check_positive_scalar(low, "low", who)
    high = check_positive_scalar(high, "high", who)
    if high < low:
        raise InvalidParameterError(
            f"{who}: expected low <= high, got low = {low!r}, high = {high!r}."
        )
    return low, high


def _check_sq_dists(sq_dists: Any, who: str) -> torch.Tensor:
    """A ``[N, N]`` matrix of finite non-negative squared distances, N >= 2."""
    d2 = as_tensor(sq_dists, "sq_dists", who)
    if d2.dim() != 2 or d2.shape[0] != d2.shape[1] or d2.shape[0] < 2:
        raise InvalidInputError(
            f"{who}: expected sq_dists as an [N, N] matrix with N >= 2, got shape "
            f"{tuple(d2.shape)}. Build it with squared_distances(x)."
        )
    if not d2.is_floating_point():
        d2 = d2.to(torch.float64)
    if not bool(torch.isfinite(d2).all()) or bool((d2 < 0).any()):
        raise InvalidInputError(
            f"{who}: expected finite non-negative squared distances, got negative or NaN/Inf "
            "entries. Build them with squared_distances(x)."
        )
    return d2


def _candidate_grid(sq_dists: torch.Tensor, num: int, low: float, high: float) -> torch.Tensor:
    mean = _upper_pairs(sq_dists).sqrt().mean()
    mean = torch.where(mean > 0, mean, torch.ones_like(mean))
    grid = torch.linspace(low, high, num, dtype=sq_dists.dtype, device=sq_dists.device)
    return grid * (mean / _SQRT2)


def _pair_terms(
    d2: torch.Tensor, y_gram: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Upper-triangle distances and label values, the label diagonal and ``||K_Y||_F``."""
    dist = _upper_pairs(d2)
    yv = _upper_pairs(y_gram).to(d2.dtype)
    y_diag = torch.diagonal(y_gram).to(d2.dtype)
    y_norm = (y_diag.square().sum() + 2.0 * yv.square().sum()).sqrt()
    return dist, yv, y_diag, y_norm


def _inner_and_norm(
    n: int, dist: torch.Tensor, yv: torch.Tensor, y_diag: torch.Tensor, sigmas: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``<K_s, K_Y>_F`` and ``||K_s||_F`` for every candidate ``s``, over chunks of candidates."""
    limit = _CPU_ALIGN_CHUNK_ELEMENTS if dist.device.type == "cpu" else _ALIGN_CHUNK_ELEMENTS
    chunk = max(1, limit // max(1, dist.numel()))
    inner, norm = [], []
    for s in sigmas.split(chunk):
        k = torch.div(dist[None, :], -2.0 * s[:, None] * s[:, None]).exp_()
        inner.append(y_diag.sum() + 2.0 * (k @ yv))
        norm.append((n + 2.0 * (k * k).sum(dim=1)).sqrt())
    return torch.cat(inner), torch.cat(norm)


def _alignment_from_sq(
    d2: torch.Tensor, y_gram: torch.Tensor, sigmas: torch.Tensor
) -> torch.Tensor:
    """Kernel alignment ``<K_s, K_Y>_F / (||K_s||_F ||K_Y||_F)`` for every candidate ``s``.

    Uses the symmetry of both Grams and ``K_s[i, i] = 1``: only the ``N (N - 1) / 2`` pairs are
    evaluated, O(N^2) per candidate, vectorized over chunks of candidates.
    """
    dist, yv, y_diag, y_norm = _pair_terms(d2, y_gram)
    inner, norm = _inner_and_norm(d2.shape[0], dist, yv, y_diag, sigmas)
    return inner / (norm * y_norm)


def _best_index(d2: torch.Tensor, y_gram: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Index (0-d tensor) of the candidate of the increasing ``grid`` with the largest alignment.

    Ties go to the smallest width, and so do candidates within rounding of the maximum (a
    relative ``margin`` of about ``16 (P + 1024) eps`` for ``P`` pairs), so that the choice does
    not depend on how the candidates were batched.

    Every kernel value ``exp(-d^2 / (2 s^2))`` grows with ``s``, and so do ``<K_s, K_Y>`` (for a
    label Gram without negative entries) and ``||K_s||``. Between two evaluated candidates
    ``a < b`` every candidate's alignment is therefore at most ``<K_b, K_Y> / (||K_a|| ||K_Y||)``.
    On CPU the search evaluates about ``sqrt(num)`` evenly spaced candidates, then only the
    intervals whose bound reaches the best value found, less the margin: every skipped
    candidate is provably further below the maximum, so the result is that of the full search.
    Other devices evaluate every candidate (no host synchronisation).
    """
    n, num = d2.shape[0], grid.numel()
    dist, yv, y_diag, y_norm = _pair_terms(d2, y_gram)
    margin = 1.0 + 16.0 * (dist.numel() + 1024) * torch.finfo(dist.dtype).eps
    if d2.device.type != "cpu" or num < 16 or bool((yv < 0).any()):
        inner, norm = _inner_and_norm(n, dist, yv, y_diag, grid)
        align = inner / (norm * y_norm)
    else:
        coarse = sorted({*range(0, num, math.isqrt(num)), num - 1})
        inner, norm = _inner_and_norm(n, dist, yv, y_diag, grid[coarse])
        align = torch.full((num,), -math.inf, dtype=dist.dtype)
        align[coarse] = inner / (norm * y_norm)
        best = align[coarse].max()
        if not bool(torch.isfinite(best)):
            return _alignment_from_sq(d2, y_gram, grid).argmax()
        bound = inner[1:] / (norm[:-1] * y_norm) * margin
        keep = (bound >= best / margin).tolist()
        rest = [
            torch.arange(lo + 1, hi)
            for lo, hi, k in zip(coarse[:-1], coarse[1:], keep, strict=True)
            if k and hi - lo > 1
        ]
        if rest:
            index = torch.cat(rest)
            inner, norm = _inner_and_norm(n, dist, yv, y_diag, grid[index])
            align[index] = inner / (norm * y_norm)
    return (align * margin >= align.max()).to(align.dtype).argmax()


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
    n = x2d.shape[0]
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= n - 1:
        raise InvalidParameterError(
            f"{who}: expected k as an integer in [1, N - 1] = [1, {n - 1}], got {k!r}."
        )
    return _knn_from_sq(_squared_distances(x2d), int(k))


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
    x2d = _x_and_y_gram(x, y_gram, who)
    yg = _check_y_gram(y_gram, x2d.shape[0], who)
    s = _check_sigmas(sigmas, x2d.device, who)
    return _alignment_from_sq(_squared_distances(x2d), yg, s)


def _check_sigmas(sigmas: Any, device: torch.device, who: str) -> torch.Tensor:
    """``sigmas`` as a flat float64 tensor on ``device`` of positive finite widths."""
    if isinstance(sigmas, str) or sigmas is None:
        raise InvalidParameterError(
            f"{who}: expected sigmas as a sequence of positive finite widths, got "
            f"{type(sigmas).__name__}."
        )
    try:
        s = torch.as_tensor(sigmas, dtype=torch.float64, device=device).reshape(-1)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InvalidParameterError(
            f"{who}: expected sigmas as a sequence of positive finite widths, got an "
            f"unconvertible {type(sigmas).__name__}."
        ) from exc
    if s.numel() == 0:
        raise InvalidParameterError(
            f"{who}: expected sigmas as a non-empty sequence of positive finite widths, got none."
        )
    bad = ~(torch.isfinite(s) & (s > 0))
    if bool(bad.any()):
        raise InvalidParameterError(
            f"{who}: expected sigmas as positive finite widths, got {int(bad.sum())} invalid "
            f"value(s), the first {float(s[bad][0])!r}."
        )
    return s


def _x_and_y_gram(x: Any, y_gram: Any, who: str) -> torch.Tensor:
    """Check that ``x`` and ``y_gram`` share a device (before any value check), then ``x``."""
    xt = as_tensor(x, "x", who)
    yt = as_tensor(y_gram, "y_gram", who)
    check_same_device([xt, yt], ["x", "y_gram"], who)
    return _flatten_samples(xt, who)


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
    x2d = _x_and_y_gram(x, y_gram, who)
    yg = _check_y_gram(y_gram, x2d.shape[0], who)
    num = check_integer(num_candidates, "num_candidates", who)
    low, high = _check_range(low, high, who)
    d2 = _squared_distances(x2d)
    grid = _candidate_grid(d2, num, low, high)
    return grid.take(_best_index(d2, yg, grid))


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
        self.k = check_integer(k, "k", "KNN")

    def __call__(self, sq_dists, dim, y_gram=None):
        n = sq_dists.shape[0]
        if self.k > n - 1:
            warnings.warn(
                f"KNN: k = {self.k} needs more than the batch's N = {n} samples; using "
                f"k = {n - 1}, the farthest neighbour.",
                UserWarning,
                stacklevel=2,
            )
        return _knn_from_sq(sq_dists, min(self.k, n - 1))

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
        self.num_candidates = check_integer(num_candidates, "num_candidates", who)
        self.warmup_candidates = check_integer(warmup_candidates, "warmup_candidates", who)
        self.warmup_steps = check_integer(warmup_steps, "warmup_steps", who, minimum=0)
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0.0 <= beta < 1.0:
            raise InvalidParameterError(f"{who}: expected beta in [0, 1), got {beta!r}.")
        self.beta = float(beta)
        self.low, self.high = _check_range(low, high, who)
        self.steps = 0
        self.sigma: torch.Tensor | None = None

    def best_candidate(self, sq_dists: torch.Tensor, y_gram: torch.Tensor) -> torch.Tensor:
        """This step's ``sigma*``: the best grid candidate (no smoothing, no state change)."""
        num = self.warmup_candidates if self.steps < self.warmup_steps else self.num_candidates
        grid = _candidate_grid(sq_dists, num, self.low, self.high)
        return grid.take(_best_index(sq_dists, y_gram, grid))  # no host sync

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
        check_same_device([sq_dists, y_gram], ["sq_dists", "y_gram"], "LabelAlignment")
        if tuple(y_gram.shape) != tuple(sq_dists.shape):
            raise InvalidInputError(
                f"LabelAlignment: expected a label Gram of shape {tuple(sq_dists.shape)} like the "
                f"distances, got {tuple(y_gram.shape)}. Build both on the same batch."
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
    if isinstance(spec, (numbers.Real, torch.Tensor)) and not isinstance(spec, bool):
        return Fixed(check_positive_scalar(spec, "spec", "make_width_rule"))
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
