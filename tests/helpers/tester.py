"""One measurement through every path that must agree (in the spirit of torchmetrics'
``MetricTester``): the tracker class, the functional API, the naive float64 reference of
``tests/helpers/reference.py``, and two gloo processes that each hold half of the batch.

Usage::

    tester = MeasurementTester("tests.helpers.tester:tiny_mlp", x, y, alpha=1.0, x_width=2.0)
    tester.check(tmp_path, distributed=True)

The model is named by an importable ``"module:function"`` so the worker processes can build the
same seeded model. Widths: the class chooses each layer's width; the functional API and the
reference are evaluated at exactly those widths (and at the fixed ``x_width``), so any
disagreement is in the maths, not in the width rule.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from torch import nn

from infoplane import (
    InformationPlane,
    gaussian_gram,
    label_gram,
    mutual_information,
    renyi_entropy,
)
from infoplane.capture import capture
from tests.helpers import reference as ref

Result = dict[str, dict[str, float]]
#: The quantities every path computes.
CHECKED = ("i_xt", "i_ty", "h_t")


def tiny_mlp() -> nn.Module:
    """A small seeded MLP with two measured activations (the default model of the tester)."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 3)
    ).double()
    model.measured_layers = ["1", "3"]  # type: ignore[attr-defined]
    return model


def build(model_spec: str) -> nn.Module:
    module, _, name = model_spec.partition(":")
    return getattr(importlib.import_module(module), name)()


class MeasurementTester:
    """Measure ``(x, y)`` through each path; :meth:`check` asserts that they agree."""

    def __init__(self, model_spec: str, x: torch.Tensor, y: torch.Tensor, **options: Any) -> None:
        if not isinstance(options.get("x_width"), (int, float)):
            raise ValueError("MeasurementTester: pass a fixed numeric x_width.")
        self.model_spec = model_spec
        self.x, self.y = x, y
        self.options = {"controls": (), "include_output": False, **options}
        self.alpha = float(options.get("alpha", 1.01))

    # -- the paths
    def by_class(self) -> Result:
        plane = InformationPlane(build(self.model_spec), **self.options)
        return plane.measure(self.x, self.y, step=0)

    def activations(self) -> dict[str, torch.Tensor]:
        model = build(self.model_spec)
        layers = list(model.measured_layers)
        model.eval()
        with torch.no_grad(), capture(model, layers) as acts:
            model(self.x)
        return {name: acts[name].double() for name in layers}

    def by_functional(self, widths: dict[str, float]) -> Result:
        k_x = gaussian_gram(self.x, self.options["x_width"])
        k_y = label_gram(self.y)
        out = {}
        for name, t in self.activations().items():
            k_t = gaussian_gram(t, widths[name])
            out[name] = {
                "i_xt": float(mutual_information(k_x, k_t, alpha=self.alpha)),
                "i_ty": float(mutual_information(k_t, k_y, alpha=self.alpha)),
                "h_t": float(renyi_entropy(k_t, alpha=self.alpha)),
            }
        return out

    def by_reference(self, widths: dict[str, float]) -> Result:
        x = self.x.numpy()
        k_x = ref.gaussian_gram(x, self.options["x_width"])
        k_y = ref.label_gram(self.y.numpy())
        out = {}
        for name, t in self.activations().items():
            k_t = ref.gaussian_gram(t.numpy(), widths[name])
            out[name] = {
                "i_xt": ref.mutual_information(k_x, k_t, self.alpha),
                "i_ty": ref.mutual_information(k_t, k_y, self.alpha),
                "h_t": ref.renyi_entropy(k_t, self.alpha),
            }
        return out

    def by_two_processes(self, tmp_path: Path, timeout: float = 120.0) -> list[Result]:
        data = tmp_path / "tester_data.pt"
        torch.save({"x": self.x, "y": self.y}, data)
        (tmp_path / "tester_options.json").write_text(
            json.dumps({"model": self.model_spec, "options": self.options})
        )
        return _launch(tmp_path, timeout)

    # -- the check
    def check(self, tmp_path: Path | None = None, *, distributed: bool = False, tol=1e-9) -> None:
        got = self.by_class()
        widths = {name: q["sigma"] for name, q in got.items()}
        paths = {"functional": self.by_functional(widths), "reference": self.by_reference(widths)}
        if distributed:
            assert tmp_path is not None, "distributed checks need tmp_path"
            ranks = self.by_two_processes(tmp_path)
            assert ranks[0] == ranks[1], "the ranks disagree"
            paths["two processes"] = ranks[0]
        for path, want in paths.items():
            assert list(want) == list(got), (path, list(want), list(got))
            for name, values in want.items():
                for q in CHECKED:
                    a, b = got[name][q], values[q]
                    assert math.isfinite(a) and abs(a - b) <= tol * max(1.0, abs(b)), (
                        path, name, q, a, b,
                    )  # fmt: skip


# ------------------------------------------------------------------------- two gloo processes
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(folder: Path, timeout: float) -> list[Result]:
    port = _free_port()
    root = Path(__file__).resolve().parents[2]  # the repository, where ``tests`` is importable
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.tester", str(folder)],
            cwd=root,
            env={
                **os.environ,
                "RANK": str(rank),
                "WORLD_SIZE": "2",
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                "OMP_NUM_THREADS": "1",
                "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    deadline = time.monotonic() + timeout
    try:
        logs = [p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    codes = [p.returncode for p in procs]
    assert not any(codes), f"a rank failed: {codes}\n" + "\n".join(log[-2000:] for log in logs)
    return [json.loads((folder / f"tester_rank{r}.json").read_text()) for r in range(2)]


def _worker(folder: Path) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    spec = json.loads((folder / "tester_options.json").read_text())
    data = torch.load(folder / "tester_data.pt")
    rank = int(os.environ["RANK"])
    dist.init_process_group(backend="gloo", timeout=timedelta(seconds=60))
    try:
        half = len(data["x"]) // 2
        part = slice(0, half) if rank == 0 else slice(half, None)
        plane = InformationPlane(build(spec["model"]), **spec["options"])
        result = plane.measure(data["x"][part], data["y"][part], step=0)
    finally:
        dist.destroy_process_group()
    (folder / f"tester_rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
