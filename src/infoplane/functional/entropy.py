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

import numpy as np
import torch

from infoplane.errors import InvalidInputError, InvalidParameterError
from infoplane.functional._validation import (
    as_tensor,
    check_alpha,
    check_batch_shapes,
    check_gram,
    check_same_device,
    check_same_size,
    gram_eps,
)
from infoplane.functional.kernels import _normalize, _unit_diagonal

_LN2 = math.log(2.0)
_SQRT_EPS64 = math.sqrt(torch.finfo(torch.float64).eps)
_METHODS = ("exact", "approx", "auto")


def _entropy_from_eigenvalues(
    lam: torch.Tensor, alpha: float, size: float | torch.Tensor | None = None
) -> torch.Tensor:
    """Rényi entropy in bits from eigenvalues ``[..., N]`` of trace-one matrices (every order).

    The one home of the entropy of a spectrum: the public functions, the tracker's batched
    maths (:mod:`infoplane.functional.measures`) and the fallback of the randomized estimator
    call it. Negative round-off eigenvalues are clamped to zero (not mirrored). Eigenvalues at or
    below ``N * eps * lambda_max`` (the numerical-rank tolerance of ``numpy.linalg.matrix_rank``)
    count as zero: a symmetric eigensolver does not resolve them, and for ``alpha < 1`` their
    round-off would otherwise add ``N * (N eps)^alpha`` to an entropy that is exactly 0.

    For ``alpha != 1`` the kept eigenvalues are taken as the distribution
    ``mu_i = lambda_i / sum_kept lambda`` (so a dropped tail or the round-off of the trace is not
    amplified by ``1 / (alpha - 1)`` near 1), and every order is evaluated in the log domain
    without cancellation. With ``x = sum_i mu_i expm1((alpha - 1) (ln mu_i - c))``,
    ``c = ln mu_max`` for ``alpha > 1`` and ``c = 0`` for ``alpha < 1``
    (``1 + x = sum_i mu_i^alpha / e^((alpha - 1) c)``):

    * ``alpha < 1``: ``S = log1p(x) / ((1 - alpha) ln 2)``, every term of ``x`` positive;
    * ``alpha > 1``: ``S = -(ln mu_max + log1p(x) / (alpha - 1)) / ln 2``, two non-negative
      parts; ``1 + x >= mu_max`` keeps ``log1p`` well conditioned at every large order, which
      tends to the min-entropy;
    * ``alpha == 1``: the von Neumann entropy ``-sum_i lambda_i log2 lambda_i``; both forms
      above tend to it smoothly (``x / (alpha - 1)`` keeps its relative precision);
    * ``alpha == inf``: the min-entropy ``-log2 mu_max``.

    ``size`` is the N of that tolerance: ``lam.shape[-1]`` by default, or per row (a tensor
    broadcastable to ``[..., 1]``) for spectra zero-padded to one length.

    Differentiable (``torch.linalg.eigvalsh`` has a gradient for every symmetric spectral
    function); eigenvalues counted as zero get a zero gradient.
    """
    lam = lam.clamp(min=0.0)
    lam_max = lam.amax(dim=-1, keepdim=True)
    size = lam.shape[-1] if size is None else size
    kept = lam > lam_max * (size * torch.finfo(lam.dtype).eps)
    lam = torch.where(kept, lam, torch.zeros_like(lam))
    log_lam = torch.where(kept, lam, torch.ones_like(lam)).log()
    if alpha == 1.0:
        return -(lam * log_lam).sum(dim=-1) / _LN2
    total = lam.sum(dim=-1)
    log_total = total.log()
    log_max = lam_max.squeeze(-1).log() - log_total
    if math.isinf(alpha):
        return -log_max / _LN2
    shift = lam_max.log() if alpha > 1.0 else log_total[..., None]
    # zero where not kept: no inf * 0 at large orders, and a finite gradient
    shifted = torch.where(kept, log_lam - shift, torch.zeros_like(lam))
    terms = lam * torch.expm1((alpha - 1.0) * shifted)
    log_ratio = torch.log1p(terms.sum(dim=-1) / total)
    if alpha > 1.0:
        return -(log_max + log_ratio / (alpha - 1.0)) / _LN2
    return log_ratio / ((1.0 - alpha) * _LN2)


