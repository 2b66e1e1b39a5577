"""Track the information plane of a PyTorch model during training.

:class:`InformationPlane` measures, for named layers T of a model, the matrix-based Rényi
estimates of I(X; T), I(T; Y) and S(T) on a batch (Wickstrøm et al., arXiv:1909.11396), records
them in a :class:`~infoplane.history.History`, and works unchanged under torch.distributed.

Two protocols, both first-class:

* the paper's: every k-th training iteration on the batch just used
  (:meth:`InformationPlane.on_train_batch`, or :meth:`InformationPlane.measure` directly);
* common practice: once per epoch on fixed probe sets, in mini-batches of N, averaged
  (:meth:`InformationPlane.measure_probe`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from infoplane import distributed as ddp
from infoplane._validation import check_integer
from infoplane._version import __version__
from infoplane.capture import (
    default_layers,
    layer_names,
)
from infoplane.errors import (
    InvalidParameterError,
    InvalidTypeError,
)
from infoplane.history import History
from infoplane.inputs import LABELS_KEY
from infoplane.loggers import make_logger
from infoplane.schema import CONTROLS, NO_EPOCH, SE_QUANTITIES, Measurement
from infoplane.tracker._measurer import DEFAULT_NULL_PERMUTATIONS, BatchMeasurer, LabelKernel
from infoplane.tracker._options import (
    check_fixed_widths,
    check_x_layer,
    layer_rules,
    validate_option,
)
from infoplane.tracker._probe import ProbeAccumulator
from infoplane.tracker._reader import LayerBatch, LayerReader
from infoplane.tracker._recorder import Recorder
from infoplane.widths import make_width_rule


class InformationPlane:
    """Measure I(X; T), I(T; Y) and S(T) of a model's layers, step after step.

    Args:
        model: any ``nn.Module``. It is never moved or modified; measurements run in eval mode
            under ``torch.no_grad`` and every module's train/eval flag is restored afterwards.
        layers: names from ``model.named_modules()``, the modules themselves, or glob patterns
            over the names (``"features.*"``; :mod:`infoplane.capture`). ``None`` takes
            ``model.measured_layers`` if the model declares it, else every activation module
            (each block's output after its non-linearity). Results come in forward order; a
            module that runs k times per forward gives k layers ``name:0`` ... ``name:k-1``.
        alpha: Rényi order (default 1.01, the value in the paper's text; the authors' code and
            the paper presets use 1, the von Neumann entropy).
        x_width: width rule of the input kernel: a positive number (the paper: 8 / sqrt(2) on
            MNIST scaled to [0, 1]), or ``"median"`` (default), ``"knn"``, ``"silverman"``,
            ``"scott"``, ``"alignment"``, or a :class:`~infoplane.widths.WidthRule`.
        width: width rule of every layer (the same choices; default ``"alignment"``, the paper's
            label-alignment rule with a moving average, one state per layer), or a mapping
            ``{layer: rule}`` (layers not in it use ``"alignment"``).
        label_kernel: ``"indicator"`` (default; the class-indicator Gram, equal to the paper's
            Gaussian on one-hot labels with a tiny width), or a positive number: a Gaussian
            kernel of that width on one-hot labels.
        num_classes: needed only with a Gaussian label kernel and integer labels.
        include_output: also measure the model output passed through softmax (dim 1), under the
            name ``output_name``.
        every: :meth:`on_train_batch` measures when ``step % every == 0``.
        on_nonfinite: ``"raise"`` (default) raises :class:`~infoplane.NonFiniteActivationError`
            when a layer produces NaN/Inf; ``"skip"`` warns and records the step as skipped.
        run: run index stored in every record (several seeds in one history).
        history: a :class:`~infoplane.history.History` to extend (e.g. after a restart).
        writer: optional TensorBoard ``SummaryWriter`` or wandb run, wrapped by
            :func:`infoplane.loggers.make_logger`; only rank 0 logs.
        loggers: :class:`infoplane.loggers.Logger` objects (or what ``make_logger`` takes)
            called with every recorded measurement, on rank 0.
        x_layer: the layer (name or module) whose output is X, instead of the model's input:
            the embedding module of a model fed token ids (``"bert.embeddings"``).
        controls: the controls measured beside every estimate, on the same activations
            (default both; ``()`` turns them off):
            ``"null"``, the null distribution: ``null_permutations`` draws per step of I(T;Y)
            with the labels permuted and of I(X;T) with the samples of X permuted against T, at
            the estimate's widths, seeded by ``(run, split)`` (the same draws at every step of a
            split, identical on every rank); it adds ``i_xt_null``/``i_ty_null`` (the draws'
            mean), ``*_null_q95`` (their 95% quantile) and ``i_xt_p``/``i_ty_p`` (the
            permutation p-value ``(1 + #{draw >= estimate}) / (B + 1)``).
            ``"fixed"``, the fixed-width control: the same step with each layer's width held at
            a fixed ratio to the batch's median pairwise distance, the ratio taken at the
            split's reference step (once every width rule has :meth:`settled
            <infoplane.widths.WidthRule.settled>`; NaN before it), so a rescaled representation
            gets the same Gram; it adds ``i_xt_fixed``, ``i_ty_fixed``, ``h_t_fixed``,
            ``sigma_fixed`` and ``saturated_fixed``. Every result also carries ``saturated``
            (1.0 where the estimate's Gram is at the identity or all ones, or S(T) at log2 N or
            0). Their cost is the null draws' eigenvalue problems: about 4x the estimate's
            maths for the paper MLP at N = 100 (BENCHMARKS.md).
        null_permutations: B, the null draws per step (default 19, the smallest B at which one
            step's p-value can reach 0.05).
        fixed_widths: absolute widths for the fixed-width control, ``{layer: sigma}``
            (``"input"`` for the input), used from the first batch on instead of the
            scale-relative rule: one width shared by runs you compare, e.g. the final widths of
            an earlier run (``plane.widths("train")``). Not scale-free.

    Each split (``"train"``, ``"test"``, ...) keeps its own width states (moving averages and
    warm-up), so measuring a test batch never moves the training split's widths.

    Under torch.distributed, :meth:`measure` gathers every rank's shard of the batch so that the
    estimate is the one of the whole batch, identical on every rank (widths are broadcast from
    rank 0); :meth:`measure_probe` measures each rank's own mini-batches and averages them
    across ranks with one all-reduce. Only rank 0 writes files.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from infoplane import InformationPlane
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
        >>> plane = InformationPlane(model, layers=["1"], alpha=1.0)
        >>> x, y = torch.randn(30, 4), torch.arange(30) % 3
        >>> result = plane.measure(x, y, step=0)
        >>> list(result), round(result["1"]["h_y"], 4)  # the layer, then the softmax output
        (['1', 'output'], 1.585)
        >>> result["1"]["i_ty_p"]  # the permutation p-value of I(T;Y), B = 19 draws
        0.55
        >>> len(plane.history)  # one record per layer
        2
    """

    def __init__(  # noqa: PLR0913 - the public constructor takes every documented option
        self,
        model: nn.Module,
        layers: Sequence[str] | None = None,
        *,
        alpha: float = 1.01,
        x_width: Any = "median",
        width: Any = "alignment",
        label_kernel: Any = "indicator",
        num_classes: int | None = None,
        include_output: bool = True,
        output_name: str = "output",
        every: int = 1,
        on_nonfinite: str = "raise",
        run: int = 0,
        history: History | None = None,
        writer: Any = None,
        controls: Sequence[str] = CONTROLS,
        fixed_widths: Mapping[str, float] | None = None,
        loggers: Iterable[Any] = (),
        x_layer: Any = None,
        null_permutations: int = DEFAULT_NULL_PERMUTATIONS,
    ) -> None:
        who = "InformationPlane"
        if not isinstance(model, nn.Module):
            raise InvalidTypeError(
                f"{who}: expected model as a torch.nn.Module, got {type(model).__name__}."
            )
        self.model = model
        self.alpha = validate_option("alpha", alpha, who)
        names = layer_names(model, default_layers(model) if layers is None else layers, who)
        if include_output and output_name in names:
            raise InvalidParameterError(
                f"{who}: expected output_name distinct from the layer names, got {output_name!r}"
                " in both. Pass another output_name."
            )
        if not names and not include_output:
            raise InvalidParameterError(f"{who}: expected at least one layer to measure, got none.")
        self._reader = LayerReader(
            model,
            names,
            include_output=bool(include_output),
            output_name=output_name,
            x_layer=check_x_layer(model, x_layer, who),
        )
        self.every = validate_option("every", every, who)
        self.on_nonfinite = validate_option("on_nonfinite", on_nonfinite, who)
        self.num_classes = num_classes
        label_sigma = validate_option("label_kernel", label_kernel, who)
        x_rule = make_width_rule(x_width)
        rules = layer_rules(width, self.measured_names, who)
        self._measurer = BatchMeasurer(
            alpha=self.alpha,
            x_rule=x_rule,
            rules=rules,
            label_gram=LabelKernel(label_sigma, num_classes),
            on_nonfinite=on_nonfinite,
            controls=validate_option("controls", controls, who),
            fixed_widths=check_fixed_widths(fixed_widths, self.measured_names, who),
            seed=validate_option("run", run, who),
            null_permutations=validate_option("null_permutations", null_permutations, who),
        )
        config = _config(self, x_rule, rules, label_sigma)
        history = History(config) if history is None else history
        history.config = {**config, **history.config}
        loggers = [*loggers, writer] if writer is not None else list(loggers)
        self._recorder = Recorder(history, run=run, loggers=[make_logger(o) for o in loggers])

    def _read(self, x: Any, y: Any, who: str) -> LayerBatch:
        """One read of a batch; at the first, a module that ran k times per forward becomes k
        layers ``name:i``, each with a copy of its width rule."""
        first = self._reader.order is None
        batch = self._reader.read(x, y, who=who)
        if first:
            self._follow_calls()
        return batch

    def _follow_calls(self) -> None:
        if self._reader.calls:
            self._measurer.rename_layers(self._reader.calls)
            self.history.config["layers"] = list(self._reader.calls)

    # ----------------------------------------------------------------------------- properties
    @property
    def history(self) -> History:
        """The records measured so far (and those of the history passed in)."""
        return self._recorder.history

    @property
    def run(self) -> int:
        """The run index stored in every record."""
        return self._recorder.run

    def widths(self, split: str = "train"):
        """The width rules of ``split`` (the input's ``x_rule`` and per-layer ``rules``): each
        split keeps its own moving averages."""
        return self._measurer.state(split)

    @property
    def measured_names(self) -> list[str]:
        """Layer names as they appear in results: the layers, then the output (if measured)."""
        return self._reader.measured_names

    @property
    def layers(self) -> list[str]:
        """The measured layers (a module run k times per forward appears as ``name:i``)."""
        return self._reader.layers

    @property
    def include_output(self) -> bool:
        return self._reader.include_output

    @property
    def output_name(self) -> str:
        return self._reader.output_name

    @property
    def x_layer(self) -> str | None:
        """The layer whose output is X (None: the batch's input)."""
        return self._reader.x_layer

    # ----------------------------------------------------------------------------- records
    def _record(
        self,
        values: torch.Tensor | None,
        names: Sequence[str],
        *,
        split: str,
        step: int,
        epoch: int | None,
        n: int,
        columns: Sequence[str] | None = None,
    ) -> dict[str, dict[str, float]] | None:
        """Make the step's :class:`~infoplane.schema.Measurement` (the one host
        synchronisation of the step: ``values.tolist()``), record it and return its values."""
        measurement = Measurement(
            run=self.run,
            split=split,
            epoch=NO_EPOCH if epoch is None else int(epoch),
            step=step,
            n=int(n),
            names=tuple(names),
            columns=tuple(self._measurer.columns if columns is None else columns),
            rows=None if values is None else tuple(map(tuple, values.tolist())),
        )
        self._recorder.record(measurement)
        return measurement.values()

    # ----------------------------------------------------------------------------- public API
    def measure(
        self, x: Any, y: Any = None, *, step: int, split: str = "train", epoch: int | None = None
    ) -> dict[str, dict[str, float]] | None:
        """Measure one batch, record it, and return ``{layer: {i_xt, i_ty, h_t, h_x, h_y,
        sigma, ...controls}}`` in forward order (bits; sigma in the library's convention), or
        None when the step was skipped (``on_nonfinite="skip"``; the records say ``skipped``).

        Args:
            x: the input batch ``[N, ...]`` (on the device the model expects), an ``(x, y)``
                pair, or a mapping such as a Hugging Face ``BatchEncoding`` (the model is called
                with its entries as keyword arguments; :mod:`infoplane.inputs`).
            y: labels ``[N]`` (integer ids) or one-hot rows ``[N, K]``; ``None`` takes them
                from the batch (its second item, or its ``labels`` entry).
            step: the training iteration (the key of the record).
            split: ``"train"``, ``"test"`` or any tag.
            epoch: optional epoch number stored with the record.

        Under torch.distributed every rank passes its own shard; the measurement is that of
        the concatenated batch, and every rank returns the same numbers.
        """
        who = "InformationPlane.measure"
        step = check_integer(step, "step", who, minimum=0)
        batch = self._read(x, y, who)
        rows = self._measurer.measure(batch, split=split, step=step, update=True, gather=True)
        names = list(batch.acts)
        return self._record(rows.values, names, split=split, step=step, epoch=epoch, n=rows.n)

    def on_train_batch(
        self, x: Any, y: Any = None, *, step: int, epoch: int | None = None
    ) -> dict[str, dict[str, float]] | None:
        """The paper's protocol: measure the training batch when :meth:`is_due` says so."""
        if not self.is_due(step):
            return None
        return self.measure(x, y, step=step, split="train", epoch=epoch)

    def is_due(self, step: int) -> bool:
        """Whether :meth:`on_train_batch` measures at ``step``: ``step % every == 0``, and never
        with ``every=0``."""
        return bool(self.every) and step % self.every == 0

    def measure_probe(
        self,
        data: Any,
        *,
        step: int,
        split: str = "test",
        epoch: int | None = None,
        batch_size: int = 100,
    ) -> dict[str, dict[str, float]] | None:
        """Measure a fixed probe set in mini-batches of ``batch_size`` and record the average.

        Args:
            data: ``(x, y)`` tensors (split into consecutive mini-batches; a last partial batch
                is dropped when at least one full batch exists, so every estimate uses the same
                N), or an iterable of batches such as a DataLoader: ``(x, y)`` pairs or
                mappings with ``labels`` (batches of fewer than 2 samples are dropped).
            step, split, epoch: the key of the record.
            batch_size: N of each estimate (the paper: 100).

        The kernel widths of layers with the alignment rule are each batch's best candidate on
        the rule's steady-state grid (``num_candidates``, the authors' 100; no warm-up grid and
        no moving-average update: a probe set is not a sequence of steps), so a probe does not
        depend on the per-step measurements made before it. Under
        torch.distributed each rank passes its own shard; averages are taken over all ranks'
        batches. The recorded ``n`` is the total number of samples used, and ``i_xt_se`` /
        ``i_ty_se`` are the standard errors of the means across the mini-batches (absent with a
        single mini-batch). Returns None when no mini-batch could be measured.
        """
        who = "InformationPlane.measure_probe"
        step = check_integer(step, "step", who, minimum=0)
        columns = self._measurer.columns
        acc = None
        for xb, yb in _batches(data, batch_size, who):
            batch = self._read(xb, yb, who)
            rows = self._measurer.measure(batch, split=split, step=step, update=False, gather=False)
            acc = acc or self._accumulator(len(batch.acts))
            if rows.values is not None:
                acc.update(rows.values, rows.n, rows.draws)
        names = self._reader.names()
        acc = acc or self._accumulator(len(names))
        acc.sync()
        values = None
        if acc.batches:
            values, columns = acc.mean(), (*columns,)
            draws = acc.mean_draws()
            if draws is not None:  # the probe's null distribution: averaged draws
                values = self._measurer.with_null(values, draws)
            if acc.batches > 1:  # the standard error of I(X;T) and I(T;Y) across mini-batches
                se = acc.standard_error()[:, [columns.index("i_xt"), columns.index("i_ty")]]
                values, columns = torch.cat([values, se], dim=1), (*columns, *SE_QUANTITIES)
        return self._record(
            values, names, split=split, step=step, epoch=epoch, n=acc.samples, columns=columns
        )

    def _accumulator(self, num_layers: int) -> ProbeAccumulator:
        m = self._measurer
        draws = (num_layers, 2, m.null_permutations) if "null" in m.controls else None
        return ProbeAccumulator((num_layers, len(m.columns)), draws)

    # ----------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The width states of every split (moving averages, warm-up counts) and the widths of
        the fixed-width control, to resume a run with the same widths."""
        return {**self._measurer.state_dict(), "order": self._reader.order}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if state.get("order") and self._reader.order is None:
            self._reader.set_order(list(state["order"]))
            self._follow_calls()
        self._measurer.load_state_dict(state)

    def save(self, path: str | Path) -> Path | None:
        """Save the history (``.csv`` or ``.jsonl``) on rank 0; other ranks do nothing."""
        if not ddp.is_rank_zero():
            return None
        return self.history.save(path)


def _batches(data: Any, batch_size: int, who: str) -> Iterable[tuple[Any, Any]]:
    check_integer(batch_size, "batch_size", who, minimum=2)
    if (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and not isinstance(data[0], (tuple, list))
    ):
        x, y = data
        n = len(x)
        full = n // batch_size
        stop = full * batch_size if full > 0 else n
        for start in range(0, stop, batch_size):
            yield x[start : start + batch_size], y[start : start + batch_size]
        return
    for batch in data:
        if isinstance(batch, Mapping):
            if len(batch.get(LABELS_KEY, ())) >= 2:
                yield batch, None
            continue
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise InvalidTypeError(
                f"{who}: expected batches of (x, y) or mappings with {LABELS_KEY!r}, got "
                f"{type(batch).__name__}."
            )
        if len(batch[0]) >= 2:
            yield batch[0], batch[1]


def _config(plane: InformationPlane, x_rule, rules, label_sigma) -> dict[str, Any]:
    """The measurement's configuration, kept once in the history."""
    return {
        "alpha": plane.alpha,
        "kernel": "gaussian exp(-||a-b||^2 / (2 sigma^2)), Frobenius norm (tensor kernel)",
        "sigma_convention": "infoplane (authors' code sigma = ours * sqrt(2))",
        "x_width": x_rule.describe(),
        "width": {n: r.describe() for n, r in rules.items()},
        "label_kernel": "indicator" if label_sigma is None else label_sigma,
        "layers": plane.measured_names,
        "output_transform": "softmax" if plane.include_output else None,
        "controls": list(plane._measurer.controls),
        "null_permutations": plane._measurer.null_permutations,
        "fixed_control": "width / median pairwise distance held from the reference step",
        "infoplane_version": __version__,
    }
