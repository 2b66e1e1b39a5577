"""Capture named layers' outputs with forward hooks that never outlive their context.

Hooks are registered inside ``try`` and removed in ``finally`` (also when the forward raises or is
interrupted). Each hook keeps a detached clone of the output, so in-place operations later in the
forward (``nn.ReLU(inplace=True)``) cannot change what was captured.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from infoplane.errors import InvalidInputError, InvalidTypeError, LayerNotFoundError

#: Module types whose outputs are "a layer after its non-linearity" for the default selection.
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.RReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Softsign,
    nn.Tanhshrink,
)


def first_tensor(output: Any) -> torch.Tensor | None:
    """The tensor a layer produced: the output itself, or the first tensor in a tuple/list/dict."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for item in output:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def resolve_layers(model: nn.Module, layers: Sequence[str], who: str) -> dict[str, nn.Module]:
    """Map layer names to modules of ``model``; unknown names raise with the closest valid ones.

    A name missing at the top level is also looked up under ``module.`` (DistributedDataParallel
    and DataParallel wrap the user's model there).
    """
    if isinstance(layers, str) or not isinstance(layers, Sequence):
        raise InvalidTypeError(
            f"{who}: expected layers as a list of module names, got {type(layers).__name__}."
        )
    modules = dict(model.named_modules())
    found: dict[str, nn.Module] = {}
    for name in layers:
        if not isinstance(name, str):
            raise InvalidTypeError(f"{who}: expected layer names as strings, got {name!r}.")
        module = modules.get(name, modules.get(f"module.{name}"))
        if module is None or name == "":
            valid = [n for n in modules if n]
            close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
            hint = f"Did you mean {close}?" if close else f"Valid names include {valid[:8]}."
            raise LayerNotFoundError(
                f"{who}: expected a layer name from model.named_modules(), got {name!r}. {hint}"
            )
        if name in found:
            raise InvalidInputError(f"{who}: expected distinct layer names, got {name!r} twice.")
        found[name] = module
    return found


def default_layers(model: nn.Module) -> list[str]:
    """The layers measured when none are named.

    A model that declares ``measured_layers`` (every model of :mod:`infoplane.experiments`) gets
    those. Otherwise: every activation module (each Linear/Conv block's output after its
    non-linearity), in registration order; :class:`InformationPlane` reorders them by the order
    in which they run.
    """
    declared = getattr(model, "measured_layers", None)
    if declared is None and hasattr(model, "module"):
        declared = getattr(model.module, "measured_layers", None)
    if declared is not None:
        return list(declared)
    names = [n for n, m in model.named_modules() if n and isinstance(m, ACTIVATION_TYPES)]
    if not names:
        raise LayerNotFoundError(
            "InformationPlane: expected activation modules (nn.ReLU, nn.Tanh, ...) to measure by "
            "default, found none (activations called as functions are invisible to hooks). "
            "Name the layers to measure with layers=[...]."
        )
    return names


@contextlib.contextmanager
def capture(
    model: nn.Module, layers: Sequence[str], *, who: str = "capture"
) -> Iterator[dict[str, torch.Tensor]]:
    """Context manager: while open, each named layer's output is stored in the yielded dict.

    The dict fills in forward order (the order in which the layers ran). Outputs are detached
    clones (in-place operations cannot change them). A layer that runs more than once per
    forward raises, since its "output" would be ambiguous. Hooks are removed on exit, whatever
    happened inside.

    Example:
        >>> with capture(model, ["layer1.act"]) as acts:
        ...     model(x)
        >>> acts["layer1.act"].shape
    """
    modules = resolve_layers(model, layers, who)
    store: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str):
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            tensor = first_tensor(output)
            if tensor is None:
                raise InvalidTypeError(
                    f"{who}: expected layer {name!r} to output a tensor, got "
                    f"{type(output).__name__} with no tensor in it."
                )
            if name in store:
                raise InvalidInputError(
                    f"{who}: expected layer {name!r} to run once per forward, got a second call "
                    "(a module shared by several layers). Give each layer its own module."
                )
            store[name] = tensor.detach().clone()

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield store
    finally:
        for handle in handles:
            handle.remove()


def hooks_left(model: nn.Module) -> list[str]:
    """Names of modules that still carry any forward (pre-)hook or (full) backward (pre-)hook."""
    left = []
    for name, module in model.named_modules():
        if (
            module._forward_hooks
            or module._forward_pre_hooks
            or module._backward_hooks
            or getattr(module, "_backward_pre_hooks", None)
            or getattr(module, "_forward_hooks_with_kwargs", None)
        ):
            left.append(name or "<root>")
    return left


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode and restore every module's own train/eval flag on exit."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for module, flag in flags:
            module.training = flag
