"""Kernel widths (sigma) for the Gaussian kernel, in infoplane's convention.

Every width here is the ``sigma`` of ``exp(-||a - b||^2 / (2 sigma^2))``. The authors' code of
Wickstrøm et al. (arXiv:1909.11396) used ``exp(-d^2 / sigma^2)``: divide their values by sqrt(2)
to get ours (their input width 8 on MNIST in [0, 1] is 8 / sqrt(2) ~ 5.657 here).

Pure functions of a batch (no state; the rules applied step after step, with their moving
averages, live beside them in :mod:`infoplane.widths`):

* :func:`median_distance` -- the median pairwise distance (the "median heuristic"; for an even
  number of pairs the mean of the two middle distances, as ``numpy.median``).
* :func:`knn_distance` -- the mean distance to the k-th nearest neighbour.
* :func:`silverman` and :func:`scott` -- the multivariate rules of thumb (Silverman 1986,
  Scott 1992) with the pooled per-feature standard deviation of the sample.
* :func:`kernel_alignment` -- the alignment of the Gaussian Gram with a target Gram
  (Cristianini et al., NIPS 2001) at given widths.
* :func:`candidate_grid` and :func:`authors_grid` -- the candidate widths of the paper's rule:
  a grid relative to the mean distance, and the authors' grid exactly.
* :func:`best_width` -- the search: the candidate of largest alignment with the label Gram
  (ties to the smallest width).
* :func:`alignment_sigma` -- the paper's rule on one batch: :func:`best_width` over
  :func:`candidate_grid`.

Each function returns a 0-d float64 tensor on the device of its input. When a rule gives 0 (many
duplicated samples), the mean pairwise distance is used instead, and 1.0 when every sample is the
same; both with a warning.
"""

from __future__ import annotations

import math
import numbers
import threading
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from infoplane._validation import (
    as_tensor,
    check_gram,
    check_integer,
    check_positive_scalar,
    check_same_device,
)
from infoplane.errors import InvalidInputError, InvalidParameterError
from infoplane.functional.kernels import (
    exp_flushed,
    exp_range,
    flatten_samples,
    squared_distances_of_rows,
    tracks_grad,
)

#: Elements of the [candidates, pairs] matrix evaluated at once by the alignment search.
_ALIGN_CHUNK_ELEMENTS = 1 << 22
#: The same on CPU: cache-sized chunks (1 MiB of float64), whose temporaries are reused from
#: the allocator's cache instead of being fresh pages every call.
_CPU_ALIGN_CHUNK_ELEMENTS = 1 << 17
_SQRT2 = math.sqrt(2.0)
#: The authors' grid in their convention exp(-d^2 / sigma^2): an absolute lower end, and the
#: upper end as a multiple of the mean distance (see :func:`authors_grid`).
AUTHORS_LOW = 0.3
AUTHORS_HIGH = 10.0
#: The bounded search (CPU): grids of fewer candidates are evaluated whole; about this many
#: evenly spaced candidates are evaluated first, then at most this many per refinement round.
_BOUNDED_MIN_CANDIDATES = 16
_BOUNDED_COARSE = 10
#: The same for a problem with a hint (the previous step's pick), whose neighbours at these
#: distances are added (measured on the paper's MLP at steady state: 55 evaluations for its
#: five layers in one round, against 78 in two with the hint's two nearest on either side).
_BOUNDED_COARSE_HINTED = 3
_HINT_OFFSETS = np.array([0, 1, 2, 4, 8, 16])
_BOUNDED_ROUND = 6


def _upper_pairs(m: torch.Tensor) -> torch.Tensor:
    """Entries ``m[..., i, j]`` with ``i < j``, in row-major order: ``[..., P]``."""
    n = m.shape[-1]
    iu = torch.triu_indices(n, n, offset=1, device=m.device)
    if m.device.type != "cpu" or m.requires_grad:
        return m[..., iu[0], iu[1]]
    # numpy's gather of the same entries: a quarter of the time of advanced indexing here
    flat = (iu[0] * n + iu[1]).numpy()
    rows = m.contiguous().numpy().reshape(-1, n * n)
    return torch.from_numpy(np.take(rows, flat, axis=1).reshape(*m.shape[:-2], flat.size))


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


