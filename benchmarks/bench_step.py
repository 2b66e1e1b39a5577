"""One information-plane step of VGG-16 on CIFAR-10 (N = 100): infoplane against two baselines.

The step is the paper's per-iteration measurement (Wickstrøm et al., arXiv:1909.11396): for the
input X, the labels Y and the 16 measured layers of VGG-16 (13 conv outputs, two dense 4096, the
softmax), compute every layer's width by label alignment over the authors' grid (100 candidates,
300 in the first 20 steps) with the moving average, then S(T), I(X;T) and I(T;Y) at alpha = 1.01.

Variants, all timed side by side in one process (interleaved rounds, medians):

* ``ours``: the library's path, i.e. ``InformationPlane._compute`` without the model forward:
  ``_squared_distances`` per layer, ``LabelAlignment`` per layer, ``_gram_from_squared_distances``
  and ``plane_step``. The input width is fixed (as in the paper), set once to the batch's median
  distance.
* ``baseline 1``: the authors' algorithm written plainly: ``[N, N, D]`` difference tensors for the
  distances, a Python loop over candidates scoring ``trace(K K_Y)`` by matrix products, and one
  float32 ``eigvalsh`` per matrix (K_X, each K_T, each K_X o K_T, each K_T o K_Y, K_Y).
* ``baseline 2``: the primitives the step cannot avoid, alone: one float64 ``[N, D] x [D, N]``
  product per layer (on float64 copies made beforehand) and the float64 ``eigvalsh`` calls of the
  same count and sizes as ours (one batch of the 100 x 100 matrices, one of the class blocks).

Peak memory is measured per variant in a fresh subprocess: the peak resident set (``VmHWM``,
reset through ``/proc/self/clear_refs`` after the inputs are built) minus the resident set just
before the variant runs; on CUDA, ``torch.cuda.max_memory_allocated`` above the allocation before.

Agreement: baseline 1 is rerun in float64 (distances from exact per-pair differences) with the
widths ours chose, converted to the authors' convention (their sigma = ours * sqrt(2)), and the
largest difference of I(X;T) and I(T;Y) is asserted. The optimizations of the library path are
checked against a reference path (one full-width float64 product for the distances, every
candidate's alignment in one matrix, the general full-matrix eigenvalues for S(T, Y)): same
chosen grid points, same results; and the pruned width search against every candidate evaluated
on random problems: same index.

Run: ``.venv/bin/python benchmarks/bench_step.py [--device cuda] [--threads 1]``. On a CPU
shared with other work, one thread avoids measuring OpenMP threads waiting for each other.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from infoplane import InformationPlane
from infoplane.functional import measures
from infoplane.functional.bandwidth import (
    LabelAlignment,
    _alignment_from_sq,
    _best_index,
    candidate_grid,
    median_distance,
)
from infoplane.functional.kernels import _gram_from_squared_distances, _squared_distances

SQRT2 = math.sqrt(2.0)
NUM_CLASSES = 10
WARMUP_STEPS = 20

#: VGG-16 on CIFAR-10: the 16 measured layers (after the non-linearity, before pooling).
VGG16_LAYERS: list[tuple[str, tuple[int, ...]]] = [
    ("conv1_1", (64, 32, 32)),
    ("conv1_2", (64, 32, 32)),
    ("conv2_1", (128, 16, 16)),
    ("conv2_2", (128, 16, 16)),
    ("conv3_1", (256, 8, 8)),
    ("conv3_2", (256, 8, 8)),
    ("conv3_3", (256, 8, 8)),
    ("conv4_1", (512, 4, 4)),
    ("conv4_2", (512, 4, 4)),
    ("conv4_3", (512, 4, 4)),
    ("conv5_1", (512, 2, 2)),
    ("conv5_2", (512, 2, 2)),
    ("conv5_3", (512, 2, 2)),
    ("fc1", (4096,)),
    ("fc2", (4096,)),
    ("softmax", (NUM_CLASSES,)),
]


# ----------------------------------------------------------------------------- data
def make_batch(n: int, seed: int, device: torch.device) -> dict[str, Any]:
    """Random VGG-16-shaped activations with class structure, labels and a CIFAR-like input.

    Hidden layers are ReLU-like: ``clamp(class_mean[y] + noise, min=0)``, with class means whose
    spread is about the noise level, so the label alignment peaks inside the candidate grid. The
    softmax layer is a float64 softmax of noisy class scores (``_compute`` takes it in float64).
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    x_means = 25.0 * torch.randn(NUM_CLASSES, 3 * 32 * 32, generator=g)
    x = (128.0 + x_means[y] + 50.0 * torch.randn(n, 3 * 32 * 32, generator=g)).clamp(0.0, 255.0)
    acts: dict[str, torch.Tensor] = {}
    for name, shape in VGG16_LAYERS:
        dim = math.prod(shape)
        if name == "softmax":
            logits = 3.0 * nn.functional.one_hot(y, NUM_CLASSES) + torch.randn(n, dim, generator=g)
            acts[name] = torch.softmax(logits.to(torch.float64), dim=1)
            continue
        means = 0.6 * torch.randn(NUM_CLASSES, dim, generator=g)
        acts[name] = (means[y] + torch.randn(n, dim, generator=g)).clamp(min=0.0).reshape(n, *shape)
    return {
        "x": x.reshape(n, 3, 32, 32).to(device),
        "y": y.to(device),
        "y_host": y,
        "acts": {k: v.to(device) for k, v in acts.items()},
    }


