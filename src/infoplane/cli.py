"""The ``infoplane`` command line: run experiments, list presets, rebuild plots and reports.

The flags of ``infoplane run`` are generated from the fields of
:class:`~infoplane.experiments.config.ExperimentConfig` and their metadata (help text, type,
choices), so every setting is declared once. Flags are never abbreviated; ``--debug`` is accepted
before or after the command.

Exit codes: 0 success; 2 bad arguments (argparse's message: an unknown flag, a value of the
wrong type or outside a flag's choices); 1 a problem at run time (a setting out of range, missing
data, an unknown preset, an unwritable directory, ...) reported as one line, with the traceback
only under ``--debug``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infoplane._version import __version__
from infoplane.errors import InfoPlaneError, first_line
from infoplane.schema import RunDir

_MISSING_EXTRA = (
    "infoplane: the experiments need the optional dependencies; install them with "
    "pip install 'infoplane[experiments]'"
)
_DEFAULT_PRESET = "digits"


def _parse_value(text: str) -> Any:
    """``--set key=value`` values: JSON when it parses (numbers, true, lists), else a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _setting_fields() -> list[dataclasses.Field]:
    from infoplane.experiments.config import ExperimentConfig

    return [f for f in dataclasses.fields(ExperimentConfig) if f.metadata["flag"]]


def _add_setting_flag(group: argparse._ArgumentGroup, f: dataclasses.Field) -> None:
    """One flag for the setting ``f``: ``--name-with-dashes``, absent from the result if unset."""
    meta = f.metadata
    flag = "--" + f.name.replace("_", "-")
    options: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": meta["help"]}
    if meta["parse"] is bool:
        group.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
        return
    for key in ("choices", "nargs", "metavar"):
        if key in meta:
            options[key] = meta[key]
    group.add_argument(flag, type=meta["parse"], **options)


def _debug_parent() -> argparse.ArgumentParser:
    """``--debug`` for the commands; SUPPRESS keeps a value given before the command."""
    parent = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parent.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of errors"
    )
    return parent


