"""The settings of one experiment: :class:`ExperimentConfig`, saved as ``config.json``.

Each setting is declared once, here, as a dataclass field; the presets
(:mod:`infoplane.experiments.presets`) fill it with the paper's values, and the command line
offers every field as a flag.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infoplane.errors import InvalidParameterError
from infoplane.functional._validation import check_alpha, check_integer, check_positive_scalar

PROTOCOLS = ("step", "epoch", "both")


@dataclass
class ExperimentConfig:
    """Everything a run needs; saved as ``config.json`` in the run directory.

    Measurement protocols: ``"step"`` measures every ``every``-th iteration on the training batch
    just used (split "train") and on a random test batch of ``test_n`` samples (split "test"),
    the paper's protocol; ``"epoch"`` measures once per epoch (and before training) on fixed
    probe sets of ``probe_size`` training and test samples in mini-batches of ``measure_n``;
    ``"both"`` does both (the epoch records then use the splits "train-probe"/"test-probe").
    """

    preset: str = "digits"
    description: str = ""
    model: str = "digits-mlp"
    activation: str = "tanh"
    model_options: dict[str, Any] = field(default_factory=dict)
    dataset: str = "digits"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 20
    runs: int = 3
    batch_size: int = 100
    lr: float = 0.09
    momentum: float = 0.0
    weight_decay: float = 0.0
    protocol: str = "step"
    every: int = 1
    measure_n: int = 100
    test_n: int = 100
    probe_size: int = 1000
    alpha: float = 1.01
    x_width: Any = "median"
    width: Any = "alignment"
    seed: int = 0
    device: str = "cpu"
    #: Intra-op threads of torch for CPU runs (None: leave torch's default). The per-step Gram
    #: problems are small (N = 100): one thread avoids the thread start-up and, on shared or
    #: small machines, the oversubscription that made them ~10x slower in our measurements.
    threads: int | None = 1
    data_dir: str | None = None
    download: bool = True

    def validate(self) -> ExperimentConfig:
        """Check value ranges; return self. Raises InvalidParameterError with the fix."""
        who = "ExperimentConfig"
        for name in ("epochs", "runs", "every", "probe_size"):
            check_integer(getattr(self, name), name, who)
        for name in ("batch_size", "measure_n", "test_n"):
            check_integer(getattr(self, name), name, who, minimum=2)
        check_positive_scalar(self.lr, "lr", who)
        check_alpha(self.alpha, who)
        if self.protocol not in PROTOCOLS:
            raise InvalidParameterError(
                f"{who}: expected protocol in {PROTOCOLS}, got {self.protocol!r}."
            )
        if self.threads is not None:
            check_integer(self.threads, "threads", who)
        check_integer(self.seed, "seed", who, minimum=0)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidParameterError(
                f"ExperimentConfig: expected settings among {sorted(known)}, got {unknown}. "
                "Check the spelling in the config file or --set."
            )
        return cls(**data)

    def with_overrides(self, overrides: dict[str, Any]) -> ExperimentConfig:
        """A copy with ``overrides`` applied (unknown keys raise)."""
        return ExperimentConfig.from_dict({**self.to_dict(), **overrides})


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a JSON file (or TOML on Python >= 3.11), as a dict of overrides."""
    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(
            f"infoplane: expected a config file, got {str(path)!r} (not found)."
        )
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            import tomllib

            return tomllib.loads(text)
        data = json.loads(text)
    except (ValueError, ImportError) as exc:
        raise InvalidParameterError(
            f"infoplane: expected valid JSON/TOML in {path}, got an error: {exc}."
        ) from exc
    if not isinstance(data, dict):
        raise InvalidParameterError(
            f"infoplane: expected a JSON object in {path}, got {type(data).__name__}."
        )
    return data
