"""One information-plane step through the public API, against its floor and the authors' algorithm.

For the paper's MLP, CNN and VGG-16 (``infoplane.experiments.models``) at N = 100, one process,
all variants interleaved (medians of ``--repeats`` rounds):

* ``measure``: ``InformationPlane(model, x_width=...).measure(x, y, step=...)``, the call a user
  makes, at steady state (after the warm-up grid of the width rule);
* ``forward``: the model's eval forward alone (every method runs it);
* ``bare``: the primitives the maths cannot avoid: one float64 ``[N, D] x [D, N]`` product per
  measured tensor (on float64 copies made beforehand), one batched ``eigvalsh`` of the
  ``1 + 2L`` matrices ``[N, N]`` and one of the ``L`` layers' class blocks;
* ``bare + upcast``: the same with each float64 copy made inside the timing (float32
  activations must be converted before a float64 product; ``maths`` pays for that too);
* ``maths``: the tracker's per-step maths alone, from captured activations (through the
  tracker's private reader and measurer: validation, distances, widths, Grams, entropies);
* ``authors f32`` / ``authors f64``: the authors' per-step algorithm as they wrote it
  (``benchmarks/authors.py``) in their dtype and in float64, on the same captured activations.

The ``torch calls`` column counts what one call of each variant makes through torch's Python
API (:func:`benchmarks.common.torch_calls`): a count that, unlike the times, a busy machine does
not change. Ratios printed, each named for what it times: *end to end* = measure / (forward +
bare) and (forward + authors) / measure; *maths only* = maths / bare and authors / maths.
Agreement in bits: the authors' algorithm at the widths ``measure`` chose, against
``measure``'s numbers.
``--controls null fixed`` adds the controls of the tracker where the installed version has them.

Run: ``python -m benchmarks.bench_step [--models mlp cnn vgg16] [--busy-core] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import torch

from benchmarks import authors
from benchmarks.common import (
    add_common_arguments,
    interleaved,
    medians,
    peak_extra_mib,
    session,
    table,
    torch_calls,
)
from infoplane import InformationPlane, capture
from infoplane.experiments.models import build_model

MODELS = ("mlp", "cnn", "vgg16")
NUM_CLASSES = 10
SQRT2 = math.sqrt(2.0)
COLUMNS = ("model", "variant", "median ms", "peak extra MiB (first call)", "torch calls")


def make_case(name: str, n: int, seed: int) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The model (eval mode) and a class-structured batch: prototype per class plus noise."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(name).eval()
    shape = model.input_shape
    y = torch.randperm(n, generator=gen) % NUM_CLASSES
    protos = torch.rand((NUM_CLASSES, *shape), generator=gen)
    x = (protos[y] + 0.3 * torch.randn((n, *shape), generator=gen)).clamp(0.0, 1.0)
    return model, x, y


def median_distance(x: torch.Tensor) -> float:
    """The batch's median pairwise distance: a fixed input width, as the paper fixes it."""
    f = x.reshape(x.shape[0], -1).double()
    d = torch.cdist(f, f)
    return float(d[torch.triu_indices(len(f), len(f), 1).unbind()].median())


def captured(plane: InformationPlane, x: torch.Tensor) -> list[torch.Tensor]:
    """The measured tensors of one eval forward: the layers, then the softmax output."""
    with torch.no_grad(), capture(plane.model, plane.layers) as acts:
        out = plane.model(x)
    return [acts[n] for n in plane.layers] + [torch.softmax(out.double(), dim=1)]


