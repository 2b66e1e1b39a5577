"""The measurement on a GPU: one command, under 8 minutes on one datacenter GPU.

Prints, on ``--device`` (default: CUDA when available):

1. the VGG-16 step through ``InformationPlane.measure`` at N = 100 (float64 Grams and
   eigenvalues), steady state, beside the eval forward alone;
2. the Gram products of the input and its measured layers in float32 against float64: time, and the
   agreement in bits of the entropies built from them (float64 exp and eigenvalues for both);
3. the measurement's overhead as a fraction of a VGG-16 training step at batch 100
   (forward, backward, SGD with lr 0.09), interleaved;
4. exact against randomized entropy (``renyi_entropy(method="exact" / "approx")``) at
   N = 2000 - 16000: time and relative error;
5. the peak device memory of each section (CUDA: ``max_memory_allocated``; CPU: growth of the
   peak resident set).

``--small`` shrinks every size (a narrow VGG-16, N = 20, N = 200 - 400 for the entropies) so that
``python -m benchmarks.gpu --device cpu --small`` runs in seconds: the test suite runs it so.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import torch

from benchmarks.bench_scaling import LARGE_COLUMNS, LARGE_N, large_n_section
from benchmarks.common import (
    add_common_arguments,
    interleaved,
    medians,
    peak_mib,
    session,
    table,
)
from infoplane import InformationPlane, capture, renyi_entropy
from infoplane.experiments.models import VGG16

SMALL_WIDTH = (8, 8, "M", 16, 16, "M", 32, 32, 32, "M", 64, 64, 64, "M", 64, 64, 64, "M")
SMALL_N = (200, 400)


def vgg_case(device: torch.device, small: bool, seed: int = 0) -> dict[str, Any]:
    """A VGG-16 on ``device``, a class-structured CIFAR-shaped batch and a tracker past warm-up."""
    torch.manual_seed(seed)
    kwargs = {"width": SMALL_WIDTH, "dense": 64} if small else {}
    model = VGG16(**kwargs).to(device)
    n = 20 if small else 100
    y = (torch.arange(n) % 10)[torch.randperm(n)].to(device)
    protos = 255.0 * torch.rand((10, 3, 32, 32), device=device)
    x = (protos[y] + 40.0 * torch.randn((n, 3, 32, 32), device=device)).clamp(0.0, 255.0)
    plane = InformationPlane(model, x_width=8.0 / math.sqrt(2.0))  # the paper's input width
    for step in range(21):  # past the width rule's warm-up grid
        plane.measure(x, y, step=step)
    return {"model": model, "x": x, "y": y, "plane": plane, "step": 21}


def step_section(case: dict[str, Any], device: torch.device, repeats: int) -> list[dict]:
    """Section 1: measure against the eval forward alone."""
    model, x, y, plane = case["model"], case["x"], case["y"], case["plane"]

    def measure() -> None:
        plane.measure(x, y, step=case["step"])
        case["step"] += 1

    def forward() -> None:
        with torch.no_grad():
            model.eval()(x)

    _, mem = peak_mib(measure, device)
    t = medians(interleaved({"measure": measure, "eval forward": forward}, repeats, device=device))
    return [
        {"section": "VGG-16 step", "quantity": "measure ms", "value": 1e3 * t["measure"]},
        {"section": "VGG-16 step", "quantity": "eval forward ms", "value": 1e3 * t["eval forward"]},
        {"section": "VGG-16 step", "quantity": "measure peak extra MiB", "value": mem},
    ]


def _entropies(flat: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
    """S(T) of each tensor from a Gram product in ``dtype``; exp and eigenvalues in float64."""
    out = []
    for f in flat:
        c = f.to(dtype)
        c = c - c.mean(dim=0)
        g = (c @ c.T).double()
        sq = torch.diagonal(g)
        d2 = (sq[:, None] + sq[None, :] - 2.0 * g).clamp(min=0.0)
        sigma2 = d2.sum() / (d2.shape[0] * (d2.shape[0] - 1))  # mean squared distance
        out.append(renyi_entropy(torch.exp(-d2 / sigma2), 1.01))
    return torch.stack(out)


def precision_section(case: dict[str, Any], device: torch.device, repeats: int) -> list[dict]:
    """Section 2: float32 against float64 Gram products of the measured tensors."""
    plane, x = case["plane"], case["x"]
    with torch.no_grad(), capture(plane.model.eval(), plane.layers) as acts:
        plane.model(x)
    flat = [t.reshape(len(x), -1) for t in [x, *acts.values()]]
    f32 = [f.float() for f in flat]
    f64 = [f.double() for f in flat]
    run = {
        "float32 products": lambda: [torch.mm(f, f.T) for f in f32],
        "float64 products": lambda: [torch.mm(f, f.T) for f in f64],
    }
    t = medians(interleaved(run, repeats, device=device))
    diff = (_entropies(flat, torch.float32) - _entropies(flat, torch.float64)).abs().max()
    return [
        {"section": "Gram products", "quantity": f"{k} ms ({len(flat)} tensors)", "value": 1e3 * v}
        for k, v in t.items()
    ] + [{"section": "Gram products", "quantity": "max abs(S32 - S64) bits", "value": float(diff)}]


def overhead_section(case: dict[str, Any], device: torch.device, repeats: int) -> list[dict]:
    """Section 3: one measurement against one training step at the same batch."""
    model, x, y, plane = case["model"], case["x"], case["y"], case["plane"]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.09)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    def measure() -> None:
        plane.measure(x, y, step=case["step"])
        case["step"] += 1

    t = medians(interleaved({"train": train_step, "measure": measure}, repeats, device=device))
    return [
        {"section": "overhead", "quantity": "training step ms", "value": 1e3 * t["train"]},
        {"section": "overhead", "quantity": "measure ms", "value": 1e3 * t["measure"]},
        {
            "section": "overhead",
            "quantity": "measure / training step",
            "value": t["measure"] / t["train"],
        },
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, repeats=5)
    default = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default, help=f"torch device (default {default})")
    parser.add_argument("--small", action="store_true", help="tiny sizes (seconds on a CPU)")
    parser.add_argument("--sizes", type=int, nargs="+", help="N of the entropy section")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    sizes = tuple(args.sizes or (SMALL_N if args.small else LARGE_N))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    with session(args, f"gpu: the measurement on {device} ({name})"):
        case = vgg_case(device, args.small)
        rows = step_section(case, device, args.repeats)
        rows += precision_section(case, device, args.repeats)
        rows += overhead_section(case, device, args.repeats)
        print(table(rows, ["section", "quantity", "value"]), flush=True)
        big = large_n_section(sizes, device, max(1, min(args.repeats, 3)))
        print(table(big, LARGE_COLUMNS), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
