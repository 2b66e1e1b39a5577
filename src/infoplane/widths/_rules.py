"""Kernel-width rules applied to one layer step after step (the stateful side of the widths).

A rule turns the squared pairwise distances ``[N, N]`` of a batch, the feature dimension ``D``
and the label Gram into one width ``sigma`` (infoplane's convention
``exp(-||a - b||^2 / (2 sigma^2))``). Every rule offers two verbs:

* :meth:`WidthRule.update` (also ``rule(...)``) -- the width of training iteration ``step``;
  it advances the rule's state (the moving average of the label-alignment rules).
* :meth:`WidthRule.lookup` -- a width for a batch that is not a training step (a probe set),
  without touching any state. Stateless rules return the same as :meth:`~WidthRule.update`; the
  label-alignment rules return the batch's best candidate on their steady-state grid (no moving
  average, no warm-up grid), so a probe does not depend on how many steps were measured.

Rules: :class:`Fixed`, :class:`Median`, :class:`KNN`, :class:`Silverman`, :class:`Scott`
(the functions of :mod:`infoplane.widths._functions`, batch by batch), and the paper's
label-alignment rule of Wickstrøm et al. (arXiv:1909.11396) in two readings:

* :class:`AuthorsAlignment` (``"authors"``) -- the authors' code exactly (see
  :func:`~infoplane.widths._functions.authors_grid`): candidates ``linspace(0.3, 10 mean(d),
  K) / sqrt(2)``, K = 300 for the iterations 0..20 and 100 after.
* :class:`LabelAlignment` (``"alignment"``) -- a variant whose grid is relative to the data:
  ``linspace(0.3, 10, K) * mean pairwise distance / sqrt(2)`` (scale-free: the lower end moves
  with the distances), K = 300 for the iterations 0..19 and 100 after.

Both smooth the best candidate ``sigma*`` with an exponential moving average over training
iterations, ``sigma_t = beta sigma_{t-1} + (1 - beta) sigma*_t`` with ``sigma_0 = sigma*_0``
(beta = 0.9). The authors measured every iteration; when the previous update was k iterations
ago (``every = k``) the average decays as if the new target had held for those k iterations:
``sigma <- beta^k sigma + (1 - beta^k) sigma*``. A repeated step (k = 0, e.g. a step measured
again after a resume) is one more update with k = 1; a step below the previous one is treated
the same way, with a warning, and the rule counts on from it.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

from infoplane._validation import (
    check_integer,
    check_positive_scalar,
    check_same_device,
)
from infoplane.errors import InvalidInputError, InvalidParameterError
from infoplane.widths._functions import (
    Pairs,
    authors_grid_from_mean,
    check_range,
    knn_from_sq,
    label_pairs,
    mean_distance_all,
    median_from_sq,
    relative_grid,
    scott_from_sq,
    search_many,
    silverman_from_sq,
)

#: The weight of a moving average's first width below which the average counts as settled.
SETTLED_WEIGHT = 0.1


class WidthRule:
    """A kernel-width rule applied to one layer step after step.

    A stateless rule implements :meth:`width`; a stateful one overrides :meth:`update` and
    :meth:`lookup` (and ``state_dict``/``load_state_dict``, so that a resumed run continues with
    the same widths). Every method returns a 0-d tensor on the device of ``sq_dists``.
    """

    name = "rule"
    #: Whether the rule remembers earlier batches (a moving average): its width then lags the
    #: representation, which is what the fixed-width control controls for.
    moving = False

    def settled(self) -> bool:
        """Whether the rule's width no longer depends on how it started: always, for a rule
        without memory."""
        return True

    def width(
        self, sq_dists: torch.Tensor, dim: int, y_gram: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The width of one batch (stateless rules)."""
        if type(self).__call__ is WidthRule.__call__:
            raise NotImplementedError(f"{type(self).__name__} implements no width rule")
        return self(sq_dists, dim, y_gram)  # a rule that implements ``__call__`` itself

    def update(
        self,
        sq_dists: torch.Tensor,
        dim: int,
        y_gram: torch.Tensor | None = None,
        *,
        step: int | None = None,
    ) -> torch.Tensor:
        """The width at training iteration ``step``, advancing the rule's state.

        Args:
            sq_dists: ``[N, N]`` squared pairwise distances of the batch (float64).
            dim: the feature dimension ``D`` of the samples.
            y_gram: ``[N, N]`` label Gram (needed by the label-alignment rules).
            step: the training iteration; ``None`` takes the one after the previous update.
        """
        _check_step(step, type(self).__name__)
        return self.width(sq_dists, dim, y_gram)

    def lookup(
        self, sq_dists: torch.Tensor, dim: int, y_gram: torch.Tensor | None = None
    ) -> torch.Tensor:
        """A width for a batch that is not a training step (a probe set); no state changes."""
        return self.width(sq_dists, dim, y_gram)

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Same as :meth:`update`."""
        return self.update(*args, **kwargs)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state

    def describe(self) -> dict[str, Any]:
        """Configuration of the rule, for run records."""
        return {"rule": self.name}


def _check_step(step: Any, who: str) -> int | None:
    return None if step is None else check_integer(step, "step", who, minimum=0)


class Fixed(WidthRule):
    """A constant width."""

    name = "fixed"

    def __init__(self, sigma: float) -> None:
        self.sigma = check_positive_scalar(sigma, "sigma", "Fixed")

    def width(self, sq_dists, dim, y_gram=None):
        return torch.tensor(self.sigma, dtype=sq_dists.dtype, device=sq_dists.device)

    def describe(self):
        return {"rule": self.name, "sigma": self.sigma}


class Median(WidthRule):
    """The median pairwise distance of each batch."""

    name = "median"

    def width(self, sq_dists, dim, y_gram=None):
        return median_from_sq(sq_dists)


class KNN(WidthRule):
    """The mean distance to the k-th nearest neighbour in each batch."""

    name = "knn"

    def __init__(self, k: int = 10) -> None:
        self.k = check_integer(k, "k", "KNN")

    def width(self, sq_dists, dim, y_gram=None):
        n = sq_dists.shape[0]
        if self.k > n - 1:
            warnings.warn(
                f"KNN: k = {self.k} needs more than the batch's N = {n} samples; using "
                f"k = {n - 1}, the farthest neighbour.",
                UserWarning,
                stacklevel=3,
            )
        return knn_from_sq(sq_dists, min(self.k, n - 1))

    def describe(self):
        return {"rule": self.name, "k": self.k}


class Silverman(WidthRule):
    """Silverman's multivariate rule of thumb on each batch."""

    name = "silverman"

    def width(self, sq_dists, dim, y_gram=None):
        return silverman_from_sq(sq_dists, dim)


