"""The Rényi alpha-entropy of a spectrum: the one home of the formula (bits).

:func:`entropy_from_eigenvalues` turns eigenvalues into ``S_alpha`` in the log domain (every
order exact to float64 precision, ``0 log 0 = 0``, negative round-off clamped);
:func:`entropy_of_normalized` is the exact path for normalized Grams (``eigvalsh``, or
``-log2 ||A||_F^2`` at ``alpha = 2``) with an optional PSD check. The public measures
(:mod:`infoplane.functional.entropy`), the randomized estimate
(:mod:`infoplane.functional.approx`) and the batched step (:mod:`infoplane.functional.measures`)
all build on these two; inputs here are trusted.
"""

from __future__ import annotations

import math

import torch

from infoplane.errors import InvalidInputError

_LN2 = math.log(2.0)
_SQRT_EPS64 = math.sqrt(torch.finfo(torch.float64).eps)


def entropy_from_eigenvalues(
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


def entropy_of_normalized(
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
    return entropy_from_eigenvalues(lam, alpha)


__all__ = ["entropy_from_eigenvalues", "entropy_of_normalized"]
