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
from typing import Any, NamedTuple

import torch

from infoplane import distributed as ddp
from infoplane._validation import all_finite
from infoplane.errors import LayerNotFoundError, NonFiniteActivationError
from infoplane.functional.kernels import (
    gram_from_squared_distances,
    label_gram,
    stacked_squared_distances,
)
from infoplane.functional.measures import (
    null_summary,
    plane_step,
    plane_step_with_controls,
    saturated,
)
from infoplane.schema import CONTROL_FIELDS, ESTIMATES
from infoplane.tracker._reader import LayerBatch
from infoplane.widths import WidthRule, batch_widths

#: B, the permuted draws of the null distribution per measured step (see BatchMeasurer).
DEFAULT_NULL_PERMUTATIONS = 19


class StepRows(NamedTuple):
    """What one measured batch gives: ``values`` ``[L, len(columns)]`` (None: skipped), the null
    draws ``[L, 2, B]`` (I(X;T), I(T;Y); None without the null control) and N."""

    values: torch.Tensor | None
    draws: torch.Tensor | None
    n: int


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

    * ``"null"``: the null distribution. ``null_permutations`` (B) draws per step of I(X;T) with
      the samples of X permuted against T and of I(T;Y) with the labels permuted, at the
      estimate's widths; recorded as their mean (the floor), their 95% quantile and the
      permutation p-value. The B permutations are seeded by ``(seed, split)`` (the tracker
      passes its run index): the same draws at every step of a split, so the floor moves with
      the representation, not with a new draw; deterministic and identical on every process.
    * ``"fixed"``: the fixed-width control. The same step with each layer's width held at a
      fixed ratio to the batch's own scale (its median pairwise distance): a rescaled
      representation ``c T`` gets the same Gram, so the control moves only when the geometry
      of T moves. The ratio is the estimate's width over the scale at the split's reference
      step: the first measured step at which every width rule has settled
      (:meth:`~infoplane.widths.WidthRule.settled`: after the alignment rule's warm-up and once
      its moving average has forgotten its start; at once for memoryless rules and for probe
      sets), so the control is NaN before it. ``fixed_widths[layer]`` holds that layer at an
      absolute width instead (e.g. one width shared by the runs being compared; not
      scale-free). The input keeps the estimate's width when its rule is memoryless (nothing
      lags there), else a ratio like the layers.
    """

    def __init__(  # noqa: PLR0913 - the tracker passes each of its measurement options
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
        null_permutations: int = DEFAULT_NULL_PERMUTATIONS,
    ) -> None:
        self.alpha = alpha
        self.null_permutations = int(null_permutations)
        self.seed = int(seed)
        self.label_gram = label_gram
        self.on_nonfinite = on_nonfinite
        self.controls = tuple(controls)
        self.fixed_widths = dict(fixed_widths or {})
        self._proto = WidthState(x_rule, rules)
        self.states: dict[str, WidthState] = {}
        #: Per split, from its reference step on: the fixed-width control's ratios of width to
        #: scale ``[1 + L]`` (input first; an absolute width where ``absolute``), and which
        #: entries are absolute widths. NaN where a tensor had no scale at the reference.
        self.fixed: dict[str, torch.Tensor] = {}
        self.absolute: dict[str, torch.Tensor] = {}

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
    ) -> StepRows:
        """The batch's :class:`StepRows`; ``values`` None if a layer is not finite and the
        policy is to skip. ``update=False`` (probe sets) leaves every width rule's state
        untouched. ``gather=True`` measures the concatenation of every rank's shard under
        torch.distributed (the one place of the tracker's gather; the widths are broadcast
        from rank 0 below), so every rank computes the same numbers."""
        x, ids, acts = batch
        if gather and ddp.is_distributed():
            x, ids = ddp.all_gather_cat(x), ddp.all_gather_cat(ids)
            acts = {n: ddp.all_gather_cat(t) for n, t in acts.items()}
        values, draws = self._measure(x, ids, acts, split=split, step=step, update=update)
        return StepRows(values, draws, x.shape[0])

    def _measure(
        self,
        x: torch.Tensor,
        ids: torch.Tensor,
        acts: Mapping[str, torch.Tensor],
        *,
        split: str,
        step: int,
        update: bool,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        d2, dims = _distances(x, acts)
        # A NaN or Inf activation makes its layer's distances non-finite (an Inf's square is
        # Inf, Inf - Inf is NaN, and no distance becomes -Inf): one check of the small
        # [1 + L, N, N] distances instead of a pass over every activation, which is read only
        # to name the layers (or when finite activations overflowed their distances).
        if not all_finite(d2) and not self._finite(acts):
            return None, None
        # Probe sets look widths up without creating or moving a split's state.
        state = self.state(split) if update else self.states.get(split, self._proto)
        y_gram = self.label_gram(ids)
        rules = [state.x_rule, *(state.rules[name] for name in acts)]
        sigma = batch_widths(rules, d2, dims, y_gram, step=step, update=update)
        if update and ddp.is_distributed():
            sigma = ddp.broadcast(sigma)  # identical widths on every rank, by construction
        k_x = gram_from_squared_distances(d2[0], sigma[0])
        k_t = gram_from_squared_distances(d2[1:], sigma[1:, None, None])
        null = (
            self._permutations(k_x.shape[0], split, ids.device) if "null" in self.controls else None
        )
        fixed = None
        if "fixed" in self.controls:
            fixed = self._fixed_grams(d2, split, sigma, list(acts), rules, settled=not update)
        if self.label_gram.indicator:  # the estimate and its controls in shared batches
            grams = None if fixed is None else (fixed[0], fixed[1])
            out = plane_step_with_controls(k_x, k_t, ids, self.alpha, null=null, fixed=grams)
        else:
            out = self._general_step(k_x, k_t, y_gram, null, fixed)
        draws = _draws(out)
        rows = self._columns(out, sigma, k_t, fixed)
        return (rows if draws is None else self.with_null(rows, draws)), draws

    def _columns(self, out, sigma, k_t, fixed) -> torch.Tensor:
        """The ``[L, len(columns)]`` rows of a step from its quantities (the null columns are
        filled by :meth:`with_null`)."""
        h_t = out["h_t"]
        nan = torch.full_like(h_t, float("nan"))
        q = {
            "i_xt": out["i_xt"],
            "i_ty": out["i_ty"],
            "h_t": h_t,
            "h_x": out["h_x"].expand_as(h_t),
            "h_y": out["h_y"].expand_as(h_t),
            "sigma": sigma[1:],
            "saturated": saturated(h_t, k_t),
            **dict.fromkeys(CONTROL_FIELDS["null"], nan),
            **dict.fromkeys(CONTROL_FIELDS["fixed"], nan),
        }
        if fixed is not None:
            _, k_t_f, held, ok = fixed
            for name in ("i_xt_fixed", "i_ty_fixed", "h_t_fixed"):
                q[name] = torch.where(ok, out[name], nan)
            q["sigma_fixed"] = torch.where(ok, held[1:], nan)
            q["saturated_fixed"] = torch.where(ok, saturated(out["h_t_fixed"], k_t_f), nan)
        return torch.stack([q[c] for c in self.columns]).T

    def with_null(self, rows: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
        """``rows`` ``[L, len(columns)]`` with the null distribution's columns (mean, 95%
        quantile, p-value of I(X;T) and I(T;Y)) computed from ``draws`` ``[L, 2, B]`` against
        the rows' estimates: one step's draws, or a probe set's draws and estimates averaged
        over its mini-batches (draw b averaged over the batches is exchangeable with the
        averaged estimate under the null, so the probe's p-value is exact too)."""
        rows = rows.clone()
        at = {c: i for i, c in enumerate(self.columns)}
        for k, name in enumerate(("i_xt", "i_ty")):
            mean, q95, p = null_summary(rows[:, at[name]], draws[:, k])
            rows[:, at[f"{name}_null"]] = mean
            rows[:, at[f"{name}_null_q95"]] = q95
            rows[:, at[f"{name}_p"]] = p
        return rows

    def _permutations(
        self, n: int, split: str, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The null distribution's ``(perms_x, perms_y)``, ``[B, N]`` each, seeded by
        ``(seed, split)``."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(split.encode()))
        perms = torch.stack(
            [torch.randperm(n, generator=g) for _ in range(2 * self.null_permutations)]
        )
        perms = perms.to(device)
        return perms[0::2], perms[1::2]

    def _fixed_grams(self, d2, split, sigma, names, rules, *, settled: bool):
        """``(K_X or None, K_T [L, N, N], held widths [1 + L], ok [L])`` of the fixed-width
        control, or None before the split's reference step. ``K_X`` is None where the input
        keeps the estimate's width."""
        scale = _median_distances(d2)
        if split not in self.fixed:
            tensors = ["input", *names]
            free = [r for t, r in zip(tensors, rules, strict=True) if t not in self.fixed_widths]
            if not (settled or all(rule.settled() for rule in free)):
                return None
            absolute = torch.tensor([t in self.fixed_widths for t in tensors], device=sigma.device)
            given = [float(self.fixed_widths.get(t, 0.0)) for t in tensors]
            ratio = torch.where(
                absolute,
                torch.tensor(given, dtype=sigma.dtype, device=sigma.device),
                sigma / torch.where(scale > 0, scale, float("nan")),
            )
            # Probe batches differ across ranks: hold rank 0's ratios everywhere.
            self.fixed[split] = ddp.broadcast(ratio)
            self.absolute[split] = absolute
        ratio = self.fixed[split].to(sigma.device)
        absolute = self.absolute[split].to(sigma.device)
        held = torch.where(absolute, ratio, ratio * scale)
        keep_input = not bool(absolute[0]) and not self._proto.x_rule.moving
        if keep_input:
            held[0] = sigma[0]
        usable = torch.isfinite(held) & (held > 0)
        safe = torch.where(usable, held, sigma)
        k_x = None if keep_input else gram_from_squared_distances(d2[0], safe[0])
        k_t = gram_from_squared_distances(d2[1:], safe[1:, None, None])
        return k_x, k_t, held, usable[1:]

    def _general_step(self, k_x, k_t, y_gram, null, fixed) -> dict[str, torch.Tensor]:
        """A label Gram other than the indicator: one :func:`plane_step` per quantity."""
        out = plane_step(k_x, k_t, None, self.alpha, k_y=y_gram)
        if null is not None:
            xt, ty = [], []
            for px, py in zip(*null, strict=True):
                o = plane_step(k_x[px][:, px], k_t, None, self.alpha, k_y=y_gram[py][:, py])
                xt.append(o["i_xt"])
                ty.append(o["i_ty"])
            out["i_xt_draws"], out["i_ty_draws"] = torch.stack(xt, 1), torch.stack(ty, 1)
        if fixed is not None:
            k_x_f = k_x if fixed[0] is None else fixed[0]
            o = plane_step(k_x_f, fixed[1], None, self.alpha, k_y=y_gram)
            out["i_xt_fixed"], out["i_ty_fixed"], out["h_t_fixed"] = o["i_xt"], o["i_ty"], o["h_t"]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self._proto.rules),
            "widths": {split: st.state_dict() for split, st in self.states.items()},
            "fixed": {split: t.tolist() for split, t in self.fixed.items()},
            "absolute": {split: t.tolist() for split, t in self.absolute.items()},
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
        self.absolute = {split: torch.tensor(v) for split, v in state["absolute"].items()}

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


def _draws(out: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
    """The step's null draws ``[L, 2, B]`` (I(X;T), I(T;Y)), or None without them."""
    if "i_xt_draws" not in out:
        return None
    return torch.stack([out["i_xt_draws"], out["i_ty_draws"]], dim=1)


def _median_distances(d2: torch.Tensor) -> torch.Tensor:
    """The median pairwise distance ``[T]`` of each tensor's squared distances ``[T, N, N]``:
    the scale the fixed-width control holds its widths to (0 where half the pairs coincide)."""
    n = d2.shape[-1]
    iu = torch.triu_indices(n, n, offset=1, device=d2.device)
    return d2[:, iu[0], iu[1]].clamp_min(0.0).median(dim=-1).values.sqrt()


def _distances(x: torch.Tensor, acts: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    """Squared distances ``[1 + L, N, N]`` of the input and of every layer (input first), and
    the flattened dimension of each."""
    flat = [t.reshape(t.shape[0], -1) for t in (x, *acts.values())]
    return stacked_squared_distances(flat), [t.shape[1] for t in flat]


__all__ = [
    "DEFAULT_NULL_PERMUTATIONS",
    "BatchMeasurer",
    "LabelKernel",
    "StepRows",
    "WidthState",
    "nonfinite_layers",
]
