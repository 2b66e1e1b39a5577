"""The settings of one experiment: :class:`ExperimentConfig`, saved as ``config.json``.

Each setting is declared once, here, as a dataclass field whose ``metadata`` carries everything
else that is known about it:

* ``help``: the sentence the command line shows for it;
* ``parse`` (and optionally ``choices``, ``nargs``, ``metavar``): how a command-line flag turns
  text into a value (``bool`` gives a ``--name``/``--no-name`` pair);
* ``flag``: False for the two settings that are not flags (``preset`` is the positional
  argument, ``description`` comes with the preset);
* ``on_resume``: what a resumed run may do with it (:data:`SAME`, :data:`GROW`, :data:`FREE`).

The presets (:mod:`infoplane.experiments.presets`) fill the fields with the paper's values, the
command line (:mod:`infoplane.cli`) generates one flag per field, and ``infoplane list`` shows
them, so adding a setting is one edit: a new field here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from infoplane._validation import check_integer, check_positive_scalar
from infoplane.errors import InvalidParameterError
from infoplane.io import atomic_write_text
from infoplane.schema import CONTROLS
from infoplane.tracker import DEFAULT_NULL_PERMUTATIONS, validate_option
from infoplane.widths import WIDTH_RULES, make_width_rule

PROTOCOLS = ("step", "epoch", "both")

#: ``on_resume`` values: a resumed run keeps the saved value (:data:`SAME`); may raise it
#: (:data:`GROW`: more epochs, more runs); or may change it freely because it does not change
#: the results (:data:`FREE`: where the run executes and where its data lives).
SAME, GROW, FREE = "same", "grow", "free"

#: The spelling of "no controls" on the command line (``--controls none``).
NO_CONTROLS = "none"

#: The largest seed: the digits split seeds numpy's generator, which accepts 0 .. 2**32 - 1
#: (torch's ``manual_seed`` accepts more, so numpy's range bounds both).
MAX_SEED = 2**32 - 1

_DEVICE_TYPES = ("cpu", "cuda", "mps")


def number_or_name(text: str) -> float | str:
    """Command-line value of a kernel width: a number when it parses as one, else a rule name."""
    try:
        return float(text)
    except ValueError:
        return text


def json_value(text: str) -> Any:
    """Command-line value of an options setting: JSON text (an object, for the options)."""
    return json.loads(text)


def setting(default: Any, help: str, *, on_resume: str = SAME, **flag: Any) -> Any:
    """A setting's field: its default (a class such as ``dict`` is a factory), help text, resume
    rule and flag options (see the module). ``parse`` defaults to the default's type."""
    meta = {"help": help, "on_resume": on_resume, "flag": flag.pop("flag", True), **flag}
    if meta["flag"]:
        meta.setdefault("parse", type(default))
    if isinstance(default, type):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _as_controls(value: Any) -> Any:
    """Normalise the spellings of ``controls``; anything else is left for :meth:`validate`."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, (list, tuple)):
        value = tuple(value)
        return () if value == (NO_CONTROLS,) else value
    return value


@dataclass
class ExperimentConfig:
    """Everything a run needs; saved as ``config.json`` in the run directory.

    Measurement protocols: ``"step"`` measures every ``every``-th iteration on the training batch
    just used (split "train") and on a random test batch of ``test_n`` samples (split "test"),
    the paper's protocol; ``"epoch"`` measures once per epoch (and before training) on fixed
    probe sets of ``probe_size`` training and test samples in mini-batches of ``measure_n``;
    ``"both"`` does both (the epoch records then use the splits "train-probe"/"test-probe").
    """

    preset: str = setting("digits", "preset name", flag=False)
    description: str = setting("", "what the preset runs, in one sentence", flag=False)
    model: str = setting("digits-mlp", "network: digits-mlp, digits-cnn, mlp, cnn or vgg16")
    activation: str = setting("tanh", "activation of the hidden layers, e.g. tanh, relu")
    model_options: dict[str, Any] = setting(  # noqa: RUF009 (setting() returns a dataclasses.field)
        dict,
        "extra keyword arguments of the model as a JSON object, e.g. '{\"dropout\": 0.3}'",
        parse=json_value,
        metavar="JSON",
    )
    dataset: str = setting("digits", "digits, synthetic, mnist, fashion-mnist or cifar10")
    dataset_options: dict[str, Any] = setting(  # noqa: RUF009 (setting() returns a dataclasses.field)
        dict,
        'extra keyword arguments of the dataset loader as a JSON object, e.g. \'{"scale": "raw"}\'',
        parse=json_value,
        metavar="JSON",
    )
    epochs: int = setting(20, "training epochs (a resumed run may add more)", on_resume=GROW)
    runs: int = setting(
        3,
        "repeat with seeds seed..seed+runs-1 and average (a resumed run may add more)",
        on_resume=GROW,
    )
    batch_size: int = setting(100, "SGD mini-batch size")
    lr: float = setting(0.09, "SGD learning rate (paper: 0.09)")
    momentum: float = setting(0.0, "SGD momentum in [0, 1) (paper: 0)")
    weight_decay: float = setting(0.0, "SGD weight decay, >= 0 (paper: 0)")
    protocol: str = setting(
        "step",
        "step: every --every iterations on the batch just used (paper); epoch: once per epoch "
        "on fixed probe sets; both",
        choices=PROTOCOLS,
    )
    every: int = setting(1, "measure every k-th iteration")
    measure_n: int = setting(100, "N samples per estimate (paper: 100)")
    test_n: int = setting(100, "size of the random test batch per step")
    probe_size: int = setting(1000, "samples per probe set (epoch protocol)")
    alpha: float = setting(1.01, "Renyi order alpha > 0 (1: von Neumann)")
    x_width: Any = setting(  # noqa: RUF009 (setting() returns a dataclasses.field)
        "median",
        f"input kernel width: a positive number or a rule name ({', '.join(sorted(WIDTH_RULES))})",
        parse=number_or_name,
    )
    width: Any = setting(  # noqa: RUF009 (setting() returns a dataclasses.field)
        "alignment",
        f"layer kernel width: a rule name ({', '.join(sorted(WIDTH_RULES))}) or a positive "
        "number; per layer with --set width='{\"layer\": ...}'",
        parse=number_or_name,
    )
    controls: tuple[str, ...] = setting(
        CONTROLS,
        f"controls measured beside the estimates, among {', '.join(CONTROLS)} (default: all); "
        f"'{NO_CONTROLS}' for none",
        parse=str,
        nargs="*",
        choices=(*CONTROLS, NO_CONTROLS),
        metavar="NAME",
    )
    null_permutations: int = setting(
        DEFAULT_NULL_PERMUTATIONS,
        "permuted draws per step of the null distribution (19: a one-step p-value can reach 0.05)",
    )
    seed: int = setting(0, f"seed of run 0, in 0..{MAX_SEED}")
    device: str = setting("cpu", "where to train: cpu, cuda, cuda:1, mps", on_resume=FREE)
    #: Intra-op threads of torch for CPU runs (None: leave torch's default). The per-step Gram
    #: problems are small (N = 100): one thread avoids the thread start-up and, on shared or
    #: small machines, the oversubscription that made them ~10x slower in our measurements.
    threads: int | None = setting(
        1,
        "torch intra-op threads on CPU, at most the CPUs available (default 1)",
        on_resume=FREE,
        parse=int,
    )
    data_dir: str | None = setting(
        None, "folder holding the dataset files already on disk", on_resume=FREE, parse=str
    )
    download: bool = setting(True, "download missing dataset files", on_resume=FREE)

    def __post_init__(self) -> None:
        self.controls = _as_controls(self.controls)

    def validate(self) -> ExperimentConfig:
        """Check every setting; return self. Raises InvalidParameterError with the fix."""
        who = "ExperimentConfig"
        _check_texts(self, who)
        _check_numbers(self, who)
        _check_options(self, who)
        _check_widths(self, who)
        _check_controls(self.controls, who)
        _check_environment(self, who)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        if not isinstance(data, Mapping):
            raise InvalidParameterError(
                f"ExperimentConfig: expected the settings as a mapping, got "
                f"{type(data).__name__}. Pass a dict of setting names to values."
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known, key=str)
        if unknown:
            raise InvalidParameterError(
                f"ExperimentConfig: expected settings among {sorted(known)}, got {unknown}. "
                "Check the spelling in the config file or --set."
            )
        return cls(**data)

    def with_overrides(self, overrides: Mapping[str, Any]) -> ExperimentConfig:
        """A copy with ``overrides`` applied (unknown keys raise)."""
        return ExperimentConfig.from_dict({**self.to_dict(), **overrides})

    def save(self, path: str | Path) -> Path:
        """Write the configuration as JSON to ``path`` (atomically)."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> ExperimentConfig:
        """The configuration saved at ``path`` by :meth:`save` (not yet validated)."""
        return cls.from_dict(load_config_file(path, json_only=True))


