"""Gram matrices: the Gaussian (tensor) kernel, the label kernel, and normalization.

Convention (the one sigma of infoplane): ``k(a, b) = exp(-||a - b||^2 / (2 sigma^2))`` with
``||.||`` the Frobenius norm over all trailing dimensions of a sample. For convolutional
activations ``[N, C, H, W]`` this is the tensor kernel of Wickstrøm et al. (arXiv:1909.11396), and
it equals the Hadamard product of per-channel Gaussian Grams with the same sigma (the multivariate
approach of Yu et al., IEEE TPAMI 2019). The authors' code used ``exp(-d^2 / sigma^2)``: their
sigma is ours times sqrt(2).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from infoplane._validation import (
    DEFAULT_DTYPE,
    as_tensor,
    check_floating_data,
    check_floating_dtype,
    check_gram,
    check_integer,
    check_positive_scalar,
)
from infoplane.errors import InvalidInputError, InvalidTypeError

#: Column chunk of the upcast, translated samples on CPU, in elements (16 MiB of float64), in one
#: buffer reused for every chunk. A product split into many small ones runs as many parallel
#: regions, each of which waits for every thread: when another process holds a core that costs
#: a scheduler time slice per region (with 1 MiB chunks a Gram of [100, 1e6] and its entropy took
#: 7.2x their bare primitives on a busy 2-core CPU at two threads; BENCHMARKS.md). Above about
#: 32 MiB, on the other hand, the C allocator maps fresh pages for every call, and faulting them
#: in costs as much as the upcast itself.
_CHUNK_ELEMENTS = 1 << 21
#: On an accelerator there are no page faults to avoid: one chunk (one product) up to this many
#: elements (256 MiB of float64).
_WHOLE_ELEMENTS = 1 << 25
#: Rows and columns of the square blocks in which the ``[N, N]`` product becomes distances (and
#: the Gram) on CPU: a pair of 256 x 256 float64 blocks (1 MiB) stays in cache through the five
#: element-wise steps, where whole-matrix passes stream ``N^2`` elements through memory five
#: times and allocate an ``[N, N]`` temporary. Measured at N = 2000-4000 and D = 100: 2-3 times
#: faster, the same bits.
_FINISH_BLOCK = 256


def exp_range(dtype: torch.dtype) -> tuple[float, float]:
    """``(low, floor)`` of :func:`exp_flushed` in ``dtype``: exponents are clamped at ``low`` =
    ``ln(tiny) + 1`` (-707.4 in float64, -86.3 in float32 and half precision, whose smallest
    subnormal is far above ``exp(low)``) and results up to ``floor`` (just above ``exp(low)``,
    1.2e-307 in float64) are set to zero.

    Below about ``ln(tiny) + 0.5``, where the result is subnormal, zero or the exponent is -inf,
    torch's CPU ``exp`` left its vectorized path: 20-300 times slower per element (torch 2.13,
    AVX-512, float32 and float64). Kernel values ``exp(-d^2 / (2 s^2))`` go there whenever a
    width is small against the distances (the low end of a width grid, the authors' input width
    on 0-255 pixels). No sum, product or entropy of infoplane can see a term below ``floor``
    beside a Gram's unit diagonal.
    """
    # half precision is evaluated in float32 on CPU: float32's range, below float16's subnormals
    low = math.log(torch.finfo(torch.promote_types(dtype, torch.float32)).tiny) + 1.0
    return low, math.exp(low + 2.0**-10)


def _samples(x: Any, who: str, name: str = "x") -> tuple[torch.Tensor, float]:
    """Validate a batch ``[N, ...]``: ``([N, D] view, max |x|)`` (dtype unchanged)."""
    x = as_tensor(x, name, who)
    magnitude = check_floating_data(x, name, who)
    return x.reshape(x.shape[0], -1), magnitude


def flatten_samples(x: Any, who: str, name: str = "x") -> torch.Tensor:
    """Validate a batch ``[N, ...]`` and return it as ``[N, D]`` (dtype unchanged)."""
    return _samples(x, who, name)[0]


def tracks_grad(x: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and x.requires_grad  # under no_grad: no tensor call


def _chunk_columns(x2d: torch.Tensor) -> int:
    n, d = x2d.shape
    limit = _CHUNK_ELEMENTS if x2d.device.type == "cpu" else _WHOLE_ELEMENTS
    return d if n * d <= limit else max(limit // n, 1)


def _translated_product(
    x2d: torch.Tensor, dtype: torch.dtype, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``F F^T`` of the samples translated by their first row, ``F = X - 1 x_0^T``, in ``dtype``
    (written into ``out`` ``[N, N]`` when given, without grad tracking).

    Distances are translation invariant; moving the first sample to the origin removes a large
    common offset (the cancellation of ``||a||^2 + ||b||^2 - 2 a.b``) like centring on the mean
    would, without a reduction pass. Each column chunk is upcast into one reused buffer and
    translated in place (two passes, no fresh pages per chunk); with grad tracking the same steps
    run out of place. Extra memory: one chunk of :data:`_CHUNK_ELEMENTS` (CPU) or
    :data:`_WHOLE_ELEMENTS` (accelerator) and ``[N, N]``.
    """
    n, d = x2d.shape
    chunk = _chunk_columns(x2d)
    origin = x2d[0].to(dtype)
    if tracks_grad(x2d):
        gram = torch.zeros((n, n), dtype=dtype, device=x2d.device)
        for start in range(0, d, chunk):
            block = x2d[:, start : start + chunk].to(dtype) - origin[start : start + chunk]
            gram = torch.addmm(gram, block, block.T)
        return gram
    gram = torch.empty((n, n), dtype=dtype, device=x2d.device) if out is None else out
    buffer = torch.empty((n, min(chunk, d)), dtype=dtype, device=x2d.device)
    if chunk >= d:  # the usual case at N = 100: one chunk, no slices of x2d, origin or buffer
        torch.mm(buffer.copy_(x2d).sub_(origin), buffer.T, out=gram)
        return gram
    for start in range(0, d, chunk):
        part = x2d[:, start : start + chunk]
        block = buffer[:, : part.shape[1]]
        block.copy_(part)
        block.sub_(origin[start : start + chunk])
        if start == 0:
            torch.mm(block, block.T, out=gram)
        else:
            gram.addmm_(block, block.T)
    return gram