class Scott(WidthRule):
    """Scott's multivariate rule of thumb on each batch."""

    name = "scott"

    def width(self, sq_dists, dim, y_gram=None):
        return scott_from_sq(sq_dists, dim)


class _MovingAlignment(WidthRule):
    """Label alignment over a grid of candidates, smoothed over training iterations.

    Subclasses give the grid (:meth:`_grid`). State: ``sigma`` (the moving average, None before
    the first update), ``steps`` (updates made), ``first_step`` and ``last_step`` (the
    iterations of the first and the last update).

    The warm-up grid serves the first ``warmup_steps`` iterations counted from the first update
    (``step - first_step < warmup_steps``), so it lasts the same number of iterations whether a
    caller numbers its iterations from 0 (the authors' ``current_iteration``) or from 1
    (``infoplane run``'s optimizer steps).
    """

    #: Iterations searched on the warm-up grid when ``warmup_steps`` is not given.
    default_warmup_steps = 20

    def __init__(
        self,
        *,
        num_candidates: int = 100,
        warmup_candidates: int = 300,
        warmup_steps: int | None = None,
        beta: float = 0.9,
    ) -> None:
        who = type(self).__name__
        if warmup_steps is None:
            warmup_steps = self.default_warmup_steps
        self.num_candidates = check_integer(num_candidates, "num_candidates", who)
        self.warmup_candidates = check_integer(warmup_candidates, "warmup_candidates", who)
        self.warmup_steps = check_integer(warmup_steps, "warmup_steps", who, minimum=0)
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0.0 <= beta < 1.0:
            raise InvalidParameterError(f"{who}: expected beta in [0, 1), got {beta!r}.")
        self.beta = float(beta)
        self.steps = 0
        self.first_step: int | None = None
        self.last_step: int | None = None
        self.sigma: torch.Tensor | None = None
        self._warned_backwards = False
        #: The index picked last on a grid of each size: evaluated first by the next search (a
        #: hint for its speed only; the pick is the full search's whatever the hint).
        self._hints: dict[int, int] = {}

    moving = True

    def settled(self) -> bool:
        """True once the warm-up grid is over and the first width's weight in the moving
        average, ``beta ** (iterations since it)``, is below :data:`SETTLED_WEIGHT` (22
        iterations at ``beta = 0.9``)."""
        if self.first_step is None or self.last_step is None:
            return False
        elapsed = self.last_step - self.first_step
        return elapsed >= self.warmup_steps and self.beta**elapsed < SETTLED_WEIGHT

    def _grid(self, dist: torch.Tensor, n: int, num: int) -> torch.Tensor:
        """The ``num`` candidates of a batch of ``n`` samples whose pairs have distances
        ``dist`` ``[P]``."""
        raise NotImplementedError

    def _num(self, step: int) -> int:
        first = step if self.first_step is None else self.first_step
        return self.warmup_candidates if step - first < self.warmup_steps else self.num_candidates

    def next_step(self) -> int:
        """The iteration an update without ``step`` is taken to be."""
        return self.steps if self.last_step is None else self.last_step + 1

    def best_candidate(
        self, sq_dists: torch.Tensor, y_gram: torch.Tensor, *, step: int | None = None
    ) -> torch.Tensor:
        """``sigma*`` on the grid of iteration ``step`` (default :meth:`next_step`), unsmoothed;
        no state change."""
        step = self._iteration(step, type(self).__name__)
        return self._best(sq_dists, y_gram, self._num(step))

    def lookup(self, sq_dists, dim, y_gram=None):
        """The batch's best candidate on the steady-state grid (``num_candidates``)."""
        return self._best(sq_dists, y_gram, self.num_candidates)

    def update(self, sq_dists, dim, y_gram=None, *, step=None):
        step = self._iteration(step, type(self).__name__)
        return _advance_all([self], self._best(sq_dists, y_gram, self._num(step))[None], [step])[0]

    def _iteration(self, step: Any, who: str) -> int:
        """``step`` checked, or :meth:`next_step` when it is None."""
        step = _check_step(step, who)
        return self.next_step() if step is None else step

    def _best(self, sq_dists: torch.Tensor, y_gram: Any, num: int) -> torch.Tensor:
        """The best of ``num`` candidates for one batch (see :func:`batch_widths` for many)."""
        _check_labels(type(self).__name__, sq_dists, y_gram)
        return _best_candidates([self], label_pairs(sq_dists, y_gram), [num])[0]

    def _decay(self, step: int) -> float | None:
        """Record an update at ``step``; the weight of the old average in it (None for the
        first update, which starts the average)."""
        decay = None if self.sigma is None else self.beta ** self._elapsed(step)
        self.steps += 1
        if self.first_step is None:
            self.first_step = step
        self.last_step = step
        return decay

    def _elapsed(self, step: int) -> int:
        """Iterations since the previous update; 1 for a repeated or backward step."""
        if self.last_step is None:
            return 1
        if step < self.last_step and not self._warned_backwards:
            self._warned_backwards = True
            warnings.warn(
                f"{type(self).__name__}: step {step} comes after step {self.last_step}; "
                "the moving average takes it as the next iteration. Pass increasing steps.",
                UserWarning,
                stacklevel=5,  # _decay, _advance_all, update or batch_widths: the caller of those
            )
        return max(step - self.last_step, 1)

    def state_dict(self):
        return {
            "steps": self.steps,
            "first_step": self.first_step,
            "last_step": self.last_step,
            "sigma": None if self.sigma is None else float(self.sigma),
        }

    def load_state_dict(self, state):
        self.steps = int(state["steps"])
        last, first = state["last_step"], state["first_step"]
        self.last_step = None if last is None else int(last)
        self.first_step = None if first is None else int(first)
        sigma = state.get("sigma")
        self.sigma = None if sigma is None else torch.tensor(float(sigma), dtype=torch.float64)

    def describe(self):
        return {
            "rule": self.name,
            "num_candidates": self.num_candidates,
            "warmup_candidates": self.warmup_candidates,
            "warmup_steps": self.warmup_steps,
            "beta": self.beta,
        }


