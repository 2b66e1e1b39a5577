"""Matrix-based Rényi alpha-entropy and the measures built on it (all in bits).

For a normalized Gram ``A`` (symmetric PSD, trace one, eigenvalues ``lambda_i``):

* ``S_alpha(A) = log2(sum_i lambda_i^alpha) / (1 - alpha)`` for ``alpha > 0, alpha != 1``
  (Sanchez Giraldo, Rao & Príncipe, IEEE Trans. Inf. Theory 61(1), 2015);
* ``alpha -> 1``: the von Neumann entropy ``-sum_i lambda_i log2 lambda_i``;
* ``alpha = 2``: ``-log2 ||A||_F^2``, exact without an eigendecomposition;
* joint entropy ``S_alpha(A_1, ..., A_L) = S_alpha(A_1 o ... o A_L / tr(A_1 o ... o A_L))``
  (Hadamard products), conditional entropy, mutual information and total correlation from it
  (Yu et al., IEEE TPAMI 2019).

Every function accepts normalized or unnormalized Grams (they are normalized first), computes in
float64, and works on the device of its input.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from infoplane.errors import InvalidInputError, InvalidParameterError
from infoplane.functional._validation import (
    as_tensor,
    check_alpha,
    check_gram,
    check_same_device,
    check_same_size,
)
from infoplane.functional.kernels import _normalize, _unit_diagonal

_LN2 = math.log(2.0)
_METHODS = ("exact", "approx", "auto")


def _entropy_from_eigenvalues(lam: torch.Tensor, alpha: float) -> torch.Tensor:
    """Rényi entropy in bits from eigenvalues ``[..., N]`` of trace-one matrices.

    Negative round-off eigenvalues are clamped to zero (not mirrored). Eigenvalues at or below
    ``N * eps * lambda_max`` (the numerical-rank tolerance of ``numpy.linalg.matrix_rank``) count
    as zero: a symmetric eigensolver does not resolve them, and for ``alpha < 1`` their round-off
    would otherwise add ``N * (N eps)^alpha`` (about 1e-7 bits at alpha = 0.5, N = 100) to an
    entropy that is exactly 0, e.g. a single class. The alpha != 1 branch is written as
    ``log1p(sum_i lambda_i expm1((alpha - 1) ln lambda_i)) / ((1 - alpha) ln 2)``, which stays
    accurate as alpha approaches 1, where the textbook form cancels catastrophically; an
    eigenvalue counted as zero contributes ``-lambda_i`` there, so the sum stays consistent with
    the trace.
    """
    lam = lam.clamp(min=0.0)
    tol = lam.amax(dim=-1, keepdim=True) * (lam.shape[-1] * torch.finfo(lam.dtype).eps)
    kept = lam > tol
    log_lam = torch.where(kept, lam, torch.ones_like(lam)).log()
    if alpha == 1.0:
        return -(torch.where(kept, lam, torch.zeros_like(lam)) * log_lam).sum(dim=-1) / _LN2
    terms = torch.where(kept, lam * torch.expm1((alpha - 1.0) * log_lam), -lam)
    return torch.log1p(terms.sum(dim=-1)) / ((1.0 - alpha) * _LN2)


def _entropy_of_normalized(a: torch.Tensor, alpha: float) -> torch.Tensor:
    """Entropy of validated, normalized ``[..., N, N]`` matrices (exact path)."""
    if alpha == 2.0:
        return -torch.log2((a * a).sum(dim=(-2, -1)))
    return _entropy_from_eigenvalues(torch.linalg.eigvalsh(a), alpha)


def _check_method(method: str, who: str) -> str:
    if method not in _METHODS:
        raise InvalidParameterError(f"{who}: expected method in {_METHODS}, got {method!r}.")
    return method


def _entropy_dispatch(a: torch.Tensor, alpha: float, method: str, **approx_options: Any):
    """Route normalized matrices to the exact or the randomized estimator."""
    if method == "exact" or alpha == 2.0:
        return _entropy_of_normalized(a, alpha)
    from infoplane.functional import approx  # optional path, imported lazily

    n = a.shape[-1]
    if method == "auto":
        if n <= approx.AUTO_EXACT_MAX_N:
            return _entropy_of_normalized(a, alpha)
        warnings.warn(
            f"method='auto' used the randomized estimate for N = {n} > AUTO_EXACT_MAX_N = "
            f"{approx.AUTO_EXACT_MAX_N} (about 0.1-0.2% error); pass method='exact' for "
            "eigenvalues.",
            approx.ApproximationWarning,
            stacklevel=3,
        )
    flat = a.reshape(-1, n, n)
    values = [approx.approx_renyi_entropy(m, alpha, **approx_options) for m in flat]
    return torch.stack(values).reshape(a.shape[:-2])


def _prepare(grams: tuple[Any, ...], who: str) -> list[torch.Tensor]:
    if len(grams) == 0:
        raise InvalidInputError(f"{who}: expected at least one Gram matrix, got none.")
    names = [f"gram {i + 1}" for i in range(len(grams))]
    # Devices first: the value checks below would fail on a tensor that holds no data ('meta').
    tensors = [as_tensor(g, name, who) for g, name in zip(grams, names, strict=True)]
    check_same_device(tensors, names, who)
    checked = [check_gram(g, who, name) for g, name in zip(tensors, names, strict=True)]
    check_same_size(checked, who)
    return checked


def _hadamard_normalized(grams: list[torch.Tensor]) -> torch.Tensor:
    """``A_1 o ... o A_L / tr(...)`` of validated Grams, via unit-diagonal factors."""
    prod = _unit_diagonal(grams[0])
    for g in grams[1:]:
        prod = prod * _unit_diagonal(g)
    return _normalize(prod)


def renyi_entropy(gram: Any, alpha: float = 1.01, *, method: str = "exact") -> torch.Tensor:
    """Matrix-based Rényi alpha-entropy of a Gram matrix, in bits.

    Args:
        gram: ``[..., N, N]`` Gram matrix or batch of them, normalized or not (it is normalized
            to ``A = K_ij / (N sqrt(K_ii K_jj))`` first).
        alpha: Rényi order, > 0. ``alpha == 1`` gives the von Neumann limit; ``alpha == 2`` uses
            the exact Frobenius form without eigenvalues. The default 1.01 is the paper's.
        method: ``"exact"`` (eigenvalues), ``"approx"`` (randomized estimate, see
            :mod:`infoplane.functional.approx`) or ``"auto"`` (exact below the size where the
            approximation wins).

    Returns:
        Tensor of shape ``[...]`` (0-d for one matrix), float64, in ``[0, log2 N]``.
    """
    who = "renyi_entropy"
    alpha = check_alpha(alpha, who)
    method = _check_method(method, who)
    return _entropy_dispatch(_normalize(check_gram(gram, who)), alpha, method)


def joint_entropy(*grams: Any, alpha: float = 1.01, method: str = "exact") -> torch.Tensor:
    """Joint entropy ``S_alpha(A_1, ..., A_L)`` of the Hadamard product of Grams, in bits.

    Args:
        *grams: one or more ``[..., N, N]`` Grams on the same N samples and device.
        alpha: Rényi order, > 0.
        method: ``"exact"``, ``"approx"`` or ``"auto"`` (see :func:`renyi_entropy`).

    Returns:
        Tensor ``[...]`` in bits.
    """
    who = "joint_entropy"
    alpha = check_alpha(alpha, who)
    method = _check_method(method, who)
    return _entropy_dispatch(_hadamard_normalized(_prepare(grams, who)), alpha, method)


def _entropies(grams: list[torch.Tensor], alpha: float, method: str) -> torch.Tensor:
    """Marginal entropies of each Gram and their joint entropy, stacked ``[L + 1, ...]``.

    All eigenvalue problems go to one batched call (batch dimensions broadcast).
    """
    mats = [_normalize(g) for g in grams]
    mats.append(_hadamard_normalized(grams))
    return _entropy_dispatch(torch.stack(torch.broadcast_tensors(*mats)), alpha, method)


def conditional_entropy(
    a: Any, b: Any, *, alpha: float = 1.01, method: str = "exact"
) -> torch.Tensor:
    """Conditional entropy ``S_alpha(A | B) = S_alpha(A, B) - S_alpha(B)``, in bits."""
    who = "conditional_entropy"
    alpha = check_alpha(alpha, who)
    method = _check_method(method, who)
    g = _prepare((a, b), who)
    s = _entropies(g, alpha, method)
    return s[2] - s[1]


def mutual_information(
    a: Any, b: Any, *, alpha: float = 1.01, method: str = "exact"
) -> torch.Tensor:
    """Mutual information ``I_alpha(A; B) = S(A) + S(B) - S(A, B)``, in bits.

    For unit-diagonal kernels (every Gaussian or indicator kernel) ``I <= min(S(A), S(B))`` for
    every alpha, and ``I >= 0`` at alpha = 1. For alpha != 1 the Rényi entropy is not subadditive
    and I can be slightly negative (indicator kernels of x = (0, 0, 0, 1), y = (0, 0, 1, 0) give
    ``I_2 = log2(0.96)``); the value is returned as computed, not clipped.
    Note ``I(T; T) != S(T)`` for Gaussian kernels (``A o A`` is the kernel of width
    ``sigma / sqrt(2)``); for the label indicator kernel ``I(Y; Y) = S(Y)``.
    """
    who = "mutual_information"
    alpha = check_alpha(alpha, who)
    method = _check_method(method, who)
    g = _prepare((a, b), who)
    s = _entropies(g, alpha, method)
    return s[0] + s[1] - s[2]


def total_correlation(*grams: Any, alpha: float = 1.01, method: str = "exact") -> torch.Tensor:
    """Total correlation ``sum_l S_alpha(A_l) - S_alpha(A_1, ..., A_L)``, in bits."""
    who = "total_correlation"
    alpha = check_alpha(alpha, who)
    method = _check_method(method, who)
    g = _prepare(grams, who)
    s = _entropies(g, alpha, method)
    return s[:-1].sum(dim=0) - s[-1]
