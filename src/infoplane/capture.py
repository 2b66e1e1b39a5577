"""Capture named layers' outputs with forward hooks that never outlive their context.

Hooks are registered inside ``try`` and removed in ``finally`` (also when the forward raises or is
interrupted). Each hook keeps a detached clone of the output, so in-place operations later in the
forward (``nn.ReLU(inplace=True)``) cannot change what was captured.

Which layers (:func:`resolve_layers`): a layer is given as a qualified name from
``model.named_modules()`` (``"encoder.block.act"``), as the module object itself, or as a glob
pattern over the qualified names (``"features.*"``, :func:`fnmatch.fnmatchcase`; ``*`` also
matches dots, so a pattern selects every module below a container). A module that runs several
times in one forward (one ``self.relu`` reused by a ResNet block) is measured once per call, as
``name:0``, ``name:1``, ...; ``"name:1"`` names that one call. Only a module that runs more than
once gets the suffix.

Which layers by default (:func:`default_layers`, :func:`is_activation`): every activation module,
that is an instance of a class of ``torch.nn.modules.activation`` other than the attention and
normalising maps (:data:`NON_ACTIVATIONS`), or a module without children whose class name
contains the name of such a class (Hugging Face's ``GELUActivation``, ``NewGELUActivation``,
``QuickGELUActivation``, ``PytorchGELUTanh``, a user's ``MyReLU``).

Activations called as functions (``F.relu`` in ``forward``) are invisible to hooks;
:func:`trace_functional` exposes them through a ``torch.fx`` traced copy of the model.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import inspect
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.modules import activation as _torch_activation

from infoplane.errors import InvalidInputError, InvalidTypeError, LayerNotFoundError, first_line

#: Classes of ``torch.nn.modules.activation`` that are not element-wise non-linearities.
NON_ACTIVATIONS: frozenset[str] = frozenset(
    {"MultiheadAttention", "Softmax", "Softmin", "Softmax2d", "LogSoftmax"}
)

#: Every activation class of ``torch.nn`` (derived from ``torch.nn.modules.activation``).
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = tuple(
    cls
    for name, cls in vars(_torch_activation).items()
    if inspect.isclass(cls)
    and issubclass(cls, nn.Module)
    and cls.__module__ == _torch_activation.__name__
    and name not in NON_ACTIVATIONS
)
_ACTIVATION_NAMES: tuple[str, ...] = tuple(cls.__name__ for cls in ACTIVATION_TYPES)
_CALL = re.compile(r"^(?P<base>.+):(?P<call>\d+)$")
_GLOB_CHARS = frozenset("*?[")


class FunctionalActivation(nn.Identity):
    """Identity placed after a functional activation by :func:`trace_functional`.

    Its output is the activation's output, so hooks (and :func:`default_layers`) can see it.
    """

    def __init__(self, function: str) -> None:
        super().__init__()
        self.function = function

    def extra_repr(self) -> str:
        return self.function


def is_activation(module: nn.Module) -> bool:
    """True for the modules measured by default (the rule in this module's docstring)."""
    if isinstance(module, (*ACTIVATION_TYPES, FunctionalActivation)):
        return True
    if next(module.children(), None) is not None:
        return False
    name = type(module).__name__
    return any(act in name for act in _ACTIVATION_NAMES)


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


# ----------------------------------------------------------------------------- layer selection
def _unwrapped(model: nn.Module) -> dict[str, nn.Module]:
    """Qualified names of ``model``'s modules, also without the ``module.`` prefix of a wrapper.

    DistributedDataParallel and DataParallel hold the user's model as ``.module``; its layers
    keep the names they have in the user's model.
    """
    modules = dict(model.named_modules())
    inner = getattr(model, "module", None)
    if isinstance(inner, nn.Module):
        for name, module in inner.named_modules():
            if name:
                modules.setdefault(name, module)
    return modules


def _not_found(name: str, modules: Mapping[str, nn.Module], who: str) -> LayerNotFoundError:
    valid = [n for n in modules if n]
    close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
    hint = f"Did you mean {close}?" if close else f"Valid names include {valid[:8]}."
    return LayerNotFoundError(
        f"{who}: expected a layer name from model.named_modules(), got {name!r}. {hint}"
    )


def _expand(layer: Any, modules: Mapping[str, nn.Module], who: str) -> list[tuple[str, str]]:
    """``[(result name, module name)]`` for one entry of ``layers``."""
    if isinstance(layer, nn.Module):
        names = [n for n, m in modules.items() if m is layer and n and not n.startswith("module.")]
        names = names or [n for n, m in modules.items() if m is layer and n]
        if not names:
            raise LayerNotFoundError(
                f"{who}: expected a module of the model, got a {type(layer).__name__} that is "
                "not among model.named_modules(). Pass a submodule of the measured model."
            )
        return [(names[0], names[0])]
    if not isinstance(layer, str):
        raise InvalidTypeError(f"{who}: expected layer names as strings or modules, got {layer!r}.")
    if layer in modules and layer:
        return [(layer, layer)]
    if _GLOB_CHARS & set(layer):
        matched = [n for n in modules if n and not n.startswith("module.")]
        matched = [n for n in matched if fnmatch.fnmatchcase(n, layer)]
        if not matched:
            raise LayerNotFoundError(
                f"{who}: expected a pattern that matches module names, got {layer!r} matching "
                f"none. Valid names include {[n for n in modules if n][:8]}."
            )
        return [(n, n) for n in matched]
    call = _CALL.match(layer)
    if call and call["base"] in modules:
        return [(layer, call["base"])]
    raise _not_found(layer, modules, who)


def resolve_layers(model: nn.Module, layers: Sequence[Any], who: str) -> dict[str, nn.Module]:
    """Map layers (names, modules, glob patterns, ``name:k`` calls) to modules of ``model``.

    Returns ``{result name: module}``. Unknown names raise with the closest valid ones; a name
    missing at the top level is also looked up under ``module.`` (DistributedDataParallel and
    DataParallel wrap the user's model there). A module selected twice is an error.
    """
    if isinstance(layers, (str, nn.Module)) or not isinstance(layers, Sequence):
        raise InvalidTypeError(
            f"{who}: expected layers as a list of module names, got {type(layers).__name__}."
        )
    modules = _unwrapped(model)
    found: dict[str, nn.Module] = {}
    for layer in layers:
        for name, module_name in _expand(layer, modules, who):
            if name in found:
                raise InvalidInputError(
                    f"{who}: expected distinct layer names, got {name!r} twice."
                )
            found[name] = modules[module_name]
    return found


def layer_names(model: nn.Module, layers: Sequence[Any], who: str) -> list[str]:
    """The names :func:`capture` gives ``layers`` (patterns expanded, modules named)."""
    return list(resolve_layers(model, layers, who))


def default_layers(model: nn.Module) -> list[str]:
    """The layers measured when none are named.

    A model that declares ``measured_layers`` (every model of :mod:`infoplane.experiments`) gets
    those. Otherwise: every activation module (:func:`is_activation`), in registration order;
    :class:`InformationPlane` reorders them by the order in which they run.
    """
    declared = getattr(model, "measured_layers", None)
    if declared is None and hasattr(model, "module"):
        declared = getattr(model.module, "measured_layers", None)
    if declared is not None:
        return list(declared)
    names = [n for n, m in model.named_modules() if n and is_activation(m)]
    if not names:
        raise LayerNotFoundError(
            "InformationPlane: expected activation modules (nn.ReLU, nn.Tanh, ...) to measure by "
            "default, found none (activations called as functions are invisible to hooks; "
            "infoplane.capture.trace_functional(model) exposes them). "
            "Name the layers to measure with layers=[...]."
        )
    return names


def call_base(name: str) -> str:
    """The module name of a result name: ``"block.relu"`` for ``"block.relu:1"``."""
    call = _CALL.match(name)
    return call["base"] if call else name


def missing_layers(layers: Sequence[str], captured: Mapping[str, Any]) -> list[str]:
    """The names of ``layers`` that produced no output in ``captured`` (``name:k`` counts)."""
    ran = set(captured) | {call_base(n) for n in captured}
    return [name for name in layers if name not in ran]


# ----------------------------------------------------------------------------- capture
class _Store:
    """Outputs by name in forward order; a module's second call renames its first to ``:0``."""

    def __init__(self, out: dict[str, torch.Tensor], who: str) -> None:
        self.out = out
        self.calls: dict[str, int] = {}
        self.who = who

    def _kept(self, name: str, output: Any) -> torch.Tensor:
        tensor = first_tensor(output)
        if tensor is None:
            raise InvalidTypeError(
                f"{self.who}: expected layer {name!r} to output a tensor, got "
                f"{type(output).__name__} with no tensor in it."
            )
        return tensor.detach().clone()

    def _count(self, name: str) -> int:
        call = self.calls.get(name, 0)
        self.calls[name] = call + 1
        return call

    def add(self, name: str, output: Any) -> None:
        """Store one call of layer ``name`` (``name:k`` from its second call on)."""
        tensor = self._kept(name, output)
        call = self._count(name)
        if call == 1:  # keep the forward order: rename the first call in place
            items = [(f"{name}:0" if k == name else k, v) for k, v in self.out.items()]
            self.out.clear()
            self.out.update(items)
        self.out[f"{name}:{call}" if call else name] = tensor

    def add_call(self, name: str, wanted: int, output: Any) -> None:
        """Store call ``wanted`` of a module as ``name`` (``"act:1"``) and ignore the others."""
        if self._count(name) == wanted:
            self.out[name] = self._kept(name, output)


@contextlib.contextmanager
def capture(
    model: nn.Module, layers: Sequence[Any], *, who: str = "capture"
) -> Iterator[dict[str, torch.Tensor]]:
    """Context manager: while open, each layer's output is stored in the yielded dict.

    ``layers`` are names, modules, glob patterns or ``name:k`` calls (module docstring). The
    dict fills in forward order (the order in which the layers ran). Outputs are detached clones
    (in-place operations cannot change them). A layer that runs several times per forward is
    stored once per call as ``name:0``, ``name:1``, ... Hooks are removed on exit, whatever
    happened inside.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from infoplane import capture
        >>> from infoplane.capture import hooks_left
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> with capture(model, ["1", "2"]) as acts:
        ...     _ = model(torch.ones(5, 4))
        >>> {name: tuple(t.shape) for name, t in acts.items()}
        {'1': (5, 3), '2': (5, 2)}
        >>> hooks_left(model)
        []
    """
    modules = resolve_layers(model, layers, who)
    acts: dict[str, torch.Tensor] = {}
    store = _Store(acts, who)
    handles = []

    plain = _unwrapped(model)

    def make_hook(name: str):
        call = _CALL.match(name)
        if call and name not in plain:
            wanted = int(call["call"])
            return lambda module, inputs, output: store.add_call(name, wanted, output)
        return lambda module, inputs, output: store.add(name, output)

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make_hook(name)))
        yield acts
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