def _check_labels(who: str, sq_dists: torch.Tensor, y_gram: Any) -> None:
    if y_gram is None:
        raise InvalidInputError(
            f"{who}: expected a label Gram, got None. Pass y to measure() or use "
            "another width rule (median, knn, silverman, scott, fixed)."
        )
    check_same_device([sq_dists, y_gram], ["sq_dists", "y_gram"], who)
    if tuple(y_gram.shape) != tuple(sq_dists.shape[-2:]):
        raise InvalidInputError(
            f"{who}: expected a label Gram of shape {tuple(sq_dists.shape[-2:])} like the "
            f"distances, got {tuple(y_gram.shape)}. Build both on the same batch."
        )


def _best_candidates(
    rules: Sequence[_MovingAlignment], pairs: Pairs, nums: Sequence[int]
) -> torch.Tensor:
    """``[M]``: the best candidate of the grid of ``nums[m]`` candidates of ``rules[m]`` for the
    pairs ``pairs.sq[m]``, all problems searched together.

    Grids of different sizes are padded with their last candidate: a copy ties with it and
    ties go to the first, so the padding is never picked.
    """
    dist = pairs.sq.sqrt()  # [M, P], once for every rule
    grids = [
        rule._grid(dist[m], pairs.n, num)
        for m, (rule, num) in enumerate(zip(rules, nums, strict=True))
    ]
    size = max(nums)
    padded = torch.stack(
        [g if g.numel() == size else torch.cat([g, g[-1:].expand(size - g.numel())]) for g in grids]
    )
    hints = [rule._hints.get(num) for rule, num in zip(rules, nums, strict=True)]
    index = search_many(pairs, padded, hints)
    if index.device.type == "cpu":  # elsewhere a hint would cost a host sync
        for rule, num, i in zip(rules, nums, index.tolist(), strict=True):
            rule._hints[num] = i
    return padded.gather(1, index.to(padded.device)[:, None])[:, 0]