def _psd_tolerance(n: int, eps: float) -> float:
    """Relative PSD tolerance: ``max(N eps, sqrt(eps64))`` (see :func:`_check_psd`)."""
    return max(n * eps, _SQRT_EPS64)


def _check_psd(lam: torch.Tensor, eps: float, who: str) -> None:
    """Raise unless eigenvalues ``[..., N]`` of trace-one matrices are PSD up to round-off.

    Tolerance: ``lambda_min >= -max(N eps, sqrt(eps64)) lambda_max``, ``eps`` the machine
    epsilon of the caller's Gram (float64's at least). ``N eps lambda_max`` bounds the effect of
    rounding every entry (``|A_ij| <= 1 / N`` moves no eigenvalue by more than ``eps``, and
    ``lambda_max >= 1 / N``) and the eigensolver's error. The floor ``sqrt(eps64)`` (1.5e-8)
    admits Gaussian Grams of near-duplicate samples at a small width, whose distances carry
    round-off of order ``eps ||x||^2 / sigma^2`` per entry (measured: up to ``-2e3 N eps``);
    an indefinite matrix such as ``[[1, 2], [2, 1]]`` (``-1/3``) is far beyond it.
    """
    lam_min = lam.amin(dim=-1)
    ratio = lam_min / lam.amax(dim=-1)
    worst = float(ratio.min())
    tol = _psd_tolerance(lam.shape[-1], eps)
    if worst < -tol:
        raise InvalidInputError(
            f"{who}: expected a positive semi-definite Gram, got a normalized eigenvalue "
            f"{float(lam_min.min()):.3g} ({worst:.3g} of the largest; round-off allows "
            f"{tol:.2g}). Build it with a positive-definite kernel (gaussian_gram, label_gram)."
        )


def _check_psd_by_cholesky(a: torch.Tensor, frob2: torch.Tensor, eps: float, who: str) -> None:
    """The check of :func:`_check_psd` without eigenvalues where a Cholesky factor shows it.

    ``A + tol ||A||_F^2 I`` has a Cholesky factor only if ``lambda_min > -tol ||A||_F^2``, and
    ``||A||_F^2 <= lambda_max`` for trace one, so success proves the check passes. Where the
    factorization fails (an indefinite or a rank-deficient matrix), the eigenvalues decide.
    """
    n = a.shape[-1]
    shift = _psd_tolerance(n, eps) * frob2[..., None]
    eye = torch.eye(n, dtype=a.dtype, device=a.device)
    _, info = torch.linalg.cholesky_ex(a.detach() + shift[..., None] * eye)
    if bool((info != 0).any()):
        _check_psd(torch.linalg.eigvalsh(a.detach()), eps, who)


def _entropy_of_normalized(
    a: torch.Tensor,
    alpha: float,
    psd_eps: float | None = None,
    who: str = "",
    *,
    blocks: bool = False,
) -> torch.Tensor:
    """Entropy of normalized ``[..., N, N]`` matrices (exact path).

    ``blocks=True``: the last three dims ``[..., K, n, n]`` are the diagonal blocks of one
    block-diagonal matrix (zero padding adds zero eigenvalues, which add nothing); only trusted
    callers use it. ``psd_eps`` (the machine epsilon of the caller's Gram) turns on the PSD
    check of :func:`_check_psd`, raised on behalf of ``who``;
    trusted callers (Grams built by the library) leave it off and add no host synchronisation.
    At ``alpha == 2`` the entropy is ``-log2 ||A||_F^2`` without eigenvalues, and the check
    tries a Cholesky factor first (:func:`_check_psd_by_cholesky`).
    """
    dims = (-3, -2, -1) if blocks else (-2, -1)
    if alpha == 2.0:
        frob2 = (a * a).sum(dim=dims)
        if psd_eps is not None:
            _check_psd_by_cholesky(a, frob2.detach(), psd_eps, who)
        return -torch.log2(frob2)
    lam = torch.linalg.eigvalsh(a)
    if blocks:
        lam = lam.flatten(-2)
    if psd_eps is not None:
        _check_psd(lam.detach(), psd_eps, who)
    return _entropy_from_eigenvalues(lam, alpha)