def _check_texts(c: ExperimentConfig, who: str) -> None:
    for name in ("preset", "description", "model", "activation", "dataset", "device"):
        if not isinstance(getattr(c, name), str):
            raise InvalidParameterError(
                f"{who}: expected {name} as a string, got {getattr(c, name)!r}. Quote it."
            )
    if c.protocol not in PROTOCOLS:
        raise InvalidParameterError(f"{who}: expected protocol in {PROTOCOLS}, got {c.protocol!r}.")
    if c.data_dir is not None and not isinstance(c.data_dir, str):
        raise InvalidParameterError(
            f"{who}: expected data_dir as a folder path or null, got {c.data_dir!r}. "
            "Pass --data-dir FOLDER."
        )
    if not isinstance(c.download, bool):
        raise InvalidParameterError(
            f"{who}: expected download as true or false, got {c.download!r}. "
            "Use --no-download or --set download=false."
        )


def _check_numbers(c: ExperimentConfig, who: str) -> None:
    for name in ("epochs", "runs", "probe_size"):
        check_integer(getattr(c, name), name, who)
    validate_option("every", c.every, who)  # the tracker's declaration: 0 measures no step
    validate_option("null_permutations", c.null_permutations, who)
    if c.every == 0 and c.protocol in ("step", "both"):
        raise InvalidParameterError(
            f"{who}: expected every >= 1 with protocol {c.protocol!r}, got 0. Pass --every 1, "
            "or --protocol epoch to measure once per epoch only."
        )
    for name in ("batch_size", "measure_n", "test_n"):
        check_integer(getattr(c, name), name, who, minimum=2)
    check_positive_scalar(c.lr, "lr", who)
    validate_option("alpha", c.alpha, who)
    _check_in_range(c.momentum, "momentum", who, "in [0, 1)", lambda v: 0.0 <= v < 1.0)
    _check_in_range(c.weight_decay, "weight_decay", who, ">= 0", lambda v: v >= 0.0)
    check_integer(c.seed, "seed", who, minimum=0)
    if c.seed > MAX_SEED:
        raise InvalidParameterError(
            f"{who}: expected seed as an integer in 0..{MAX_SEED} (numpy's seed range), got "
            f"{c.seed}. Pick a smaller seed."
        )