def _advance_all(
    rules: Sequence[_MovingAlignment], best: torch.Tensor, steps: Sequence[int]
) -> torch.Tensor:
    """Move every rule's average towards its best candidate ``best[m]`` of iteration
    ``steps[m]``, as one vector operation: ``sigma_t = d sigma_{t-1} + (1 - d) sigma*_t``
    (``d = beta ** elapsed``), or ``sigma*_t`` for a rule's first update. The new widths
    ``[M]``."""
    decays = []
    for rule, step in zip(rules, steps, strict=True):  # a plain loop: a fixed warning depth
        decays.append(rule._decay(step))
    sigma = best.detach().clone()
    moved = [m for m, decay in enumerate(decays) if decay is not None]
    if moved:
        at = torch.tensor(moved, device=best.device)
        d = torch.tensor([decays[m] for m in moved], dtype=best.dtype).to(best.device)
        old = torch.stack([rules[m].sigma.to(best.device) for m in moved])
        sigma[at] = d * old + (1.0 - d) * best[at]
    for rule, value in zip(rules, sigma.unbind(), strict=True):
        rule.sigma = value
    return sigma


def batch_widths(
    rules: Sequence[WidthRule],
    sq_dists: torch.Tensor,
    dims: Sequence[int],
    y_gram: torch.Tensor | None,
    *,
    step: int | None = None,
    update: bool = True,
) -> torch.Tensor:
    """The widths of the ``M`` measured tensors of one batch, one rule each: ``[M]`` float64.

    The same as ``rules[m].update(sq_dists[m], dims[m], y_gram, step=step)`` for every m (or
    :meth:`~WidthRule.lookup` when ``update`` is False), with the searches of the
    label-alignment rules sharing their evaluation rounds: one batched pass per round for all
    tensors instead of one per tensor.

    Args:
        rules: one rule per tensor.
        sq_dists: ``[M, N, N]`` squared pairwise distances.
        dims: the feature dimension of each tensor.
        y_gram: ``[N, N]`` label Gram of the batch (None if no rule needs one).
        step: the training iteration (``update`` only).
        update: advance the rules' states (a training step) or only look widths up (a probe).
    """
    searched = [m for m, rule in enumerate(rules) if isinstance(rule, _MovingAlignment)]
    out: list[torch.Tensor | None] = [None] * len(rules)
    if searched:
        _check_labels("batch_widths", sq_dists, y_gram)
        which = [rules[m] for m in searched]
        if update:
            steps = [rule._iteration(step, "batch_widths") for rule in which]
            nums = [rule._num(s) for rule, s in zip(which, steps, strict=True)]
        else:
            nums = [rule.num_candidates for rule in which]
        first, stop = searched[0], searched[-1] + 1
        chosen = (
            sq_dists[first:stop]  # the usual case (every layer searched): a view, no copy
            if stop - first == len(searched)
            else sq_dists.index_select(0, torch.tensor(searched, device=sq_dists.device))
        )
        best = _best_candidates(which, label_pairs(chosen, y_gram), nums)
        widths = _advance_all(which, best, steps) if update else best
        for m, width in zip(searched, widths.unbind(), strict=True):
            out[m] = width
    for m, rule in enumerate(rules):
        if out[m] is None:
            out[m] = (
                rule.update(sq_dists[m], dims[m], y_gram, step=step)
                if update
                else rule.lookup(sq_dists[m], dims[m], y_gram)
            )
    return torch.stack([w.to(torch.float64).reshape(()) for w in out])