def squared_distances_of_rows(
    x2d: torch.Tensor, dtype: torch.dtype = DEFAULT_DTYPE
) -> torch.Tensor:
    """Pairwise squared Euclidean distances of ``[N, D]`` rows as ``[N, N]`` in ``dtype``.

    Uses ``||a||^2 + ||b||^2 - 2 a.b`` on one matrix product of the data translated by its first
    sample (distances are translation invariant; this removes most of the cancellation that a
    large common offset would cause). Never materializes an ``[N, N, D]`` tensor. Extra memory:
    one column chunk of the translated ``dtype`` copy (16 MiB on CPU, 256 MiB on an accelerator),
    the ``[N, N]`` result and one block of it (:data:`_FINISH_BLOCK` squared on CPU, ``[N, N]``
    on an accelerator). Differentiable when ``x2d`` requires grad (then without in-place steps,
    with two ``[N, N]`` temporaries).
    """
    if tracks_grad(x2d):
        gram = _translated_product(x2d, dtype)
        sq = torch.diagonal(gram)
        # (sq_i + sq_j) - (g_ij + g_ji): exactly symmetric, since both sums commute bitwise
        # (BLAS need not return a symmetric product).
        d2 = (sq[:, None] + sq[None, :]) - (gram + gram.T)
        eye = torch.eye(d2.shape[0], dtype=torch.bool, device=d2.device)
        return d2.clamp(min=0.0).masked_fill(eye, 0.0)
    return stacked_squared_distances([x2d], dtype)[0]