def _check_in_range(
    value: Any, name: str, who: str, what: str, ok: Callable[[float], bool]
) -> None:
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not real or not math.isfinite(value) or not ok(float(value)):
        raise InvalidParameterError(
            f"{who}: expected {name} as a number {what}, got {value!r}. Pass e.g. {name}=0."
        )


def _check_options(c: ExperimentConfig, who: str) -> None:
    for name in ("model_options", "dataset_options"):
        value = getattr(c, name)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise InvalidParameterError(
                f"{who}: expected {name} as an object of option names to values, got "
                f"{value!r}. Pass e.g. --set {name}='{{}}'."
            )
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(
                f"{who}: expected {name} with JSON values (saved in config.json), got "
                f"{value!r} ({exc})."
            ) from exc


def _check_widths(c: ExperimentConfig, who: str) -> None:
    specs = {"x_width": c.x_width}
    if isinstance(c.width, dict):
        specs.update({f"width[{k!r}]": v for k, v in c.width.items()})
    else:
        specs["width"] = c.width
    for name, spec in specs.items():
        try:
            make_width_rule(spec)
        except InvalidParameterError as exc:
            raise InvalidParameterError(
                f"{who}: expected {name} as a positive number or a width rule name, got "
                f"{spec!r}. {exc}"
            ) from exc


def _check_controls(controls: Any, who: str) -> None:
    """The command line's spellings became a tuple (``_as_controls``); the names follow the
    tracker's declaration."""
    if not isinstance(controls, tuple):
        raise InvalidParameterError(
            f"{who}: expected controls as a list of distinct names among {list(CONTROLS)} "
            f"(or [] / '{NO_CONTROLS}' for none), got {controls!r}. Pass e.g. --controls null."
        )
    validate_option("controls", controls, who)


