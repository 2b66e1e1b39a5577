"""The ``infoplane`` command line: run experiments, list presets, rebuild plots and reports.

Exit codes: 0 success; 2 bad arguments (argparse's message); 1 a problem at run time (missing
data, unknown preset, unwritable directory, ...) reported as one line, with the traceback only
under ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infoplane.errors import InfoPlaneError

_MISSING_EXTRA = (
    "infoplane: the experiments need the optional dependencies; install them with "
    "pip install 'infoplane[experiments]'"
)


def _parse_value(text: str) -> Any:
    """``--set key=value`` values: JSON when it parses (numbers, true, lists), else a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infoplane",
        description="Information plane analysis of deep neural networks with matrix-based "
        "Rényi entropy and tensor kernels (Wickstrøm et al., arXiv:1909.11396).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="train a network and track its information plane",
        description="Train and track. Without PRESET: the offline default on scikit-learn's "
        "digits (about a minute on 2 CPU cores). Every preset setting can be overridden by a "
        "flag, a --config file (JSON, or TOML on Python >= 3.11) or --set key=value.",
    )
    run.add_argument("preset", nargs="?", default="digits", help="preset name (infoplane list)")
    run.add_argument("--out", type=Path, help="run directory (default: runs/PRESET-TIME)")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (default: the newest runs/PRESET-*)",
    )
    run.add_argument("--config", type=Path, help="JSON/TOML file of settings")
    run.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any setting (repeatable), e.g. --set model_options='{\"dropout\": 0.3}'",
    )
    run.add_argument("--epochs", type=int)
    run.add_argument("--runs", type=int, help="repeat with seeds seed..seed+runs-1 and average")
    run.add_argument("--seed", type=int)
    run.add_argument("--lr", type=float)
    run.add_argument("--batch-size", type=int)
    run.add_argument("--model")
    run.add_argument("--activation")
    run.add_argument("--dataset")
    run.add_argument("--data-dir", help="folder holding the dataset files already on disk")
    run.add_argument("--no-download", action="store_true", help="never download data")
    run.add_argument("--device", help="cpu, cuda, cuda:1, ...")
    run.add_argument("--threads", type=int, help="torch intra-op threads on CPU (default 1)")
    run.add_argument(
        "--protocol",
        choices=["step", "epoch", "both"],
        help="step: every --every iterations on the batch (paper); epoch: per epoch "
        "on fixed probe sets; both",
    )
    run.add_argument("--every", type=int, help="measure every k-th iteration")
    run.add_argument("--measure-n", type=int, help="N samples per estimate (paper: 100)")
    run.add_argument("--test-n", type=int, help="size of the random test batch per step")
    run.add_argument("--probe-size", type=int, help="samples per probe set (epoch protocol)")
    run.add_argument("--alpha", type=float, help="Renyi order (default 1.01)")
    run.add_argument("--x-width", help="input kernel width: a number or a rule name")
    run.add_argument(
        "--width", help="layer width rule: alignment, median, knn, silverman, scott, or a number"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--no-report", action="store_true", help="skip figures and report")

    sub.add_parser("list", help="show the presets and their settings")
    for name, text in (
        ("plot", "rebuild the figures of a run directory"),
        ("report", "rebuild the figures and the report of a run directory"),
    ):
        p = sub.add_parser(name, help=text, description=text + " from its files alone")
        p.add_argument("run_dir", type=Path)
    return parser


#: Flags that set the configuration field of the same name.
_FLAG_FIELDS = (
    "epochs",
    "runs",
    "seed",
    "lr",
    "batch_size",
    "model",
    "activation",
    "dataset",
    "data_dir",
    "device",
    "threads",
    "protocol",
    "every",
    "measure_n",
    "test_n",
    "probe_size",
    "alpha",
)


def _width_value(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _resolve_config(args: argparse.Namespace):
    from infoplane.experiments.config import load_config_file
    from infoplane.experiments.presets import get_preset

    config = get_preset(args.preset)
    overrides: dict[str, Any] = {}
    if args.config is not None:
        overrides.update(load_config_file(args.config))
    for item in args.sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InfoPlaneError(f"infoplane run: expected --set KEY=VALUE, got {item!r}.")
        overrides[key.strip().replace("-", "_")] = _parse_value(value)
    for key in _FLAG_FIELDS:
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    if args.no_download:
        overrides["download"] = False
    for attr in ("x_width", "width"):
        value = _width_value(getattr(args, attr))
        if value is not None:
            overrides[attr] = value
    return config.with_overrides(overrides).validate()


def _newest_run_dir(preset: str) -> Path:
    candidates = sorted(Path("runs").glob(f"{preset}-*"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise InfoPlaneError(
            f"infoplane run: expected a run of {preset!r} under runs/ to resume, got none. "
            "Pass --out RUN_DIR."
        )
    return candidates[-1]


def _cmd_run(args: argparse.Namespace) -> int:
    from infoplane.experiments.config import ExperimentConfig
    from infoplane.experiments.runner import Experiment

    if args.resume:
        run_dir = args.out or _newest_run_dir(args.preset)
        config_path = run_dir / "config.json"
        if not config_path.is_file():
            raise InfoPlaneError(
                f"infoplane run: expected a run to resume in {run_dir}, got no config.json. "
                "Start a new run without --resume."
            )
        saved = json.loads(config_path.read_text(encoding="utf-8"))
        # A resumed run keeps its settings; only where it runs may change.
        changes = {k: getattr(args, k) for k in ("device", "data_dir") if getattr(args, k)}
        if args.no_download:
            changes["download"] = False
        config = ExperimentConfig.from_dict({**saved, **changes}).validate()
    else:
        config = _resolve_config(args)
        run_dir = args.out or Path("runs") / f"{config.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    print(
        f"infoplane: {config.preset}: {config.description or config.model} -> {run_dir}",
        file=sys.stderr,
    )
    Experiment(config, run_dir, progress=not args.quiet).run(resume=args.resume)
    if not args.no_report:
        from infoplane.report import write_report

        report = write_report(run_dir)
        print(f"infoplane: report written to {report}", file=sys.stderr)
    print(run_dir)
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from infoplane.experiments.presets import ALIASES, PRESETS

    keys = (
        "model",
        "activation",
        "dataset",
        "epochs",
        "runs",
        "batch_size",
        "lr",
        "protocol",
        "measure_n",
        "test_n",
        "x_width",
        "width",
        "alpha",
    )
    for name, preset in PRESETS.items():
        d = preset.to_dict()
        print(f"{name}\n    {preset.description}")
        print(
            "    "
            + ", ".join(f"{k}={round(d[k], 4) if isinstance(d[k], float) else d[k]}" for k in keys)
        )
    print("aliases: " + ", ".join(f"{a} -> {t}" for a, t in ALIASES.items()))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from infoplane.report import make_figures

    for path in make_figures(args.run_dir):
        print(path)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from infoplane.report import write_report

    print(write_report(args.run_dir))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``infoplane`` and ``python -m infoplane``; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    commands = {"run": _cmd_run, "list": _cmd_list, "plot": _cmd_plot, "report": _cmd_report}
    try:
        return commands[args.command](args)
    except BrokenPipeError:  # output piped into a command that stopped reading (| head)
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("infoplane: interrupted; continue with --resume", file=sys.stderr)
        return 130
    except ImportError as exc:
        if args.debug:
            raise
        missing = getattr(exc, "name", None) or str(exc)
        if missing in ("sklearn", "matplotlib", "tqdm"):
            print(_MISSING_EXTRA, file=sys.stderr)
        else:
            print(f"infoplane: {exc}", file=sys.stderr)
        return 1
    except (InfoPlaneError, OSError) as exc:
        if args.debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not message.startswith("infoplane") and ":" not in message.split(" ")[0]:
            message = f"infoplane: {message}"
        print(message, file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
