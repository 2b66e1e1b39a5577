"""Measure one batch: activations → distances → kernel widths → Grams → per-layer quantities.

:class:`BatchMeasurer` is the maths half of :class:`~infoplane.InformationPlane`: given the input
batch, its label ids and the captured activations (in forward order), it checks them, chooses
the kernel widths with each split's own width rules, builds the Grams and returns one row of
:data:`~infoplane.schema.ESTIMATES` per layer. It never runs the model, writes files or logs.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from infoplane import distributed as ddp
from infoplane.errors import LayerNotFoundError, NonFiniteActivationError
from infoplane.functional.bandwidth import LabelAlignment, WidthRule
from infoplane.functional.kernels import (
    _gram_from_squared_distances,
    _squared_distances,
)
from infoplane.functional.measures import plane_step


class LabelKernel:
    """The label Gram of a batch from its integer ids: the class indicator (``sigma=None``, the
    fast path of :func:`~infoplane.functional.measures.plane_step`) or a Gaussian of width
    ``sigma`` on one-hot rows."""

    def __init__(self, sigma: float | None, num_classes: int | None) -> None:
        self.sigma = sigma
        self.num_classes = num_classes

    @property
    def indicator(self) -> bool:
        return self.sigma is None

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        if self.sigma is None:
            return (ids[:, None] == ids[None, :]).to(torch.float64)
        k = self.num_classes or int(ids.max()) + 1
        one_hot = torch.nn.functional.one_hot(ids, k).to(torch.float64)
        return _gram_from_squared_distances(_squared_distances(one_hot), self.sigma)


class WidthState:
    """The width rules of one split: the input's and one per measured layer."""

    def __init__(self, x_rule: WidthRule, rules: Mapping[str, WidthRule]) -> None:
        self.x_rule = copy.deepcopy(x_rule)
        self.rules = {name: copy.deepcopy(rule) for name, rule in rules.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "x_rule": self.x_rule.state_dict(),
            "rules": {n: r.state_dict() for n, r in self.rules.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.x_rule.load_state_dict(state["x_rule"])
        for name, rule_state in state["rules"].items():
            if name not in self.rules:
                raise LayerNotFoundError(
                    f"InformationPlane.load_state_dict: expected layers {list(self.rules)}, got "
                    f"state for {name!r}. The checkpoint belongs to another configuration."
                )
            self.rules[name].load_state_dict(rule_state)


def nonfinite_layers(acts: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the activations holding NaN or Inf, with one pass over each and one host sync.

    ``aminmax`` propagates NaN and reaches ±Inf, so a tensor is finite exactly when its minimum
    and maximum are; the per-layer results are stacked and read back once.
    """
    names = [n for n, t in acts.items() if t.is_floating_point() and t.numel() > 0]
    if not names:
        return []
    ends = torch.stack(
        [torch.stack(torch.aminmax(acts[n])).to(torch.float64) for n in names]
    )  # [L, 2]
    finite = torch.isfinite(ends).all(dim=1).tolist()
    return [n for n, ok in zip(names, finite, strict=True) if not ok]


class BatchMeasurer:
    """Per-layer estimates of one batch, with one :class:`WidthState` per split."""

    def __init__(
        self,
        *,
        alpha: float,
        x_rule: WidthRule,
        rules: Mapping[str, WidthRule],
        label_gram: LabelKernel,
        on_nonfinite: str,
    ) -> None:
        self.alpha = alpha
        self.label_gram = label_gram
        self.on_nonfinite = on_nonfinite
        self._proto = WidthState(x_rule, rules)
        self.states: dict[str, WidthState] = {}

    def state(self, split: str) -> WidthState:
        """The width state of ``split``."""
        del split  # one state shared by every split (changed in the next revision)
        if "shared" not in self.states:
            self.states["shared"] = WidthState(self._proto.x_rule, self._proto.rules)
        return self.states["shared"]

    def measure(
        self,
        x: torch.Tensor,
        ids: torch.Tensor,
        acts: Mapping[str, torch.Tensor],
        *,
        split: str,
        update: bool,
    ) -> torch.Tensor | None:
        """``[L, len(ESTIMATES)]`` float64 estimates, or None if a layer is not finite and the
        policy is to skip. ``update=False`` (probe sets) leaves every width state untouched."""
        if not self._finite(acts):
            return None
        state = self.state(split)
        y_gram = self.label_gram(ids)
        x2d = x.reshape(x.shape[0], -1)
        d2_x = _squared_distances(x2d)
        sigmas = [_width(state.x_rule, d2_x, x2d.shape[1], y_gram, update)]
        d2_ts = []
        for name, t in acts.items():
            t2d = t.reshape(t.shape[0], -1)
            d2 = _squared_distances(t2d)
            d2_ts.append(d2)
            sigmas.append(_width(state.rules[name], d2, t2d.shape[1], y_gram, update))
        sigma = torch.stack([s.to(torch.float64).reshape(()) for s in sigmas])
        if update and ddp.is_distributed():
            sigma = ddp.broadcast(sigma)  # identical widths on every rank, by construction
        k_x = _gram_from_squared_distances(d2_x, sigma[0])
        k_t = _gram_from_squared_distances(torch.stack(d2_ts), sigma[1:, None, None])
        out = self._step(k_x, k_t, ids, y_gram)
        return torch.stack(
            [
                out["i_xt"],
                out["i_ty"],
                out["h_t"],
                out["h_x"].expand_as(out["h_t"]),
                out["h_y"].expand_as(out["h_t"]),
                sigma[1:],
            ]
        ).T

    def _step(
        self, k_x: torch.Tensor, k_t: torch.Tensor, ids: torch.Tensor, y_gram: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        if self.label_gram.indicator:
            return plane_step(k_x, k_t, ids, self.alpha)
        return plane_step(k_x, k_t, None, self.alpha, k_y=y_gram)

    def _finite(self, acts: Mapping[str, torch.Tensor]) -> bool:
        bad = nonfinite_layers(acts)
        if not bad:
            return True
        msg = (
            f"InformationPlane.measure: expected finite activations, got NaN/Inf in {bad}. "
            "The run is probably diverging (lower the learning rate)"
        )
        if self.on_nonfinite == "raise":
            raise NonFiniteActivationError(msg + ", or pass on_nonfinite='skip'.")
        warnings.warn(msg + "; the step is recorded as skipped.", RuntimeWarning, stacklevel=4)
        return False


def _width(
    rule: WidthRule, d2: torch.Tensor, dim: int, y_gram: torch.Tensor, update: bool
) -> torch.Tensor:
    if not update and isinstance(rule, LabelAlignment):
        # Probe sets: no moving-average update, and always the steady-state grid. The rule's
        # step counter only moves with per-step measurements, so reading it here would make
        # a probe's widths (and entropies, by up to ~0.1 bit) depend on how many steps were
        # measured before, and a probe-only run would search the 3x denser warm-up grid on
        # every batch forever.
        steady = copy.copy(rule)
        steady.warmup_steps = 0
        return steady.best_candidate(d2, y_gram)
    return rule(d2, dim, y_gram)


__all__ = ["BatchMeasurer", "LabelKernel", "WidthState", "nonfinite_layers"]