def make_rules(steps: int, sigma0: torch.Tensor | None = None) -> list[LabelAlignment]:
    """One label-alignment rule per layer, as if ``steps`` steps had already run."""
    rules = []
    for i in range(len(VGG16_LAYERS)):
        rule = LabelAlignment(warmup_steps=WARMUP_STEPS)
        rule.steps = steps
        if sigma0 is not None and steps > 0:
            rule.sigma = sigma0[i].clone()
        rules.append(rule)
    return rules


def reset_rules(rules: list[LabelAlignment], steps: int, sigma0: torch.Tensor) -> None:
    for i, rule in enumerate(rules):
        rule.steps = steps
        rule.sigma = sigma0[i].clone() if steps > 0 else None


# ----------------------------------------------------------------------------- ours
def ours_step(
    x: torch.Tensor,
    ids: torch.Tensor,
    ids_host: torch.Tensor,
    acts: dict[str, torch.Tensor],
    rules: list[LabelAlignment],
    sigma_x: torch.Tensor,
    alpha: float,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``InformationPlane._compute`` without the forward, the finiteness check and the record.

    The labels go to ``plane_step`` from the host, where the data loader has them, so that the
    class layout needs no device-to-host copy.
    """
    y_gram = (ids[:, None] == ids[None, :]).to(torch.float64)
    x2d = x.reshape(x.shape[0], -1)
    d2_x = _squared_distances(x2d)
    sigmas = [sigma_x]
    d2_ts = []
    for t, rule in zip(acts.values(), rules, strict=True):
        t2d = t.reshape(t.shape[0], -1)
        d2 = _squared_distances(t2d)
        d2_ts.append(d2)
        sigmas.append(rule(d2, t2d.shape[1], y_gram))
    sigma = torch.stack([s.to(torch.float64).reshape(()) for s in sigmas])
    k_x = _gram_from_squared_distances(d2_x, sigma[0])
    k_t = _gram_from_squared_distances(torch.stack(d2_ts), sigma[1:, None, None])
    return measures.plane_step(k_x, k_t, ids_host, alpha), sigma


def ours_phases(
    batch: dict[str, Any], rules: list[LabelAlignment], sigma_x: torch.Tensor, alpha: float
) -> tuple[dict[str, Callable[[], Any]], dict[str, Callable[[], Any]]]:
    """The step cut into phases, each a closure on the outputs of the previous ones; and the
    previous algorithm of the two phases that were optimized (references, for comparison)."""
    x, ids, ids_host, acts = batch["x"], batch["y"], batch["y_host"], batch["acts"]
    n = x.shape[0]
    flat = [x.reshape(n, -1)] + [t.reshape(n, -1) for t in acts.values()]
    y_gram = (ids[:, None] == ids[None, :]).to(torch.float64)
    d2s = [_squared_distances(f) for f in flat]
    sigma = torch.stack(
        [sigma_x] + [r.best_candidate(d2, y_gram) for r, d2 in zip(rules, d2s[1:], strict=True)]
    )
    d2_t = torch.stack(d2s[1:])
    k_x = _gram_from_squared_distances(d2s[0], sigma[0])
    k_t = _gram_from_squared_distances(d2_t, sigma[1:, None, None])
    device = k_t.device

    def blocks() -> Any:
        index, valid, counts, _ = measures._class_layout(ids_host)
        index, valid = measures._to_device(index, device), measures._to_device(valid, device)
        h_ty = measures.joint_with_labels_entropy(k_t, index, valid, alpha)
        return h_ty, measures.class_entropy(counts, alpha)

    phases = {
        "distances": lambda: [_squared_distances(f) for f in flat],
        "alignment search": lambda: [
            r(d2, f.shape[1], y_gram) for r, d2, f in zip(rules, d2s[1:], flat[1:], strict=True)
        ],
        "Gram exp": lambda: (
            _gram_from_squared_distances(d2s[0], sigma[0]),
            _gram_from_squared_distances(d2_t, sigma[1:, None, None]),
        ),
        "eigvalsh (batched)": lambda: measures._entropy_batch(
            measures._scaled_batch(k_x, k_t, None), alpha
        ),
        "block eig (T,Y)": blocks,
    }
    before = {
        "distances, one full-width product": lambda: [reference_squared_distances(f) for f in flat],
        "alignment search, all candidates in one matrix": lambda: [
            reference_pick(d2, y_gram, rules[0].num_candidates) for d2 in d2s[1:]
        ],
    }
    return phases, before


def library_compute(batch: dict[str, Any], sigma_x: float, alpha: float) -> torch.Tensor:
    """The real ``InformationPlane._compute`` on the batch (first step), as ``[L, 6]`` values."""
    names = [name for name, _ in VGG16_LAYERS]
    model = nn.ModuleDict({name: nn.Identity() for name in names})
    plane = InformationPlane(
        model,
        layers=names,
        alpha=alpha,
        x_width=sigma_x,
        width=LabelAlignment(warmup_steps=WARMUP_STEPS),
        include_output=False,
    )
    result = plane._compute(batch["x"], batch["y"], batch["acts"], update_widths=True)
    keys = ("i_xt", "i_ty", "h_t", "h_x", "h_y", "sigma")
    return torch.tensor([[result[n][k] for k in keys] for n in names], dtype=torch.float64)


# ----------------------------------------------------------------------------- baseline 1
def b1_distances(t2d: torch.Tensor) -> torch.Tensor:
    """Squared distances from the full ``[N, N, D]`` difference tensor (no chunking)."""
    diff = t2d[:, None, :] - t2d[None, :, :]
    return (diff**2).sum(dim=-1)


def b1_width(d2: torch.Tensor, k_y: torch.Tensor, num: int) -> tuple[torch.Tensor, int]:
    """Authors' grid (their convention) and a Python loop of matrix-product alignments."""
    n = d2.shape[0]
    iu = torch.triu_indices(n, n, offset=1, device=d2.device)
    mean = d2[iu[0], iu[1]].sqrt().mean()
    grid = torch.linspace(0.3, 10.0, num, dtype=d2.dtype, device=d2.device) * mean
    k_y_norm = torch.sqrt(torch.trace(k_y @ k_y))
    scores = []
    for s in grid:
        k = torch.exp(-d2 / (s * s))
        scores.append(torch.trace(k @ k_y) / (torch.sqrt(torch.trace(k @ k)) * k_y_norm))
    best = torch.stack(scores).argmax()
    return grid[best], best


def b1_entropy(k: torch.Tensor, alpha: float) -> torch.Tensor:
    a = k / torch.trace(k)
    lam = torch.linalg.eigvalsh(a).clamp(min=0.0)
    if alpha == 1.0:
        lam = lam[lam > 0]
        return -(lam * torch.log2(lam)).sum()
    return torch.log2((lam**alpha).sum()) / (1.0 - alpha)


def b1_entropy_part(
    d2_x: torch.Tensor,
    d2_ts: list[torch.Tensor],
    k_y: torch.Tensor,
    sigma_x_authors: torch.Tensor,
    sigmas_authors: list[torch.Tensor],
    alpha: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """I(X;T) and I(T;Y) per layer, one eigendecomposition per matrix (authors' convention)."""
    k_x = torch.exp(-d2_x / sigma_x_authors**2)
    h_x = b1_entropy(k_x, alpha)
    h_y = b1_entropy(k_y, alpha)
    i_xt, i_ty = [], []
    for d2, s in zip(d2_ts, sigmas_authors, strict=True):
        k_t = torch.exp(-d2 / s**2)
        h_t = b1_entropy(k_t, alpha)
        i_xt.append(h_x + h_t - b1_entropy(k_x * k_t, alpha))
        i_ty.append(h_t + h_y - b1_entropy(k_t * k_y, alpha))
    return torch.stack(i_xt), torch.stack(i_ty)


def b1_step(
    batch: dict[str, Any],
    ema: list[torch.Tensor | None],
    sigma_x_authors: torch.Tensor,
    num: int,
    alpha: float,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[int]]:
    """One step of the authors' algorithm in float32; ``ema`` holds their moving averages."""
    x, ids, acts = batch["x"], batch["y"], batch["acts"]
    n = x.shape[0]
    k_y = (ids[:, None] == ids[None, :]).to(torch.float32)
    d2_x = b1_distances(x.reshape(n, -1).float())
    d2_ts, sigmas, picks = [], [], []
    for i, t in enumerate(acts.values()):
        d2 = b1_distances(t.reshape(n, -1).float())
        best, index = b1_width(d2, k_y, num)
        ema[i] = best if ema[i] is None else 0.9 * ema[i] + 0.1 * best
        d2_ts.append(d2)
        sigmas.append(ema[i])
        picks.append(index)
    i_xt, i_ty = b1_entropy_part(d2_x, d2_ts, k_y, sigma_x_authors, sigmas, alpha)
    return i_xt, i_ty, sigmas, picks


def exact_squared_distances(t2d: torch.Tensor) -> torch.Tensor:
    """float64 squared distances summed from per-pair differences (agreement check only)."""
    t64 = t2d.to(torch.float64)
    return torch.stack([((t64[i] - t64) ** 2).sum(dim=1) for i in range(t64.shape[0])])


def reference_squared_distances(t2d: torch.Tensor) -> torch.Tensor:
    """The distances as computed before cache-sized chunks: one full-width float64 product."""
    c = t2d.to(torch.float64)
    c = c - c.mean(dim=0, keepdim=True)
    g = c @ c.T
    sq = torch.diagonal(g)
    d2 = sq[:, None] + sq[None, :] - 2.0 * g
    d2 = (0.5 * (d2 + d2.T)).clamp(min=0.0)
    return d2.fill_diagonal_(0.0)


def reference_pick(d2: torch.Tensor, y_gram: torch.Tensor, num: int) -> tuple[int, torch.Tensor]:
    """The grid point of best alignment with every candidate in one matrix (no chunks)."""
    n = d2.shape[0]
    iu = torch.triu_indices(n, n, offset=1, device=d2.device)
    dist, yv = d2[iu[0], iu[1]], y_gram[iu[0], iu[1]]
    grid = torch.linspace(0.3, 10.0, num, dtype=d2.dtype, device=d2.device)
    grid = grid * (dist.sqrt().mean() / SQRT2)
    k = torch.exp(dist[None, :] / (-2.0 * grid[:, None] * grid[:, None]))
    y_norm = (torch.diagonal(y_gram).square().sum() + 2.0 * yv.square().sum()).sqrt()
    inner = torch.diagonal(y_gram).sum() + 2.0 * (k @ yv)
    align = inner / ((n + 2.0 * (k * k).sum(dim=1)).sqrt() * y_norm)
    index = int(align.argmax())
    return index, grid[index]


# ----------------------------------------------------------------------------- baseline 2
def b2_inputs(
    batch: dict[str, Any], rules: list[LabelAlignment], sigma_x: torch.Tensor, alpha: float
) -> dict[str, Any]:
    """float64 copies of the data and the very matrices ours hands to ``eigvalsh``."""
    x, acts = batch["x"], batch["acts"]
    n = x.shape[0]
    flat64 = [x.reshape(n, -1).to(torch.float64)]
    flat64 += [t.reshape(n, -1).to(torch.float64) for t in acts.values()]
    ids = batch["y"]
    y_gram = (ids[:, None] == ids[None, :]).to(torch.float64)
    d2s = [_squared_distances(f) for f in flat64]
    sigma = torch.stack(
        [sigma_x] + [r.best_candidate(d2, y_gram) for r, d2 in zip(rules, d2s[1:], strict=True)]
    )
    k_x = _gram_from_squared_distances(d2s[0], sigma[0])
    k_t = _gram_from_squared_distances(torch.stack(d2s[1:]), sigma[1:, None, None])
    index, valid, _ = measures.class_blocks(batch["y_host"])
    index, valid = index.to(k_t.device), valid.to(k_t.device)
    blocks = k_t[:, index[:, :, None], index[:, None, :]]
    blocks = blocks * (valid[:, :, None] & valid[:, None, :]).to(k_t.dtype) / n
    return {
        "flat64": flat64,
        "mats": torch.cat([k_x[None], k_t, k_x[None] * k_t]) / n,
        "blocks": blocks,
    }


def b2_step(inputs: dict[str, Any], alpha: float) -> Any:
    grams = [f @ f.T for f in inputs["flat64"]]
    if alpha == 2.0:
        return grams
    return grams, torch.linalg.eigvalsh(inputs["mats"]), torch.linalg.eigvalsh(inputs["blocks"])


# ----------------------------------------------------------------------------- timing
class Timer:
    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.samples: dict[str, list[float]] = {}

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def run(self, name: str, fn: Callable[[], Any], before: Callable[[], Any] | None = None) -> Any:
        if before is not None:
            before()
        self.sync()
        t0 = time.perf_counter()
        out = fn()
        self.sync()
        self.samples.setdefault(name, []).append(time.perf_counter() - t0)
        return out

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])


