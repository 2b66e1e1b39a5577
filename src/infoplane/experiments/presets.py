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

import math
from typing import Any

from infoplane.errors import InvalidParameterError
from infoplane.experiments.config import ExperimentConfig

#: The paper's input kernel width on MNIST in [0, 1]: 8 in the authors' exp(-d^2 / sigma^2),
#: converted to infoplane's exp(-d^2 / (2 sigma^2)).
PAPER_MNIST_X_WIDTH = 8.0 / math.sqrt(2.0)


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
