"""How the cost of one entropy grows with the batch size N and the layer width D.

The timed call is the estimator's core, ``renyi_entropy(gaussian_gram(x, sigma), 1.01,
method=...)`` on a float32 batch ``x`` [N, D] of class-structured samples, beside its bare
primitives measured in the same rounds (one float64 ``[N, D] x [D, N]`` product on a float64 copy
made beforehand, and one ``eigvalsh`` of an ``[N, N]`` float64 matrix):

* against N (default 50 - 1600 at D = 256): ``method="exact"``, ``"approx"`` and ``"auto"``
  (exact up to ``AUTO_EXACT_MAX_N``); the fitted exponents p of time ~ N^p and the N where the
  randomized estimate starts to beat the exact one;
* against D (default 1e3 - 1e6 at N = 100): exact, with the peak extra memory of the call, which
  stays O(N D + N^2) with bounded chunks; the fitted exponent of time ~ D^p; and
  ``gaussian_gram`` alone against one float64 product ``f @ f.T`` (``gram / product``: the
  upcast, translation and distances beside the product they need);
* the Gram at large N (``--gram-n``, default 2000 and 4000, at D = 100 and 1000):
  ``gaussian_gram`` alone against one float64 product ``f @ f.T`` and against that product
  plus one ``exp`` pass over an ``[N, N]`` matrix into a buffer made beforehand (``product +
  exp``: at small D the N^2 element-wise work of any Gram is as large as the product), at an
  informative width and at a width 50 times smaller, where most kernel values fall below
  float64's normal range (``tiny width``);
* large N (``--large``, default 2000 - 8000): exact against randomized entropy of one Gram of
  class-structured samples (``gaussian_gram``, as users of the library build theirs), with the
  relative error, and the randomized estimate against its own block products: through the
  public function (``approx / its products``, the Gram's validation included) and the
  estimator alone (``estimator / its products``: ``approx_renyi_entropy`` on the same Gram),
  and what the public function adds, the Gram's validation alone (``validation / its
  products``: finiteness, the positive diagonal, exact symmetry)
  (``benchmarks/gpu.py`` runs the same on a GPU up to 16000).

Run: ``python -m benchmarks.bench_scaling [--busy-core] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.common import (
    add_common_arguments,
    crossover,
    fit_exponent,
    interleaved,
    medians,
    peak_extra_mib,
    peak_mib,
    session,
    table,
)
from infoplane import gaussian_gram, renyi_entropy, squared_distances
from infoplane._validation import check_gram
from infoplane.functional import approx

N_SIZES = (50, 100, 200, 400, 800, 1600)
D_SIZES = (1_000, 10_000, 100_000, 1_000_000)
LARGE_N = (2000, 4000, 8000, 16000)  # exact vs randomized
LARGE_COLUMNS = (
    "N", "exact s", "approx s", "speed-up", "approx / its products", "estimator / its products",
    "validation / its products", "rel err %", "peak MiB exact", "peak MiB approx",
)  # fmt: skip


def batch(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """``[N, D]`` float32: 10 class centres plus unit noise (entropies neither 0 nor log2 N)."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn((10, d), generator=gen)
    return centres[torch.arange(n) % 10] + torch.randn((n, d), generator=gen)


def core(x: torch.Tensor, method: str) -> Callable[[], torch.Tensor]:
    """The timed call: one Gram and its entropy."""
    sigma = (2.0 * x.shape[1]) ** 0.5

    def call() -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # method="auto" says when it approximates
            return renyi_entropy(gaussian_gram(x, sigma), 1.01, method=method)

    return call


def bare(x: torch.Tensor) -> Callable[[], Any]:
    """The primitives: a float64 product and one eigvalsh, on copies made beforehand."""
    f = x.double()
    sym = f @ f.T / x.shape[1]

    def call() -> Any:
        torch.mm(f, f.T)
        return torch.linalg.eigvalsh(sym)

    return call


