"""Validation of the tracker's options: each public option checked once, with one clear line.

Plain functions used by :class:`~infoplane.InformationPlane`'s constructor; they hold no state.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from infoplane._validation import check_floating_data, check_positive_scalar
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