class LabelAlignment(_MovingAlignment):
    """The label-alignment rule on a grid relative to the data (a variant of the authors').

    At iteration t the candidate ``sigma*_t`` maximizing the alignment with the label Gram is
    searched over ``linspace(low, high, K) * mean pairwise distance / sqrt(2)`` (the mean over
    the ``N (N - 1) / 2`` pairs), with ``K = warmup_candidates`` for the iterations
    ``0 .. warmup_steps - 1`` and ``num_candidates`` after, then smoothed over iterations (see
    :mod:`infoplane.widths`). Unlike :class:`AuthorsAlignment` the lower end moves with the
    distances, so the rule is scale-free.
    """

    name = "alignment"

    def __init__(self, *, low: float = 0.3, high: float = 10.0, **settings: Any) -> None:
        """``settings``: ``num_candidates`` (100), ``warmup_candidates`` (300),
        ``warmup_steps`` (20) and ``beta`` (0.9), as for :class:`AuthorsAlignment`."""
        super().__init__(**settings)
        self.low, self.high = check_range(low, high, type(self).__name__)

    def _grid(self, dist, n, num):
        return relative_grid(dist.mean(), num, self.low, self.high)

    def describe(self):
        return {**super().describe(), "low": self.low, "high": self.high}


class AuthorsAlignment(_MovingAlignment):
    """The authors' label-alignment rule, exactly (Wickstrøm et al., arXiv:1909.11396).

    As ``kernel_mat`` and ``kernel_loss`` in ``python/network.py`` of the authors' repository
    ``Wickstrom/InformationTheoryExperiment``, called at every training iteration by the
    experiment scripts (e.g. ``python/mlp_hero_ex.py``): at iteration t the candidates are
    ``linspace(0.3, 10 * mean(d), K)`` in their convention ``exp(-d^2 / sigma^2)``, 0.3 absolute
    and ``mean(d)`` over all ``N^2`` distances with the zero diagonal, K = 300 for the
    iterations 0..20 (``warmup_steps = 21``) and 100 after; each divided by sqrt(2) for ours
    (:func:`~infoplane.widths._functions.authors_grid`). The candidate of largest uncentred
    kernel alignment with the label Gram wins (the first maximum: ties go to the smallest
    width), then ``sigma_t = 0.9 sigma_{t-1} + 0.1 sigma*_t`` with ``sigma_0 = sigma*_0``.
    The authors computed each alignment with an ``N^3`` matrix product in float32; here it is a
    float64 sum over the pairs, so the choice can differ only where two candidates tie to
    float32 rounding.

    Args:
        num_candidates: candidates after the warm-up (100).
        warmup_candidates: candidates during the warm-up (300).
        warmup_steps: iterations ``0 .. warmup_steps - 1`` use the warm-up grid (21).
        beta: the moving average's weight of the past, per iteration, in [0, 1) (0.9).
    """

    name = "authors"
    default_warmup_steps = 21

    def _grid(self, dist, n, num):
        return authors_grid_from_mean(mean_distance_all(dist, n), num)