def _check_environment(c: ExperimentConfig, who: str) -> None:
    if c.threads is not None:
        check_integer(c.threads, "threads", who)
        cpus = available_cpus()
        if c.threads > cpus:
            raise InvalidParameterError(
                f"{who}: expected threads <= the {cpus} CPUs available to this process, got "
                f"{c.threads}. Lower --threads."
            )
    _check_device(c.device, who)


def _check_device(device: str, who: str) -> None:
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise InvalidParameterError(
            f"{who}: expected device such as cpu, cuda, cuda:1 or mps, got {device!r}. "
            "Pass e.g. --device cpu."
        ) from exc
    if parsed.type not in _DEVICE_TYPES:
        raise InvalidParameterError(
            f"{who}: expected a device of type {_DEVICE_TYPES}, got {device!r}. "
            "Pass e.g. --device cpu."
        )
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index or 0) >= count:
            raise InvalidParameterError(
                f"{who}: expected an available CUDA device for device={device!r}, got "
                f"{count} CUDA device(s). Use --device cpu or a GPU that exists."
            )
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidParameterError(
            f"{who}: expected an available MPS device for device={device!r}, got none. "
            "Use --device cpu."
        )


def config_changes(old: ExperimentConfig, new: ExperimentConfig) -> dict[str, tuple[Any, Any]]:
    """The settings whose value differs between ``old`` and ``new``: name -> (old, new)."""
    changes = {}
    for f in dataclasses.fields(ExperimentConfig):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if before != after:
            changes[f.name] = (before, after)
    return changes


def resolve_resume(saved: ExperimentConfig, overrides: Mapping[str, Any]) -> ExperimentConfig:
    """The configuration of a resumed run: ``saved`` with the legitimate ``overrides`` applied.

    A resumed run continues the saved one exactly, so a setting that would change its results
    (the learning rate, the protocol, ...) must keep its saved value; giving another value is
    refused with an error that names every such setting. Legitimate changes are applied: more
    ``epochs`` or ``runs`` (``on_resume`` GROW) and where the run executes (``threads``,
    ``device``, ``data_dir``, ``download``: FREE). The caller records what changed
    (:func:`config_changes`). Raises InvalidParameterError.
    """
    resumed = saved.with_overrides(overrides).validate()
    kinds = {f.name: f.metadata["on_resume"] for f in dataclasses.fields(ExperimentConfig)}
    conflicts = [
        f"{name}={after!r} (saved {before!r})"
        for name, (before, after) in config_changes(saved, resumed).items()
        if not (kinds[name] == FREE or (kinds[name] == GROW and after > before))
    ]
    if conflicts:
        raise InvalidParameterError(
            "infoplane run --resume: expected the saved settings of the run (more epochs or "
            f"runs, threads, device, data_dir and download may change), got {', '.join(conflicts)}."
            " Drop them to resume, or start a new run with another --out."
        )
    return resumed


def load_config_file(path: str | Path, *, json_only: bool = False) -> dict[str, Any]:
    """Settings from a JSON file (or TOML on Python >= 3.11), as a dict of overrides."""
    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(
            f"infoplane: expected a config file, got {str(path)!r} (not found)."
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidParameterError(
            f"infoplane: expected UTF-8 text in {path}, got undecodable bytes at offset "
            f"{exc.start}. Save the file as UTF-8."
        ) from exc
    data = _parse_settings(text, path, json_only)
    if not isinstance(data, dict):
        raise InvalidParameterError(
            f"infoplane: expected a JSON object of settings in {path}, got "
            f'{type(data).__name__}. Write {{"setting": value, ...}}.'
        )
    return data


def _parse_settings(text: str, path: Path, json_only: bool) -> Any:
    try:
        if path.suffix == ".toml" and not json_only:
            import tomllib

            return tomllib.loads(text)
        return json.loads(text)
    except ImportError as exc:
        raise InvalidParameterError(
            f"infoplane: expected JSON in {path}, got TOML, which needs Python >= 3.11. "
            "Convert it to JSON."
        ) from exc
    except ValueError as exc:
        raise InvalidParameterError(
            f"infoplane: expected valid {'JSON' if json_only else 'JSON/TOML'} in {path}, got "
            f"an error: {exc}."
        ) from exc
