"""Gram matrices: the Gaussian (tensor) kernel, the label kernel, and normalization.

Convention (the one sigma of infoplane): ``k(a, b) = exp(-||a - b||^2 / (2 sigma^2))`` with
``||.||`` the Frobenius norm over all trailing dimensions of a sample. For convolutional
activations ``[N, C, H, W]`` this is the tensor kernel of Wickstrøm et al. (arXiv:1909.11396), and
it equals the Hadamard product of per-channel Gaussian Grams with the same sigma (the multivariate
approach of Yu et al., IEEE TPAMI 2019). The authors' code used ``exp(-d^2 / sigma^2)``: their
sigma is ours times sqrt(2).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from infoplane.errors import InvalidInputError, InvalidTypeError
from infoplane.functional._validation import (
    DEFAULT_DTYPE,
    as_tensor,
    check_floating_data,
    check_gram,
    check_integer,
    check_positive_scalar,
)

#: Above this many elements (N * D) the sample matrix is upcast and multiplied in column chunks,
#: so the float64 copy never exceeds about 128 MiB at a time.
_CHUNK_ELEMENTS = 1 << 24
#: On CPU the chunks are cache-sized (1 MiB of float64): the upcast, centred block is still in
#: cache when the product reads it, so the distances cost about one float64 matrix product
#: instead of extra passes over a float64 copy in main memory. At least this many columns per
#: chunk keep each rank-k update of the ``[N, N]`` product compute-bound when N is large.
_CPU_CHUNK_ELEMENTS = 1 << 17
_MIN_CHUNK_COLUMNS = 256


def _flatten_samples(x: Any, who: str, name: str = "x") -> torch.Tensor:
    """Validate a batch ``[N, ...]`` and return it as ``[N, D]`` (dtype unchanged)."""
    x = as_tensor(x, name, who)
    check_floating_data(x, name, who)
    return x.reshape(x.shape[0], -1)


def _squared_distances(x2d: torch.Tensor, dtype: torch.dtype = DEFAULT_DTYPE) -> torch.Tensor:
    """Pairwise squared Euclidean distances of ``[N, D]`` rows as ``[N, N]`` in ``dtype``.

    Uses ``||a||^2 + ||b||^2 - 2 a.b`` on one matrix product of the column-centred data (distances
    are translation invariant; centring removes most of the cancellation that a large common
    offset would cause). Never materializes an ``[N, N, D]`` tensor. When ``N * D`` is large the
    upcast and the product run over column chunks, so extra memory stays O(N * chunk + N^2).
    """
    n, d = x2d.shape
    limit = _CPU_CHUNK_ELEMENTS if x2d.device.type == "cpu" else _CHUNK_ELEMENTS
    columns = max(limit // n, min(_MIN_CHUNK_COLUMNS, _CHUNK_ELEMENTS // n), 1)
    chunk = d if n * d <= limit else columns
    gram = torch.zeros((n, n), dtype=dtype, device=x2d.device)
    # One buffer for every chunk: upcast into it and centre in place. A fresh pair of blocks per
    # chunk was, in some processes, served by the C allocator from freshly faulted-in pages,
    # which made the upcast 5x slower (~50 ms for [100, 65536] on CPU) than the reused buffer.
    buffer = torch.empty((n, min(chunk, d)), dtype=dtype, device=x2d.device)
    for start in range(0, d, chunk):
        part = x2d[:, start : start + chunk]
        block = buffer[:, : part.shape[1]]
        block.copy_(part)
        block.sub_(block.mean(dim=0, keepdim=True))
        gram.addmm_(block, block.T)
    sq = torch.diagonal(gram).clone()
    # (sq_i + sq_j) - (g_ij + g_ji): exactly symmetric, since both sums commute bitwise (BLAS
    # need not return a symmetric product), in one pass fewer than symmetrizing afterwards.
    # The result reuses the product's storage: two [N, N] buffers at any time, not three.
    both = gram + gram.T
    d2 = torch.add(sq[:, None], sq[None, :], out=gram)
    d2.sub_(both)
    del both
    d2.clamp_(min=0.0)
    d2.fill_diagonal_(0.0)
    return d2


def squared_distances(x: Any, *, dtype: torch.dtype = DEFAULT_DTYPE) -> torch.Tensor:
    """Pairwise squared Frobenius distances ``||x_i - x_j||^2`` of a batch.

    Args:
        x: samples ``[N, ...]`` (any trailing shape), torch tensor or numpy array.
        dtype: computation dtype (default float64; half precision is upcast).

    Returns:
        ``[N, N]`` tensor on the device of ``x``, symmetric, zero diagonal, non-negative.
    """
    return _squared_distances(_flatten_samples(x, "squared_distances"), dtype)


def _gram_from_squared_distances(d2: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``exp(-d2 / (2 sigma^2))``; ``sigma`` may be a 0-d tensor (no host synchronisation)."""
    return torch.exp(d2 / (-2.0 * sigma * sigma))


def gaussian_gram(x: Any, sigma: Any, *, dtype: torch.dtype = DEFAULT_DTYPE) -> torch.Tensor:
    """Unnormalized Gaussian (tensor) kernel Gram matrix.

    ``K_ij = exp(-||x_i - x_j||^2 / (2 sigma^2))`` with the Frobenius norm over every trailing
    dimension, so a convolutional activation ``[N, C, H, W]`` gets the tensor kernel of
    Wickstrøm et al. (arXiv:1909.11396). Built from one matrix product, never from an
    ``[N, N, D]`` difference tensor.

    Args:
        x: samples ``[N, ...]``, N >= 2, finite.
        sigma: kernel width > 0 in infoplane's convention (the authors' code width divided
            by sqrt(2)).
        dtype: computation dtype (default float64).

    Returns:
        ``[N, N]`` symmetric matrix with unit diagonal, on the device of ``x``.
    """
    who = "gaussian_gram"
    x2d = _flatten_samples(x, who)
    s = check_positive_scalar(sigma, "sigma", who)
    d2 = _squared_distances(x2d, dtype)
    # in place (d2 is ours: no second [N, N] buffer); same arithmetic as
    # _gram_from_squared_distances, so both paths give identical bits
    return d2.div_(-2.0 * s * s).exp_()