#: The rules selectable by name (``width=...`` and ``x_width=...`` of the tracker, the CLI).
WIDTH_RULES: dict[str, Callable[[], WidthRule]] = {
    "alignment": LabelAlignment,
    "authors": AuthorsAlignment,
    "median": Median,
    "knn": KNN,
    "silverman": Silverman,
    "scott": Scott,
}


def make_width_rule(spec: Any) -> WidthRule:
    """Build a rule from a name (``"authors"``, ``"alignment"``, ``"median"``, ``"knn"``,
    ``"silverman"``, ``"scott"``), a positive number (a fixed width), or return a
    :class:`WidthRule` as is.

    Example:
        >>> from infoplane.widths import make_width_rule
        >>> make_width_rule(2.0).describe()
        {'rule': 'fixed', 'sigma': 2.0}
        >>> rule = make_width_rule("alignment")
        >>> rule.moving, rule.settled()  # a moving average, not yet settled before any update
        (True, False)
    """
    if isinstance(spec, WidthRule):
        return spec
    if isinstance(spec, str):
        if spec not in WIDTH_RULES:
            raise InvalidParameterError(
                f"make_width_rule: expected a rule in {sorted(WIDTH_RULES)} or a positive "
                f"number, got {spec!r}."
            )
        return WIDTH_RULES[spec]()
    if isinstance(spec, (numbers.Real, torch.Tensor)) and not isinstance(spec, bool):
        return Fixed(check_positive_scalar(spec, "spec", "make_width_rule"))
    raise InvalidParameterError(
        f"make_width_rule: expected a rule name, a positive number or a WidthRule, got "
        f"{type(spec).__name__}."
    )


__all__ = [
    "KNN",
    "WIDTH_RULES",
    "AuthorsAlignment",
    "Fixed",
    "LabelAlignment",
    "Median",
    "Scott",
    "Silverman",
    "WidthRule",
    "batch_widths",
    "make_width_rule",
]
