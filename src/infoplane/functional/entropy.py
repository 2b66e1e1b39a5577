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

from infoplane._validation import (
    as_tensor,
    check_alpha,
    check_batch_shapes,
    check_gram,
    check_same_device,
    check_same_size,
    gram_eps,
)
from infoplane.errors import InvalidInputError, InvalidParameterError
from infoplane.functional import approx
from infoplane.functional.kernels import trace_normalized, unit_diagonal
from infoplane.functional.spectrum import entropy_of_normalized

_LN2 = math.log(2.0)
_SQRT_EPS64 = math.sqrt(torch.finfo(torch.float64).eps)
_METHODS = ("exact", "approx", "auto")


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
        return entropy_of_normalized(trace_normalized(a), alpha, psd_eps, who)

    if method == "auto":
        if n <= approx.AUTO_EXACT_MAX_N or math.isinf(alpha):
            return entropy_of_normalized(trace_normalized(a), alpha, psd_eps, who)
        warnings.warn(
            f"method='auto' used the randomized estimate for N = {n} > AUTO_EXACT_MAX_N = "
            f"{approx.AUTO_EXACT_MAX_N} (about 0.1-0.2% error); pass method='exact' for "
            "eigenvalues.",
            approx.ApproximationWarning,
            stacklevel=3,
        )
    approx.check_approx_alpha(alpha, who)
    flat = a.reshape(-1, n, n)
    values = [approx.normalized_gram_entropy(m, alpha) for m in flat]
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
    prod = unit_diagonal(grams[0])
    for g in grams[1:]:
        prod = prod * unit_diagonal(g)
    return prod


def renyi_entropy(gram: Any, alpha: float = 1.01, *, method: str = "exact") -> torch.Tensor:
    """Matrix-based Rényi alpha-entropy of a Gram matrix, in bits.

    Exact to float64 precision at every order (evaluated in the log domain; see
    :func:`entropy_from_eigenvalues`), continuous through ``alpha = 1``.

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

    Example:
        >>> import torch
        >>> from infoplane import label_gram, renyi_entropy
        >>> round(float(renyi_entropy(torch.eye(4))), 4)  # 4 samples, none alike: log2 4
        2.0
        >>> k_y = label_gram(torch.tensor([0, 0, 0, 1]))  # class frequencies 3/4, 1/4
        >>> round(float(renyi_entropy(k_y, alpha=1)), 4)  # plug-in Shannon entropy
        0.8113
        >>> round(float(renyi_entropy(k_y, alpha=2)), 4)  # -log2(9/16 + 1/16)
        0.6781
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

    Example:
        >>> import torch
        >>> from infoplane import joint_entropy, label_gram
        >>> k_a = label_gram(torch.tensor([0, 0, 1, 1]))
        >>> k_b = label_gram(torch.tensor([0, 1, 0, 1]))
        >>> round(float(joint_entropy(k_a, k_b, alpha=1)), 4)  # four distinct pairs
        2.0
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
    """Conditional entropy ``S_alpha(A | B) = S_alpha(A, B) - S_alpha(B)``, in bits.

    Example:
        >>> import torch
        >>> from infoplane import conditional_entropy, label_gram
        >>> k_a = label_gram(torch.tensor([0, 0, 1, 1]))
        >>> k_b = label_gram(torch.tensor([0, 1, 0, 1]))  # independent of a
        >>> round(float(conditional_entropy(k_a, k_b, alpha=1)), 4)  # S(A | B) = S(A)
        1.0
    """
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

    Example:
        >>> import torch
        >>> from infoplane import label_gram, mutual_information
        >>> k_a = label_gram(torch.tensor([0, 0, 1, 1]))
        >>> round(float(mutual_information(k_a, k_a, alpha=1)), 4)  # I(A; A) = S(A)
        1.0
        >>> k_x = label_gram(torch.tensor([0, 0, 0, 1]))
        >>> k_y = label_gram(torch.tensor([0, 0, 1, 0]))
        >>> round(float(mutual_information(k_x, k_y, alpha=2)), 4)  # log2(0.96)
        -0.0589
    """
    s = _entropies((a, b), alpha, method, "mutual_information")
    return s[0] + s[1] - s[2]


def total_correlation(*grams: Any, alpha: float = 1.01, method: str = "exact") -> torch.Tensor:
    """Total correlation ``sum_l S_alpha(A_l) - S_alpha(A_1, ..., A_L)``, in bits.

    Example:
        >>> import torch
        >>> from infoplane import label_gram, total_correlation
        >>> k_a = label_gram(torch.tensor([0, 0, 1, 1]))
        >>> k_b = label_gram(torch.tensor([0, 1, 0, 1]))
        >>> round(float(total_correlation(k_a, k_a, k_b, alpha=1)), 4)  # 1 + 1 + 1 - 2 bits
        1.0
    """
    s = _entropies(grams, alpha, method, "total_correlation")
    return s[:-1].sum(dim=0) - s[-1]
