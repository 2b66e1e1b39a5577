"""The paper presets carry the authors' protocol (Wickstrøm et al., arXiv:1909.11396; their code,
github.com/Wickstrom/InformationTheoryExperiment, python/): α = 1, the authors' width rule and
input width 8 in their exp(-d²/σ²), their initialisation, the MLP measured after BatchNorm; the
consequence of that input width on raw CIFAR-10 pixels; the default run left as it was."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from infoplane.errors import InvalidParameterError
from infoplane.experiments.config import ExperimentConfig
from infoplane.experiments.presets import (
    ALIASES,
    PAPER_ALPHA,
    PAPER_X_WIDTH,
    PRESETS,
    get_preset,
)
from infoplane.experiments.runner import Experiment
from tests.helpers import reference as ref

PAPER = [name for name in PRESETS if not name.startswith("digits")]
MLP_PAPER = [name for name in PAPER if name.startswith("mlp-")]
CNN_PAPER = [name for name in PAPER if name.startswith("cnn-")]
VGG_PAPER = [name for name in PAPER if name.startswith("vgg16-")]

#: The sample shape each dataset gives the runner (Fashion-MNIST padded by 2 pixels for VGG-16).
INPUT_SHAPES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


def _input_shape(config: ExperimentConfig) -> tuple[int, ...]:
    c, h, w = INPUT_SHAPES[config.dataset]
    pad = config.dataset_options.get("pad", 0)
    return (c, h + 2 * pad, w + 2 * pad)


def _built(config: ExperimentConfig, tmp_path) -> nn.Module:
    """The model exactly as the runner builds it for run 0 of ``config``."""
    data = SimpleNamespace(input_shape=_input_shape(config), num_classes=10)
    model, _ = Experiment(config, tmp_path, progress=False).build(0, data)
    return model


def test_the_presets_split_into_the_paper_experiments() -> None:
    assert len(MLP_PAPER) == len(CNN_PAPER) == 4  # {mnist, fashion} x {tanh, relu}
    assert set(VGG_PAPER) == {"vgg16-cifar10", "vgg16-cifar10-median", "vgg16-fashion"}
    assert set(PRESETS) == {"digits", "digits-cnn", *PAPER}


@pytest.mark.parametrize("name", PAPER)
def test_paper_presets_use_the_authors_estimator_settings(name: str) -> None:
    config = get_preset(name)
    assert config.alpha == PAPER_ALPHA == 1.0  # the final code's von Neumann entropy
    assert "1.01" in config.description  # ... and the text's value is named beside it
    assert config.width == "authors"
    assert config.lr == 0.09 and config.momentum == 0.0 and config.batch_size == 100
    assert config.protocol == "step" and config.measure_n == 100
    assert config.model_options["init"] == "authors"
    config.validate()


@pytest.mark.parametrize("name", [n for n in PAPER if n != "vgg16-cifar10-median"])
def test_paper_presets_use_the_authors_input_width_for_every_dataset(name: str) -> None:
    # 8 in the authors' exp(-d^2 / s^2) equals 8 / sqrt(2) in exp(-d^2 / (2 sigma^2))
    sigma = get_preset(name).x_width
    assert sigma == pytest.approx(math.sqrt(32.0), rel=1e-15)
    d = np.array([0.5, 3.0, 11.0])
    np.testing.assert_allclose(np.exp(-(d**2) / 8.0**2), np.exp(-(d**2) / (2 * sigma**2)))


@pytest.mark.parametrize("name", MLP_PAPER)
def test_paper_mlp_measures_each_block_after_its_batchnorm(name: str, tmp_path) -> None:
    config = get_preset(name)
    assert config.model_options == {"init": "authors", "measure": "block"}
    assert config.epochs == 10 and config.runs == 10 and config.test_n == 200
    torch.manual_seed(0)
    model = _built(config, tmp_path)
    assert model.measured_layers == ("layer1", "layer2", "layer3", "layer4")
    assert [type(m) for m in model.layer1] == [nn.Linear, type(model.layer1.act), nn.BatchNorm1d]
    assert model.activation == config.activation
    assert torch.count_nonzero(model.layer1.linear.bias) == 0  # the authors' zero biases


@pytest.mark.parametrize("name", CNN_PAPER)
def test_paper_cnn_presets_build_the_paper_cnn(name: str, tmp_path) -> None:
    config = get_preset(name)
    model = _built(config, tmp_path)
    assert model.measured_layers == ("conv1.act", "conv2.act", "conv3.act", "fc1.act")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert torch.count_nonzero(model.conv1.conv.bias) == 0


@pytest.mark.parametrize("name", VGG_PAPER)
def test_vgg_presets_build_sixteen_measured_layers(name: str, tmp_path) -> None:
    config = get_preset(name)
    model = _built(config, tmp_path)
    assert len(model.measured_layers) + 1 == 16  # 13 conv, 2 dense, the softmax output
    assert model.input_shape == _input_shape(config)
    assert [n for n, _ in model.fc1.named_children()] == ["drop", "linear", "act"]


def test_vgg16_fashion_is_a_cpu_sized_fashion_mnist_run() -> None:
    config = get_preset("vgg16-fashion")
    assert config.dataset == "fashion-mnist"
    assert config.dataset_options == {"pad": 2}
    assert config.model_options["in_channels"] == 1
    assert _input_shape(config) == (1, 32, 32)
    assert config.epochs == 1 and config.runs == 1 and config.every == 10


def test_cifar10_presets_feed_raw_pixels_and_differ_only_in_the_input_width() -> None:
    paper, median = get_preset("vgg16-cifar10"), get_preset("vgg16-cifar10-median")
    assert paper.dataset_options == median.dataset_options == {"scale": "raw"}
    assert median.x_width == "median"
    rest = {k for k in paper.to_dict() if k not in ("preset", "description", "x_width")}
    assert {k: paper.to_dict()[k] for k in rest} == {k: median.to_dict()[k] for k in rest}
    assert "identity" in paper.description and "S(T)" in paper.description


def test_the_authors_input_width_makes_raw_pixel_kernels_the_identity() -> None:
    """The consequence stated in the vgg16-cifar10 preset: even 0-255 images that differ from one
    another by about one grey level per pixel get K_X = I, hence I(X;T) = S(T) for any layer T;
    on pixels in [0, 1] the same width gives an informative K_X."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=3 * 32 * 32).astype(np.float64)
    raw = np.clip(base + rng.integers(-1, 2, size=(40, base.size)), 0, 255)
    k_x = ref.gaussian_gram(raw, PAPER_X_WIDTH)
    assert np.abs(k_x - np.eye(40)).max() < 1e-12
    t = rng.normal(size=(40, 20))
    k_t = ref.gaussian_gram(t, float(np.median(ref.upper_distances(t))))
    s_t = ref.renyi_entropy(k_t, alpha=1.0)
    assert ref.mutual_information(k_x, k_t, alpha=1.0) == pytest.approx(s_t, abs=1e-9)
    assert ref.renyi_entropy(k_x, alpha=1.0) == pytest.approx(math.log2(40), abs=1e-9)

    # four classes of 784-pixel images in [0, 1] (centres plus noise): K_X sees the classes
    centres = rng.uniform(size=(4, 28 * 28))
    unit = np.clip(centres[np.arange(40) % 4] + rng.normal(scale=0.1, size=(40, 28 * 28)), 0, 1)
    k_unit = ref.gaussian_gram(unit, PAPER_X_WIDTH)
    same = (np.arange(40)[:, None] % 4) == (np.arange(40)[None, :] % 4)
    off = ~np.eye(40, dtype=bool)
    assert k_unit[same & off].min() > 0.5 > 0.3 > k_unit[~same].max()
    assert 1.5 < ref.renyi_entropy(k_unit, alpha=1.0) < math.log2(40) - 1.0
    assert ref.mutual_information(k_unit, k_t, alpha=1.0) < s_t - 0.5


def test_the_default_run_keeps_its_quick_settings() -> None:
    config = get_preset("digits")
    assert (
        config.to_dict()
        == ExperimentConfig(preset="digits", description=config.description, epochs=15).to_dict()
    )
    assert (config.alpha, config.width, config.x_width) == (1.01, "alignment", "median")


def test_get_preset_reads_aliases_and_spellings_and_returns_a_copy() -> None:
    for alias, target in ALIASES.items():
        assert get_preset(alias).preset == target
    assert get_preset(" MLP_Fashion_ReLU ").preset == "mlp-fashion-relu"
    copy = get_preset("mlp-mnist-tanh")
    copy.model_options["measure"] = "activation"
    assert PRESETS["mlp-mnist-tanh"].model_options["measure"] == "block"


@pytest.mark.parametrize("bad", ["no-such-preset", "", 7])
def test_unknown_preset_lists_the_names(bad: object) -> None:
    with pytest.raises(InvalidParameterError, match="infoplane list") as info:
        get_preset(bad)  # type: ignore[arg-type]
    assert all(name in str(info.value) for name in (*PRESETS, *ALIASES))
