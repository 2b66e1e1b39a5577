"""prepare_batch: tensors, (x, y) pairs, mappings and BatchEncoding, token ids, bad batches."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from infoplane import inputs
from infoplane.errors import InvalidInputError, InvalidTypeError
from infoplane.inputs import PreparedBatch, TokenIdsWarning, prepare_batch, to_device


class KwargsNet(nn.Module):
    """Takes keyword inputs like a Hugging Face model and records what it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 3)
        self.seen: dict[str, torch.Tensor] = {}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        self.seen = {"input_ids": input_ids, "attention_mask": attention_mask}
        return (self.embed(input_ids) * attention_mask[..., None]).sum(1)


@pytest.fixture(autouse=True)
def _fresh_warning_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "_WARNED", set())


@pytest.fixture
def token_batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "input_ids": torch.randint(0, 20, (6, 5), generator=g),
        "attention_mask": torch.ones(6, 5, dtype=torch.long),
        "labels": torch.tensor([0, 1, 0, 1, 1, 0]),
    }


def test_tensor_with_labels() -> None:
    x = torch.randn(4, 3)
    y = torch.tensor([0, 1, 1, 0])
    batch = prepare_batch(x, y)
    assert isinstance(batch, PreparedBatch)
    assert batch.x is x and batch.y is y and batch.n == 4
    model = nn.Linear(3, 2)
    torch.testing.assert_close(batch.forward(model), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("wrap", [tuple, list])
def test_pair_batch(wrap) -> None:
    x, y = torch.randn(5, 2), torch.arange(5) % 2
    batch = prepare_batch(wrap([x, y, "extra"]))
    assert batch.x is x and batch.y is y and batch.n == 5


def test_nested_lists_become_tensors() -> None:
    batch = prepare_batch([[0.0, 1.0], [2.0, 3.0]], [0, 1])
    torch.testing.assert_close(batch.x, torch.tensor([[0.0, 1.0], [2.0, 3.0]], dtype=torch.float64))
    torch.testing.assert_close(batch.y, torch.tensor([0, 1]))


def test_mapping_is_passed_as_keywords_without_labels(token_batch) -> None:
    model = KwargsNet()
    with pytest.warns(TokenIdsWarning, match="x_layer"):
        batch = prepare_batch(token_batch)
    assert batch.y is token_batch["labels"] and batch.n == 6
    assert batch.x is token_batch["input_ids"]
    out = batch.forward(model)
    assert set(model.seen) == {"input_ids", "attention_mask"}
    assert model.seen["input_ids"] is token_batch["input_ids"]
    want = model.embed(token_batch["input_ids"]).sum(1)
    torch.testing.assert_close(out, want, rtol=0, atol=0)


def test_explicit_labels_win_over_the_mapping(token_batch) -> None:
    y = torch.tensor([1, 1, 1, 0, 0, 0])
    batch = prepare_batch(token_batch, y, x_layer="embed")
    assert batch.y is y


def test_batch_encoding_is_a_mapping(token_batch) -> None:
    transformers = pytest.importorskip("transformers")
    encoding = transformers.BatchEncoding(token_batch)
    batch = prepare_batch(encoding, x_layer="embed")
    assert batch.x is None and batch.n == 6
    assert batch.y is encoding["labels"]
    model = KwargsNet()
    batch.forward(model)
    assert set(model.seen) == {"input_ids", "attention_mask"}


def test_floating_inputs_are_preferred_as_x() -> None:
    pixels = torch.rand(3, 1, 2, 2)
    batch = prepare_batch({"ids": torch.arange(3), "pixel_values": pixels, "labels": [0, 1, 0]})
    assert batch.x is pixels


def test_token_ids_warn_once_per_caller(token_batch) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            prepare_batch(token_batch, who="A")
        prepare_batch(token_batch, who="B")
    messages = [str(w.message) for w in caught if w.category is TokenIdsWarning]
    assert len(messages) == 2
    assert messages[0].startswith("A: X is integer data (torch.int64")


@pytest.mark.parametrize(
    ("change", "x_layer"),
    [
        pytest.param(None, "embed", id="x_layer"),
        pytest.param(torch.float32, None, id="float"),
        pytest.param(torch.uint8, None, id="uint8-image"),
    ],
)
def test_no_warning_when_x_is_meaningful(token_batch, change, x_layer) -> None:
    if change is not None:
        token_batch = {**token_batch, "input_ids": token_batch["input_ids"].to(change)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare_batch(token_batch, x_layer=x_layer)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((torch.randn(4, 2),), InvalidInputError, "expected labels, got none"),
        (({"input_ids": torch.arange(4)},), InvalidInputError, "'labels' entry"),
        (({"mask": None, "labels": [0, 1]},), InvalidInputError, "tensor among the batch"),
        ((torch.randn(4, 2), torch.arange(3)), InvalidInputError, r"x \(4, 2\) and y \(3,\)"),
        ((torch.tensor(1.0), torch.tensor(1)), InvalidInputError, "same number of samples"),
        (("text", [0, 1]), InvalidTypeError, "x"),
    ],
)
def test_bad_batches(args, error, match: str) -> None:
    with pytest.raises(error, match=match) as info:
        prepare_batch(*args, who="measure")
    assert str(info.value).startswith("measure: expected")