def median_from_sq(d2: torch.Tensor) -> torch.Tensor:
    return _positive_or_fallback(
        _median(_upper_pairs(d2).sqrt()),
        "median_distance",
        d2,
        "at least half of the sample pairs are duplicates (distance 0)",
    )


def knn_from_sq(d2: torch.Tensor, k: int) -> torch.Tensor:
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


def silverman_from_sq(d2: torch.Tensor, dim: int) -> torch.Tensor:
    n = d2.shape[0]
    factor = (4.0 / ((dim + 2.0) * n)) ** (1.0 / (dim + 4.0))
    why = "the pooled standard deviation underflows to 0"
    return _positive_or_fallback(_pooled_std_from_sq(d2, dim) * factor, "silverman", d2, why)


def scott_from_sq(d2: torch.Tensor, dim: int) -> torch.Tensor:
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
    low, high = check_range(low, high, who)
    return _candidate_grid(sq_dists, num, low, high)


def check_range(low: Any, high: Any, who: str) -> tuple[float, float]:
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
    return relative_grid(_upper_pairs(sq_dists).sqrt().mean(), num, low, high)


def relative_grid(mean: torch.Tensor, num: int, low: float, high: float) -> torch.Tensor:
    """``linspace(low, high, num) * mean / sqrt(2)``, with ``mean`` taken as 1.0 if it is 0."""
    mean = torch.where(mean > 0, mean, torch.ones_like(mean))
    grid = torch.linspace(low, high, num, dtype=mean.dtype, device=mean.device)
    return grid * (mean / _SQRT2)


def authors_grid(sq_dists: Any, num: int = 100) -> torch.Tensor:
    """The authors' candidate widths, exactly, converted to infoplane's sigma.

    In their convention ``exp(-d^2 / sigma^2)`` the candidates are
    ``linspace(0.3, 10 * mean(d), num)``: the lower end 0.3 is absolute (not relative to the
    distances) and ``mean(d)`` runs over all ``N^2`` entries of the Euclidean distance matrix,
    the zero diagonal included (``kernel_mat`` in ``python/network.py`` of the authors'
    repository ``Wickstrom/InformationTheoryExperiment``; ``num`` is 300 for the iterations
    0..20 and 100 after). Each candidate is divided by sqrt(2) for ``exp(-d^2 / (2 sigma^2))``.

    Args:
        sq_dists: ``[N, N]`` squared pairwise distances (see :func:`~infoplane.squared_distances`).
        num: number of candidates.

    Returns:
        ``[num]`` candidates in increasing order, in the dtype of ``sq_dists``. When
        ``10 * mean(d) < 0.3`` (tiny distances) the authors' list runs downwards and is returned
        reversed; when every distance is 0 all candidates are ``0.3 / sqrt(2)`` (every width
        gives the same all-ones Gram).
    """
    who = "authors_grid"
    d2 = _check_sq_dists(sq_dists, who)
    return authors_grid_from_mean(
        mean_distance_all(_upper_pairs(d2).sqrt(), d2.shape[0]), check_integer(num, "num", who)
    )


def mean_distance_all(pair_distances: torch.Tensor, n: int) -> torch.Tensor:
    """Mean of the ``N x N`` distance matrix, zero diagonal included, from its upper pairs."""
    return pair_distances.sum() * (2.0 / (n * n))


def authors_grid_from_mean(mean: torch.Tensor, num: int) -> torch.Tensor:
    """``linspace(0.3, 10 mean, num) / sqrt(2)`` in increasing order, without host syncs."""
    low = torch.full_like(mean, AUTHORS_LOW)
    top = AUTHORS_HIGH * mean
    top = torch.where(top > 0, top, low)
    fraction = torch.linspace(0.0, 1.0, num, dtype=mean.dtype, device=mean.device)
    grid = low + (top - low) * fraction
    return torch.where(top >= low, grid, grid.flip(0)) / _SQRT2


class Pairs(NamedTuple):
    """What the alignment of every candidate needs, over the ``P = N (N - 1) / 2`` pairs
    ``i < j``, for ``M`` problems (layers) sharing one label Gram."""

    n: int
    sq: torch.Tensor  # [M, P] squared distances, one row per problem
    y: torch.Tensor  # [P] label-Gram values
    y_trace: torch.Tensor  # 0-d, the label Gram's trace
    y_norm: torch.Tensor  # 0-d, ||K_Y||_F