def stacked_squared_distances(
    flat: Sequence[torch.Tensor], dtype: torch.dtype = DEFAULT_DTYPE, *, sigma: float | None = None
) -> torch.Tensor:
    """:func:`squared_distances_of_rows` of several ``[N, D_m]`` batches of the same N (no grad):
    ``[M, N, N]``, each product written in place and the distances formed in one batched pass
    (the same bits as one call each). With ``sigma`` the result is the Gaussian Gram of that
    width instead (:func:`exp_flushed`), made in the same pass."""
    n = flat[0].shape[0]
    grams = torch.empty((len(flat), n, n), dtype=dtype, device=flat[0].device)
    for m, x2d in enumerate(flat):
        _translated_product(x2d, dtype, out=grams[m])
    sq = torch.diagonal(grams, dim1=-2, dim2=-1).clone()
    scale = None if sigma is None else -2.0 * sigma * sigma
    block = _FINISH_BLOCK if grams.device.type == "cpu" else n
    for i in range(0, n, block):
        for j in range(i, n, block):
            _finish_block(grams, sq, slice(i, i + block), slice(j, j + block), scale)
    return grams


def _finish_block(
    grams: torch.Tensor, sq: torch.Tensor, rows: slice, cols: slice, scale: float | None
) -> None:
    """Turn the blocks ``[rows, cols]`` and ``[cols, rows]`` of the products ``[M, N, N]`` into
    squared distances, in place: ``(sq_i + sq_j) - (g_ij + g_ji)`` clamped at zero (exactly
    symmetric: both sums commute bitwise, and BLAS need not return a symmetric product), with a
    zero diagonal; with ``scale`` then ``exp(d2 / scale)``. The lower block is the upper one's
    transpose, copied."""
    upper = grams[:, rows, cols]
    diagonal = rows == cols
    lower = upper if diagonal else grams[:, cols, rows]
    both = upper + lower.transpose(-1, -2)
    d2 = torch.add(sq[:, rows, None], sq[:, None, cols], out=upper)
    d2.sub_(both).clamp_(min=0.0)
    if diagonal:
        torch.diagonal(d2, dim1=-2, dim2=-1).zero_()
    if scale is not None:
        exp_flushed(d2.div_(scale))
    if not diagonal:
        lower.copy_(d2.transpose(-1, -2))


def exp_flushed(z: torch.Tensor) -> torch.Tensor:
    """``exp(z)`` of exponents ``z <= 0`` with results below about ``e * tiny`` of the dtype
    (1.2e-307 in float64) set to zero (:func:`exp_range`): in place without grad tracking,
    else differentiably out of place. The clamp keeps CPU's ``exp`` on its fast path."""
    low, floor = exp_range(z.dtype)
    if tracks_grad(z):
        return torch.threshold(torch.exp(z.clamp(min=low)), floor, 0.0)
    return torch.threshold_(z.clamp_(min=low).exp_(), floor, 0.0)


def _check_distances_fit(magnitude: float, d: int, dtype: torch.dtype, who: str) -> None:
    """Squared distances of samples with entries up to ``magnitude`` must fit in ``dtype``."""
    if 4.0 * d * magnitude * magnitude > torch.finfo(dtype).max:
        raise InvalidInputError(
            f"{who}: expected samples whose squared distances fit in {dtype}, got max |x| = "
            f"{magnitude:.3g} with D = {d} features. Scale the data down first."
        )


def squared_distances(x: Any, *, dtype: torch.dtype = DEFAULT_DTYPE) -> torch.Tensor:
    """Pairwise squared Frobenius distances ``||x_i - x_j||^2`` of a batch.

    Args:
        x: samples ``[N, ...]`` (any trailing shape), torch tensor or numpy array.
        dtype: floating computation dtype (default float64; half precision is upcast).

    Returns:
        ``[N, N]`` tensor on the device of ``x``, symmetric, zero diagonal, non-negative.

    Raises:
        InvalidInputError: when the squared distances would overflow ``dtype``.

    Example:
        >>> import torch
        >>> from infoplane import squared_distances
        >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
        >>> squared_distances(x).tolist()
        [[0.0, 25.0, 16.0], [25.0, 0.0, 9.0], [16.0, 9.0, 0.0]]
    """
    who = "squared_distances"
    dtype = check_floating_dtype(dtype, who)
    x2d, magnitude = _samples(x, who)
    _check_distances_fit(magnitude, x2d.shape[1], dtype, who)
    return squared_distances_of_rows(x2d, dtype)