def _add_run_parser(sub: Any, parent: argparse.ArgumentParser) -> None:
    run = sub.add_parser(
        "run",
        parents=[parent],
        allow_abbrev=False,
        help="train a network and track its information plane",
        description="Train and track. Without PRESET: the offline default on scikit-learn's "
        "digits (about a minute on 2 CPU cores). Every preset setting can be overridden by a "
        "flag, a --config file (JSON, or TOML on Python >= 3.11) or --set key=value; the "
        "settings are checked before anything is written.",
    )
    run.add_argument(
        "preset", nargs="?", help=f"preset name (infoplane list; default {_DEFAULT_PRESET})"
    )
    run.add_argument("--out", type=Path, help="run directory (default: runs/PRESET-TIME)")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (default: the newest runs/PRESET-*); only more epochs "
        "or runs and where it runs (device, threads, data) may change",
    )
    run.add_argument("--config", type=Path, help="JSON/TOML file of settings")
    run.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any setting (repeatable; VALUE is JSON, else text), e.g. "
        "--set model_options='{\"dropout\": 0.3}'",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--no-report", action="store_true", help="skip figures and report")
    settings = run.add_argument_group("settings", "each overrides the preset's value")
    for f in _setting_fields():
        _add_setting_flag(settings, f)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infoplane",
        allow_abbrev=False,
        description="Information plane analysis of deep neural networks with matrix-based "
        "Rényi entropy and tensor kernels (Wickstrøm et al., arXiv:1909.11396).",
    )
    parser.add_argument("--version", action="version", version=f"infoplane {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parent = _debug_parent()
    _add_run_parser(sub, parent)
    sub.add_parser(
        "list", parents=[parent], allow_abbrev=False, help="show the presets and their settings"
    )
    for name, text in (
        ("plot", "rebuild the figures of a run directory"),
        ("report", "rebuild the figures and the report of a run directory"),
    ):
        p = sub.add_parser(
            name,
            parents=[parent],
            allow_abbrev=False,
            help=text,
            description=text + " from its files alone",
        )
        p.add_argument("run_dir", type=Path, help="the run directory (with history.csv)")
        if name == "plot":
            p.add_argument(
                "--animate",
                action="store_true",
                help="also write an information-plane animation per split (GIF; MP4 where "
                "ffmpeg exists) into figures/",
            )
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line: --config, then --set, then the flags."""
    from infoplane.experiments.config import load_config_file

    overrides: dict[str, Any] = {}
    if args.config is not None:
        overrides.update(load_config_file(args.config))
    for item in args.sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InfoPlaneError(f"infoplane run: expected --set KEY=VALUE, got {item!r}.")
        overrides[key.strip().replace("-", "_")] = _parse_value(value)
    for f in _setting_fields():
        if f.name in args:
            overrides[f.name] = getattr(args, f.name)
    return overrides


def _new_run(args: argparse.Namespace, overrides: dict[str, Any]):
    from infoplane.experiments.presets import get_preset

    config = get_preset(args.preset or _DEFAULT_PRESET).with_overrides(overrides).validate()
    run_dir = args.out or Path("runs") / f"{config.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    return config, run_dir


def _resumed_run(args: argparse.Namespace, overrides: dict[str, Any]):
    """The saved configuration with the legitimate changes applied, recorded in config.json."""
    from infoplane.experiments.config import ExperimentConfig, config_changes, resolve_resume
    from infoplane.experiments.presets import get_preset

    preset = get_preset(args.preset or _DEFAULT_PRESET).preset  # aliases -> the preset's name
    if args.preset is not None:
        overrides = {**overrides, "preset": preset}
    run_dir = args.out or _newest_run_dir(preset)
    path = RunDir(run_dir).config
    if not path.is_file():
        raise InfoPlaneError(
            f"infoplane run: expected a run to resume in {run_dir}, got no {path.name}. "
            "Start a new run without --resume."
        )
    saved = ExperimentConfig.load(path)
    config = resolve_resume(saved, overrides)
    changes = config_changes(saved, config)
    if changes:
        text = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changes.items())
        print(f"infoplane: resuming with {text}", file=sys.stderr)
        config.save(path)
    return config, run_dir


def _newest_run_dir(preset: str) -> Path:
    # PRESET-TIME: the time starts with a digit, so "digits" does not match digits-cnn's runs.
    runs = Path("runs").glob(f"{preset}-[0-9]*")
    candidates = sorted(runs, key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise InfoPlaneError(
            f"infoplane run: expected a run of {preset!r} under runs/ to resume, got none. "
            "Pass --out RUN_DIR."
        )
    return candidates[-1]


def _cmd_run(args: argparse.Namespace) -> int:
    from infoplane.experiments.runner import Experiment

    overrides = _overrides(args)
    resolve = _resumed_run if args.resume else _new_run
    config, run_dir = resolve(args, overrides)
    print(
        f"infoplane: {config.preset}: {config.description or config.model} -> {run_dir}",
        file=sys.stderr,
    )
    experiment = Experiment(config, run_dir, progress=not args.quiet, command=args.command_line)
    experiment.run(resume=args.resume)
    if not args.no_report:
        from infoplane.report import write_report

        print(f"infoplane: report written to {write_report(run_dir)}", file=sys.stderr)
    print(run_dir)
    return 0


def _format_setting(value: Any) -> str:
    if isinstance(value, tuple):  # controls, as the flag takes them
        return " ".join(value) or "none"
    return str(round(value, 4) if isinstance(value, float) else value)


def _cmd_list(args: argparse.Namespace) -> int:
    from infoplane.experiments.config import GROW, SAME
    from infoplane.experiments.presets import ALIASES, PRESETS

    keys = [f.name for f in _setting_fields() if f.metadata["on_resume"] in (SAME, GROW)]
    for name, preset in PRESETS.items():
        d = preset.to_dict()
        print(f"{name}\n    {preset.description}")
        line = ", ".join(f"{k}={_format_setting(d[k])}" for k in keys)
        print(textwrap.fill(line, width=100, initial_indent="    ", subsequent_indent="    "))
    print("aliases: " + ", ".join(f"{a} -> {t}" for a, t in ALIASES.items()))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from infoplane.report import make_figures

    for path in make_figures(args.run_dir):
        print(path)
    if args.animate:
        from infoplane.analysis import history_frame, splits
        from infoplane.plot import animate_information_plane

        for split in splits(history_frame(args.run_dir)):
            out = RunDir(args.run_dir).figures / f"information_plane_{split}.gif"
            print(animate_information_plane(args.run_dir, out, split=split))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from infoplane.report import write_report

    print(write_report(args.run_dir))
    return 0


_COMMANDS = {"run": _cmd_run, "list": _cmd_list, "plot": _cmd_plot, "report": _cmd_report}


def _error_line(exc: Exception) -> str:
    """One line for an error: infoplane's own message, a missing extra, or an unexpected error."""
    if isinstance(exc, ImportError):
        missing = getattr(exc, "name", None) or str(exc)
        if missing in ("sklearn", "matplotlib", "tqdm"):
            return _MISSING_EXTRA
        return f"infoplane: {exc}"
    message = first_line(exc)
    if not isinstance(exc, (InfoPlaneError, OSError)):
        return (
            f"infoplane: unexpected {type(exc).__name__}: {message} "
            "(rerun with --debug for the traceback)"
        )
    if not message.startswith("infoplane") and ":" not in message.split(" ")[0]:
        message = f"infoplane: {message}"  # an OSError's text names no one
    return message


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``infoplane`` and ``python -m infoplane``; returns the exit code.

    Bad arguments raise argparse's ``SystemExit(2)`` (with its message); every other error is
    one line on stderr and the return value 1 (130 for Ctrl-C).
    """
    parser = _build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.command_line = ["infoplane", *argv]  # recorded in the run's provenance
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return _COMMANDS[args.command](args)
    except BrokenPipeError:  # output piped into a command that stopped reading (| head)
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("infoplane: interrupted; continue with --resume", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(_error_line(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