def test_to_device_keeps_the_structure(token_batch) -> None:
    moved = to_device({"a": token_batch, "b": (torch.ones(2), [torch.zeros(1), 3])}, "meta")
    assert moved["a"]["input_ids"].device.type == "meta"
    assert isinstance(moved["b"], tuple) and isinstance(moved["b"][1], list)
    assert moved["b"][0].device.type == "meta" and moved["b"][1][1] == 3
    assert token_batch["input_ids"].device.type == "cpu"  # the original is untouched


def test_to_device_uses_batch_encodings_own_move(token_batch) -> None:
    transformers = pytest.importorskip("transformers")
    moved = to_device(transformers.BatchEncoding(token_batch), "meta")
    assert isinstance(moved, transformers.BatchEncoding)
    assert moved["labels"].device.type == "meta"


# ------------------------------------------------------------------------------------ tracker
class TokenClassifier(nn.Module):
    """Embedding -> mean over tokens -> tanh -> head; takes keyword inputs like a HF model."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 4)
        self.act = nn.Tanh()
        self.head = nn.Linear(4, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict:
        h = self.act((self.embed(input_ids) * attention_mask[..., None]).mean(1))
        return {"logits": self.head(h)}


def test_plane_measures_a_mapping_with_x_from_a_layer(token_batch) -> None:
    from infoplane import InformationPlane, gaussian_gram, label_gram, mutual_information

    model = TokenClassifier().eval()
    options = {"x_width": 2.0, "width": 0.9, "controls": ()}
    plane = InformationPlane(model, ["act"], x_layer="embed", **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # X is the embedding: no token-id warning
        result = plane.measure(token_batch, step=0)
    assert list(result) == ["act", "output"]
    with torch.no_grad():
        emb = model.embed(token_batch["input_ids"])
        act = torch.tanh((emb * token_batch["attention_mask"][..., None]).mean(1))
    k_x = gaussian_gram(emb.reshape(6, -1), 2.0)
    k_t = gaussian_gram(act, 0.9)
    assert result["act"]["i_xt"] == pytest.approx(float(mutual_information(k_x, k_t)), abs=1e-9)
    i_ty = float(mutual_information(k_t, label_gram(token_batch["labels"])))
    assert result["act"]["i_ty"] == pytest.approx(i_ty, abs=1e-9)
    # the same numbers from a probe of mappings, and from a BatchEncoding-like pair (x, y)
    probe = plane.measure_probe([token_batch], step=1, split="test", batch_size=6)
    assert probe["act"]["i_xt"] == pytest.approx(result["act"]["i_xt"], abs=1e-12)
    labels = token_batch.pop("labels")
    again = InformationPlane(model, ["act"], x_layer=model.embed, **options).measure(
        token_batch, labels, step=0
    )
    assert again == result


def test_plane_x_layer_can_be_a_measured_layer_too(token_batch) -> None:
    from infoplane import InformationPlane

    model = TokenClassifier().eval()
    result = InformationPlane(model, ["embed", "act"], x_layer="embed", x_width=2.0, width=2.0)
    got = result.measure(token_batch, step=0)
    assert list(got) == ["embed", "act", "output"]
    assert got["embed"]["h_t"] == pytest.approx(got["embed"]["h_x"], abs=1e-9)  # T = X


def test_plane_warns_on_token_ids_without_x_layer(token_batch) -> None:
    from infoplane import InformationPlane

    plane = InformationPlane(TokenClassifier(), ["act"], controls=())
    with pytest.warns(TokenIdsWarning, match="InformationPlane.measure: X is integer data"):
        plane.measure(token_batch, step=0)


@pytest.mark.parametrize(
    ("x_layer", "error", "match"),
    [
        ("nope", "LayerNotFoundError", "got 'nope'"),
        ("*", "InvalidParameterError", "x_layer to name one layer"),
    ],
)
def test_plane_bad_x_layer(x_layer, error: str, match: str) -> None:
    import infoplane

    with pytest.raises(getattr(infoplane, error), match=match):
        infoplane.InformationPlane(TokenClassifier(), ["act"], x_layer=x_layer)


def test_a_list_batch_takes_the_model_parameters_dtype() -> None:
    """``measure(x.tolist(), ...)`` on a float32 model: the list (float64 by default) becomes a
    float32 tensor like the model's parameters, and gives the same numbers as the tensor."""
    from infoplane import InformationPlane

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    x = torch.rand(30, 5)
    y = torch.arange(30) % 3
    from_list = InformationPlane(model, controls=()).measure(x.tolist(), y.tolist(), step=0)
    from_tensor = InformationPlane(model, controls=()).measure(x, y, step=0)
    assert from_list == from_tensor