def _check_method(method: str, who: str) -> str:
    if method not in _METHODS:
        raise InvalidParameterError(f"{who}: expected method in {_METHODS}, got {method!r}.")
    return method


def _entropy_dispatch(
    a: torch.Tensor, alpha: float, method: str, psd_eps: float, who: str
) -> torch.Tensor:
    """Route validated Grams ``[..., N, N]`` to the exact or the randomized estimator.

    The exact path normalizes them; the randomized estimator applies the normalization inside
    its products and never forms the normalized N x N copy (an allocation and a pass, about a
    fifth of its time at N = 4000). ``method="auto"`` is exact up to ``AUTO_EXACT_MAX_N`` and
    for the order the randomized estimator does not support (``alpha = inf``);
    ``method="approx"`` rejects that order.
    """
    n = a.shape[-1]
    if method == "exact" or alpha == 2.0:
        return _entropy_of_normalized(_normalize(a), alpha, psd_eps, who)
    from infoplane.functional import approx  # optional path, imported lazily

    if method == "auto":
        if n <= approx.AUTO_EXACT_MAX_N or math.isinf(alpha):
            return _entropy_of_normalized(_normalize(a), alpha, psd_eps, who)
        warnings.warn(
            f"method='auto' used the randomized estimate for N = {n} > AUTO_EXACT_MAX_N = "
            f"{approx.AUTO_EXACT_MAX_N} (about 0.1-0.2% error); pass method='exact' for "
            "eigenvalues.",
            approx.ApproximationWarning,
            stacklevel=3,
        )
    approx.check_approx_alpha(alpha, who)
    flat = a.reshape(-1, n, n)
    values = [approx._normalized_gram_entropy(m, alpha) for m in flat]
    return torch.stack(values).reshape(a.shape[:-2])


def _prepare(grams: tuple[Any, ...], who: str) -> tuple[list[torch.Tensor], float]:
    """Validated float64 Grams and the machine epsilon of the coarsest one (for the PSD check)."""
    if len(grams) == 0:
        raise InvalidInputError(f"{who}: expected at least one Gram matrix, got none.")
    one = grams[0]
    if len(grams) == 1 and isinstance(one, (list, tuple)) and one:
        if all(isinstance(g, (torch.Tensor, np.ndarray)) for g in one):
            raise InvalidInputError(
                f"{who}: expected the Grams as separate arguments, {who}(k1, k2, ...), got one "
                f"{type(one).__name__} of {len(one)}. Unpack it: {who}(*grams)."
            )
    names = [f"gram {i + 1}" for i in range(len(grams))] if len(grams) > 1 else ["gram"]
    # Devices first: the value checks below would fail on a tensor that holds no data ('meta').
    tensors = [as_tensor(g, name, who) for g, name in zip(grams, names, strict=True)]
    check_same_device(tensors, names, who)
    checked = [check_gram(g, who, name) for g, name in zip(tensors, names, strict=True)]
    check_same_size(checked, who)
    check_batch_shapes(checked, who)
    return checked, max(gram_eps(t) for t in tensors)


def _hadamard(grams: list[torch.Tensor]) -> torch.Tensor:
    """``A_1 o ... o A_L`` of validated Grams up to its trace, as a product of unit-diagonal
    factors (entries in [-1, 1]: no underflow of the product; its diagonal is one)."""
    prod = _unit_diagonal(grams[0])
    for g in grams[1:]:
        prod = prod * _unit_diagonal(g)
    return prod


