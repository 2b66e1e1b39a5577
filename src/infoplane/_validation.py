"""Input validation shared by the public entry points (private).

Each check raises one of :mod:`infoplane.errors` with a one-line message of the shape
``<who>: expected <arg> <what>, got <what>. <fix>``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

from infoplane.errors import (
    DeviceMismatchError,
    InvalidInputError,
    InvalidParameterError,
    InvalidTypeError,
)

#: The dtype every Gram and eigenvalue is computed in unless the caller asks otherwise.
DEFAULT_DTYPE = torch.float64


def as_tensor(value: Any, name: str, who: str) -> torch.Tensor:
    """Return ``value`` as a tensor (numpy arrays and nested lists are converted, not copied)."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        # bool, signed/unsigned int, float, complex: the kinds torch can hold.
        if value.dtype.kind not in "biufc":
            raise InvalidTypeError(
                f"{who}: expected {name} as a numeric tensor or array, got a numpy array of "
                f"dtype {value.dtype}. Convert it with np.asarray(..., dtype=float)."
            )
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, (list, tuple)):
        try:
            array = np.asarray(value)
            if array.dtype.kind not in "biufc":
                raise TypeError(array.dtype)
            return torch.as_tensor(array)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InvalidTypeError(
                f"{who}: expected {name} as a numeric tensor or array, got an unconvertible "
                f"{type(value).__name__}. Pass a torch.Tensor or numpy array."
            ) from exc
    raise InvalidTypeError(
        f"{who}: expected {name} as a torch.Tensor or numpy array, got {type(value).__name__}."
    )


def all_finite(x: torch.Tensor) -> bool:
    """True when a non-empty floating tensor holds no NaN or Inf.

    One ``aminmax`` reduction (NaN propagates to both ends, an Inf shows at one of them): a
    single pass without the boolean temporary of ``isfinite(x).all()``, which on CPU costs
    about as much as a quarter of the float64 product it guards.
    """
    lo, hi = torch.aminmax(x)
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


def check_floating_data(x: torch.Tensor, name: str, who: str) -> float:
    """Reject empty, too-small, non-numeric, sparse or non-finite sample batches ``[N, ...]``.

    Returns ``max |x|`` (as a float), from the one ``aminmax`` pass that checks finiteness.
    """
    check_dense(x, name, who)
    if x.dtype == torch.bool or x.is_complex():
        raise InvalidTypeError(
            f"{who}: expected {name} with a real numeric dtype, got {x.dtype}. "
            "Convert it with .float()."
        )
    if x.dim() < 1:
        raise InvalidInputError(
            f"{who}: expected {name} of shape [N, ...] with N >= 2 samples, got a 0-d tensor."
        )
    if x.numel() == 0:
        raise InvalidInputError(
            f"{who}: expected a non-empty {name}, got shape {tuple(x.shape)}. "
            "Pass at least 2 samples with at least one feature."
        )
    if x.shape[0] < 2:
        raise InvalidInputError(
            f"{who}: expected {name} with N >= 2 samples, got shape {tuple(x.shape)}. "
            "Entropy needs at least two samples."
        )
    lo, hi = (float(v) for v in torch.stack(torch.aminmax(x.detach())).tolist())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        n_bad = int((~torch.isfinite(x)).sum())
        raise InvalidInputError(
            f"{who}: expected finite {name}, got {n_bad} NaN/Inf value(s). "
            "Check the data or the run for divergence."
        )
    return max(abs(lo), abs(hi))


def check_positive_scalar(value: Any, name: str, who: str) -> float:
    """Return ``value`` as a positive finite float or raise."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise InvalidParameterError(
                f"{who}: expected {name} as a scalar, got a tensor of shape {tuple(value.shape)}."
            )
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(
            f"{who}: expected {name} as a positive finite number, got {value!r}."
        )
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise InvalidParameterError(
            f"{who}: expected {name} as a positive finite number, got {value!r}."
        )
    return value


def check_integer(value: Any, name: str, who: str, minimum: int = 1) -> int:
    """Return ``value`` as an int ``>= minimum`` (Python or numpy integers; bools rejected)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InvalidParameterError(
            f"{who}: expected {name} as an integer >= {minimum}, got {value!r}."
        )
    return int(value)


def check_alpha(alpha: Any, who: str, *, allow_inf: bool = False) -> float:
    """Validate the Rényi order: a number > 0 (1 is the von Neumann limit).

    ``allow_inf=True`` also accepts ``float("inf")``, the min-entropy order of the functional
    entropies; the tracker and the run configuration keep to finite orders.
    """
    if allow_inf and isinstance(alpha, (float, np.floating)) and alpha == math.inf:
        return math.inf
    return check_positive_scalar(alpha, "alpha", who)


def check_same_device(tensors: list[torch.Tensor], names: list[str], who: str) -> torch.device:
    """Return the common device of ``tensors`` or raise :class:`DeviceMismatchError`."""
    device = tensors[0].device
    for t, name in zip(tensors[1:], names[1:], strict=True):
        if t.device != device:
            raise DeviceMismatchError(
                f"{who}: expected {name} on {device} like {names[0]}, got {t.device}. "
                "Move the inputs to one device first."
            )
    return device