def against_n(sizes: tuple[int, ...], d: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        x = batch(n, d)
        run = {m: core(x, m) for m in ("exact", "approx", "auto")} | {"bare": bare(x)}
        t = medians(interleaved(run, repeats))
        rows.append({"N": n, "D": d} | {f"{k} ms": 1e3 * v for k, v in t.items()})
        rows[-1]["exact / bare"] = t["exact"] / t["bare"]
    return rows


def against_d(sizes: tuple[int, ...], n: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for d in sizes:
        x = batch(n, d)
        mem = peak_extra_mib(core(x, "exact"))  # before the float64 copy of the bare variant
        f = x.double()
        sigma = (2.0 * d) ** 0.5
        run = {
            "exact": core(x, "exact"),
            "bare": bare(x),
            "gram": lambda x=x, s=sigma: gaussian_gram(x, s),
            "product": lambda f=f: torch.mm(f, f.T),
        }
        t = medians(interleaved(run, repeats))
        rows.append(
            {
                "N": n,
                "D": d,
                "exact ms": 1e3 * t["exact"],
                "bare ms": 1e3 * t["bare"],
                "exact / bare": t["exact"] / t["bare"],
                "gram ms": 1e3 * t["gram"],
                "product ms": 1e3 * t["product"],
                "gram / product": t["gram"] / t["product"],
                "peak extra MiB": mem,
                "input MiB": x.numel() * 4 / 2**20,
            }
        )
        del x, f, run
    return rows


def gram_section(sizes: tuple[int, ...], dims: tuple[int, ...], repeats: int) -> list[dict]:
    """``gaussian_gram`` of ``[N, D]`` float32 batches against its product, and against the
    product plus one exp pass, at an informative width and a tiny one."""
    rows = []
    for n in sizes:
        for d in dims:
            x = batch(n, d)
            f = x.double()
            sigma = (2.0 * d) ** 0.5
            exponents = torch.full((n, n), -1.0, dtype=torch.float64)
            values = torch.empty_like(exponents)

            def product_and_exp(f=f, e=exponents, out=values) -> Any:
                torch.mm(f, f.T)  # allocates its [N, N] result, as the Gram does
                return torch.exp(e, out=out)  # into a buffer that exists: one pass, no page faults

            run = {
                "gram": lambda x=x, s=sigma: gaussian_gram(x, s),
                "tiny width": lambda x=x, s=sigma / 50: gaussian_gram(x, s),
                "product": lambda f=f: torch.mm(f, f.T),
                "product + exp": product_and_exp,
            }
            t = medians(interleaved(run, repeats))
            row: dict[str, Any] = {"N": n, "D": d} | {f"{k} ms": 1e3 * v for k, v in t.items()}
            for k in ("gram", "tiny width"):
                row[f"{k} / product"] = t[k] / t["product"]
                row[f"{k} / (product + exp)"] = t[k] / t["product + exp"]
            rows.append(row)
            del x, f, exponents, values, run
    return rows


def class_gram(n: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """A Gaussian Gram of ``n`` class-structured samples in 64 dimensions (float64)."""
    gen = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.randn((10, 64), generator=gen, dtype=torch.float64)
    x = centres[torch.arange(n) % 10] + torch.randn((n, 64), generator=gen, dtype=torch.float64)
    x = x.to(device)
    mean = squared_distances(x).mean()  # over all N^2 entries, the zero diagonal included
    return gaussian_gram(x, (mean / 2).sqrt())  # exp(-d^2 / mean d^2): exactly symmetric


def approx_products(gram: torch.Tensor) -> Callable[[], Any]:
    """The randomized estimator's bare primitives: its block products ``A @ V`` with the default
    options (the range finder's ``1 + power_iters`` products of ``rank`` columns, the
    Rayleigh-Ritz product of ``rank + probes``, and ``steps - 1`` Lanczos products of
    ``probes``), on random blocks made beforehand."""
    n = gram.shape[0]
    rank = min(approx.DEFAULT_RANK, n // 2)
    probes = approx.DEFAULT_NUM_PROBES
    widths = (
        [rank] * (1 + approx.DEFAULT_POWER_ITERS)
        + [rank + probes]
        + [probes] * (approx.DEFAULT_LANCZOS_STEPS - 1)
    )
    blocks = [torch.randn(n, k, dtype=gram.dtype, device=gram.device) for k in widths]

    def call() -> Any:
        return [gram @ v for v in blocks]

    return call


def large_n_section(sizes: tuple[int, ...], device: torch.device, repeats: int) -> list[dict]:
    """Exact against randomized entropy of one Gram per N (each row also printed at once)."""
    rows = []
    for n in sizes:
        gram = class_gram(n, device)
        exact, mem_exact = peak_mib(lambda g=gram: renyi_entropy(g, 1.01, method="exact"), device)
        estimate, mem_approx = peak_mib(
            lambda g=gram: renyi_entropy(g, 1.01, method="approx"), device
        )
        run = {
            "exact": lambda g=gram: renyi_entropy(g, 1.01, method="exact"),
            "approx": lambda g=gram: renyi_entropy(g, 1.01, method="approx"),
            "approx products": approx_products(gram),
            "estimator": lambda g=gram: approx.approx_renyi_entropy(g, 1.01),
            "validation": lambda g=gram: check_gram(g, "bench_scaling"),
        }
        t = medians(interleaved(run, repeats, warmup=0, device=device))
        rows.append(
            {
                "N": n,
                "exact s": t["exact"],
                "approx s": t["approx"],
                "speed-up": t["exact"] / t["approx"],
                "approx / its products": t["approx"] / t["approx products"],
                "estimator / its products": t["estimator"] / t["approx products"],
                "validation / its products": t["validation"] / t["approx products"],
                "rel err %": 100 * abs(float(estimate) - float(exact)) / abs(float(exact)),
                "peak MiB exact": mem_exact,
                "peak MiB approx": mem_approx,
            }
        )
        print("## " + ", ".join(f"{k} {v:.4g}" for k, v in rows[-1].items()), flush=True)
        del gram
    return rows


def summary(by_n: list[dict[str, Any]], by_d: list[dict[str, Any]]) -> list[str]:
    """The fitted exponents and the exact/randomized crossover."""
    ns = [r["N"] for r in by_n]
    lines = [
        f"## time ~ N^p ({ns[0]}-{ns[-1]}): "
        + ", ".join(f"{m} p = {fit_exponent(ns, [r[f'{m} ms'] for r in by_n]):.2f}"
                    for m in ("exact", "approx", "auto", "bare"))
    ]  # fmt: skip
    cross = crossover(ns, [r["exact ms"] for r in by_n], [r["approx ms"] for r in by_n])
    lines.append(
        "## randomized faster than exact above N ~ "
        + ("(not within the sizes)" if cross is None else f"{cross:.0f}")
    )
    if len(by_d) > 1:
        ds = [r["D"] for r in by_d]
        p = fit_exponent(ds, [r["exact ms"] for r in by_d])
        lines.append(f"## time ~ D^p ({ds[0]}-{ds[-1]}, N = {by_d[0]['N']}): exact p = {p:.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, repeats=3)
    parser.add_argument("--n-sizes", type=int, nargs="+", default=list(N_SIZES))
    parser.add_argument("--d-sizes", type=int, nargs="+", default=list(D_SIZES))
    parser.add_argument("--d", type=int, default=256, help="D of the N sweep")
    parser.add_argument("--n", type=int, default=100, help="N of the D sweep")
    parser.add_argument(
        "--large", type=int, nargs="*", default=[2000, 4000, 8000], help="N: exact vs approx"
    )
    parser.add_argument(
        "--gram-n", type=int, nargs="*", default=[2000, 4000], help="N: the Gram at large N"
    )
    parser.add_argument("--gram-d", type=int, nargs="+", default=[100, 1000], help="its D")
    args = parser.parse_args(argv)
    with session(args, "bench_scaling: one Gram and its entropy against N and D"):
        by_n = against_n(tuple(args.n_sizes), args.d, args.repeats)
        cols = ["N", "D", "exact ms", "approx ms", "auto ms", "bare ms", "exact / bare"]
        print(table(by_n, cols), flush=True)
        by_d = against_d(tuple(args.d_sizes), args.n, args.repeats)
        cols = ["N", "D", "exact ms", "bare ms", "exact / bare", "gram ms", "product ms"]
        cols += ["gram / product", "peak extra MiB", "input MiB"]
        print(table(by_d, cols), flush=True)
        print("\n".join(summary(by_n, by_d)), flush=True)
        if args.gram_n:
            rows = gram_section(tuple(args.gram_n), tuple(args.gram_d), args.repeats)
            print(table(rows, list(rows[0])), flush=True)
        if args.large:
            rows = large_n_section(tuple(args.large), torch.device("cpu"), args.repeats)
            print(table(rows, LARGE_COLUMNS), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
