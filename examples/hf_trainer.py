"""Track the information plane of a Hugging Face model with the Trainer callback.

A tiny BERT built from a config (random weights, no download) learns whether a token occurs in
a sequence. X is the embeddings' output (token ids are not a meaningful input for a Gaussian
kernel), the layers are each encoder block's output and the pooler::

    python examples/hf_trainer.py --out runs/hf --epochs 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from infoplane.integrations.transformers import InformationPlaneCallback


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 50, (n, 8), generator=g)
        self.labels = (self.ids < 10).any(1).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        mask = torch.ones(8, dtype=torch.long)
        return {"input_ids": self.ids[i], "attention_mask": mask, "labels": self.labels[i]}


def tiny_bert() -> BertForSequenceClassification:
    """A 2-layer BERT with hidden size 16 from a config: random weights, nothing downloaded."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    return BertForSequenceClassification(config)


def training_arguments(out: Path, epochs: int, batch_size: int) -> TrainingArguments:
    """CPU, evaluation once per epoch, no checkpoints and no reporting integrations."""
    return TrainingArguments(
        output_dir=str(out),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        eval_strategy="epoch",
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        learning_rate=1e-3,
        seed=0,
    )


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/hf"), help="output directory")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs")
    args = parser.parse_args(argv)

    model = tiny_bert()
    callback = InformationPlaneCallback(
        ["bert.encoder.layer.?.output", "bert.pooler.activation"],  # "*" would also cross dots
        every=4,
        x_layer="bert.embeddings",
        batch_size=32,
    )
    training = training_arguments(args.out, args.epochs, batch_size=32)
    trainer = Trainer(
        model=model,
        args=training,
        train_dataset=Tokens(256, 1),
        eval_dataset=Tokens(64, 2),
        callbacks=[callback],
    )
    trainer.train()
    path = callback.history_path(training)
    print(f"history: {path} ({len(callback.plane.history)} records)")
    return path


if __name__ == "__main__":
    main()
