"""Experiment configurations: the paper's settings as presets, every field overridable.

The paper presets carry the protocol of Wickstrøm et al. (arXiv:1909.11396) as read from the
authors' code (github.com/Wickstrom/InformationTheoryExperiment, ``python/``; where the paper's text
differs, the code is followed and the difference is named):

* SGD with learning rate 0.09 and no momentum, batch 100, no augmentation; 10 epochs and 10 runs for
  the MNIST networks, 50 epochs and 5 runs for VGG-16 on CIFAR-10 (fed raw 0-255 values);
* the information plane measured in eval mode at every iteration on N = 100 samples (the training
  batch just used) and on a random test batch (200 for MNIST-like data, 100 for CIFAR-10);
* α = 1, the von Neumann entropy (:data:`PAPER_ALPHA`): the paper's text says α = 1.01, the
  authors' final code computes ``-Σ λ log2 λ`` (``Network.entropy`` in ``python/network.py``);
* layer widths by the authors' label-alignment rule (``width="authors"``: their candidate grid,
  warm-up and moving average);
* the input width 8 in the authors' ``exp(-d²/σ²)`` for every dataset (:data:`PAPER_X_WIDTH`,
  8/√2 in infoplane's ``exp(-d²/(2σ²))``). On MNIST scaled to [0, 1] this is an informative width.
  On CIFAR-10 fed raw 0-255 the distances between images are in the thousands, so K_X is the
  identity to machine precision and I(X;T) = S(T) for every layer: the paper's VGG-16 I(X;T) axis
  is the entropy of the layer. ``vgg16-cifar10-median`` offers an informative input width instead;
* the authors' initialisation (``init="authors"``: Xavier-uniform with gain 5/3 for tanh,
  Kaiming-normal for ReLU, zero biases; ``Network.weight_init`` in ``python/network.py``);
* the MLP measured at each block's output, after its BatchNorm (``measure="block"``;
  ``python/FC_Hero.py``).

The default preset ``digits`` is not a paper experiment but a quick offline demonstration on
scikit-learn's 8×8 digits; it keeps infoplane's defaults (α = 1.01, the relative alignment grid,
the median input width), which need no calibration to the 64-pixel images.
"""

from __future__ import annotations

import math
from typing import Any

from infoplane.errors import InvalidParameterError
from infoplane.experiments.config import ExperimentConfig
from infoplane.experiments.models import lookup_name

#: The authors' input kernel width, 8 in their ``exp(-d^2 / sigma^2)`` (``kernel_mat(x, [],
#: sigma=th.tensor(8.0))`` in ``python/network.py``), converted to infoplane's
#: ``exp(-d^2 / (2 sigma^2))``. They used it for every dataset.
PAPER_X_WIDTH = 8.0 / math.sqrt(2.0)
#: The Rényi order of the authors' final code: the von Neumann (α → 1) entropy. The paper's text
#: says 1.01.
PAPER_ALPHA = 1.0
#: The layer-width rule of the paper presets: the authors' label-alignment grid and moving average.
PAPER_WIDTH = "authors"

_PAPER_TEXT = "alpha=1 (von Neumann, as the authors' code; the text says 1.01), authors' widths"


def _paper(preset: str, description: str, **kw: Any) -> ExperimentConfig:
    """A paper preset: the protocol shared by every experiment of the paper, then ``kw``."""
    settings: dict[str, Any] = {
        "alpha": PAPER_ALPHA,
        "width": PAPER_WIDTH,
        "x_width": PAPER_X_WIDTH,
        "batch_size": 100,
        "lr": 0.09,
        "momentum": 0.0,
        "protocol": "step",
        "every": 1,
        "measure_n": 100,
        **kw,
    }
    return ExperimentConfig(preset=preset, description=f"{description}; {_PAPER_TEXT}", **settings)


def _mnist_like(preset: str, model: str, activation: str, dataset: str) -> ExperimentConfig:
    """The paper's MLP or CNN on an MNIST-like dataset in [0, 1], 10 runs × 10 epochs."""
    if model == "mlp":
        what = f"Paper's MLP 784-1024-20-20-20-10 ({activation}), measured after each BatchNorm"
        options: dict[str, Any] = {"init": "authors", "measure": "block"}
    else:
        what = f"Paper's CNN (4, 8, 16 filters, dense 256; {activation})"
        options = {"init": "authors"}
    return _paper(
        preset,
        f"{what}, on {dataset}, 10 runs x 10 epochs, authors' init",
        model=model,
        activation=activation,
        model_options=options,
        dataset=dataset,
        epochs=10,
        runs=10,
        test_n=200,
    )


def _vgg16_cifar10(preset: str, x_width: Any, about_x: str) -> ExperimentConfig:
    return _paper(
        preset,
        "VGG-16 with BatchNorm (ReLU) on CIFAR-10 fed raw 0-255, 5 runs x 50 epochs, "
        f"authors' init; {about_x}",
        model="vgg16",
        activation="relu",
        model_options={"init": "authors"},
        dataset="cifar10",
        dataset_options={"scale": "raw"},
        epochs=50,
        runs=5,
        test_n=100,
        x_width=x_width,
    )


def _digits_presets() -> dict[str, ExperimentConfig]:
    return {
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


def _vgg_presets() -> dict[str, ExperimentConfig]:
    return {
        "vgg16-cifar10": _vgg16_cifar10(
            "vgg16-cifar10",
            PAPER_X_WIDTH,
            "the authors' input width 8 (8/sqrt(2) here) makes K_X the identity on 0-255 "
            "pixels, so I(X;T) = S(T) for every layer",
        ),
        # The median distance of each batch adapts to any pixel scale, so K_X stays informative
        # on the raw values the authors fed (a fixed width would have to be re-derived for them).
        "vgg16-cifar10-median": _vgg16_cifar10(
            "vgg16-cifar10-median",
            "median",
            "input width: each batch's median distance (informative at any pixel scale), "
            "instead of the authors' 8 that makes K_X the identity",
        ),
        "vgg16-fashion": _paper(
            "vgg16-fashion",
            "VGG-16 with BatchNorm (ReLU, 1 input channel) on Fashion-MNIST in [0, 1] padded to "
            "32x32: the paper's 16-layer plane on a CPU; 1 run x 1 epoch, measured every 10th "
            "iteration, authors' init and input width 8 (8/sqrt(2) here)",
            model="vgg16",
            activation="relu",
            model_options={"init": "authors", "in_channels": 1},
            dataset="fashion-mnist",
            dataset_options={"pad": 2},
            epochs=1,
            runs=1,
            every=10,
            test_n=200,
        ),
    }


def _build_presets() -> dict[str, ExperimentConfig]:
    presets = _digits_presets()
    for act in ("tanh", "relu"):
        for data, tag in (("mnist", "mnist"), ("fashion-mnist", "fashion")):
            for model in ("mlp", "cnn"):
                name = f"{model}-{tag}-{act}"
                presets[name] = _mnist_like(name, model, act, data)
    presets.update(_vgg_presets())
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
    """A fresh copy of the preset ``name`` (aliases accepted; case and ``-``/``_`` ignored)."""
    key = lookup_name(
        {**PRESETS, **ALIASES},
        name,
        "preset",
        "infoplane",
        InvalidParameterError,
        fix="Run 'infoplane list' to see them.",
    )
    return ExperimentConfig.from_dict(PRESETS[ALIASES.get(key, key)].to_dict())