def renyi_entropy(gram: Any, alpha: float = 1.01, *, method: str = "exact") -> torch.Tensor:
    """Matrix-based Rényi alpha-entropy of a Gram matrix, in bits.

    Exact to float64 precision at every order (evaluated in the log domain; see
    :func:`_entropy_from_eigenvalues`), continuous through ``alpha = 1``.

    Args:
        gram: ``[..., N, N]`` Gram matrix or batch of them, normalized or not (it is normalized
            to ``A = K_ij / (N sqrt(K_ii K_jj))`` first). It must be positive semi-definite up
            to round-off: a normalized eigenvalue below ``-max(N eps, sqrt(eps64)) lambda_max``
            (``eps`` of the Gram's dtype) raises :class:`~infoplane.errors.InvalidInputError`.
        alpha: Rényi order, > 0. ``alpha == 1`` gives the von Neumann limit; ``alpha == 2`` uses
            the exact Frobenius form without eigenvalues; ``alpha = float("inf")`` gives the
            min-entropy ``-log2 lambda_max``, the limit of large orders. The default 1.01 is
            the value in the paper's text; the authors' code, and infoplane's paper presets,
            use alpha = 1 (von Neumann).
        method: ``"exact"`` (eigenvalues), ``"approx"`` (randomized estimate, see
            :mod:`infoplane.functional.approx`; finite orders only) or ``"auto"`` (exact below
            the size where the approximation wins, and for ``alpha = inf`` at every size).

    Returns:
        Tensor of shape ``[...]`` (0-d for one matrix), float64, in ``[0, log2 N]``.

    Gradients: every function of this module is differentiable (for information-bottleneck
    style losses; checked with ``torch.autograd.gradcheck``). The entropy is a symmetric
    function of the spectrum, so its gradient ``V diag(f'(lambda)) V^T`` is defined also where
    eigenvalues repeat. It is not defined where an eigenvalue reaches zero for ``alpha <= 1``
    (``d(lambda log lambda)/d lambda`` and ``alpha lambda^(alpha - 1)`` diverge there): such
    eigenvalues (at or below ``N eps lambda_max``) count as zero and get a zero gradient. At
    ``alpha = inf`` it is that of ``lambda_max``, undefined where the largest eigenvalue repeats.
    The randomized path is not meant for gradients.
    """
    who = "renyi_entropy"
    alpha = check_alpha(alpha, who, allow_inf=True)
    method = _check_method(method, who)
    (g,), eps = _prepare((gram,), who)
    return _entropy_dispatch(g, alpha, method, eps, who)


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
    alpha = check_alpha(alpha, who, allow_inf=True)
    method = _check_method(method, who)
    g, eps = _prepare(grams, who)
    return _entropy_dispatch(_hadamard(g), alpha, method, eps, who)


def _entropies(grams: tuple[Any, ...], alpha: Any, method: str, who: str) -> torch.Tensor:
    """Marginal entropies of each Gram and their joint entropy, stacked ``[L + 1, ...]``.

    Validates every argument; all eigenvalue problems go to one batched call (batch dimensions
    broadcast).
    """
    alpha = check_alpha(alpha, who, allow_inf=True)
    method = _check_method(method, who)
    checked, eps = _prepare(grams, who)
    grams = torch.stack(torch.broadcast_tensors(*checked, _hadamard(checked)))
    return _entropy_dispatch(grams, alpha, method, eps, who)


def conditional_entropy(
    a: Any, b: Any, *, alpha: float = 1.01, method: str = "exact"
) -> torch.Tensor:
    """Conditional entropy ``S_alpha(A | B) = S_alpha(A, B) - S_alpha(B)``, in bits."""
    s = _entropies((a, b), alpha, method, "conditional_entropy")
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
    s = _entropies((a, b), alpha, method, "mutual_information")
    return s[0] + s[1] - s[2]


def total_correlation(*grams: Any, alpha: float = 1.01, method: str = "exact") -> torch.Tensor:
    """Total correlation ``sum_l S_alpha(A_l) - S_alpha(A_1, ..., A_L)``, in bits."""
    s = _entropies(grams, alpha, method, "total_correlation")
    return s[:-1].sum(dim=0) - s[-1]
