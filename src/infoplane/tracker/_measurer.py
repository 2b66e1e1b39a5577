"""Measure one batch: activations → distances → kernel widths → Grams → per-layer quantities.

:class:`BatchMeasurer` is the maths half of :class:`~infoplane.InformationPlane`: given the input
batch, its label ids and the captured activations (in forward order), it checks them, chooses
the kernel widths with each split's own width rules, builds the Grams and returns one row of
:data:`~infoplane.schema.ESTIMATES` per layer. It never runs the model, writes files or logs.
"""

from __future__ import annotations

import copy
import warnings
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from infoplane import distributed as ddp
from infoplane._validation import all_finite
from infoplane.errors import LayerNotFoundError, NonFiniteActivationError
from infoplane.functional.kernels import (
    gram_from_squared_distances,
    label_gram,
    stacked_squared_distances,
)
from infoplane.functional.measures import plane_step, plane_step_with_controls
from infoplane.schema import CONTROL_FIELDS, ESTIMATES
from infoplane.tracker._reader import LayerBatch
from infoplane.widths import Fixed, WidthRule, batch_widths


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
        return label_gram(ids, self.num_classes, sigma=self.sigma)


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
    """Per-layer estimates of one batch, with one :class:`WidthState` per split.

    Controls (``controls``, any of :data:`~infoplane.schema.CONTROLS`), measured on the same
    activations as the estimate:

    * ``"null"``: the null floor. I(X;T) with the samples of X permuted against T, and I(T;Y)
      with the labels permuted, at the estimate's widths. The permutations are seeded by
      ``(seed, split)`` (the tracker passes its run index): the same permutation at every step,
      so the floor's trajectory moves with the representation, not with a new draw each step;
      deterministic and identical on every process.
    * ``"fixed"``: the fixed-width control. The same step with each width held fixed at the
      width chosen on the split's first measured batch (or at ``fixed_widths[layer]``, e.g. the
      final widths of an earlier run; ``"input"`` names the input's width), so what moves is the
      representation, not the moving average of the width rule.
    """

    def __init__(
        self,
        *,
        alpha: float,
        x_rule: WidthRule,
        rules: Mapping[str, WidthRule],
        label_gram: LabelKernel,
        on_nonfinite: str,
        controls: Sequence[str] = (),
        fixed_widths: Mapping[str, float] | None = None,
        seed: int = 0,
    ) -> None:
        self.alpha = alpha
        self.seed = int(seed)
        self.label_gram = label_gram
        self.on_nonfinite = on_nonfinite
        self.controls = tuple(controls)
        self.fixed_widths = dict(fixed_widths or {})
        self._proto = WidthState(x_rule, rules)
        self.states: dict[str, WidthState] = {}
        #: Per split: the widths of the fixed-width control, ``[1 + L]`` (input first).
        self.fixed: dict[str, torch.Tensor] = {}
        self._input_held: dict[str, bool] = {}  # per split: see _holds_input_width

    @property
    def columns(self) -> tuple[str, ...]:
        """The quantities of a row of :meth:`measure`: the estimates, then each control's."""
        return ESTIMATES + tuple(f for c in self.controls for f in CONTROL_FIELDS[c])

    def rename_layers(self, layers: Mapping[str, str]) -> None:
        """Measure ``layers`` (in this order), each with a copy of the rule and fixed width of
        ``layers[name]``, a current layer: a module run k times per forward becomes k layers
        ``name:0`` ... ``name:k-1``. Called before the first measurement (no state is kept)."""
        rules = self._proto.rules
        self._proto = WidthState(self._proto.x_rule, {n: rules[b] for n, b in layers.items()})
        held = self.fixed_widths
        self.fixed_widths = {
            **{n: held[b] for n, b in layers.items() if b in held},
            **({"input": held["input"]} if "input" in held else {}),
        }
        self.states.clear()

    def state(self, split: str) -> WidthState:
        """The width state of ``split`` (each split has its own moving averages)."""
        if split not in self.states:
            self.states[split] = WidthState(self._proto.x_rule, self._proto.rules)
        return self.states[split]

    @torch.no_grad()
    def measure(
        self, batch: LayerBatch, *, split: str, step: int, update: bool, gather: bool
    ) -> tuple[torch.Tensor | None, int]:
        """``([L, len(columns)]`` float64 rows or None, N)``: None if a layer is not finite and
        the policy is to skip. ``update=False`` (probe sets) leaves every width rule's state
        untouched. ``gather=True`` measures the concatenation of every rank's shard under
        torch.distributed (the one place of the tracker's gather; the widths are broadcast
        from rank 0 below), so every rank computes the same numbers."""
        x, ids, acts = batch
        if gather and ddp.is_distributed():
            x, ids = ddp.all_gather_cat(x), ddp.all_gather_cat(ids)
            acts = {n: ddp.all_gather_cat(t) for n, t in acts.items()}
        return self._measure(x, ids, acts, split=split, step=step, update=update), x.shape[0]

    def _measure(
        self,
        x: torch.Tensor,
        ids: torch.Tensor,
        acts: Mapping[str, torch.Tensor],
        *,
        split: str,
        step: int,
        update: bool,
    ) -> torch.Tensor | None:
        d2, dims = _distances(x, acts)
        # A NaN or Inf activation makes its layer's distances non-finite (an Inf's square is
        # Inf, Inf - Inf is NaN, and no distance becomes -Inf): one check of the small
        # [1 + L, N, N] distances instead of a pass over every activation, which is read only
        # to name the layers (or when finite activations overflowed their distances).
        if not all_finite(d2) and not self._finite(acts):
            return None
        # Probe sets look widths up without creating or moving a split's state.
        state = self.state(split) if update else self.states.get(split, self._proto)
        y_gram = self.label_gram(ids)
        d2_x, d2_t = d2[0], d2[1:]
        rules = [state.x_rule, *(state.rules[name] for name in acts)]
        sigma = batch_widths(rules, d2, dims, y_gram, step=step, update=update)
        if update and ddp.is_distributed():
            sigma = ddp.broadcast(sigma)  # identical widths on every rank, by construction
        k_x = gram_from_squared_distances(d2_x, sigma[0])
        k_t = gram_from_squared_distances(d2_t, sigma[1:, None, None])
        null = (
            self._permutations(k_x.shape[0], split, ids.device) if "null" in self.controls else None
        )
        fixed = (
            self._fixed_grams(d2_x, d2_t, split, sigma, acts) if "fixed" in self.controls else None
        )
        if self.label_gram.indicator:  # the estimate and its controls in one eigenvalue batch
            out = plane_step_with_controls(k_x, k_t, ids, self.alpha, null=null, fixed=fixed)
        else:
            out = self._general_step(k_x, k_t, y_gram, null, fixed)
        h_t = out["h_t"]
        cols = [
            out["i_xt"],
            out["i_ty"],
            h_t,
            out["h_x"].expand_as(h_t),
            out["h_y"].expand_as(h_t),
            sigma[1:],
        ]
        cols += [out[q] for c in self.controls for q in CONTROL_FIELDS[c]]
        return torch.stack(cols).T

    def _permutations(
        self, n: int, split: str, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The null floor's ``(perm_x, perm_y)``, seeded by ``(seed, split)``."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(split.encode()))
        perm_x = torch.randperm(n, generator=g).to(device)
        return perm_x, torch.randperm(n, generator=g).to(device)

    def _fixed_grams(
        self, d2_x, d2_t, split, sigma, acts
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The Grams at the split's held widths (set on its first measured batch); None for
        the input's where its held width is the estimate's."""
        if split not in self.fixed:
            held = sigma.clone()
            for i, name in enumerate(["input", *acts]):
                if name in self.fixed_widths:
                    held[i] = float(self.fixed_widths[name])
            # Probe batches differ across ranks: hold rank 0's widths everywhere.
            self.fixed[split] = ddp.broadcast(held)
        held = self.fixed[split].to(sigma.device)
        k_x = None if self._holds_input_width(split) else gram_from_squared_distances(d2_x, held[0])
        return k_x, gram_from_squared_distances(d2_t, held[1:, None, None])

    def _holds_input_width(self, split: str) -> bool:
        """True when the input's held width is the estimate's at every step: a fixed input
        rule (the default) held at its own width. The control then shares K_X and S(X) with
        the estimate, one eigenvalue problem fewer. Decided on the host once per split."""
        if split not in self._input_held:
            rule = self._proto.x_rule
            held = float(self.fixed[split][0])
            self._input_held[split] = isinstance(rule, Fixed) and held == rule.sigma
        return self._input_held[split]

    def _general_step(self, k_x, k_t, y_gram, null, fixed) -> dict[str, torch.Tensor]:
        """A label Gram other than the indicator: one :func:`plane_step` per quantity."""
        out = plane_step(k_x, k_t, None, self.alpha, k_y=y_gram)
        if null is not None:
            px, py = null
            o = plane_step(k_x[px][:, px], k_t, None, self.alpha, k_y=y_gram[py][:, py])
            out["i_xt_null"], out["i_ty_null"] = o["i_xt"], o["i_ty"]
        if fixed is not None:
            k_x_f = k_x if fixed[0] is None else fixed[0]
            o = plane_step(k_x_f, fixed[1], None, self.alpha, k_y=y_gram)
            out["i_xt_fixed"], out["i_ty_fixed"] = o["i_xt"], o["i_ty"]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self._proto.rules),
            "widths": {split: st.state_dict() for split, st in self.states.items()},
            "fixed": {split: t.tolist() for split, t in self.fixed.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        layers = list(state.get("layers", self._proto.rules))
        if layers != list(self._proto.rules):
            raise LayerNotFoundError(
                f"InformationPlane.load_state_dict: expected layers {list(self._proto.rules)}, "
                f"got state for {layers}. The checkpoint belongs to another configuration."
            )
        for split, st in state["widths"].items():
            self.state(split).load_state_dict(st)
        self.fixed = {
            split: torch.tensor(v, dtype=torch.float64) for split, v in state["fixed"].items()
        }
        self._input_held.clear()

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


def _distances(x: torch.Tensor, acts: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    """Squared distances ``[1 + L, N, N]`` of the input and of every layer (input first), and
    the flattened dimension of each."""
    flat = [t.reshape(t.shape[0], -1) for t in (x, *acts.values())]
    return stacked_squared_distances(flat), [t.shape[1] for t in flat]


__all__ = ["BatchMeasurer", "LabelKernel", "WidthState", "nonfinite_layers"]