def bare_inputs(x: torch.Tensor, y: torch.Tensor, tensors: list[torch.Tensor]) -> dict[str, Any]:
    """float64 copies and eigenvalue batches of the sizes the step needs (built untimed)."""
    n = x.shape[0]
    flat = [t.reshape(n, -1).double() for t in [x, *tensors]]
    grams = []
    for f in flat:
        c = f - f.mean(dim=0)
        sq = (c * c).sum(dim=1)
        d2 = (sq[:, None] + sq[None, :] - 2.0 * c @ c.T).clamp(min=0.0)
        grams.append(torch.exp(-d2 / d2.mean()))
    k = torch.stack(grams)
    batch = torch.cat([k, k[:1] * k[1:]]) / n
    sizes = torch.bincount(y)
    order = torch.argsort(y, stable=True)
    n_max = int(sizes.max())
    blocks = torch.zeros((len(tensors), len(sizes), n_max, n_max), dtype=torch.float64)
    start = 0
    for c, size in enumerate(sizes.tolist()):
        idx = order[start : start + size]
        blocks[:, c, :size, :size] = k[1:, idx][:, :, idx] / n
        start += size
    raw = [t.reshape(n, -1) for t in [x, *tensors]]
    return {"flat": flat, "raw": raw, "batch": batch, "blocks": blocks}


def bare(inputs: dict[str, Any], tensors: str = "flat") -> None:
    """The floor's maths: one float64 Gram product per tensor, the two eigenvalue batches.

    ``tensors="raw"``: the float64 copy of each captured tensor is made inside the call (float32
    activations must be converted before a float64 product; the maths pays for it too); the
    ``"flat"`` copies are float64 already, so ``.to`` returns them as they are.
    """
    for r in inputs[tensors]:
        f = r.to(torch.float64)
        torch.mm(f, f.T)
    torch.linalg.eigvalsh(inputs["batch"])
    torch.linalg.eigvalsh(inputs["blocks"])


def make_plane(model: torch.nn.Module, sigma_x: float, controls: tuple[str, ...]) -> Any:
    """A tracker with the paper's fixed input width and these controls (``()``: none).

    None if the installed tracker takes no ``controls=`` and some were asked for.
    """
    try:
        return InformationPlane(model, x_width=sigma_x, controls=controls)
    except TypeError:
        return None if controls else InformationPlane(model, x_width=sigma_x)


class Stepper:
    """Calls ``measure`` with increasing steps, as a training loop does."""

    def __init__(self, plane: InformationPlane, x: torch.Tensor, y: torch.Tensor) -> None:
        self.plane, self.x, self.y, self.step = plane, x, y, 0

    def __call__(self) -> dict[str, dict[str, float]]:
        out = self.plane.measure(self.x, self.y, step=self.step)
        self.step += 1
        return out

    def warm_up(self) -> None:
        """Past the width rule's warm-up grid (20 steps of 300 candidates by default)."""
        for _ in range(21):
            self()

    def maths(self) -> Any:
        """The per-step maths from captured activations, or None where the tracker lacks it.

        Reaches into the tracker's private reader and measurer: the labelled "maths only" row.
        """
        reader = getattr(self.plane, "_reader", None)
        measurer = getattr(self.plane, "_measurer", None)
        if reader is None or measurer is None:
            return None
        batch = reader.read(self.x, self.y, who="bench_step")

        def call() -> Any:
            self.step += 1
            return measurer.measure(batch, split="train", step=self.step, update=True, gather=False)

        return call


def maths_parts(stepper: Stepper) -> dict[str, Any]:
    """The parts of ``maths`` on one captured batch (private functions of the tracker): the
    squared distances, the width search (a probe's look-up: the same search, no state), and
    the Grams with their entropies. None where the tracker lacks them."""
    try:
        from infoplane.functional.kernels import gram_from_squared_distances
        from infoplane.functional.measures import plane_step_with_controls
        from infoplane.tracker._measurer import _distances
        from infoplane.widths import batch_widths
    except ImportError:
        return {}
    plane = stepper.plane
    x, ids, acts = plane._reader.read(stepper.x, stepper.y, who="bench_step")
    measurer = plane._measurer
    y_gram = measurer.label_gram(ids)
    d2, dims = _distances(x, acts)
    state = measurer.state("train")
    rules = [state.x_rule, *(state.rules[name] for name in acts)]
    sigma = batch_widths(rules, d2, dims, y_gram, update=False)

    def grams_and_entropies() -> Any:
        k = gram_from_squared_distances(d2, sigma[:, None, None])
        return plane_step_with_controls(k[0], k[1:], ids, plane.alpha)

    return {
        "maths: distances": lambda: _distances(x, acts),
        "maths: width search": lambda: batch_widths(rules, d2, dims, y_gram, update=False),
        "maths: Grams + entropies": grams_and_entropies,
    }


