"""Turn what a user passes as a batch into what the tracker needs: a forward, X, Y and N.

Accepted batches (:func:`prepare_batch`):

* a tensor ``x`` (or anything :func:`torch.as_tensor` reads), with ``y`` given: the model is
  called as ``model(x)``;
* a pair ``(x, y)`` (a tuple or list, as a DataLoader yields it; extra items are ignored) when
  ``y`` is not given;
* a mapping, e.g. a Hugging Face ``BatchEncoding``: the model is called as ``model(**batch)``
  without the ``labels`` entry, and the labels are ``batch["labels"]`` when ``y`` is not given.
  X is the first floating-point tensor among the values (``pixel_values``, ``inputs_embeds``),
  else the first tensor (``input_ids``).

Token ids are not a meaningful X for a Gaussian kernel (the distance between ids 17 and 18 means
nothing). Name an ``x_layer`` (e.g. the embedding module) whose output is X; the tracker captures
it. An integer X (other than ``uint8`` images) without an ``x_layer`` warns once per caller with
:class:`TokenIdsWarning`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from infoplane._validation import as_tensor
from infoplane.errors import InvalidInputError

#: The key of the labels in a mapping batch (Hugging Face's convention).
LABELS_KEY = "labels"

_WARNED: set[str] = set()


class TokenIdsWarning(UserWarning):
    """X is integer data (token ids) and no ``x_layer`` says which representation to use."""


@dataclass(frozen=True)
class PreparedBatch:
    """One batch, ready to measure.

    Attributes:
        forward: calls the model on the batch (``model(x)`` or ``model(**inputs)``).
        x: the input representation X ``[N, ...]``, or ``None`` when X is the output of the
            ``x_layer`` (captured during ``forward``).
        y: the labels ``[N]`` or ``[N, K]`` as given.
        n: the number of samples N.
    """

    forward: Callable[[nn.Module], Any]
    x: torch.Tensor | None
    y: torch.Tensor
    n: int


def _x_of(inputs: Mapping[str, Any]) -> torch.Tensor | None:
    tensors = [v for v in inputs.values() if isinstance(v, torch.Tensor) and v.dim() >= 1]
    floating = [t for t in tensors if t.is_floating_point()]
    return (floating or tensors or [None])[0]


def _split(
    batch: Any, y: Any, who: str, like: torch.Tensor | None = None
) -> tuple[Callable[[nn.Module], Any], Any, Any]:
    """``(forward, x, y)`` of a batch, before any check. Data that is not yet a tensor (a list,
    an array) becomes one with the dtype and device of ``like`` (a model parameter), so a list of
    Python floats (float64) reaches a float32 model as float32."""
    if isinstance(batch, Mapping):
        inputs = {k: v for k, v in batch.items() if k != LABELS_KEY}
        if y is None:
            y = batch.get(LABELS_KEY)
        return (lambda model: model(**inputs)), _x_of(inputs), y
    if y is None and isinstance(batch, (tuple, list)) and len(batch) >= 2:
        batch, y = batch[0], batch[1]
        if isinstance(batch, Mapping):
            return _split(batch, y, who, like)
    x = as_tensor(batch, "x", who)
    if not isinstance(batch, torch.Tensor) and like is not None and x.is_floating_point():
        x = x.to(dtype=like.dtype, device=like.device)
    return (lambda model: model(x)), x, y


def to_device(batch: Any, device: torch.device | str) -> Any:
    """``batch`` with every tensor in it moved to ``device`` (mappings, tuples and lists kept;
    a ``BatchEncoding`` stays one through its own ``.to``)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, Mapping):
        move = getattr(batch, "to", None)
        if callable(move):
            return move(device)
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def prepare_batch(
    batch: Any,
    y: Any = None,
    *,
    x_layer: Any = None,
    like: torch.Tensor | None = None,
    who: str = "prepare_batch",
) -> PreparedBatch:
    """A :class:`PreparedBatch` from a tensor, an ``(x, y)`` pair or a mapping (module docstring).

    Args:
        batch: the batch as the user has it.
        y: the labels; ``None`` takes them from the batch (its second item, or ``labels``).
        x_layer: the layer (name or module) whose output is X; ``None`` uses the batch's input.
        like: a floating tensor (e.g. a model parameter) whose dtype and device a batch given
            as a list or an array takes.
        who: the caller, for messages.

    Raises:
        InvalidInputError: no labels, or X and Y with different numbers of samples.
    """
    forward, x, y = _split(batch, y, who, like)
    if y is None:
        raise InvalidInputError(
            f"{who}: expected labels, got none. Pass y=..., a batch (x, y), or a mapping with a "
            f"{LABELS_KEY!r} entry."
        )
    y = as_tensor(y, "y", who)
    n = int(y.shape[0]) if y.dim() >= 1 else 0
    if x_layer is not None:
        return PreparedBatch(forward, None, y, n)
    if x is None:
        raise InvalidInputError(
            f"{who}: expected a tensor among the batch's inputs, got none. Pass x_layer=... to "
            "take X from a layer's output."
        )
    if x.dim() < 1 or x.shape[0] != n:
        raise InvalidInputError(
            f"{who}: expected x and y with the same number of samples N, got x "
            f"{tuple(x.shape)} and y {tuple(y.shape)}."
        )
    if not x.is_floating_point() and x.dtype != torch.uint8 and who not in _WARNED:
        _WARNED.add(who)
        warnings.warn(
            f"{who}: X is integer data ({x.dtype}, e.g. token ids), which a Gaussian kernel "
            "reads as coordinates. Pass x_layer=<the embedding module's name> to measure "
            "I(X;T) on a meaningful representation.",
            TokenIdsWarning,
            stacklevel=3,
        )
    return PreparedBatch(forward, x, y, n)


__all__ = ["LABELS_KEY", "PreparedBatch", "TokenIdsWarning", "prepare_batch", "to_device"]