def gram_from_squared_distances(d2: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``exp(-d2 / (2 sigma^2))`` (:func:`exp_flushed`) into a new tensor; ``sigma`` may be a
    0-d tensor (no host synchronisation)."""
    return exp_flushed(d2 / (-2.0 * sigma * sigma))


def _in_direct_range(magnitude: float, sigma: float, d: int, dtype: torch.dtype) -> bool:
    """Whether ``exp(-d2 / (2 sigma^2))`` is finite and exact in ``dtype`` as written.

    True when ``2 sigma^2`` and the squared distances neither overflow nor underflow: ``sigma``
    and a non-zero ``max |x|`` within ``[tiny^(1/4), max^(1/4)]`` of ``dtype``.
    """
    info = torch.finfo(dtype)
    low, high = info.tiny**0.25, info.max**0.25
    fits = 4.0 * d * magnitude * magnitude <= info.max
    return low <= sigma <= high and fits and (magnitude == 0.0 or magnitude >= low)


def _scaled_gram(x2d: torch.Tensor, magnitude: float, sigma: float) -> torch.Tensor:
    """The Gaussian Gram for extreme ``sigma`` or ``max |x|``, in float64, never NaN.

    The samples are scaled by a power of two ``2^-e`` to ``max |x| < 1`` (exact), their squared
    distances computed there, and the exponent ``d2' r^2 / 2`` applied with ``r = 2^e / sigma``
    (one rounding). ``r`` is capped at ``2^(+-1000)``: beyond, every off-diagonal entry is 0 or
    1 in float64 either way.
    """
    e = max(-1000, min(1000, math.frexp(magnitude)[1]))
    mantissa, exponent = math.frexp(sigma)
    r = math.ldexp(1.0 / mantissa, max(-1000, min(1000, e - exponent)))
    d2 = squared_distances_of_rows(x2d.to(DEFAULT_DTYPE) * math.ldexp(1.0, -e), DEFAULT_DTYPE)
    return exp_flushed(d2 * r * (-0.5 * r))


def gaussian_gram(x: Any, sigma: Any, *, dtype: torch.dtype = DEFAULT_DTYPE) -> torch.Tensor:
    """Unnormalized Gaussian (tensor) kernel Gram matrix.

    ``K_ij = exp(-||x_i - x_j||^2 / (2 sigma^2))`` with the Frobenius norm over every trailing
    dimension, so a convolutional activation ``[N, C, H, W]`` gets the tensor kernel of
    Wickstrøm et al. (arXiv:1909.11396). Built from one matrix product, never from an
    ``[N, N, D]`` difference tensor. Finite for every finite input and width: where ``sigma``
    or the data are so small or large that ``2 sigma^2`` or the squared distances would leave
    the range of ``dtype``, the distances are computed in units of a power of two of the data
    and divided by ``sigma`` in that scale (float64, then cast to ``dtype``).

    Differentiable in ``x`` when it requires grad: information-bottleneck losses can use it
    with :func:`~infoplane.renyi_entropy` (see there where gradients are undefined).

    Args:
        x: samples ``[N, ...]``, N >= 2, finite.
        sigma: kernel width > 0 in infoplane's convention (the authors' code width divided
            by sqrt(2)).
        dtype: floating computation dtype (default float64).

    Returns:
        ``[N, N]`` symmetric matrix with unit diagonal, on the device of ``x``. Values below
        about ``e`` times the smallest normal number of ``dtype`` (1.2e-307 in float64; of
        float32 for half precision, below its subnormals) are returned as 0, never as subnormal
        numbers: on CPU those cost torch's ``exp`` 20-300 times as much, and no entropy can see
        them beside the unit diagonal.

    Example:
        >>> import torch
        >>> from infoplane import gaussian_gram
        >>> k = gaussian_gram(torch.tensor([[0.0], [1.0], [3.0]]), sigma=1.0)
        >>> k.shape, k.dtype
        (torch.Size([3, 3]), torch.float64)
        >>> k.diagonal().tolist()
        [1.0, 1.0, 1.0]
        >>> round(float(k[0, 1]), 4), round(float(k[0, 2]), 4)  # exp(-1 / 2), exp(-9 / 2)
        (0.6065, 0.0111)
    """
    who = "gaussian_gram"
    dtype = check_floating_dtype(dtype, who)
    x2d, magnitude = _samples(x, who)
    s = check_positive_scalar(sigma, "sigma", who)
    if not _in_direct_range(magnitude, s, x2d.shape[1], dtype):
        return _scaled_gram(x2d, magnitude, s).to(dtype)
    if tracks_grad(x2d):
        return gram_from_squared_distances(squared_distances_of_rows(x2d, dtype), s)
    # in place, block by block (no second [N, N] buffer); the same arithmetic as
    # gram_from_squared_distances, so both paths give identical bits
    return stacked_squared_distances([x2d], dtype, sigma=s)[0]


def label_ids(y: Any, who: str, num_classes: int | None = None) -> torch.Tensor:
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
    y: Any,
    num_classes: int | None = None,
    *,
    sigma: Any = None,
    dtype: torch.dtype = DEFAULT_DTYPE,
) -> torch.Tensor:
    """Label Gram matrix: the class indicator, or the Gaussian kernel on one-hot labels.

    The one home of the label kernel. With ``sigma=None`` (default) it is the indicator
    ``K_ij = 1 if y_i == y_j else 0``; its normalized eigenvalues are the empirical class
    frequencies, so its entropy is the plug-in Rényi entropy of the labels for every alpha.
    With ``sigma`` it is the paper's Gaussian kernel on one-hot rows,
    ``exp(-||e_{y_i} - e_{y_j}||^2 / (2 sigma^2))``: 1 within a class and ``exp(-1 / sigma^2)``
    between classes (one-hot rows of two classes are ``sqrt(2)`` apart), computed in that
    closed form. A tiny ``sigma`` gives the indicator again.

    Args:
        y: integer class ids ``[N]`` on any device, or one-hot rows ``[N, K]`` (the argmax of
            each row is used). Soft (probability) rows are also reduced to their argmax class,
            with a warning: that is the kernel of the predicted class, not a kernel on
            probabilities (use :func:`gaussian_gram` for that).
        num_classes: when given, ids must lie in ``0..num_classes-1`` (and one-hot rows have
            ``num_classes`` columns).
        sigma: width > 0 of the Gaussian kernel on one-hot labels, or None for the indicator.
        dtype: floating dtype of the result (default float64).

    Returns:
        ``[N, N]`` matrix on the device of ``y``.

    Example:
        >>> import torch
        >>> from infoplane import label_gram
        >>> label_gram(torch.tensor([0, 0, 1])).tolist()
        [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        >>> k = label_gram(torch.tensor([0, 0, 1]), sigma=1.0)
        >>> round(float(k[0, 2]), 4)  # exp(-1 / sigma^2) between classes
        0.3679
    """
    who = "label_gram"
    dtype = check_floating_dtype(dtype, who)
    if num_classes is not None:
        num_classes = check_integer(num_classes, "num_classes", who)
    s = None if sigma is None else check_positive_scalar(sigma, "sigma", who)
    ids = label_ids(y, who, num_classes)
    same = ids[:, None] == ids[None, :]
    if s is None:
        return same.to(dtype)
    between = math.exp(-(1.0 / s) / s)  # 1/s may be inf: exp(-inf) = 0, never NaN
    one = torch.ones((), dtype=dtype, device=ids.device)
    return torch.where(same, one, torch.full_like(one, between))


def trace_normalized(gram: torch.Tensor) -> torch.Tensor:
    """``K_ij / (N sqrt(K_ii K_jj))`` for a validated ``[..., N, N]`` Gram (no checks)."""
    n = gram.shape[-1]
    inv = torch.diagonal(gram, dim1=-2, dim2=-1).rsqrt()
    # the same three operations, in place after the first: one [..., N, N] buffer, not three
    return (gram * inv[..., :, None]).mul_(inv[..., None, :]).div_(n)


def unit_diagonal(gram: torch.Tensor) -> torch.Tensor:
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

    Example:
        >>> import torch
        >>> from infoplane import normalize_gram
        >>> a = normalize_gram(torch.tensor([[4.0, 2.0], [2.0, 1.0]]))
        >>> a.tolist()
        [[0.5, 0.5], [0.5, 0.5]]
        >>> float(a.trace())
        1.0
    """
    return trace_normalized(check_gram(gram, "normalize_gram"))