def _labels_to_ids(y: Any, who: str, num_classes: int | None = None) -> torch.Tensor:
    """Return integer class ids ``[N]`` from ids ``[N]`` or one-hot/probability rows ``[N, K]``."""
    y = as_tensor(y, "y", who)
    if y.dim() == 2:
        if y.shape[0] < 2 or y.shape[1] < 1:
            raise InvalidInputError(
                f"{who}: expected y as one-hot rows [N, K] with N >= 2, got shape {tuple(y.shape)}."
            )
        if num_classes is not None and y.shape[1] != num_classes:
            raise InvalidInputError(
                f"{who}: expected one-hot rows with num_classes = {num_classes} columns, got "
                f"{y.shape[1]}."
            )
        rows = y.to(DEFAULT_DTYPE)
        if not bool(torch.isfinite(rows).all()) or bool((rows < 0).any()):
            raise InvalidInputError(
                f"{who}: expected y rows of non-negative finite class scores, got negative or "
                "NaN/Inf entries. Pass integer class ids instead."
            )
        ids = rows.argmax(dim=1)
        one_hot = torch.zeros_like(rows).scatter_(1, ids[:, None], 1.0)
        if not torch.equal(rows, one_hot):
            warnings.warn(
                f"{who}: y rows are not one-hot; using the indicator kernel of each row's most "
                "probable class. For a kernel on the probabilities use gaussian_gram.",
                UserWarning,
                stacklevel=3,
            )
        return ids
    if y.dim() != 1:
        raise InvalidInputError(
            f"{who}: expected y as class ids [N] or one-hot rows [N, K], got shape "
            f"{tuple(y.shape)}."
        )
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise InvalidTypeError(
            f"{who}: expected y as integer class ids, got dtype {y.dtype}. "
            "Convert with y.long() if the values are whole numbers."
        )
    if y.shape[0] < 2:
        raise InvalidInputError(
            f"{who}: expected y with N >= 2 samples, got shape {tuple(y.shape)}."
        )
    if bool((y < 0).any()):
        raise InvalidInputError(
            f"{who}: expected non-negative class ids, got {int(y.min())}. "
            "Map the labels to 0..K-1 first."
        )
    if num_classes is not None and bool((y >= num_classes).any()):
        raise InvalidInputError(
            f"{who}: expected class ids below num_classes = {num_classes}, got {int(y.max())}."
        )
    return y.long()


def label_gram(
    y: Any, num_classes: int | None = None, *, dtype: torch.dtype = DEFAULT_DTYPE
) -> torch.Tensor:
    """Class-indicator Gram matrix ``K_ij = 1 if y_i == y_j else 0``.

    The paper's Gaussian kernel on one-hot labels with a tiny width is this same matrix. Its
    normalized eigenvalues are the empirical class frequencies, so its entropy is the plug-in
    Rényi entropy of the labels for every alpha.

    Args:
        y: integer class ids ``[N]``, or one-hot rows ``[N, K]`` (the argmax of each row is used).
            Soft (probability) rows are also reduced to their argmax class, with a warning:
            that is the indicator kernel of the predicted class, not a kernel on probabilities
            (use :func:`gaussian_gram` for that).
        num_classes: when given, ids must lie in ``0..num_classes-1``.
        dtype: dtype of the result (default float64).

    Returns:
        ``[N, N]`` 0/1 matrix on the device of ``y``.
    """
    if num_classes is not None:
        num_classes = check_integer(num_classes, "num_classes", "label_gram")
    ids = _labels_to_ids(y, "label_gram", num_classes)
    return (ids[:, None] == ids[None, :]).to(dtype)


def _normalize(gram: torch.Tensor) -> torch.Tensor:
    """``K_ij / (N sqrt(K_ii K_jj))`` for a validated ``[..., N, N]`` Gram (no checks)."""
    n = gram.shape[-1]
    inv = torch.diagonal(gram, dim1=-2, dim2=-1).rsqrt()
    # the same three operations, in place after the first: one [..., N, N] buffer, not three
    return (gram * inv[..., :, None]).mul_(inv[..., None, :]).div_(n)


def _unit_diagonal(gram: torch.Tensor) -> torch.Tensor:
    """``K_ij / sqrt(K_ii K_jj)``: entries in [-1, 1], so Hadamard products do not underflow."""
    inv = torch.diagonal(gram, dim1=-2, dim2=-1).rsqrt()
    return gram * inv[..., :, None] * inv[..., None, :]


def normalize_gram(gram: Any) -> torch.Tensor:
    """Normalize a Gram matrix to trace one: ``A_ij = K_ij / (N sqrt(K_ii K_jj))``.

    Args:
        gram: symmetric ``[..., N, N]`` matrix with a positive diagonal (batched allowed).

    Returns:
        ``A`` with ``tr(A) = 1``, in float64 (or the input's dtype if wider). Normalizing an
        already normalized Gram returns it unchanged.
    """
    return _normalize(check_gram(gram, "normalize_gram"))