def label_pairs(d2: torch.Tensor, y_gram: torch.Tensor) -> Pairs:
    """The pairs of one ``[N, N]`` matrix of squared distances, or of ``[M, N, N]``, with the
    label Gram they share."""
    n = d2.shape[-1]
    sq = _upper_pairs(d2).reshape(-1, n * (n - 1) // 2)
    yv = _upper_pairs(y_gram).to(d2.dtype)
    y_diag = torch.diagonal(y_gram).to(d2.dtype)
    y_norm = (y_diag.square().sum() + 2.0 * yv.square().sum()).sqrt()
    return Pairs(n, sq, yv, y_diag.sum(), y_norm)


def _evaluate(
    pairs: Pairs, sigmas: torch.Tensor, rows: torch.Tensor | None = None, *, slopes: bool = False
) -> torch.Tensor:
    """``[<K_s, K_Y>_F, ||K_s||_F^2]`` for every candidate ``s = sigmas[m, c]`` of problem
    ``rows[m]`` (all problems when ``rows`` is None): ``[2, M, C]``, over chunks of candidates.

    Uses the symmetry of both Grams and ``K_s[i, i] = 1``: O(N^2) per candidate. With
    ``slopes`` a third row holds ``d ||K_s||_F^2 / du`` at ``u = 1 / (2 s^2)``.
    """
    sq = pairs.sq if rows is None else pairs.sq.index_select(0, rows)  # [M, P]
    m, p = sq.shape
    chunk = min(_chunk(pairs, m), sigmas.shape[1])
    exponent = (-0.5 / (sigmas * sigmas))[:, :, None]  # [M, C, 1]: every chunk's at once
    by_row, by_col = sq[:, None, :], sq[:, :, None]
    # with autograd (kernel_alignment of a tensor that requires grad): no shared buffer
    work = None if tracks_grad(exponent) or tracks_grad(sq) else _scratch(2 * m * chunk * p, sq)
    flush = _reaches_slow_exp(sq, exponent)
    sums = []  # per chunk: the sums over the pairs i < j
    for e in exponent.split(chunk, dim=1):
        if work is None:
            k = by_row * e
        else:  # k and k^2 of the chunk written into the scratch buffer
            size = m * e.shape[1] * p
            k = torch.mul(by_row, e, out=work[:size].view(m, e.shape[1], p))
        k = exp_flushed(k) if flush else k.exp_()  # in place on a fresh product or the buffer
        kk = k * k if work is None else torch.mul(k, k, out=work[size : 2 * size].view_as(k))
        parts = [k @ pairs.y, kk.sum(dim=2)]
        if slopes:
            parts.append(torch.bmm(kk, by_col)[:, :, 0])
        sums.append(torch.stack(parts))
    out = sums[0] if len(sums) == 1 else torch.cat(sums, dim=2)
    # Both Grams are symmetric with a known diagonal: <K_s, K_Y> = tr K_Y + 2 sum_{i<j},
    # ||K_s||^2 = N + 2 sum_{i<j}; the slope of the latter is -4 sum_{i<j} k^2 d^2.
    out[:2].mul_(2.0)
    out[0].add_(pairs.y_trace)
    out[1].add_(pairs.n)
    if slopes:
        out[2].mul_(-4.0)
    return out


def _reaches_slow_exp(sq: torch.Tensor, exponent: torch.Tensor) -> bool:
    """Whether some kernel value ``exp(e d^2)`` of these candidates falls below the range of
    CPU's fast ``exp`` (:func:`~infoplane.functional.kernels.exp_range`); on other devices
    True, which costs two element-wise passes and no host synchronisation. The values are the
    same either way."""
    if sq.device.type != "cpu":
        return True
    lowest = exponent.amin(dim=(1, 2)) * sq.amax(dim=1)  # per problem: smallest e, largest d^2
    return float(lowest.min()) < exp_range(sq.dtype)[0]


#: Per thread, a reused CPU buffer for the search's evaluations (at most
#: :data:`_SCRATCH_MAX_ELEMENTS`): a fresh buffer of about a MiB per round would be mapped
#: and faulted in page by page on every call where the C allocator has returned the memory to
#: the system (measured: ~500 page faults per search of the paper MLP's layers).
_SCRATCH = threading.local()
_SCRATCH_MAX_ELEMENTS = 1 << 19


def _scratch(numel: int, like: torch.Tensor) -> torch.Tensor:
    """A flat buffer of at least ``numel`` elements of ``like``'s dtype and device: the thread's
    reused one on CPU when it fits :data:`_SCRATCH_MAX_ELEMENTS`, else a fresh one."""
    if like.device.type != "cpu" or numel > _SCRATCH_MAX_ELEMENTS:
        return torch.empty(numel, dtype=like.dtype, device=like.device)
    buffers = _SCRATCH.__dict__.setdefault("buffers", {})  # per thread: {dtype: buffer}
    if like.dtype not in buffers:
        buffers[like.dtype] = torch.empty(_SCRATCH_MAX_ELEMENTS, dtype=like.dtype)
    return buffers[like.dtype][:numel]


def _chunk(pairs: Pairs, problems: int = 1) -> int:
    """Candidates per problem evaluated at once: about a cache-sized ``[problems, candidates,
    pairs]`` block."""
    limit = _CPU_ALIGN_CHUNK_ELEMENTS if pairs.sq.device.type == "cpu" else _ALIGN_CHUNK_ELEMENTS
    return max(1, limit // max(1, problems * pairs.sq.shape[1]))


def _alignment(pairs: Pairs, values: torch.Tensor) -> torch.Tensor:
    """Alignments from the rows of :func:`_evaluate`."""
    return values[0] / (values[1].sqrt() * pairs.y_norm)


def _alignment_from_sq(
    d2: torch.Tensor, y_gram: torch.Tensor, sigmas: torch.Tensor
) -> torch.Tensor:
    """Kernel alignment ``<K_s, K_Y>_F / (||K_s||_F ||K_Y||_F)`` for every candidate ``s``."""
    pairs = label_pairs(d2, y_gram)
    return _alignment(pairs, _evaluate(pairs, sigmas[None]))[0]


def _margin(pairs: Pairs) -> float:
    """Relative rounding allowance: ``16 (P + 1024) eps`` for ``P`` pairs."""
    return 1.0 + 16.0 * (pairs.sq.shape[1] + 1024) * torch.finfo(pairs.sq.dtype).eps


def _first_best(align: torch.Tensor, margin: float) -> torch.Tensor:
    """Index (per row) of the first candidate within rounding (``margin``) of the row's largest
    alignment."""
    best = align.max(dim=-1, keepdim=True).values
    return (align * margin >= best).to(align.dtype).argmax(dim=-1)


def _full_indices(pairs: Pairs, grids: torch.Tensor) -> torch.Tensor:
    """The full search: every candidate of every problem in one batched pass, no host sync."""
    return _first_best(_alignment(pairs, _evaluate(pairs, grids)), _margin(pairs))


def _search(pairs: Pairs, grid: torch.Tensor) -> torch.Tensor:
    """:func:`search_many` of one problem (0-d)."""
    return search_many(pairs, grid[None])[0]


def search_many(
    pairs: Pairs, grids: torch.Tensor, hints: Sequence[int | None] | None = None
) -> torch.Tensor:
    """Index ``[M]`` of the best candidate of each problem on its non-decreasing grid
    (``grids[m]`` for ``pairs.sq[m]``, ``[M, S]``).

    Ties go to the smallest width, and so do candidates within rounding of the maximum (a
    relative margin of ``16 (P + 1024) eps`` for ``P`` pairs), so that the choice does not
    depend on how the candidates were batched. On CPU the search is bounded
    (:func:`_bounded_indices`) and returns the full search's index after evaluating a fraction
    of each grid, for all problems at once; ``hints`` (an index per problem, e.g. the previous
    step's, or None) are evaluated first and change nothing but the cost. On other devices
    every candidate is evaluated in one batched pass, which needs no host synchronisation (the
    same definition, so the same index).
    """
    pairs, grids = _without_grad(pairs, grids)
    if pairs.sq.device.type != "cpu" or grids.shape[1] < _BOUNDED_MIN_CANDIDATES:
        return _full_indices(pairs, grids)
    if (pairs.y.numpy() < 0).any():  # the bounds need a label Gram without negatives
        return _full_indices(pairs, grids)
    return torch.from_numpy(_bounded_indices(pairs, grids, hints))


def _without_grad(pairs: Pairs, grids: torch.Tensor) -> tuple[Pairs, torch.Tensor]:
    """The search's inputs without their gradient, the one place the search detaches: an index
    is a discrete choice (inputs that require grad, such as activations taken outside
    ``no_grad``, are searched as values), and the bounded search reads them with numpy."""
    if not any(t.requires_grad for t in (pairs.sq, pairs.y, grids)):
        return pairs, grids
    return Pairs(pairs.n, *(t.detach() for t in pairs[1:])), grids.detach()


def _first_round(num: int, hints: Sequence[int | None] | None, m: int) -> np.ndarray:
    """``[M, S]`` mask of the candidates evaluated first: :data:`_BOUNDED_COARSE` evenly spaced
    ones; for a problem with a hint (its previous pick, where the maximum usually is), the
    hint, its neighbours at distances :data:`_HINT_OFFSETS` (dense near the hint, where the
    bounds must be tight, sparse far from it) and :data:`_BOUNDED_COARSE_HINTED` evenly spaced
    ones."""
    first = np.zeros((m, num), dtype=bool)
    hints = list(hints or ()) + [None] * (m - len(hints or ()))
    for row, hint in enumerate(hints):
        hinted = hint is not None and 0 <= hint < num
        coarse = _BOUNDED_COARSE_HINTED if hinted else _BOUNDED_COARSE
        first[row, :: -(-(num - 1) // (coarse - 1))] = True
        if hinted:
            near = np.concatenate([hint - _HINT_OFFSETS, hint + _HINT_OFFSETS])
            first[row, near[(near >= 0) & (near < num)]] = True
    first[:, -1] = True
    return first


def _bounded_indices(
    pairs: Pairs, grids: torch.Tensor, hints: Sequence[int | None] | None = None
) -> np.ndarray:
    """Branch and bound over sorted grids: the full search's indices, fewer evaluations.

    With ``u = 1 / (2 s^2)`` every kernel value ``exp(-u d^2)`` is convex and decreasing in u,
    hence so are ``I(u) = <K_s, K_Y>`` (for a label Gram without negative entries) and
    ``Q(u) = ||K_s||^2``. Between two evaluated candidates ``I`` lies below its chord and ``Q``
    above the tangents at both ends, so every candidate in between has a certified upper bound
    on its alignment (:func:`_upper_bounds`). The search evaluates the candidates of
    :func:`_first_round` of every problem (evenly spaced ones, and each hint with its
    neighbours), then, round after round, the candidates whose
    bound (with the rounding margin) still reaches their problem's best alignment found: all of
    them, or an evenly spread subset of a cache-sized block (at least :data:`_BOUNDED_ROUND`).
    A candidate never evaluated is provably further below the maximum than the margin, so the
    result is the index of :func:`_full_indices`. All problems share each round's evaluation;
    the bookkeeping runs in numpy on the host (this path is CPU only).
    """
    m, num = grids.shape
    margin = _margin(pairs)
    result = np.zeros(m, dtype=np.int64)  # identical samples: every width gives all ones
    live = pairs.sq.numpy().any(axis=1)
    grid_values = grids.numpy()
    u = 0.5 / (grid_values * grid_values)
    values = np.zeros((3, m, num))
    done = np.zeros((m, num), dtype=bool)
    todo = _first_round(num, hints, m) & live[:, None]
    y_norm = float(pairs.y_norm)
    while todo.any():
        rows, cols = _round_layout(todo, max(_BOUNDED_ROUND, _chunk(pairs)))
        picked = np.take_along_axis(grid_values[rows], cols, axis=1)
        every = rows.size == m  # rows are sorted and distinct: all problems, no copy
        got = _evaluate(
            pairs, torch.from_numpy(picked), None if every else torch.from_numpy(rows), slopes=True
        )
        values[:, rows[:, None], cols] = got.numpy()
        done[rows[:, None], cols] = True
        align = np.full((m, num), -np.inf)
        align[done] = values[0][done] / (np.sqrt(values[1][done]) * y_norm)
        best = align.max(axis=1)
        lost = live & ~np.isfinite(best)
        if lost.any():  # cannot happen for finite distances; the full search decides
            result[lost] = _full_indices(pairs, grids)[torch.from_numpy(lost)].numpy()
            live &= ~lost
        bound = _upper_bounds(values, done, u, pairs.n) / y_norm
        todo = live[:, None] & ~done & (bound * margin >= (best / margin)[:, None])
        finished = live & ~todo.any(axis=1)
        result[finished] = np.argmax(align[finished] * margin >= best[finished, None], axis=1)
        live &= ~finished
    return result


def _round_layout(todo: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """The problems with candidates to evaluate (``rows``) and their candidates ``[R, C]``:
    all of them, or an evenly spread subset of ``cap``; rows with fewer repeat their last."""
    rows = np.flatnonzero(todo.any(axis=1))
    picks = []
    for row in rows:
        keep = np.flatnonzero(todo[row])
        if keep.size > cap:
            keep = keep[np.linspace(0, keep.size - 1, cap).round().astype(np.int64)]
        picks.append(keep)
    width = max(p.size for p in picks)
    cols = np.empty((rows.size, width), dtype=np.int64)
    for i, p in enumerate(picks):
        cols[i, : p.size] = p
        cols[i, p.size :] = p[-1]
    return rows, cols


def _upper_bounds(values: np.ndarray, done: np.ndarray, u: np.ndarray, n: int) -> np.ndarray:
    """Upper bound ``[M, S]`` of ``I / sqrt(Q)`` of every candidate of every problem from its
    nearest evaluated neighbours.

    ``values`` (``[3, M, S]``) holds ``I``, ``Q`` and ``dQ/du`` of the evaluated candidates
    (``done``, the first and the last of each row among them); entries of candidates not
    evaluated are meaningless.
    """
    m, num = u.shape
    at = np.arange(num)
    left = np.maximum.accumulate(np.where(done, at, 0), axis=1)
    right = np.minimum.accumulate(np.where(done, at, num - 1)[:, ::-1], axis=1)[:, ::-1]
    row = np.arange(m)[:, None]
    (i_l, q_l, s_l), (i_r, q_r, s_r) = values[:, row, left], values[:, row, right]
    u_l, u_r = u[row, left], u[row, right]
    span = u_l - u_r  # u_l >= u >= u_r: u falls as the width grows
    t = np.divide(u_l - u, span, out=np.zeros_like(u), where=span > 0)
    chord = i_l + (i_r - i_l) * t
    tangent = np.maximum(q_l + s_l * (u - u_l), q_r + s_r * (u - u_r))
    return chord / np.sqrt(np.maximum(tangent, n))


# ----------------------------------------------------------------------------- public functions
def median_distance(x: Any) -> torch.Tensor:
    """Median pairwise Frobenius distance of the samples ``x`` ``[N, ...]``.

    Example:
        Four points on a line, 2*sqrt(2) apart: the six distances' median is 3 steps.

        >>> import torch
        >>> from infoplane.widths import median_distance
        >>> round(float(median_distance(torch.arange(8.0).reshape(4, 2))), 4)
        4.2426
    """
    return median_from_sq(squared_distances_of_rows(flatten_samples(x, "median_distance")))


def knn_distance(x: Any, k: int = 10) -> torch.Tensor:
    """Mean over samples of the distance to the k-th nearest other sample.

    Args:
        x: samples ``[N, ...]``.
        k: neighbour rank, ``1 <= k <= N - 1`` (duplicates count as neighbours at distance 0).
    """
    who = "knn_distance"
    x2d = flatten_samples(x, who)
    n = x2d.shape[0]
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= n - 1:
        raise InvalidParameterError(
            f"{who}: expected k as an integer in [1, N - 1] = [1, {n - 1}], got {k!r}."
        )
    return knn_from_sq(squared_distances_of_rows(x2d), int(k))


def silverman(x: Any) -> torch.Tensor:
    """Silverman's rule ``s (4 / ((D + 2) N))^(1 / (D + 4))`` with the pooled feature std ``s``."""
    x2d = flatten_samples(x, "silverman")
    return silverman_from_sq(squared_distances_of_rows(x2d), x2d.shape[1])


def scott(x: Any) -> torch.Tensor:
    """Scott's rule ``s N^(-1 / (D + 4))`` with the pooled per-feature standard deviation ``s``."""
    x2d = flatten_samples(x, "scott")
    return scott_from_sq(squared_distances_of_rows(x2d), x2d.shape[1])


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

    Example:
        >>> import torch
        >>> from infoplane import label_gram
        >>> from infoplane.widths import kernel_alignment
        >>> x = torch.arange(8.0).reshape(4, 2)
        >>> aligned = kernel_alignment(x, label_gram(torch.tensor([0, 0, 1, 1])), [1.0, 10.0])
        >>> [round(a, 4) for a in aligned.tolist()]
        [0.7199, 0.757]
    """
    who = "kernel_alignment"
    x2d = _x_and_y_gram(x, y_gram, who)
    yg = _check_y_gram(y_gram, x2d.shape[0], who)
    s = _check_sigmas(sigmas, x2d.device, who)
    return _alignment_from_sq(squared_distances_of_rows(x2d), yg, s)


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
    return flatten_samples(xt, who)


def alignment_sigma(
    x: Any,
    y_gram: Any,
    *,
    num_candidates: int = 100,
    low: float = 0.3,
    high: float = 10.0,
) -> torch.Tensor:
    """The paper's width rule on a relative grid: the candidate that maximizes the alignment.

    The grid is ``linspace(low, high, num_candidates) * mean_pairwise_distance / sqrt(2)``
    (see :func:`candidate_grid`; for the authors' grid, exactly, use :func:`authors_grid` with
    :func:`best_width`); ties go to the smallest width.

    Example:
        >>> import torch
        >>> from infoplane import label_gram
        >>> from infoplane.widths import alignment_sigma
        >>> x = torch.arange(8.0).reshape(4, 2)
        >>> round(float(alignment_sigma(x, label_gram(torch.tensor([0, 0, 1, 1])))), 4)
        2.633
    """
    who = "alignment_sigma"
    x2d = _x_and_y_gram(x, y_gram, who)
    yg = _check_y_gram(y_gram, x2d.shape[0], who)
    num = check_integer(num_candidates, "num_candidates", who)
    low, high = check_range(low, high, who)
    pairs = label_pairs(squared_distances_of_rows(x2d), yg)
    grid = relative_grid(pairs.sq.sqrt().mean(), num, low, high)
    return grid.take(_search(pairs, grid))


def best_width(sq_dists: Any, y_gram: Any, sigmas: Any) -> torch.Tensor:
    """The candidate width of largest kernel alignment with ``y_gram`` (the search of the
    label-alignment rules).

    Args:
        sq_dists: ``[N, N]`` squared pairwise distances (see :func:`~infoplane.squared_distances`).
        y_gram: ``[N, N]`` target Gram (usually :func:`~infoplane.label_gram`).
        sigmas: ``[S]`` positive candidate widths, in any order (e.g. :func:`candidate_grid` or
            :func:`authors_grid`).

    Returns:
        The best candidate as a 0-d tensor. Ties go to the smallest width, and so do candidates
        within rounding of the maximum (a relative ``16 (P + 1024) eps`` for ``P`` pairs). On
        CPU a bounded search evaluates a fraction of the candidates and returns the same one.
    """
    who = "best_width"
    d2 = _check_sq_dists(sq_dists, who)
    yt = as_tensor(y_gram, "y_gram", who)
    check_same_device([d2, yt], ["sq_dists", "y_gram"], who)
    yg = _check_y_gram(yt, d2.shape[0], who)
    s = _check_sigmas(sigmas, d2.device, who).to(d2.dtype).sort(stable=True).values
    return s.take(_search(label_pairs(d2, yg), s))


__all__ = [
    "AUTHORS_HIGH",
    "AUTHORS_LOW",
    "alignment_sigma",
    "authors_grid",
    "best_width",
    "candidate_grid",
    "kernel_alignment",
    "knn_distance",
    "median_distance",
    "scott",
    "silverman",
]