# ----------------------------------------------------------------------------- memory
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def measure_memory(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Peak extra memory of one step of ``variant`` in this (fresh) process."""
    device = torch.device(args.device)
    batch = make_batch(args.n, args.seed, device)
    sigma_x = torch.tensor(float(median_distance(batch["x"])), dtype=torch.float64, device=device)
    sigma0 = torch.ones(len(VGG16_LAYERS), dtype=torch.float64, device=device)
    rules = make_rules(WARMUP_STEPS, sigma0)
    if variant == "ours":
        run = lambda: ours_step(  # noqa: E731
            batch["x"], batch["y"], batch["y_host"], batch["acts"], rules, sigma_x, args.alpha
        )
    elif variant == "baseline1":
        ema: list[torch.Tensor | None] = [None] * len(VGG16_LAYERS)
        run = lambda: b1_step(batch, ema, sigma_x.float() * SQRT2, 100, args.alpha)  # noqa: E731
    else:
        inputs = b2_inputs(batch, make_rules(WARMUP_STEPS, sigma0), sigma_x, args.alpha)
        run = lambda: b2_step(inputs, args.alpha)  # noqa: E731
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - before
        how = "torch.cuda.max_memory_allocated above the allocation before the step"
    else:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # reset the peak resident set (VmHWM) to the current one
            reset = True
        except OSError:
            reset = False
        before = _status_kib("VmRSS")
        run()
        if reset:
            peak = (_status_kib("VmHWM") - before) * 1024
            how = "VmHWM (peak RSS, reset before the step) minus VmRSS before the step"
        else:
            peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
            how = "ru_maxrss minus VmRSS before the step (upper bound: includes setup peaks)"
    return {"variant": variant, "peak_bytes": peak, "how": how}


def memory_in_subprocess(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--memory-variant",
        variant,
        "--device",
        args.device,
        "--n",
        str(args.n),
        "--seed",
        str(args.seed),
        "--alpha",
        str(args.alpha),
    ]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- checks
def check_agreement(batch: dict[str, Any], sigma_x: torch.Tensor, alpha: float) -> dict[str, Any]:
    """Agreement of ours with baseline 1 (same widths) and with the unoptimized reference path."""
    n = batch["x"].shape[0]
    rules = make_rules(0)
    out, sigma = ours_step(
        batch["x"], batch["y"], batch["y_host"], batch["acts"], rules, sigma_x, alpha
    )
    report: dict[str, Any] = {}

    # 1. The library's own InformationPlane._compute gives the same numbers as the mirror above.
    lib = library_compute(batch, float(sigma_x), alpha)
    mirror = torch.stack(
        [
            out["i_xt"],
            out["i_ty"],
            out["h_t"],
            out["h_x"].expand_as(out["h_t"]),
            out["h_y"].to(out["h_t"].device).expand_as(out["h_t"]),
            sigma[1:],
        ]
    ).T.cpu()
    report["ours_vs_InformationPlane._compute"] = float((lib - mirror).abs().max())
    assert report["ours_vs_InformationPlane._compute"] <= 1e-12, report

    # 2. Reference path, the algorithm before the optimizations: distances by one full-width
    #    float64 product, all candidates' alignments in one matrix, and the general
    #    (full-matrix) eigenvalues of K_T o K_Y. Same grid points, same results.
    y_gram = (batch["y"][:, None] == batch["y"][None, :]).to(torch.float64)
    num = rules[0].warmup_candidates
    ref_d2, ref_sigma, ref_picks, ours_picks = [], [], [], []
    for t, s in zip(batch["acts"].values(), sigma[1:], strict=True):
        d2 = reference_squared_distances(t.reshape(n, -1))
        index, best = reference_pick(d2, y_gram, num)
        ref_d2.append(d2)
        ref_sigma.append(best)
        ref_picks.append(index)
        lib_grid = candidate_grid(_squared_distances(t.reshape(n, -1)), num)
        ours_picks.append(int((lib_grid - s).abs().argmin()))
        assert bool(lib_grid[ours_picks[-1]] == s), "ours' first width is not a grid point"
    report["reference_same_grid_points"] = ref_picks == ours_picks
    assert ref_picks == ours_picks, (ref_picks, ours_picks)
    ref_sigma = torch.stack(ref_sigma)
    report["reference_max_rel_diff_sigma"] = float(
        ((ref_sigma - sigma[1:]) / ref_sigma).abs().max()
    )
    d2_x = _squared_distances(batch["x"].reshape(n, -1))
    k_x = _gram_from_squared_distances(d2_x, sigma[0])
    k_t = _gram_from_squared_distances(torch.stack(ref_d2), ref_sigma[:, None, None])
    ref = measures.plane_step(k_x, k_t, None, alpha, k_y=y_gram)
    report["reference_max_abs_diff_bits"] = max(
        float((out[k] - ref[k]).abs().max()) for k in ("i_xt", "i_ty", "h_t")
    )
    assert report["reference_max_abs_diff_bits"] <= 1e-9, report

    # 3. Baseline 1 with ours' widths (sigma * sqrt(2) in the authors' convention).
    sig_auth = sigma * SQRT2
    k_y = y_gram
    d2_x64 = exact_squared_distances(batch["x"].reshape(n, -1))
    d2_t64 = [exact_squared_distances(t.reshape(n, -1)) for t in batch["acts"].values()]
    i_xt64, i_ty64 = b1_entropy_part(d2_x64, d2_t64, k_y, sig_auth[0], list(sig_auth[1:]), alpha)
    report["b1_float64_max_abs_diff_I_xt"] = float((out["i_xt"] - i_xt64).abs().max())
    report["b1_float64_max_abs_diff_I_ty"] = float((out["i_ty"] - i_ty64).abs().max())
    sa32 = sig_auth.float()
    d2_x32 = b1_distances(batch["x"].reshape(n, -1).float())
    d2_t32 = [b1_distances(t.reshape(n, -1).float()) for t in batch["acts"].values()]
    i_xt32, i_ty32 = b1_entropy_part(d2_x32, d2_t32, k_y.float(), sa32[0], list(sa32[1:]), alpha)
    report["b1_float32_max_abs_diff_I_xt"] = float((out["i_xt"] - i_xt32.double()).abs().max())
    report["b1_float32_max_abs_diff_I_ty"] = float((out["i_ty"] - i_ty32.double()).abs().max())
    del d2_t32, d2_t64
    assert max(report["b1_float64_max_abs_diff_I_xt"], report["b1_float64_max_abs_diff_I_ty"]) <= (
        1e-6
    ), report

    # 4. Baseline 1's own float32 search picks the same grid points as ours (first step).
    *_, b1_picks = b1_step(
        batch, [None] * len(VGG16_LAYERS), sa32[0], rules[0].warmup_candidates, alpha
    )
    b1_picks = [int(p) for p in b1_picks]
    report["grid_index_ours"] = ours_picks
    report["grid_index_b1_float32"] = b1_picks
    report["b1_float32_same_grid_points"] = sum(
        a == b for a, b in zip(ours_picks, b1_picks, strict=True)
    )
    report["layers"] = len(ours_picks)
    return report


def check_search(trials: int, seed: int, device: torch.device) -> dict[str, Any]:
    """The library's width search against every candidate evaluated, on random problems.

    Both use the library's rule: the smallest candidate within the rounding margin of the
    maximum. Also counts the choices that differ from a plain argmax (rounding ties only).
    """
    g = torch.Generator().manual_seed(seed)
    mismatches = plain_ties = total = 0
    for trial in range(trials):
        n = int(torch.randint(2, 160, (1,), generator=g))
        dim = int(torch.randint(1, 400, (1,), generator=g))
        classes = int(torch.randint(1, 12, (1,), generator=g))
        y = torch.randint(0, classes, (n,), generator=g)
        scale = 4.0 * float(torch.rand(1, generator=g))
        x = scale * torch.randn(classes, dim, generator=g)[y] + torch.randn(n, dim, generator=g)
        if trial % 3 == 0:
            x = x.clamp(min=0.0)
        if trial % 7 == 0:
            x = x.round()
        if trial % 50 == 0:
            x = torch.ones_like(x)
        d2 = _squared_distances(x.to(device))
        y_gram = (y[:, None] == y[None, :]).to(torch.float64).to(device)
        if trial % 4 == 0:  # a Gaussian label kernel on one-hot rows
            one_hot = nn.functional.one_hot(y, classes).to(torch.float64).to(device)
            y_gram = _gram_from_squared_distances(_squared_distances(one_hot), 0.5)
        pairs = n * (n - 1) // 2
        margin = 1.0 + 16.0 * (pairs + 1024) * torch.finfo(torch.float64).eps
        for num in (1, 2, 15, 16, 17, 100, 300, 1000):
            grid = candidate_grid(d2, num)
            align = _alignment_from_sq(d2, y_gram, grid)
            full = int((align * margin >= align.max()).to(align.dtype).argmax())
            index = int(_best_index(d2, y_gram, grid))
            mismatches += full != index
            plain_ties += int(align.argmax()) != index
            total += 1
    assert mismatches == 0, mismatches
    return {"problems": total, "mismatches": mismatches, "plain_argmax_rounding_ties": plain_ties}


def check_sync(batch: dict[str, Any], sigma_x: torch.Tensor, alpha: float) -> list[str]:
    """Host synchronisations reported by CUDA's sync debug mode during one ours step."""
    rules = make_rules(WARMUP_STEPS, torch.ones(len(VGG16_LAYERS), device=sigma_x.device))
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            ours_step(batch["x"], batch["y"], batch["y_host"], batch["acts"], rules, sigma_x, alpha)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize()
    return [str(w.message).splitlines()[0] for w in caught]


# ----------------------------------------------------------------------------- main
def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:9.1f}"


