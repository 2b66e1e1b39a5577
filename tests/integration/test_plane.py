"""InformationPlane end to end: correctness against the functional API, bad input, non-finite
activations, training on digits (paper protocol and probe sets), files, resume, determinism and
TensorBoard logging."""

from __future__ import annotations

import contextlib
import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from infoplane import (
    History,
    InformationPlane,
    InvalidInputError,
    InvalidParameterError,
    InvalidTypeError,
    LayerNotFoundError,
    NonFiniteActivationError,
    gaussian_gram,
    label_gram,
    mutual_information,
    renyi_entropy,
)
from infoplane.experiments.data import load_dataset
from infoplane.experiments.models import DigitsMLP, build_model
from infoplane.schema import STATUS_OK, STATUS_SKIPPED
from infoplane.widths import LabelAlignment, alignment_sigma, median_distance
from tests.helpers.hooks import assert_no_hooks, training_flags

QUANTITIES = ("i_xt", "i_ty", "h_t", "h_x", "h_y", "sigma")
TOL = 1e-9  # bits: slack of the inequality checks (round-off of float64 eigenvalues)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """One intra-op thread: on a shared two-core machine, thread hand-offs dominate tiny batches.

    The numbers do not depend on it (every test compares runs made under the same setting).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with single_thread():
        yield


def bits(value: float) -> str:
    return struct.pack("<d", value).hex()


def assert_same_history(a: History, b: History) -> None:
    """Same records in the same order, every float bit for bit."""
    ra, rb = a.records, b.records
    assert len(ra) == len(rb)
    for x, y in zip(ra, rb, strict=True):
        assert x.keys() == y.keys()
        for key, value in x.items():
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(y[key]), key
            elif isinstance(value, float):
                assert bits(value) == bits(y[key]), (key, value, y[key], x)
            else:
                assert value == y[key], key


