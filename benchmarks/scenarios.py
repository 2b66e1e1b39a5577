"""Scenarios whose answer is known by construction, for :mod:`benchmarks.validation`.

Each scenario yields, step after step, a batch ``(x, y)`` and the representation ``t`` that the
one measured layer outputs for it. The model (:class:`Controlled`) has a single measured layer
``t`` (an ``nn.Identity``) whose input the scenario sets before the tracker's forward, so what the
tracker sees is controlled exactly. X are scikit-learn's digits images (64 pixels scaled to
[0, 1]), Y their labels; every step draws a fresh random batch of N images; a run's random state
(its weights W, its noise, its batches) comes from its own seed.

Null scenarios (the claim is false by construction):

* ``independent``: T is fresh Gaussian noise each step, independent of X and Y;
* ``static``: T = tanh(x W) with W fixed for the whole run (a network that does not learn);
* ``rescale``: T = c_t tanh(x W), c_t going geometrically from 1 to ``end`` over the run (a
  rescaling changes no information);
* ``drift``: c_t goes from 1 to ``end`` over the first :data:`DRIFT_STEPS` steps, then stays.

Power scenarios (the claim is true):

* ``collapse``: T_t = (1 - a_t) tanh(x W) + a_t M[y] + noise, a_t ramping from 0 to 1 over the
  second half of the run (M: the class means of tanh(x W) over all images), a real compression
  of I(X;T) with a rise of I(T;Y);
* ``onehot``: T = a onehot(Y) + Gaussian noise (dependence on Y at every step, strength a);
* ``gaussian``: X and T jointly Gaussian with correlation rho in each of D dimensions (X is not
  digits here, Y random labels): the true I(X;T) is -(D/2) log2(1 - rho^2).
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

#: Steps over which the ``drift`` scenario's scale changes, then stays.
DRIFT_STEPS = 20
#: Scale of W: the pre-activations x W have a standard deviation near 1 on digits.
GAIN = 2.0
#: Standard deviation of the noise added in the ``collapse`` scenario.
COLLAPSE_NOISE = 0.05
#: Name of the measured layer of :class:`Controlled`.
LAYER = "t"

#: The claims a verdict can make, as ``(finding, variant)`` pairs (variants of
#: :data:`infoplane.analysis.findings.VARIANTS`).
#: ``controlled`` is the headline (:attr:`infoplane.analysis.findings.Finding.controlled`): the
#: estimate's claim, checked against the controls, so it claims what ``adaptive`` claims.
RISE = frozenset({("fitting", "adaptive"), ("fitting", "fixed"), ("fitting", "controlled")})
ABOVE_Y = frozenset({("fitting", "null")})
FALL = frozenset(("compression", v) for v in ("adaptive", "fixed", "null", "controlled"))
MOVE = frozenset({("estimator", "adaptive"), ("estimator", "controlled")})
ABOVE_X = frozenset({("estimator", "null")})


@dataclass(frozen=True)
class Scenario:
    """A scenario: what generates T, and which verdicts are false or true by construction.

    Attributes:
        name: the row label in the tables.
        kind: ``independent``, ``static``, ``rescale``, ``drift``, ``collapse``, ``onehot`` or
            ``gaussian``.
        about: one phrase for the tables.
        dim: the dimension D of T.
        end: the final scale c of ``rescale`` and ``drift``.
        strength: a of ``onehot``, rho of ``gaussian``.
        false: the ``(finding, variant)`` verdicts false by construction (a firing is a false
            positive).
        true: the verdicts true by construction (a firing is a detection).
        classes: the classes kept (digits of labels below it); 10 keeps all.
    """

    name: str
    kind: str
    about: str
    dim: int = 10
    end: float = 1.0
    strength: float = 0.0
    false: frozenset = field(default_factory=frozenset)
    true: frozenset = field(default_factory=frozenset)
    classes: int = 10

    def truth(self, finding: str, variant: str) -> bool | None:
        """True or False where the verdict's answer is known by construction, else None."""
        if (finding, variant) in self.false:
            return False
        if (finding, variant) in self.true:
            return True
        return None

    def seed(self, run: int) -> int:
        """The seed of run ``run``: distinct across scenarios and runs."""
        return (zlib.crc32(self.name.encode()) % 100_003) * 1_000_003 + int(run)

    def batches(self, *, run: int, steps: int, n: int) -> Iterator[tuple[torch.Tensor, ...]]:
        """``(x, y, t)`` of each step ``0 .. steps - 1`` of run ``run`` (N = ``n``)."""
        gen = torch.Generator().manual_seed(self.seed(run))
        if self.kind == "gaussian":
            yield from self._gaussian(gen, steps, n)
            return
        images, labels = digits(self.classes)
        w = torch.randn(images.shape[1], self.dim, generator=gen) * (GAIN / 8.0)
        means = _class_means(torch.tanh(images @ w), labels, self.classes)
        for step in range(steps):
            idx = torch.randperm(images.shape[0], generator=gen)[:n]
            x, y = images[idx], labels[idx]
            yield x, y, self._represent(x, y, w, means, step, steps, gen)

    def _represent(self, x, y, w, means, step: int, steps: int, gen) -> torch.Tensor:
        if self.kind == "independent":
            return torch.randn(x.shape[0], self.dim, generator=gen)
        if self.kind == "onehot":
            hot = nn.functional.one_hot(y, self.classes).to(x.dtype)
            noise = torch.randn(x.shape[0], self.classes, generator=gen)
            return self.strength * hot + noise
        t = torch.tanh(x @ w)
        if self.kind == "static":
            return t
        if self.kind == "rescale":
            return self.end ** (step / max(steps - 1, 1)) * t
        if self.kind == "drift":
            return self.end ** (min(step, DRIFT_STEPS - 1) / (DRIFT_STEPS - 1)) * t
        if self.kind == "collapse":
            a = collapse_weight(step, steps)
            noise = COLLAPSE_NOISE * torch.randn(t.shape, generator=gen)
            return (1.0 - a) * t + a * means[y] + noise
        raise ValueError(f"Scenario: unknown kind {self.kind!r}.")

    def _gaussian(self, gen, steps: int, n: int) -> Iterator[tuple[torch.Tensor, ...]]:
        rho = self.strength
        for _ in range(steps):
            x = torch.randn(n, self.dim, generator=gen)
            y = torch.randint(0, self.classes, (n,), generator=gen)
            e = torch.randn(n, self.dim, generator=gen)
            yield x, y, rho * x + math.sqrt(1.0 - rho * rho) * e

    @property
    def true_i_xt(self) -> float:
        """The true I(X;T) in bits of the ``gaussian`` scenario (NaN for the others)."""
        if self.kind != "gaussian":
            return math.nan
        return -0.5 * self.dim * math.log2(1.0 - self.strength**2)


