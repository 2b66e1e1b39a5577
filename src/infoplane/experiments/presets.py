"""Experiment configurations: the paper's settings as presets, every field overridable.

The presets carry the protocol of Wickstrøm et al. (arXiv:1909.11396) as read from the authors'
code (see METHOD.md of the project): SGD with learning rate 0.09 and no momentum, batch 100, no
augmentation, 10 epochs and 10 runs for the MNIST networks, 50 epochs and 5 runs for VGG-16 on
CIFAR-10 (fed raw 0-255 values); the information plane measured in eval mode at every iteration
on N = 100 samples (the training batch just used) and on a random test batch (200 for MNIST, 100
for CIFAR-10). The paper's fixed input width, 8 in the authors' convention on MNIST scaled to
[0, 1], is 8 / sqrt(2) here.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infoplane.errors import InvalidParameterError
from infoplane.functional._validation import check_alpha, check_integer, check_positive_scalar

#: The paper's input kernel width on MNIST in [0, 1]: 8 in the authors' exp(-d^2 / sigma^2),
#: converted to infoplane's exp(-d^2 / (2 sigma^2)).
PAPER_MNIST_X_WIDTH = 8.0 / math.sqrt(2.0)

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


def _mnist_like(
    preset: str, model: str, activation: str, dataset: str, **kw: Any
) -> ExperimentConfig:
    return ExperimentConfig(
        preset=preset,
        model=model,
        activation=activation,
        dataset=dataset,
        epochs=10,
        runs=10,
        test_n=200,
        x_width=PAPER_MNIST_X_WIDTH,
        **kw,
    )


def _build_presets() -> dict[str, ExperimentConfig]:
    presets: dict[str, ExperimentConfig] = {
        "digits": ExperimentConfig(
            preset="digits",
            description="Default offline run: small MLP on scikit-learn's 8x8 digits, tanh, "
            "3 runs x 15 epochs, measured every iteration on train and test batches",
            epochs=15,
        ),
        "digits-cnn": ExperimentConfig(
            preset="digits-cnn",
            description="Small CNN on scikit-learn's 8x8 digits, ReLU, offline",
            model="digits-cnn",
            activation="relu",
        ),
    }
    for act in ("tanh", "relu"):
        for data, tag in (("mnist", "mnist"), ("fashion-mnist", "fashion")):
            presets[f"mlp-{tag}-{act}"] = _mnist_like(
                f"mlp-{tag}-{act}",
                "mlp",
                act,
                data,
                description=f"Paper's MLP 784-1024-20-20-20-10 ({act}) on {data}, "
                "10 runs x 10 epochs",
            )
            presets[f"cnn-{tag}-{act}"] = _mnist_like(
                f"cnn-{tag}-{act}",
                "cnn",
                act,
                data,
                description=f"Paper's CNN (4, 8, 16 filters, dense 256; {act}) on {data}, "
                "10 runs x 10 epochs",
            )
    presets["vgg16-cifar10"] = ExperimentConfig(
        preset="vgg16-cifar10",
        description="VGG-16 with BatchNorm (ReLU) on CIFAR-10 fed raw 0-255, 5 runs x 50 epochs",
        model="vgg16",
        activation="relu",
        dataset="cifar10",
        dataset_options={"scale": "raw"},
        epochs=50,
        runs=5,
        test_n=100,
        # The paper gives no input width for CIFAR-10; the median distance of each batch adapts
        # to the raw 0-255 scale.
        x_width="median",
    )
    return presets


PRESETS = _build_presets()
#: Short names that read as the paper's experiments.
ALIASES = {
    "mlp-mnist": "mlp-mnist-tanh",
    "cnn-mnist": "cnn-mnist-tanh",
    "mlp-fashion": "mlp-fashion-tanh",
    "cnn-fashion": "cnn-fashion-tanh",
    "vgg16": "vgg16-cifar10",
    "vgg16-cifar10-relu": "vgg16-cifar10",
}


def get_preset(name: str) -> ExperimentConfig:
    """A fresh copy of the preset ``name`` (aliases accepted)."""
    key = ALIASES.get(name, name)
    if key not in PRESETS:
        raise InvalidParameterError(
            f"infoplane: expected a preset among {sorted(PRESETS)} (or {sorted(ALIASES)}), got "
            f"{name!r}. Run 'infoplane list' to see them."
        )
    return ExperimentConfig.from_dict(PRESETS[key].to_dict())


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