# ----------------------------------------------------------------------------- torch.fx
def _functional_name(node: Any) -> str | None:
    """The activation a traced ``call_function``/``call_method`` node computes, if any."""
    if node.op == "call_method":
        name = str(node.target)
    elif node.op == "call_function":
        name = getattr(node.target, "__name__", "")
        if not getattr(node.target, "__module__", "torch").startswith(("torch", "builtins")):
            return None  # a user's own function: traced through, not an activation itself
    else:
        return None
    key = name.rstrip("_").replace("_", "").lower()
    return name if key in _FUNCTIONAL_KEYS else None


_FUNCTIONAL_KEYS: frozenset[str] = frozenset(n.lower() for n in _ACTIVATION_NAMES)


def trace_functional(model: nn.Module, *, who: str = "trace_functional") -> torch.fx.GraphModule:
    """A ``torch.fx`` traced copy of ``model`` whose functional activations are measurable.

    After every activation called as a function or tensor method (``F.relu(h)``,
    ``torch.tanh(h)``, ``h.sigmoid()``, names of :data:`ACTIVATION_TYPES` in lower case) the
    copy runs a :class:`FunctionalActivation` identity module named
    ``functional.<fx node name>`` (``functional.relu``, ``functional.tanh_1``), so
    :func:`capture` and :func:`default_layers` see it. The copy computes the same outputs and
    shares its parameters and submodules with ``model`` (train ``model``, measure the copy).

    Raises:
        InvalidInputError: the model cannot be traced (data-dependent control flow, ...); the
            message carries torch.fx's reason. Use activation modules there instead.
    """
    if not isinstance(model, nn.Module):
        raise InvalidTypeError(f"{who}: expected a torch.nn.Module, got {type(model).__name__}.")
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception as exc:  # torch.fx raises many types (TraceError, TypeError, ...)
        reason = first_line(exc)
        raise InvalidInputError(
            f"{who}: expected a model that torch.fx can trace, got {type(model).__name__} which "
            f"fails with {type(exc).__name__}: {reason}. Call its activations as modules "
            "(nn.ReLU(), ...) and name them in layers=[...]."
        ) from exc
    traced.add_module("functional", nn.Module())
    for node in list(traced.graph.nodes):
        function = _functional_name(node)
        if function is None:
            continue
        traced.functional.add_module(node.name, FunctionalActivation(function))
        with traced.graph.inserting_after(node):
            probe = traced.graph.call_module(f"functional.{node.name}", (node,))
        node.replace_all_uses_with(probe, delete_user_cb=lambda user, p=probe: user is not p)
    traced.recompile()
    return traced