def collapse_weight(step: int, steps: int) -> float:
    """a_t of ``collapse``: 0 over the first half, then a linear ramp to 1 at the last step."""
    half = steps // 2
    return min(max((step - half) / max(steps - 1 - half, 1), 0.0), 1.0)


def _class_means(t: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    sums = torch.zeros(classes, t.shape[1], dtype=t.dtype).index_add_(0, labels, t)
    counts = torch.bincount(labels, minlength=classes).clamp_min(1).to(t.dtype)
    return sums / counts[:, None]


@functools.lru_cache(maxsize=4)
def digits(classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits ``[M, 64]`` in [0, 1] and their labels, those below ``classes``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.data / 16.0, dtype=torch.float32)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    keep = y < classes
    return x[keep], y[keep]


class Controlled(nn.Module):
    """A model whose one measured layer ``t`` outputs :attr:`output`, set before each forward."""

    def __init__(self) -> None:
        super().__init__()
        self.t = nn.Identity()
        self.output: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.output is None or self.output.shape[0] != x.shape[0]:
            raise ValueError("Controlled: set output to the batch's representation first.")
        return self.t(self.output)


def null_scenarios(dims: tuple[int, ...] = (10, 256)) -> list[Scenario]:
    """Scenarios 1-4 of docs/VALIDATION.md: every claim of a rise, a fall or a change is false."""
    static_true = ABOVE_Y | ABOVE_X  # T = f(X) carries information about X and Y
    out = [
        Scenario(
            f"independent D={d}",
            "independent",
            f"T ~ N(0, I_{d}) each step, independent of X and Y",
            dim=d,
            false=RISE | ABOVE_Y | FALL | MOVE | ABOVE_X,
        )
        for d in dims
    ]
    common = {"false": RISE | FALL | MOVE, "true": static_true}
    out += [
        Scenario("static", "static", "T = tanh(x W), W fixed", **common),
        Scenario("rescale 1->0.2", "rescale", "T = c_t tanh(x W), c_t 1 -> 0.2", end=0.2, **common),
        Scenario("rescale 1->5", "rescale", "T = c_t tanh(x W), c_t 1 -> 5", end=5.0, **common),
        Scenario(
            "warm-up drift",
            "drift",
            f"c_t 1 -> 0.2 over the first {DRIFT_STEPS} steps, then constant",
            end=0.2,
            **common,
        ),
    ]
    return out


def collapse_scenario() -> Scenario:
    """Scenario 5: a real compression of I(X;T) (and rise of I(T;Y)) in the second half."""
    return Scenario(
        "collapse",
        "collapse",
        "T -> class means M[y] over the second half",
        true=RISE | ABOVE_Y | FALL | MOVE | ABOVE_X,
    )


def onehot_scenario(a: float) -> Scenario:
    """Scenario 6a: T = a onehot(Y) + N(0, I)."""
    return Scenario(f"onehot a={a:g}", "onehot", "T = a onehot(Y) + noise", strength=a)


def gaussian_scenario(rho: float, dim: int) -> Scenario:
    """Scenario 6b: X, T jointly Gaussian with correlation ``rho`` per dimension."""
    return Scenario(
        f"gaussian rho={rho:g}", "gaussian", "corr(X_j, T_j) = rho", dim=dim, strength=rho
    )


def independent_scenario(dim: int, classes: int) -> Scenario:
    """T independent of X and Y, on the digits of ``classes`` classes (the bias table)."""
    return Scenario(
        f"independent D={dim} K={classes}",
        "independent",
        "independent",
        dim=dim,
        classes=classes,
    )