def reference_forward(
    model: nn.Module, x: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Every ``stage.child`` output and the logits, by walking the stages by hand (no hooks)."""
    acts: dict[str, torch.Tensor] = {}
    h = x
    with torch.no_grad():
        for stage_name, stage in model.named_children():
            if isinstance(stage, nn.Sequential):
                for sub_name, sub in stage.named_children():
                    h = sub(h)
                    acts[f"{stage_name}.{sub_name}"] = h.clone()
            else:
                h = stage(h)
    return acts, h


# ------------------------------------------------------------------------------------ correctness
CORRECTNESS = [
    pytest.param("digits-mlp", 1.01, "median", "indicator", id="mlp-paper-alpha"),
    pytest.param("digits-cnn", 1.01, "median", "indicator", id="cnn-paper-alpha"),
    pytest.param("digits-mlp", 1.0, 4.0, "indicator", id="mlp-von-neumann-fixed-x"),
    pytest.param("digits-cnn", 2.0, "median", "indicator", id="cnn-alpha2"),
    pytest.param("digits-mlp", 0.5, 2.5, "indicator", id="mlp-alpha0.5"),
    pytest.param("digits-cnn", 3.0, 4.0, 0.1, id="cnn-gaussian-labels"),
    pytest.param("digits-mlp", 1.01, "median", 0.3, id="mlp-gaussian-labels"),
]


@pytest.mark.parametrize(("arch", "alpha", "x_width", "label_kernel"), CORRECTNESS)
def test_measure_equals_the_functional_api(digits, arch, alpha, x_width, label_kernel) -> None:
    torch.manual_seed(3)
    model = build_model(arch).train()
    before = training_flags(model)
    plane = InformationPlane(
        model, alpha=alpha, x_width=x_width, label_kernel=label_kernel, num_classes=10
    )
    x, y = digits.x_train[:100], digits.y_train[:100]
    result = plane.measure(x, y, step=0)
    assert_no_hooks(model)
    assert training_flags(model) == before
    assert list(result) == [*model.measured_layers, "output"]

    model.eval()  # the reference: hand-walked eval forward, softmax of the logits
    acts, logits = reference_forward(model, x)
    layers = {name: acts[name] for name in model.measured_layers}
    layers["output"] = torch.softmax(logits.double(), dim=1)
    sigma_x = median_distance(x) if x_width == "median" else x_width
    k_x = gaussian_gram(x, sigma_x)
    if label_kernel == "indicator":
        k_y = label_gram(y)
    else:
        k_y = gaussian_gram(nn.functional.one_hot(y, 10).double(), label_kernel)
    for name, t in layers.items():
        got = result[name]
        # the paper's rule at the first step: the best of 300 candidates, no smoothing yet
        assert got["sigma"] == pytest.approx(
            float(alignment_sigma(t, k_y, num_candidates=300)), rel=1e-12
        )
        k_t = gaussian_gram(t, got["sigma"])
        want = {
            "i_xt": mutual_information(k_x, k_t, alpha=alpha),
            "i_ty": mutual_information(k_t, k_y, alpha=alpha),
            "h_t": renyi_entropy(k_t, alpha=alpha),
            "h_x": renyi_entropy(k_x, alpha=alpha),
            "h_y": renyi_entropy(k_y, alpha=alpha),
        }
        for key, value in want.items():
            assert got[key] == pytest.approx(float(value), abs=1e-10), (name, key)


def test_output_layer_is_the_softmax_not_the_logits(digits) -> None:
    torch.manual_seed(0)
    model = DigitsMLP()
    x, y = digits.x_train[:100], digits.y_train[:100]
    out = InformationPlane(model, width=0.5).measure(x, y, step=0)["output"]
    with torch.no_grad():
        logits = model.eval()(x).double()
    k_y = label_gram(y)
    softmax = mutual_information(gaussian_gram(torch.softmax(logits, 1), 0.5), k_y)
    raw = mutual_information(gaussian_gram(logits, 0.5), k_y)
    assert out["i_ty"] == pytest.approx(float(softmax), abs=1e-10)
    assert abs(float(raw) - float(softmax)) > 1e-3  # the check can tell the two apart


def test_moving_average_of_the_widths(digits) -> None:
    torch.manual_seed(0)
    model = DigitsMLP().eval()
    plane = InformationPlane(model)
    batches = [(digits.x_train[i : i + 100], digits.y_train[i : i + 100]) for i in (0, 100, 200)]
    previous = None
    for step, (x, y) in enumerate(batches):
        result = plane.measure(x, y, step=step)
        acts, _ = reference_forward(model, x)
        best = float(alignment_sigma(acts["layer2.act"], label_gram(y), num_candidates=300))
        want = best if previous is None else 0.9 * previous + 0.1 * best
        assert result["layer2.act"]["sigma"] == pytest.approx(want, rel=1e-12)
        previous = result["layer2.act"]["sigma"]


def test_measure_probe_averages_independent_batches_without_moving_the_widths(digits) -> None:
    torch.manual_seed(0)
    model = DigitsMLP()
    plane = InformationPlane(model)
    plane.measure(digits.x_train[:100], digits.y_train[:100], step=0)
    state = json.dumps(plane.state_dict()["widths"])
    x, y = digits.x_test[:250], digits.y_test[:250]  # two full batches; the last 50 are dropped
    probe = plane.measure_probe((x, y), step=7, split="test", epoch=1)
    assert json.dumps(plane.state_dict()["widths"]) == state

    # a fresh plane's first step with the steady-state grid: the best candidate, unsmoothed
    def single(xb, yb):
        return InformationPlane(model, width=LabelAlignment(warmup_steps=0)).measure(xb, yb, step=0)

    singles = [single(x[i : i + 100], y[i : i + 100]) for i in (0, 100)]
    for layer, values in probe.items():
        for key in QUANTITIES:
            mean = (singles[0][layer][key] + singles[1][layer][key]) / 2
            assert values[key] == pytest.approx(mean, abs=1e-12), (layer, key)
    records = [r for r in plane.history if r["split"] == "test"]
    assert {r["n"] for r in records} == {200} and {r["epoch"] for r in records} == {1}
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=100)
    via_loader = plane.measure_probe(loader, step=8, split="test")  # 100, 100, 50
    third = single(x[200:], y[200:])
    for layer, values in via_loader.items():
        mean = (singles[0][layer]["i_ty"] + singles[1][layer]["i_ty"] + third[layer]["i_ty"]) / 3
        assert values["i_ty"] == pytest.approx(mean, abs=1e-12)
    assert [r["n"] for r in plane.history if r["step"] == 8] == [250] * 4
    assert_no_hooks(model)
    # The fixed-width control holds the widths of the split's first probe batch from then on.
    held = plane.state_dict()["fixed"]["test"]
    plane.measure_probe((x, y), step=8, split="test", epoch=2)
    assert plane.state_dict()["fixed"]["test"] == held


def test_probe_does_not_depend_on_how_many_steps_were_measured(digits) -> None:
    """A probe of the same model gives the same numbers before and after the per-step
    measurements have passed the alignment rule's 20 dense-grid warm-up steps."""
    torch.manual_seed(0)
    model = DigitsMLP()
    probe = (digits.x_test[:200], digits.y_test[:200])
    before = InformationPlane(model).measure_probe(probe, step=0)
    busy = InformationPlane(model)
    for step in range(21):
        sl = slice(50 * step, 50 * step + 50)
        busy.measure(digits.x_train[sl], digits.y_train[sl], step=step)
    assert busy.widths("train").rules["output"].steps == 21
    assert busy.measure_probe(probe, step=21) == before


def test_every_zero_never_measures_the_training_batch(digits) -> None:
    """``every=0`` is the callbacks' "off" switch, the same declaration everywhere."""
    x, y = digits.x_train[:40], digits.y_train[:40]
    plane = InformationPlane(DigitsMLP(), every=0, width="median")
    assert [plane.on_train_batch(x, y, step=s) for s in range(4)] == [None] * 4
    assert not plane.is_due(0) and len(plane.history) == 0


@pytest.mark.parametrize("every", [1, 3, 5])
def test_on_train_batch_measures_every_kth_step(digits, every: int) -> None:
    torch.manual_seed(0)
    plane = InformationPlane(DigitsMLP(), every=every, width="median")
    x, y = digits.x_train[:50], digits.y_train[:50]
    returned = [plane.on_train_batch(x, y, step=s, epoch=0) for s in range(11)]
    measured = [s for s, r in enumerate(returned) if r is not None]
    assert measured == list(range(0, 11, every))
    assert sorted({r["step"] for r in plane.history}) == measured
    assert {r["split"] for r in plane.history} == {"train"}


# ------------------------------------------------------------------------------------ bad input
def _xy(n: int = 20, m: int | None = None):
    x = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    return x, torch.arange(n if m is None else m) % 10


def _nan_x():
    x, y = _xy()
    x[3, 0, 2, 2] = math.nan
    return x, y


def _inf_x():
    x, y = _xy()
    x[0, 0, 0, 0] = math.inf
    return x, y


BAD_MEASURE = [
    pytest.param(lambda: _xy(20, 19), {}, InvalidInputError, "same number of samples",
                 id="N-differ"),
    pytest.param(lambda: _xy(1), {}, InvalidInputError, "N >= 2", id="batch-of-1"),
    pytest.param(_nan_x, {}, InvalidInputError, "finite x", id="nan-x"),
    pytest.param(_inf_x, {}, InvalidInputError, "finite x", id="inf-x"),
    pytest.param(lambda: (_xy()[0], torch.rand(20)), {}, InvalidTypeError, "integer", id="float-y"),
    pytest.param(lambda: (_xy()[0], -torch.ones(20, dtype=torch.long)), {}, InvalidInputError,
                 "non-negative", id="negative-y"),
    pytest.param(lambda: ("x", _xy()[1]), {}, InvalidTypeError, "x as a torch.Tensor", id="str-x"),
    pytest.param(_xy, {"step": -1}, InvalidParameterError, "step as an integer >= 0", id="step<0"),
    pytest.param(_xy, {"step": 1.0}, InvalidParameterError, "step", id="step-float"),
    pytest.param(_xy, {"step": True}, InvalidParameterError, "step", id="step-bool"),
    pytest.param(_xy, {"step": "3"}, InvalidParameterError, "step", id="step-str"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "kwargs", "error", "match"), BAD_MEASURE)
@pytest.mark.parametrize("entry", ["measure", "measure_probe"])
def test_bad_measure_input(make, kwargs, error, match: str, entry: str) -> None:
    torch.manual_seed(0)
    model = DigitsMLP().train()
    plane = InformationPlane(model)
    x, y = make()
    step = kwargs.get("step", 0)
    with pytest.raises(error, match=match) as info:
        if entry == "measure":
            plane.measure(x, y, step=step)
        else:
            plane.measure_probe((x, y), step=step, batch_size=100)
    assert f"InformationPlane.{entry}" in str(info.value)
    assert len(plane.history) == 0
    assert model.training
    assert_no_hooks(model)


@pytest.mark.parametrize(
    ("data", "batch_size", "error", "match"),
    [
        (None, 1, InvalidParameterError, "batch_size as an integer >= 2"),
        (None, 0, InvalidParameterError, "batch_size"),
        (None, 2.5, InvalidParameterError, "batch_size"),
        (None, True, InvalidParameterError, "batch_size"),
        ([torch.zeros(3, 64), torch.zeros(3, 64), torch.zeros(3, 64)], 2, InvalidTypeError,
         "batches of \\(x, y\\)"),
    ],
)  # fmt: skip
def test_bad_probe_arguments(data, batch_size, error, match: str) -> None:
    model = DigitsMLP()
    data = _xy() if data is None else data
    with pytest.raises(error, match=match):
        InformationPlane(model).measure_probe(data, step=0, batch_size=batch_size)
    assert_no_hooks(model)


BAD_CONSTRUCTOR = [
    pytest.param({"every": -2}, InvalidParameterError, "every as an integer >= 0", id="every-neg"),
    pytest.param({"every": 2.0}, InvalidParameterError, "every", id="every-float"),
    pytest.param({"every": True}, InvalidParameterError, "every", id="every-bool"),
    pytest.param({"width": "widest"}, InvalidParameterError, "rule in", id="width-name"),
    pytest.param({"width": -1.0}, InvalidParameterError, "positive finite number", id="width-neg"),
    pytest.param({"width": 0}, InvalidParameterError, "positive finite number", id="width-zero"),
    pytest.param({"width": math.nan}, InvalidParameterError, "positive finite number",
                 id="width-nan"),
    pytest.param({"width": object()}, InvalidParameterError, "WidthRule", id="width-object"),
    pytest.param({"width": {"layer9.act": 1.0}}, LayerNotFoundError, "layer9.act",
                 id="width-unknown-layer"),
    pytest.param({"width": {"layer1.act": "nope"}}, InvalidParameterError, "nope",
                 id="width-map-bad-rule"),
    pytest.param({"x_width": "wide"}, InvalidParameterError, "rule in", id="x-width"),
    pytest.param({"label_kernel": "gaussian"}, InvalidParameterError, "label_kernel",
                 id="label-kernel-name"),
    pytest.param({"label_kernel": 0}, InvalidParameterError, "label_kernel", id="label-kernel-0"),
    pytest.param({"label_kernel": -0.5}, InvalidParameterError, "label_kernel",
                 id="label-kernel-neg"),
    pytest.param({"label_kernel": math.inf}, InvalidParameterError, "label_kernel",
                 id="label-kernel-inf"),
    pytest.param({"label_kernel": True}, InvalidParameterError, "label_kernel",
                 id="label-kernel-bool"),
    pytest.param({"label_kernel": None}, InvalidParameterError, "label_kernel",
                 id="label-kernel-none"),
    pytest.param({"on_nonfinite": "ignore"}, InvalidParameterError, "on_nonfinite",
                 id="on-nonfinite"),
    pytest.param({"alpha": 0}, InvalidParameterError, "alpha", id="alpha-0"),
    pytest.param({"alpha": math.nan}, InvalidParameterError, "alpha", id="alpha-nan"),
    pytest.param({"layers": ["layer1.act"], "output_name": "layer1.act"}, InvalidParameterError,
                 "output_name", id="output-name-clash"),
    pytest.param({"layers": [], "include_output": False}, InvalidParameterError, "at least one",
                 id="nothing-to-measure"),
    pytest.param({"layers": "layer1.act"}, InvalidTypeError, "list of module names",
                 id="layers-str"),
    pytest.param({"layers": ["layer1.actt"]}, LayerNotFoundError, "layer1.act", id="layer-typo"),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_CONSTRUCTOR)
def test_bad_constructor_arguments(kwargs: dict, error, match: str) -> None:
    model = DigitsMLP()
    with pytest.raises(error, match=match):
        InformationPlane(model, **kwargs)
    assert_no_hooks(model)


def test_model_must_be_a_module() -> None:
    with pytest.raises(InvalidTypeError, match=r"torch\.nn\.Module, got function"):
        InformationPlane(lambda x: x)


# ------------------------------------------------------------------------------------ non-finite
def poison(model: nn.Module, where: str) -> None:
    """Make ``where`` (a Linear) output NaN, so it and everything after it is NaN."""
    with torch.no_grad():
        model.get_submodule(where).bias.fill_(math.nan)


@pytest.mark.parametrize(
    ("where", "bad"),
    [
        ("head", ["output"]),
        ("layer2.linear", ["layer2.act", "layer3.act", "output"]),
    ],
)
def test_nonfinite_activations_raise(digits, where: str, bad: list[str]) -> None:
    torch.manual_seed(0)
    model = DigitsMLP().train()
    poison(model, where)
    plane = InformationPlane(model)
    with pytest.raises(NonFiniteActivationError, match=re_list(bad)) as info:
        plane.measure(digits.x_train[:50], digits.y_train[:50], step=0)
    assert "on_nonfinite='skip'" in str(info.value)
    assert isinstance(info.value, FloatingPointError)
    assert len(plane.history) == 0
    assert model.training
    assert_no_hooks(model)


class _Spoil(nn.Module):
    """Replaces one entry of its input with ``value``."""

    def __init__(self, row: int, value: float) -> None:
        super().__init__()
        self.row, self.value = row, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        x[self.row, 3] = self.value
        return x


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("row", [0, 17])
def test_one_nonfinite_entry_is_found_in_its_layer_alone(value: float, row: int) -> None:
    """One NaN, +Inf or -Inf entry, in the first sample (the origin the distances are
    translated by) or another, is caught and named; the clean layers are not named."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), _Spoil(row, value), nn.Linear(8, 3))
    plane = InformationPlane(model, layers=["1", "2"], include_output=False)
    x, y = torch.randn(40, 6), torch.arange(40) % 3
    with pytest.raises(NonFiniteActivationError, match=re_list(["2"])):
        plane.measure(x, y, step=0)
    assert len(plane.history) == 0


def re_list(names: list[str]) -> str:
    return "\\[" + ", ".join(f"'{n}'" for n in names).replace(".", "\\.") + "\\]"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_nonfinite_activations_skip(digits, tmp_path: Path, suffix: str) -> None:
    torch.manual_seed(0)
    model = DigitsMLP()
    plane = InformationPlane(model, on_nonfinite="skip")
    x, y = digits.x_train[:50], digits.y_train[:50]
    plane.measure(x, y, step=0)
    state = plane.state_dict()
    saved_bias = model.head.bias.detach().clone()
    poison(model, "head")
    with pytest.warns(RuntimeWarning, match=r"NaN/Inf in \['output'\].*recorded as skipped"):
        result = plane.measure(x, y, step=1)
    # A skipped step returns None (never a dict of NaN); its records carry the status.
    assert result is None
    assert plane.state_dict() == state  # a skipped step does not move the widths
    with pytest.warns(RuntimeWarning):
        plane.measure_probe((x, y), step=1, split="test", batch_size=25)
    with torch.no_grad():
        model.head.bias.copy_(saved_bias)
    plane.measure(x, y, step=2)
    statuses = {(r["split"], r["step"]): r["status"] for r in plane.history}
    assert statuses == {
        ("train", 0): STATUS_OK,
        ("train", 1): STATUS_SKIPPED,
        ("test", 1): STATUS_SKIPPED,
        ("train", 2): STATUS_OK,
    }
    path = plane.save(tmp_path / f"h{suffix}")
    text = path.read_text()
    assert "nan" not in text.lower()
    if suffix == ".csv":
        header, *rows = (line.split(",") for line in text.splitlines())
        skipped_rows = [r for r in rows if r[header.index("status")] == STATUS_SKIPPED]
        assert len(skipped_rows) == 2 * 4
        for row in skipped_rows:
            assert [row[header.index(k)] for k in QUANTITIES] == [""] * len(QUANTITIES)
    loaded = History.load(path)
    assert_same_history(plane.history, loaded)


def test_probe_skips_only_the_nonfinite_batches(digits) -> None:
    """A batch with a NaN activation drops out of the probe average; the others still count."""

    class NaNOnMarkedSamples(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = DigitsMLP()
            self.measured_layers = tuple(f"net.{n}" for n in self.net.measured_layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            logits = self.net(x)
            marked = x.reshape(len(x), -1).sum(dim=1) < 0
            return torch.where(marked[:, None], torch.full_like(logits, math.nan), logits)

    torch.manual_seed(0)
    model = NaNOnMarkedSamples()
    x, y = digits.x_test[:300].clone(), digits.y_test[:300]
    x[150] = -1.0  # poisons the second batch of 100
    plane = InformationPlane(model, on_nonfinite="skip")
    with pytest.warns(RuntimeWarning, match="output"):
        probe = plane.measure_probe((x, y), step=0)
    clean = InformationPlane(model).measure_probe(
        (torch.cat([x[:100], x[200:]]), torch.cat([y[:100], y[200:]])), step=0
    )
    assert probe == clean
    assert [r["n"] for r in plane.history] == [200] * 4
    assert_no_hooks(model)


# ------------------------------------------------------------------------------------ training
def train(
    arch: str,
    digits,
    *,
    epochs: int,
    seed: int = 0,
    every: int = 5,
    probes: bool = True,
    writer=None,
) -> tuple[InformationPlane, dict]:
    """SGD lr 0.09, batch 100 (the paper's); measure every ``every``-th step on the training batch
    and, after each epoch, a fixed train probe (1000 samples) and the test set."""
    torch.manual_seed(seed)
    model = build_model(arch)
    plane = InformationPlane(model, every=every, writer=writer)
    opt = torch.optim.SGD(model.parameters(), lr=0.09)
    order = torch.Generator().manual_seed(seed)
    probe_train = (digits.x_train[:1000], digits.y_train[:1000])
    probe_test = (digits.x_test, digits.y_test)
    step = 0
    info = {"batch_sizes": {}, "epoch_ends": [], "losses": []}
    with single_thread():  # also when called outside a test of this module
        for epoch in range(epochs):
            perm = torch.randperm(digits.n_train, generator=order)
            for start in range(0, digits.n_train, 100):
                idx = perm[start : start + 100]
                x, y = digits.x_train[idx], digits.y_train[idx]
                model.train()
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                info["losses"].append(loss.item())
                info["batch_sizes"][step] = len(idx)
                plane.on_train_batch(x, y, step=step, epoch=epoch)
                assert model.training
                step += 1
            if probes:
                plane.measure_probe(probe_train, step=step, split="probe_train", epoch=epoch)
                plane.measure_probe(probe_test, step=step, split="test", epoch=epoch)
            info["epoch_ends"].append(step)
    assert_no_hooks(model)
    return plane, info


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["digits-mlp", "digits-cnn"])
def test_training_on_digits_paper_protocol_and_probes(digits, arch: str) -> None:
    plane, info = train(arch, digits, epochs=3)
    layers = plane.measured_names
    assert len(layers) == 4
    steps = sorted(info["batch_sizes"])
    assert len(steps) == 3 * math.ceil(digits.n_train / 100)
    expected = {("train", s, layer) for s in steps if s % 5 == 0 for layer in layers}
    for split in ("probe_train", "test"):
        expected |= {(split, s, layer) for s in info["epoch_ends"] for layer in layers}
    keys = [(r["split"], r["step"], r["layer"]) for r in plane.history]
    assert len(keys) == len(set(keys)) == len(expected)
    assert set(keys) == expected

    probe_n = {"probe_train": 1000, "test": 100 * (digits.n_test // 100)}
    for r in plane.history:
        assert r["status"] == STATUS_OK
        assert all(math.isfinite(r[k]) for k in QUANTITIES), r
        assert r["layer_index"] == layers.index(r["layer"])
        if r["split"] == "train":
            n_estimate = info["batch_sizes"][r["step"]]
            assert r["n"] == n_estimate
            assert r["epoch"] == r["step"] // math.ceil(digits.n_train / 100)
        else:
            n_estimate = 100
            assert r["n"] == probe_n[r["split"]]
        # METHOD.md: 0 <= I(X;T) <= min(S(X), S(T)), 0 <= I(T;Y) <= min(S(T), S(Y)),
        # S <= log2 N (probe records are means of per-batch values, which keep the bounds)
        assert -TOL <= r["i_xt"] <= min(r["h_x"], r["h_t"]) + TOL, r
        assert -TOL <= r["i_ty"] <= min(r["h_t"], r["h_y"]) + TOL, r
        for key in ("h_t", "h_x"):
            assert 0.0 <= r[key] <= math.log2(n_estimate) + TOL, r
        assert 0.0 <= r["h_y"] <= math.log2(10) + TOL, r
        assert r["sigma"] > 0

    assert info["losses"][-1] < 0.5 * info["losses"][0]
    for split in ("train", "probe_train", "test"):
        out = [r for r in plane.history if r["split"] == split and r["layer"] == "output"]
        assert out[-1]["i_ty"] > out[0]["i_ty"] + 0.05, (split, out[0]["i_ty"], out[-1]["i_ty"])


@pytest.mark.slow
def test_same_seed_same_history_bit_for_bit(digits) -> None:
    first, _ = train("digits-mlp", digits, epochs=1, every=3, probes=False)
    second, _ = train("digits-mlp", digits, epochs=1, every=3, probes=False)
    assert len(first.history) == 5 * 4
    assert_same_history(first.history, second.history)
    for a, b in zip(
        first.model.state_dict().values(), second.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    other, _ = train("digits-mlp", digits, epochs=1, every=3, probes=False, seed=1)
    assert [r["i_xt"] for r in other.history] != [r["i_xt"] for r in first.history]


# ------------------------------------------------------------------------------------ files, resume
def measured_plane(digits, steps: range, *, plane: InformationPlane | None = None):
    """A plane that measured ``steps``, batch ``step`` being samples ``[50 step, 50 step + 50)``."""
    if plane is None:
        torch.manual_seed(0)
        plane = InformationPlane(DigitsMLP())
    for step in steps:
        sl = slice(50 * step, 50 * step + 50)
        plane.measure(digits.x_train[sl], digits.y_train[sl], step=step, epoch=step // 4)
    return plane


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_save_load_round_trip(digits, tmp_path: Path, suffix: str) -> None:
    plane = measured_plane(digits, range(3))
    plane.measure_probe((digits.x_test, digits.y_test), step=3, split="test", epoch=0)
    path = plane.save(tmp_path / "sub" / f"history{suffix}")
    assert path is not None and path.is_file()
    if suffix == ".csv":
        assert (tmp_path / "sub" / "history.meta.json").is_file()
    loaded = History.load(path)
    assert_same_history(plane.history, loaded)
    assert loaded.config == json.loads(json.dumps(plane.history.config))
    assert loaded.config["alpha"] == 1.01
    assert loaded.config["layers"] == plane.measured_names
    assert loaded.config["width"]["layer1.act"]["rule"] == "alignment"
    assert "sqrt(2)" in loaded.config["sigma_convention"]


def test_resume_continues_widths_and_has_no_duplicates(digits, tmp_path: Path) -> None:
    uninterrupted = measured_plane(digits, range(10))

    # a run that checkpoints after step 4, goes on to step 6, saves its history and dies
    crashed = measured_plane(digits, range(5))
    checkpoint = json.dumps(crashed.state_dict())  # plain data: survives JSON and torch.save
    measured_plane(digits, range(5, 7), plane=crashed)
    crashed.save(tmp_path / "history.jsonl")

    # restart from the checkpoint: reload the history, drop what came after it, re-measure
    history = History.load(tmp_path / "history.jsonl")
    assert history.last_step() == 6
    assert history.truncate(after_step=4) == 2 * 4
    torch.manual_seed(0)
    resumed = InformationPlane(DigitsMLP(), history=history)
    resumed.load_state_dict(json.loads(checkpoint))
    measured_plane(digits, range(5, 10), plane=resumed)

    keys = [(r["split"], r["epoch"], r["step"], r["layer"]) for r in resumed.history]
    assert len(keys) == len(set(keys)) == 10 * 4
    assert_same_history(resumed.history, uninterrupted.history)
    assert resumed.state_dict() == uninterrupted.state_dict()

    # control: without the width state the continued run's widths differ
    torch.manual_seed(0)
    fresh = measured_plane(digits, range(5, 10), plane=InformationPlane(DigitsMLP()))
    sig = [r["sigma"] for r in fresh.history]
    assert sig != [r["sigma"] for r in resumed.history if r["step"] >= 5]


def test_load_state_dict_of_another_configuration() -> None:
    state = InformationPlane(DigitsMLP()).state_dict()
    other = InformationPlane(DigitsMLP(), layers=["layer1.act"])
    with pytest.raises(LayerNotFoundError, match="another configuration"):
        other.load_state_dict(state)


def test_save_rejects_other_formats(digits, tmp_path: Path) -> None:
    plane = measured_plane(digits, range(1))
    with pytest.raises(InvalidParameterError, match=r"\.csv or \.jsonl"):
        plane.save(tmp_path / "history.parquet")


# ------------------------------------------------------------------------------------ TensorBoard
class FakeWriter:
    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []

    def add_scalar(self, tag: str, value: float, global_step: int) -> None:
        self.scalars.append((tag, value, global_step))


def test_fake_writer_gets_the_expected_tags(digits) -> None:
    writer = FakeWriter()
    torch.manual_seed(0)
    model = DigitsMLP()
    plane = InformationPlane(model, writer=writer, on_nonfinite="skip")
    train = plane.measure(digits.x_train[:50], digits.y_train[:50], step=4)
    test = plane.measure_probe((digits.x_test, digits.y_test), step=4, split="test")
    keys = ("i_xt", "i_ty", "h_t", "sigma")
    want = [
        (f"infoplane/{split}/{layer}/{key}", result[layer][key], 4)
        for split, result in (("train", train), ("test", test))
        for layer in plane.measured_names
        for key in keys
    ]
    assert writer.scalars == want
    poison(model, "head")
    with pytest.warns(RuntimeWarning):
        plane.measure(digits.x_train[:50], digits.y_train[:50], step=5)
    assert len(writer.scalars) == len(want)  # skipped steps log nothing


def test_real_summary_writer(digits, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path))
    plane, _ = train("digits-mlp", digits, epochs=1, every=5, probes=False, writer=writer)
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert tags == {
        f"infoplane/train/{layer}/{key}"
        for layer in plane.measured_names
        for key in ("i_xt", "i_ty", "h_t", "sigma")
    }
    logged = events.Scalars("infoplane/train/output/i_ty")
    recorded = [r for r in plane.history if r["layer"] == "output"]
    assert [e.step for e in logged] == [r["step"] for r in recorded]
    for event, record in zip(logged, recorded, strict=True):
        assert event.value == pytest.approx(record["i_ty"], rel=1e-6)
