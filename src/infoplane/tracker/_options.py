"""The tracker's options: each constraint declared once, read everywhere an option is taken.

:data:`PARAMETER_CONSTRAINTS` maps an option's name to the one check of its value (in the manner
of scikit-learn's ``_parameter_constraints``); :func:`validate_option` applies it. The tracker's
constructor, the experiment settings (:mod:`infoplane.experiments.config`) and both callbacks
(:mod:`infoplane.integrations`) validate the options they share through it, so an option has the
same rule and the same one-line error wherever it is passed. The checks hold no state.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from infoplane._validation import (
    check_alpha,
    check_floating_data,
    check_integer,
    check_positive_scalar,
)
from infoplane.capture import layer_names
from infoplane.errors import (
    InvalidParameterError,
    InvalidTypeError,
    LayerNotFoundError,
)
from infoplane.schema import CONTROLS
from infoplane.widths import WidthRule, make_width_rule

NONFINITE_POLICIES = ("raise", "skip")


def check_fixed_widths(fixed: Any, names: Sequence[str], who: str) -> dict[str, float]:
    if fixed is None:
        return {}
    if not isinstance(fixed, Mapping):
        raise InvalidTypeError(
            f"{who}: expected fixed_widths as a mapping {{layer: sigma}}, got "
            f"{type(fixed).__name__}."
        )
    allowed = ["input", *names]
    unknown = sorted(set(fixed) - set(allowed))
    if unknown:
        raise LayerNotFoundError(
            f"{who}: expected fixed_widths keys among {allowed}, got {unknown}."
        )
    return {k: check_positive_scalar(v, f"fixed_widths[{k!r}]", who) for k, v in fixed.items()}


def layer_rules(width: Any, names: Sequence[str], who: str) -> dict[str, WidthRule]:
    """One width rule per measured layer: the same rule for all, or ``{layer: rule}``."""
    if isinstance(width, Mapping):
        unknown = sorted(set(width) - set(names))
        if unknown:
            raise LayerNotFoundError(
                f"{who}: expected width keys among the measured layers {names}, got {unknown}."
            )
        return {n: make_width_rule(width.get(n, "alignment")) for n in names}
    proto = make_width_rule(width)
    return {n: copy.deepcopy(proto) for n in names}


def check_label_kernel(label_kernel: Any, who: str) -> float | None:
    if label_kernel == "indicator":
        return None
    if isinstance(label_kernel, (int, float)) and not isinstance(label_kernel, bool):
        if math.isfinite(label_kernel) and label_kernel > 0:
            return float(label_kernel)
    raise InvalidParameterError(
        f"{who}: expected label_kernel 'indicator' or a positive width, got {label_kernel!r}."
    )


def check_controls(controls: Any, who: str) -> tuple[str, ...]:
    if isinstance(controls, str) or not isinstance(controls, Iterable):
        raise InvalidTypeError(
            f"{who}: expected controls as a tuple of names among {CONTROLS}, got "
            f"{controls!r}. Pass e.g. controls=('null',), or controls=() for none."
        )
    controls = tuple(controls)
    bad = [c for c in controls if c not in CONTROLS]
    if bad or len(set(controls)) != len(controls):
        raise InvalidParameterError(
            f"{who}: expected distinct controls among {CONTROLS}, got {controls!r}."
        )
    return tuple(c for c in CONTROLS if c in controls)


def check_x_layer(model: nn.Module, x_layer: Any, who: str) -> str | None:
    if x_layer is None:
        return None
    names = layer_names(model, [x_layer], who)
    if len(names) != 1:
        raise InvalidParameterError(
            f"{who}: expected x_layer to name one layer, got {x_layer!r} matching {names}."
        )
    return names[0]


def check_finite(x: torch.Tensor, who: str) -> None:
    """Floating X must be finite (the functional API's check: one ``aminmax`` pass)."""
    if x.is_floating_point():
        check_floating_data(x, "x", who)


def check_on_nonfinite(policy: Any, who: str) -> str:
    if policy not in NONFINITE_POLICIES:
        raise InvalidParameterError(
            f"{who}: expected on_nonfinite in {NONFINITE_POLICIES}, got {policy!r}."
        )
    return policy


def _integer(minimum: int) -> Callable[[Any, str, str], int]:
    def check(value: Any, name: str, who: str) -> int:
        return check_integer(value, name, who, minimum=minimum)

    return check


#: Each shared option's one check: ``check(value, name, who)`` returns the value to use or raises
#: one line naming ``who``. ``every=0`` means "never" (the callbacks' switch for the training
#: batch; :meth:`~infoplane.InformationPlane.on_train_batch` then never measures).
PARAMETER_CONSTRAINTS: dict[str, Callable[[Any, str, str], Any]] = {
    "alpha": lambda value, name, who: check_alpha(value, who),
    "every": _integer(0),
    "run": _integer(0),
    "batch_size": _integer(2),
    "null_permutations": _integer(1),
    "controls": lambda value, name, who: check_controls(value, who),
    "label_kernel": lambda value, name, who: check_label_kernel(value, who),
    "on_nonfinite": lambda value, name, who: check_on_nonfinite(value, who),
}


def validate_option(name: str, value: Any, who: str) -> Any:
    """``value`` checked against the declaration of option ``name`` (see
    :data:`PARAMETER_CONSTRAINTS`), on behalf of ``who``."""
    return PARAMETER_CONSTRAINTS[name](value, name, who)
