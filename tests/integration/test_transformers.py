"""The Hugging Face Trainer callback with a tiny randomly initialised BERT (no download)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from infoplane import (  # noqa: E402
    History,
    gaussian_gram,
    label_gram,
    mutual_information,
)
from infoplane.capture import capture, default_layers  # noqa: E402
from infoplane.integrations.transformers import (  # noqa: E402
    EVAL_SPLIT,
    TRAIN_SPLIT,
    InformationPlaneCallback,
)
from infoplane.loggers import CSVLogger  # noqa: E402
from tests.helpers.examples import load_example  # noqa: E402
from tests.helpers.hooks import assert_no_hooks  # noqa: E402

example = load_example("hf_trainer")  # its tiny BERT, token data and arguments

pytestmark = pytest.mark.usefixtures("single_thread")

N_TRAIN, N_EVAL, BATCH = 32, 16, 8
X_WIDTH, WIDTH = 6.0, 4.0  # fixed widths: the last record can be recomputed exactly


def test_default_layers_of_bert_are_its_activation_modules() -> None:
    names = default_layers(example.tiny_bert())
    assert names == [
        "bert.encoder.layer.0.intermediate.intermediate_act_fn",
        "bert.encoder.layer.1.intermediate.intermediate_act_fn",
        "bert.pooler.activation",
    ]


def test_trainer_callback_measures_and_saves(tmp_path: Path) -> None:
    model = example.tiny_bert()
    layers = ["bert.encoder.layer.?.output", "bert.pooler.activation"]  # "*" would cross dots
    csv = CSVLogger(tmp_path / "log.csv")
    callback = InformationPlaneCallback(
        layers,
        every=2,
        x_layer="bert.embeddings",
        batch_size=BATCH,
        loggers=[csv],
        controls=(),
        x_width=X_WIDTH,
        width=WIDTH,
    )
    args = example.training_arguments(tmp_path / "out", epochs=2, batch_size=BATCH)
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=example.Tokens(N_TRAIN, 0),
        eval_dataset=example.Tokens(N_EVAL, 1),
        callbacks=[callback],
    )
    trainer.train()
    history = callback.plane.history
    measured = ["bert.encoder.layer.0.output", "bert.encoder.layer.1.output"]
    assert callback.plane.measured_names == [*measured, "bert.pooler.activation", "output"]
    train = [r for r in history if r["split"] == TRAIN_SPLIT]
    evals = [r for r in history if r["split"] == EVAL_SPLIT]
    assert sorted({r["step"] for r in train}) == [2, 4, 6, 8]  # 4 steps per epoch, every 2
    assert sorted({(r["step"], r["epoch"]) for r in evals}) == [(4, 1), (8, 2)]
    assert all(r["n"] == BATCH for r in train) and all(r["n"] == N_EVAL for r in evals)
    saved = History.load(tmp_path / "out" / "history.csv")
    assert len(saved) == len(history)
    assert len(csv.rows) == len(history)  # every measurement reached the logger
    assert_no_hooks(model)

    # the last training record is the fixed probe batch, recomputed independently: the
    # embeddings and the layers captured in eval mode, the functional API at the same widths
    probe = {k: v for k, v in callback.probe.items() if k != "labels"}
    model.eval()
    with torch.no_grad(), capture(model, ["bert.embeddings", *layers]) as acts:
        model(**probe)
    k_x = gaussian_gram(acts.pop("bert.embeddings").reshape(BATCH, -1), X_WIDTH)
    k_y = label_gram(callback.probe["labels"])
    last = {r["layer"]: r for r in train if r["step"] == 8}
    for layer in ["bert.encoder.layer.0.output", "bert.encoder.layer.1.output"]:
        k_t = gaussian_gram(acts[layer].reshape(BATCH, -1), WIDTH)
        assert last[layer]["i_xt"] == pytest.approx(float(mutual_information(k_x, k_t)), abs=1e-9)
        assert last[layer]["i_ty"] == pytest.approx(float(mutual_information(k_t, k_y)), abs=1e-9)