def fmt_mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:9.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--alpha", type=float, default=1.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=9, help="rounds of the fast variants")
    parser.add_argument("--b1-repeats", type=int, default=3, help="rounds with baseline 1")
    parser.add_argument("--search-trials", type=int, default=300, help="random search checks")
    parser.add_argument("--skip-baseline1", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-variant", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_variant:
        print(json.dumps(measure_memory(args.memory_variant, args)))
        return

    device = torch.device(args.device)
    alpha = args.alpha
    batch = make_batch(args.n, args.seed, device)
    sigma_x = torch.tensor(float(median_distance(batch["x"])), dtype=torch.float64, device=device)
    print(
        f"# device {device}, CPU {cpu_model()}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, N = {args.n}, alpha = {alpha}, "
        f"{len(VGG16_LAYERS)} layers + input, sum D = "
        f"{sum(math.prod(s) for _, s in VGG16_LAYERS) + 3 * 32 * 32}"
    )

    agreement = check_agreement(batch, sigma_x, alpha)
    agreement["width_search_vs_every_candidate"] = check_search(args.search_trials, 7, device)
    sync_report = check_sync(batch, sigma_x, alpha) if device.type == "cuda" else None

    # Steady-state widths (any positive value: the moving average then runs its normal path).
    sigma0 = torch.ones(len(VGG16_LAYERS), dtype=torch.float64, device=device)
    rules = make_rules(WARMUP_STEPS, sigma0)
    b2_in = b2_inputs(batch, make_rules(WARMUP_STEPS, sigma0), sigma_x, alpha)
    phase_rules = make_rules(WARMUP_STEPS, sigma0)
    phases, before = ours_phases(batch, phase_rules, sigma_x, alpha)
    b1_sigma_x = sigma_x.float() * SQRT2

    def ours(a: float) -> Callable[[], Any]:
        return lambda: ours_step(
            batch["x"], batch["y"], batch["y_host"], batch["acts"], rules, sigma_x, a
        )

    timer = Timer(device)
    for steps in (0, WARMUP_STEPS):  # untimed first runs
        reset_rules(rules, steps, sigma0)
        ours(alpha)()
    b2_step(b2_in, alpha)

    b1_ema_steady: list[torch.Tensor | None] = [
        torch.tensor(1.0, device=device) for _ in VGG16_LAYERS
    ]
    for r in range(max(args.repeats, args.b1_repeats)):
        if r < args.repeats:
            for steps, tag in ((WARMUP_STEPS, "steady"), (0, "warmup")):
                for a, atag in ((alpha, ""), (2.0, " a=2")):
                    timer.run(
                        f"ours {tag}{atag}",
                        ours(a),
                        before=lambda s=steps: reset_rules(rules, s, sigma0),
                    )
            timer.run("baseline2", lambda: b2_step(b2_in, alpha))
            timer.run("baseline2 a=2", lambda: b2_step(b2_in, 2.0))
            for name, fn in [*phases.items(), *before.items()]:
                timer.run(
                    f"phase {name}",
                    fn,
                    before=lambda: reset_rules(phase_rules, WARMUP_STEPS, sigma0),
                )
        if r < args.b1_repeats and not args.skip_baseline1:
            timer.run(
                "baseline1 steady",
                lambda: b1_step(batch, list(b1_ema_steady), b1_sigma_x, 100, alpha),
            )
            timer.run(
                "baseline1 warmup",
                lambda: b1_step(batch, [None] * len(VGG16_LAYERS), b1_sigma_x, 300, alpha),
            )
            gc.collect()

    memory = {}
    if not args.skip_memory:
        variants = ["ours", "baseline2"] + ([] if args.skip_baseline1 else ["baseline1"])
        for v in variants:
            memory[v] = memory_in_subprocess(v, args)

    # ----------------------------------------------------------------------------- report
    med = timer.median
    print(f"\n## Time per step (median of {args.repeats} rounds; baseline 1: {args.b1_repeats})\n")
    print("| variant | steady (100 candidates) ms | warm-up (300 candidates) ms |")
    print("|---|---:|---:|")
    print(
        f"| ours, alpha = {alpha} | {fmt_ms(med('ours steady'))} | {fmt_ms(med('ours warmup'))} |"
    )
    print(
        f"| ours, alpha = 2 | {fmt_ms(med('ours steady a=2'))} | {fmt_ms(med('ours warmup a=2'))} |"
    )
    if not args.skip_baseline1:
        print(
            f"| baseline 1 (authors, float32), alpha = {alpha} | "
            f"{fmt_ms(med('baseline1 steady'))} | {fmt_ms(med('baseline1 warmup'))} |"
        )
    print(f"| baseline 2 (float64 products + eigvalsh) | {fmt_ms(med('baseline2'))} | (same) |")
    print(f"| baseline 2, alpha = 2 (products only) | {fmt_ms(med('baseline2 a=2'))} | (same) |")

    print("\n## Ratios\n")
    print("| ratio | steady | warm-up | target |")
    print("|---|---:|---:|---|")
    if not args.skip_baseline1:
        s = med("baseline1 steady") / med("ours steady")
        w = med("baseline1 warmup") / med("ours warmup")
        print(f"| baseline 1 / ours | {s:.1f}x | {w:.1f}x | >= 20x |")
    s = med("ours steady") / med("baseline2")
    w = med("ours warmup") / med("baseline2")
    print(f"| ours / baseline 2 | {s:.2f}x | {w:.2f}x | <= 1.5x |")
    s = med("ours steady a=2") / med("baseline2 a=2")
    w = med("ours warmup a=2") / med("baseline2 a=2")
    print(f"| ours / baseline 2, alpha = 2 | {s:.2f}x | {w:.2f}x | |")

    print(f"\n## Phases of ours (steady state, alpha = {alpha}, medians)\n")
    print("| phase | ms | share of the phase sum |")
    print("|---|---:|---:|")
    total = sum(med(f"phase {k}") for k in phases)
    for k in phases:
        m = med(f"phase {k}")
        print(f"| {k} | {fmt_ms(m)} | {100 * m / total:5.1f}% |")
    print(f"| sum | {fmt_ms(total)} | |")
    print("\nThe same two phases with the algorithm before the optimizations (same inputs):\n")
    print("| previous algorithm | ms |")
    print("|---|---:|")
    for k in before:
        print(f"| {k} | {fmt_ms(med(f'phase {k}'))} |")

    if memory:
        how = next(iter(memory.values()))["how"]
        print(f"\n## Peak memory of one steady step (fresh subprocess each; {how})\n")
        print("| variant | peak MiB |")
        print("|---|---:|")
        for v, m in memory.items():
            print(f"| {v} | {fmt_mib(m['peak_bytes'])} |")
        if "baseline1" in memory:
            share = memory["ours"]["peak_bytes"] / memory["baseline1"]["peak_bytes"]
            print(f"\nours / baseline 1 peak: {100 * share:.2f}% (target <= 10%)")

    print("\n## Agreement (same widths; bits)\n")
    for k, v in agreement.items():
        print(f"- {k}: {v}")
    if sync_report is not None:
        print(f"\n## Host synchronisations in one ours step on CUDA: {len(sync_report)}")
        for line in sync_report:
            print(f"- {line}")


if __name__ == "__main__":
    main()