def agreement(
    result: dict[str, dict[str, float]],
    x: torch.Tensor,
    y: torch.Tensor,
    tensors: list[torch.Tensor],
    sigma_x: float,
    alpha: float,
) -> dict[str, float]:
    """Largest |difference| in bits between ``measure`` and the authors' algorithm at its widths."""
    sigmas = [q["sigma"] * SQRT2 for q in result.values()]
    ours = torch.tensor([[q["i_xt"], q["i_ty"]] for q in result.values()], dtype=torch.float64)
    out = {}
    for dtype, label in ((torch.float32, "f32"), (torch.float64, "f64")):
        i_xt, i_ty = authors.at_widths(x, y, tensors, sigma_x * SQRT2, sigmas, alpha, dtype)
        theirs = torch.stack([i_xt, i_ty], dim=1).double()
        out[f"authors {label} vs measure, bits"] = float((theirs - ours).abs().max())
    return out


def own_search_ratios(plane: InformationPlane, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """First-step widths of the authors' own search over ours (same convention), per layer.

    Call on a fresh tracker: its first ``measure`` returns the first grid pick of each layer.
    """
    result = plane.measure(x, y, step=0)
    k_y = (y[:, None] == y[None, :]).float()
    ratios = []
    for t, q in zip(captured(plane, x), result.values(), strict=True):
        best, _ = authors.alignment_width(authors.distances(t.float()), k_y, 300)
        ratios.append(float(best) / (q["sigma"] * SQRT2))
    return ratios


def variants_of(
    stepper: Stepper, sigma_x: float, args: Any
) -> tuple[dict[str, Any], dict[str, float]]:
    """The timed variants of one case, and the peak extra memory of the first call of each."""
    model, x, y = stepper.plane.model, stepper.x, stepper.y
    tensors = captured(stepper.plane, x)
    inputs = bare_inputs(x, y, tensors)
    run: dict[str, Any] = {
        "measure": stepper,
        "forward": lambda: model(x),
        "bare": lambda: bare(inputs),
        "bare + upcast": lambda: bare(inputs, "raw"),
    }
    maths = stepper.maths()
    if maths is None:
        print("## the installed tracker has no _reader/_measurer: the maths-only rows are skipped.")
    else:
        run["maths"] = maths
        run.update(maths_parts(stepper))
    if args.authors:
        for dtype, label in ((torch.float32, "authors f32"), (torch.float64, "authors f64")):
            if label.split()[1] in args.authors_dtypes:
                step = authors.AuthorsStep(sigma_x * SQRT2, stepper.plane.alpha, dtype)
                step.steps = step.warmup_steps  # steady state: past the warm-up grid, like ours
                run[label] = lambda step=step: step(x, y, tensors)
    memory = {}
    with torch.no_grad():
        for name, fn in run.items():
            memory[name] = peak_extra_mib(fn)
    return run, memory


def report_case(
    name: str, times: dict[str, float], memory: dict[str, float], calls: dict[str, int]
) -> list[dict]:
    """Rows of the per-variant table and the named ratios."""
    rows = [
        {
            "model": name,
            "variant": v,
            "median ms": 1e3 * t,
            "peak extra MiB (first call)": memory[v],
            "torch calls": calls.get(v, ""),
        }
        for v, t in times.items()
    ]
    floor = times["forward"] + times["bare"]
    ratios = {"end to end: measure / (forward + bare)": times["measure"] / floor}
    if "maths" in times:
        ratios["maths only: maths / bare"] = times["maths"] / times["bare"]
        ratios["maths only: maths / (bare + upcast)"] = times["maths"] / times["bare + upcast"]
    for label in ("authors f32", "authors f64"):
        if label in times:
            ratios[f"end to end: (forward + {label}) / measure"] = (
                times["forward"] + times[label]
            ) / times["measure"]
            if "maths" in times:
                ratios[f"maths only: {label} / maths"] = times[label] / times["maths"]
    return rows + [{"model": name, "variant": k, "median ms": v} for k, v in ratios.items()]


def controls_rows(name: str, model: Any, x: Any, y: Any, sigma_x: float, args: Any) -> list[dict]:
    """The cost of the controls: maths with them over maths without, interleaved."""
    plane = make_plane(model, sigma_x, tuple(args.controls))
    if plane is None:
        print(f"## {name}: the installed InformationPlane takes no controls=; skipped.")
        return []
    with_controls = Stepper(plane, x, y)
    without = Stepper(make_plane(model, sigma_x, ()), x, y)
    with_controls.warm_up()
    without.warm_up()
    run = {"measure": without, "measure + controls": with_controls}
    inputs = bare_inputs(x, y, captured(plane, x))
    layers = inputs["blocks"].shape[0]
    # the controls' own eigenvalue problems: S(X o T) with X permuted for each of the B null
    # draws and S(T), S(X o T) at the held widths ((B + 2) L matrices: the input keeps its fixed
    # width, so S(X) is the estimate's), and the class blocks of the draws and the held Grams
    # ((B + 1) L sets)
    draws = plane._measurer.null_permutations if "null" in args.controls else 0
    held = 1 if "fixed" in args.controls else 0
    count = (draws + 2 * held) * layers
    extra = inputs["batch"][torch.arange(count) % inputs["batch"].shape[0]].contiguous()
    extra_blocks = inputs["blocks"].repeat(draws + held, *[1] * (inputs["blocks"].dim() - 1))
    run["bare controls (their eigenvalues)"] = lambda: (
        torch.linalg.eigvalsh(extra),
        torch.linalg.eigvalsh(extra_blocks),
    )
    m_with, m_without = with_controls.maths(), without.maths()
    if m_with is not None and m_without is not None:
        run.update({"maths": m_without, "maths + controls": m_with})
    with torch.no_grad():
        times = medians(interleaved(run, args.repeats))
    rows = [{"model": name, "variant": v, "median ms": 1e3 * t} for v, t in times.items()]
    key = "maths" if "maths" in times else "measure"
    added = times[f"{key} + controls"] / times[key] - 1.0
    rows.append({"model": name, "variant": f"controls add to {key}, %", "median ms": 100 * added})
    cost = times[f"{key} + controls"] - times[key]
    rows.append(
        {
            "model": name,
            "variant": "controls' cost / their bare eigenvalues",
            "median ms": cost / times["bare controls (their eigenvalues)"],
        }
    )
    return rows


def run_case(name: str, args: Any) -> list[dict]:
    model, x, y = make_case(name, args.n, args.seed)
    sigma_x = median_distance(x)
    ratios = own_search_ratios(make_plane(model, sigma_x, ()), x, y)
    print(
        f"## {name}: authors' own first-step widths / ours: " + " ".join(f"{r:.3g}" for r in ratios)
    )
    plane = make_plane(model, sigma_x, ())
    stepper = Stepper(plane, x, y)
    stepper.warm_up()
    result = stepper()
    agree = agreement(result, x, y, captured(plane, x), sigma_x, plane.alpha)
    print(f"## {name}: " + ", ".join(f"{k} {v:.2e}" for k, v in agree.items()), flush=True)
    run, memory = variants_of(stepper, sigma_x, args)
    with torch.no_grad():
        times = medians(interleaved(run, args.repeats, warmup=0))
        # counted after the timing, once each; the authors' steps take seconds (VGG-16: 30 s)
        calls = {v: torch_calls(fn) for v, fn in run.items() if not v.startswith("authors")}
    rows = report_case(name, times, memory, calls)
    if args.controls:
        rows += controls_rows(name, model, x, y, sigma_x, args)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, repeats=5)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--n", type=int, default=100, help="batch size N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-authors", dest="authors", action="store_false")
    parser.add_argument("--authors-dtypes", nargs="+", default=["f32", "f64"])
    parser.add_argument("--controls", nargs="*", default=[], help="e.g. null fixed")
    args = parser.parse_args(argv)
    with session(args, "bench_step: one step of the public API, its floor, the authors"):
        rows = []
        for name in args.models:
            case_rows = run_case(name, args)
            print(table(case_rows, COLUMNS), flush=True)
            rows += case_rows
    print(table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