def check_gram(gram: Any, who: str, name: str = "gram") -> torch.Tensor:
    """Validate a (batch of) Gram matrices ``[..., N, N]`` and return it in float64 at least.

    The matrix must be square, finite and symmetric (up to round-off of its dtype), with a
    positive diagonal and N >= 2.
    """
    g = as_tensor(gram, name, who)
    check_dense(g, name, who)
    if not g.is_floating_point():
        if g.dtype == torch.bool or g.is_complex():
            raise InvalidTypeError(
                f"{who}: expected {name} with a real floating dtype, got {g.dtype}."
            )
        g = g.to(DEFAULT_DTYPE)
    if g.dim() < 2 or g.shape[-1] != g.shape[-2]:
        raise InvalidInputError(
            f"{who}: expected {name} as a square matrix [..., N, N], got shape "
            f"{tuple(g.shape)}. Build it with gaussian_gram or label_gram."
        )
    n = g.shape[-1]
    if n < 2 or g.numel() == 0:
        raise InvalidInputError(
            f"{who}: expected {name} with N >= 2 samples, got shape {tuple(g.shape)}. "
            "Entropy needs at least two samples."
        )
    if not all_finite(g):
        raise InvalidInputError(
            f"{who}: expected a finite {name}, got NaN/Inf entries. "
            "Check the data or the kernel width."
        )
    # Compute in at least float64: float32 eigenvalues moved S_1 by up to 3.5e-6 bits on 150
    # Gaussian Grams of N = 100, and exactness at every order needs float64.
    if g.dtype in (torch.float16, torch.bfloat16, torch.float32):
        g = g.to(DEFAULT_DTYPE)
    diag = torch.diagonal(g, dim1=-2, dim2=-1)
    if not bool((diag > 0).all()):
        raise InvalidInputError(
            f"{who}: expected {name} with a positive diagonal (k(x, x) > 0), got a diagonal "
            f"entry {float(diag.min()):.3g}. A Gram of this kind cannot be normalized."
        )
    if _exactly_symmetric(g):  # the usual case: no temporaries
        return g
    scale = diag.abs().amax(dim=-1)
    tol = 1e-6 if gram_is_low_precision(gram) else 1e-10
    worst = float((_max_asymmetry(g) / scale).max())
    if worst > tol:
        raise InvalidInputError(
            f"{who}: expected a symmetric {name}, got a relative asymmetry of "
            f"{worst:.3g}. Symmetrize it with (K + K.T) / 2 if that is intended."
        )
    return g


#: Tile of the symmetry checks: ``K[i, j]`` against ``K[j, i]`` tile by tile, so the transposed
#: reads stay in cache (one ``torch.equal`` of a 2000 x 2000 matrix against its transpose read
#: column by column took 33 ms, about ten times a contiguous pass).
_TILE = 256


def _tiles(n: int) -> list[tuple[slice, slice]]:
    """The tiles ``(rows, cols)`` on and above the diagonal of an ``N x N`` matrix."""
    cuts = [slice(i, min(i + _TILE, n)) for i in range(0, n, _TILE)]
    return [(r, c) for i, r in enumerate(cuts) for c in cuts[i:]]


def _exactly_symmetric(g: torch.Tensor) -> bool:
    """``K == K^T`` bit for bit (every matrix of a batch), tile by tile."""
    return all(
        torch.equal(g[..., r, c], g[..., c, r].transpose(-1, -2)) for r, c in _tiles(g.shape[-1])
    )


def _max_asymmetry(g: torch.Tensor) -> torch.Tensor:
    """``max |K - K^T|`` of every matrix of a batch ``[...]``, tile by tile."""
    worst = torch.zeros(g.shape[:-2], dtype=g.dtype, device=g.device)
    for r, c in _tiles(g.shape[-1]):
        diff = (g[..., r, c] - g[..., c, r].transpose(-1, -2)).abs_().amax(dim=(-2, -1))
        worst = torch.maximum(worst, diff)
    return worst


def gram_is_low_precision(gram: Any) -> bool:
    """True when the caller's Gram was in a dtype coarser than float64."""
    if isinstance(gram, torch.Tensor):
        return gram.dtype in (torch.float16, torch.bfloat16, torch.float32)
    return isinstance(gram, np.ndarray) and gram.dtype in (np.float16, np.float32)


def gram_eps(gram: torch.Tensor) -> float:
    """Machine epsilon of the caller's Gram dtype, float64's at least (integers are exact)."""
    eps = torch.finfo(DEFAULT_DTYPE).eps
    if gram.is_floating_point():
        eps = max(eps, torch.finfo(gram.dtype).eps)
    return eps


def check_dense(x: torch.Tensor, name: str, who: str) -> None:
    """Reject sparse and other non-strided layouts (they reach no dense kernel intact)."""
    if x.layout != torch.strided:
        raise InvalidTypeError(
            f"{who}: expected {name} as a dense tensor, got layout {x.layout}. "
            "Convert it with .to_dense()."
        )


def check_floating_dtype(dtype: Any, who: str) -> torch.dtype:
    """Return ``dtype`` if it is a torch floating dtype, else raise."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise InvalidParameterError(
            f"{who}: expected dtype as a torch floating dtype, got {dtype!r}. "
            "Pass dtype=torch.float64."
        )
    return dtype


def check_batch_shapes(grams: list[torch.Tensor], who: str) -> None:
    """The batch dimensions ``[...]`` of ``[..., N, N]`` Grams must broadcast together."""
    shapes = [tuple(g.shape[:-2]) for g in grams]
    try:
        torch.broadcast_shapes(*shapes)
    except RuntimeError as exc:
        raise InvalidInputError(
            f"{who}: expected Gram batch shapes that broadcast together, got "
            f"{', '.join(str(s) for s in shapes)}. Stack the Grams to matching batch shapes."
        ) from exc


def check_same_size(grams: list[torch.Tensor], who: str) -> None:
    """All Grams must describe the same N samples."""
    n = grams[0].shape[-1]
    for i, g in enumerate(grams[1:], start=2):
        if g.shape[-1] != n:
            raise InvalidInputError(
                f"{who}: expected Grams of the same N samples, got N = {n} (argument 1) and "
                f"N = {g.shape[-1]} (argument {i}). Build them on the same batch."
            )
