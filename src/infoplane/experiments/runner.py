"""Train a network and track its information plane: the engine behind ``infoplane run``.

A run directory's files are named by :class:`infoplane.schema.RunDir`. While a run writes there
it holds an exclusive lock on ``.lock``, so a second run on the same directory stops at once.

Determinism: every random choice derives from ``seed + run`` (the weights), or from a generator
seeded by ``(seed, run, epoch)`` (the shuffling) or ``(seed, run, step)`` (the test batch), so a
resumed run repeats exactly what an uninterrupted one does. Files are saved after each epoch,
history before checkpoint, each atomically: a crash at any point loses at most the current epoch,
which the resumed run measures again. A resume checks that the history covers every step that
the checkpoints do, loads checkpoints without executing code (``weights_only=True``), and
removes temporary files a killed run left behind.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from infoplane.errors import InvalidParameterError
from infoplane.experiments.config import ExperimentConfig
from infoplane.experiments.data import DatasetSplits, load_dataset
from infoplane.experiments.models import build_model
from infoplane.experiments.store import RunStore
from infoplane.history import History
from infoplane.io import read_table, write_table
from infoplane.progress import progress_bar
from infoplane.schema import METRIC_FIELDS
from infoplane.tracker._plane import InformationPlane


def _generator(*keys: int) -> torch.Generator:
    g = torch.Generator()
    seed = 0
    for k in keys:
        seed = (seed * 1_000_003 + int(k)) % (2**62)
    return g.manual_seed(seed)


class _Progress:
    """A tqdm bar when tqdm is installed and enabled; otherwise nothing."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.bar = progress_bar(total, desc, enabled, unit="it", leave=True)

    def update(self, n: int = 1, **postfix: Any) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Experiment:
    """One configured experiment in one run directory (possibly several runs/seeds)."""

    def __init__(
        self,
        config: ExperimentConfig,
        run_dir: str | Path,
        *,
        progress: bool = True,
        command: list[str] | None = None,
    ) -> None:
        self.config = config.validate()
        self.run_dir = Path(run_dir)
        self.store = RunStore(run_dir, self.config, torch.device(config.device))
        self.files = self.store.files
        self.progress = progress
        self.command = list(sys.argv if command is None else command)
        self.device = torch.device(config.device)  # validate() checked that it exists

    # ----------------------------------------------------------------------------- files
    @property
    def history_path(self) -> Path:
        return self.files.history

    @property
    def metrics_path(self) -> Path:
        return self.files.metrics

    # ----------------------------------------------------------------------------- pieces
    def load_data(self) -> DatasetSplits:
        c = self.config
        return load_dataset(
            c.dataset,
            data_dir=c.data_dir,
            download=c.download,
            seed=c.seed,
            progress=self.progress,
            **c.dataset_options,
        )

    def build(self, run: int, data: DatasetSplits) -> tuple[nn.Module, torch.optim.Optimizer]:
        c = self.config
        torch.manual_seed(c.seed + run)
        options = dict(c.model_options)
        options.setdefault("activation", c.activation)
        if c.model in ("mlp", "digits-mlp"):
            options.setdefault("in_features", int(torch.tensor(data.input_shape).prod()))
        else:
            options.setdefault("in_channels", data.input_shape[0])
            options.setdefault("image_size", data.input_shape[-1])
        options.setdefault("num_classes", data.num_classes)
        model = build_model(c.model, **options).to(self.device)
        optimizer = torch.optim.SGD(
            model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
        )
        return model, optimizer

    def _plane(self, model: nn.Module, run: int, history: History) -> InformationPlane:
        c = self.config
        return InformationPlane(
            model,
            alpha=c.alpha,
            x_width=c.x_width,
            width=c.width,
            every=c.every,
            run=run,
            history=history,
            on_nonfinite="skip",
            controls=tuple(c.controls),
            null_permutations=c.null_permutations,
        )

    @torch.no_grad()
    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """Mean cross-entropy and accuracy of ``model`` on (x, y), in eval mode."""
        was = model.training
        model.eval()
        loss_sum, correct = 0.0, 0
        for start in range(0, len(x), 500):
            xb = x[start : start + 500].to(self.device)
            yb = y[start : start + 500].to(self.device)
            logits = model(xb)
            loss_sum += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
        model.train(was)
        return loss_sum / len(x), correct / len(x)

    # ----------------------------------------------------------------------------- main loop
    def run(self, *, resume: bool = False) -> Path:
        """Run (or resume) every configured run; return the run directory."""
        c = self.config
        if self.device.type == "cpu" and c.threads is not None:
            torch.set_num_threads(c.threads)
        data = self.load_data()  # before any file is written: a data problem leaves no run dir
        model, _ = self.build(0, data)  # so does an unknown model, activation or option
        self._plane(model, 0, History())
        store = self.store
        with store.locked():
            store.prepare(resume=resume)
            started = time.time()
            store.write_provenance(started, resume=resume, finished=False, command=self.command)
            history = (
                History.load(self.history_path)
                if resume and self.history_path.is_file()
                else History()
            )
            positions = store.checkpoint_positions() if resume else {}
            store.check_history_covers_checkpoints(history, positions)
            metrics = _load_metrics(self.metrics_path) if resume else []
            state = store.state() if resume else {"done": []}
            for run in range(c.runs):
                # A finished run resumed with more epochs continues from its last checkpoint.
                more = run in positions and positions[run][0] + 1 < c.epochs
                if run in state["done"] and not more:
                    continue
                self._train_one(run, data, history, metrics, resume=resume)
                if run not in state["done"]:
                    state["done"].append(run)
                store.save_state(state)
            store.write_provenance(started, resume=resume, finished=True, command=self.command)
        return self.run_dir

    def _resume_point(self, run: int, model, optimizer, plane) -> tuple[int, int]:
        """Load run ``run``'s checkpoint into the pieces; return ``(start_epoch, step)``."""
        ckpt = self.store.load_checkpoint(run)
        if ckpt is None:
            return 0, 0
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        plane.load_state_dict(ckpt["plane"])
        torch.set_rng_state(ckpt["rng_cpu"])
        if ckpt.get("rng_cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng_cuda"])
        return ckpt["epoch"] + 1, ckpt["step"]

    def _train_one(
        self,
        run: int,
        data: DatasetSplits,
        history: History,
        metrics: list[dict[str, Any]],
        *,
        resume: bool,
    ) -> None:
        c = self.config
        model, optimizer = self.build(run, data)
        plane = self._plane(model, run, history)
        start_epoch, step = self._resume_point(run, model, optimizer, plane) if resume else (0, 0)
        # Drop whatever this run recorded after its checkpoint: it is measured again.
        history.truncate(after_step=step if start_epoch > 0 else -1, run=run)
        # Metric rows carry 1-based epochs: the checkpointed epoch is number start_epoch.
        metrics[:] = [m for m in metrics if m["run"] != run or m["epoch"] <= start_epoch]
        steps_per_epoch = data.n_train // c.batch_size
        if steps_per_epoch == 0:
            raise InvalidParameterError(
                f"infoplane run: expected batch_size <= the {data.n_train} training samples, "
                f"got {c.batch_size}. Lower --batch-size."
            )
        probes = self._probes(run, data)
        if start_epoch == 0 and probes:
            self._measure_probes(plane, probes, step=0, epoch=0)
        bar = _Progress(
            (c.epochs - start_epoch) * steps_per_epoch,
            f"{c.preset} run {run + 1}/{c.runs}",
            self.progress,
        )
        loop = _Loop(self, run, data, model, optimizer, plane, bar)
        try:
            for epoch in range(start_epoch, c.epochs):
                step, train_metrics = loop.epoch(epoch, step, steps_per_epoch)
                if probes:
                    result = self._measure_probes(plane, probes, step=step, epoch=epoch + 1)
                    loop.last = result or loop.last
                test_loss, test_acc = self.evaluate(model, data.x_test, data.y_test)
                metrics.append({"run": run, "split": "train", **train_metrics})
                metrics.append(
                    {
                        "run": run,
                        "split": "test",
                        "epoch": epoch + 1,
                        "step": step,
                        "loss": test_loss,
                        "accuracy": test_acc,
                    }
                )
                self._save_epoch(model, optimizer, plane, history, metrics, run, epoch, step)
        finally:
            bar.close()

    def _probes(
        self, run: int, data: DatasetSplits
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        c = self.config
        if c.protocol not in ("epoch", "both"):
            return {}
        suffix = "-probe" if c.protocol == "both" else ""
        out = {}
        for split, x, y in (
            ("train", data.x_train, data.y_train),
            ("test", data.x_test, data.y_test),
        ):
            size = min(c.probe_size, len(x))
            idx = torch.randperm(len(x), generator=_generator(c.seed, run, 7919))[:size]
            out[split + suffix] = (x[idx].to(self.device), y[idx].to(self.device))
        return out

    def _measure_probes(self, plane, probes, *, step: int, epoch: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for split, xy in probes.items():
            result = (
                plane.measure_probe(
                    xy, step=step, split=split, epoch=epoch, batch_size=self.config.measure_n
                )
                or result
            )
        return result

    def _measure_step(self, plane, data, xb, yb, run: int, step: int, epoch: int):
        c = self.config
        n = min(c.measure_n, len(xb))
        result = plane.on_train_batch(xb[:n], yb[:n], step=step, epoch=epoch + 1)
        m = min(c.test_n, data.n_test)
        idx = torch.randperm(data.n_test, generator=_generator(c.seed, run, step, 31))[:m]
        plane.measure(
            data.x_test[idx].to(self.device),
            data.y_test[idx].to(self.device),
            step=step,
            split="test",
            epoch=epoch + 1,
        )
        return result

    def _save_epoch(self, model, optimizer, plane, history, metrics, run, epoch, step) -> None:
        history.config = {**plane.history.config, "experiment": self.config.to_dict()}
        history.save(self.history_path)
        write_table(self.metrics_path, metrics, METRIC_FIELDS)
        self.store.save_checkpoint(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "plane": plane.state_dict(),
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "epoch": epoch,
                "step": step,
                "run": run,
            },
            run,
        )


class _Loop:
    """The training iterations of one epoch, with the per-step measurements."""

    def __init__(self, exp: Experiment, run, data, model, optimizer, plane, bar) -> None:
        self.exp, self.run, self.data = exp, run, data
        self.model, self.optimizer, self.plane, self.bar = model, optimizer, plane, bar
        self.loss_fn = nn.CrossEntropyLoss()
        self.last: dict[str, Any] = {}

    def epoch(self, epoch: int, step: int, steps: int) -> tuple[int, dict[str, Any]]:
        """Train one epoch from ``step``; return the new step and the epoch's train metrics."""
        c, data = self.exp.config, self.data
        self.model.train()
        order = torch.randperm(data.n_train, generator=_generator(c.seed, self.run, epoch))
        loss_sum, correct, seen = 0.0, 0, 0
        for b in range(steps):
            idx = order[b * c.batch_size : (b + 1) * c.batch_size]
            xb = data.x_train[idx].to(self.exp.device)
            yb = data.y_train[idx].to(self.exp.device)
            self.optimizer.zero_grad(set_to_none=True)
            logits = self.model(xb)
            loss = self.loss_fn(logits, yb)
            loss.backward()
            self.optimizer.step()
            step += 1
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
            if c.protocol in ("step", "both") and self.plane.is_due(step):
                result = self.exp._measure_step(self.plane, data, xb, yb, self.run, step, epoch)
                self.last = result or self.last
            self.bar.update(
                1,
                epoch=epoch + 1,
                loss=f"{loss_sum / seen:.3f}",
                acc=f"{correct / seen:.3f}",
                **_postfix(self.last),
            )
        return step, {
            "epoch": epoch + 1,
            "step": step,
            "loss": loss_sum / seen,
            "accuracy": correct / seen,
        }


def _postfix(result: dict[str, Any]) -> dict[str, str]:
    """The progress-bar view of the last measurement: the output layer's I(X;T)/I(T;Y)."""
    if not result:
        return {}
    q = list(result.values())[-1]
    return {"I(X;T)": f"{q['i_xt']:.2f}", "I(T;Y)": f"{q['i_ty']:.2f}"}


def _load_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    table = read_table(path)
    n = len(table["run"]) if "run" in table else 0
    return [
        {
            f: table[f][i].item() if hasattr(table[f][i], "item") else table[f][i]
            for f in METRIC_FIELDS
        }
        for i in range(n)
    ]
