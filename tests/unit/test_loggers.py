"""Loggers: the protocol, CSV, TensorBoard (scalars and figures), Weights & Biases offline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from infoplane.errors import InvalidParameterError, InvalidTypeError
from infoplane.io import read_table
from infoplane.loggers import (
    CSV_FIELDS,
    LOGGED,
    CSVLogger,
    Logger,
    TensorBoardLogger,
    WandbLogger,
    make_logger,
    scalars,
)
from infoplane.schema import Measurement


def result(step: int) -> dict[str, dict[str, float]]:
    """A measurement of two layers whose values encode the step (for exact checks)."""
    return {
        "fc1.act": {
            "i_xt": 3.0 + 0.25 * step,
            "i_ty": 1.0 + 0.125 * step,
            "h_t": 4.0,
            "h_x": 5.0,
            "h_y": 1.5,
            "sigma": 0.5,
        },
        "output": {
            "i_xt": 1.0,
            "i_ty": 0.5 + 0.0625 * step,
            "h_t": 1.25,
            "h_x": 5.0,
            "h_y": 1.5,
            "sigma": 0.75,
            "i_ty_null": 0.03125,
        },
    }


def measurement(values: dict[str, dict[str, float]], split: str, step: int) -> Measurement:
    """``values`` as the tracker's one result type (a column a layer lacks is NaN there)."""
    columns = tuple(dict.fromkeys(q for row in values.values() for q in row))
    rows = tuple(tuple(row.get(q, math.nan) for q in columns) for row in values.values())
    return Measurement(
        run=0,
        split=split,
        epoch=-1,
        step=step,
        n=0,
        names=tuple(values),
        columns=columns,
        rows=rows,
    )


class ScalarsOnly:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, int]] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.calls.append((tag, value, step))


class Nothing:
    pass


def test_scalars_names_and_values() -> None:
    got = scalars(measurement(result(2), "test", 0))
    assert got == {
        f"infoplane/test/{layer}/{key}": result(2)[layer][key]
        for layer in ("fc1.act", "output")
        for key in LOGGED
    }


def test_csv_logger_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "infoplane.csv"
    logger = make_logger(path)
    assert isinstance(logger, CSVLogger) and isinstance(logger, Logger)
    logger.log_measurement(measurement(result(0), "train", 0))
    logger.log_measurement(measurement(result(4), "test", 4))
    logger.close()
    table = read_table(path)
    assert list(table) == list(CSV_FIELDS)
    assert table["split"].tolist() == ["train", "train", "test", "test"]
    assert table["step"].tolist() == [0, 0, 4, 4]
    assert table["layer"].tolist() == ["fc1.act", "output"] * 2
    np.testing.assert_array_equal(table["i_xt"], [3.0, 1.0, 4.0, 1.0])
    np.testing.assert_array_equal(table["i_ty"], [1.0, 0.5, 1.5, 0.75])
    assert math.isnan(table["i_ty_null"][0]) and table["i_ty_null"][1] == 0.03125


def test_scalars_only_writer_gets_every_scalar() -> None:
    writer = ScalarsOnly()
    logger = make_logger(writer)
    assert isinstance(logger, TensorBoardLogger) and logger.figure_every == 0
    logger.log_measurement(measurement(result(1), "train", 7))
    assert writer.calls == [
        (tag, v, 7) for tag, v in scalars(measurement(result(1), "train", 0)).items()
    ]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: TensorBoardLogger(Nothing()), r"\.add_scalar\(\), \.add_figure\(\), got Nothing"),
        (lambda: TensorBoardLogger(ScalarsOnly()), r"without \.add_figure\(\)"),
        (lambda: WandbLogger(ScalarsOnly()), r"got ScalarsOnly without \.log\(\)"),
        (lambda: make_logger(Nothing()), "expected a logger"),
        (lambda: CSVLogger(3), "path as a str or Path"),
    ],
)
def test_writers_lacking_the_protocol_are_refused_at_construction(make, match: str) -> None:
    with pytest.raises(InvalidTypeError, match=match):
        make()


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_bad_figure_every(bad) -> None:
    with pytest.raises(InvalidParameterError, match="figure_every"):
        TensorBoardLogger(ScalarsOnly(), figure_every=bad)


def test_make_logger_refuses_a_path_that_is_not_csv(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match=r"ending in \.csv"):
        make_logger(tmp_path / "log.txt")


def test_tensorboard_scalars_and_figure(tmp_path: Path) -> None:
    tensorboard = pytest.importorskip("torch.utils.tensorboard")
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    writer = tensorboard.SummaryWriter(log_dir=str(tmp_path))
    logger = TensorBoardLogger(writer, figure_every=2)
    for step in range(5):
        logger.log_measurement(measurement(result(step), "train", 10 * step))
    logger.close()
    writer.close()
    events = accumulator.EventAccumulator(str(tmp_path))
    events.Reload()
    tags = events.Tags()
    assert set(tags["scalars"]) == set(scalars(measurement(result(0), "train", 0)))
    assert tags["images"] == ["infoplane/train/information_plane"]
    figures = events.Images("infoplane/train/information_plane")
    assert [f.step for f in figures] == [10, 30]  # after the 2nd and 4th measurement
    assert all(f.encoded_image_string.startswith(b"\x89PNG") for f in figures)
    i_ty = events.Scalars("infoplane/train/fc1.act/i_ty")
    assert [(e.step, e.value) for e in i_ty] == [(10 * s, 1.0 + 0.125 * s) for s in range(5)]


class FigureWriter(ScalarsOnly):
    def __init__(self) -> None:
        super().__init__()
        self.figures: list[tuple[str, object, int, bool]] = []

    def add_figure(self, tag: str, figure, global_step: int, close: bool = True) -> None:
        self.figures.append((tag, figure, global_step, close))


def test_tensorboard_figure_is_the_information_plane() -> None:
    pytest.importorskip("matplotlib")
    writer = FigureWriter()
    logger = TensorBoardLogger(writer, figure_every=3)
    for step in range(3):
        logger.log_measurement(measurement(result(step), "train", step))
        logger.log_measurement(measurement(result(0), "test", step))
    assert [(tag, s) for tag, _, s, _ in writer.figures] == [
        ("infoplane/train/information_plane", 2),
        ("infoplane/test/information_plane", 2),
    ]
    ax = writer.figures[0][1].axes[0]
    assert ax.get_xlabel() == "I(X;T) [bits]" and ax.get_ylabel() == "I(T;Y) [bits]"
    lines = sorted(
        (tuple(line.get_xdata()), tuple(line.get_ydata()))
        for line in ax.get_lines()
        if len(line.get_xdata()) == 3
    )
    assert lines == [
        ((1.0, 1.0, 1.0), (0.5, 0.5625, 0.625)),  # output: result(step) per step
        ((3.0, 3.25, 3.5), (1.0, 1.125, 1.25)),  # fc1.act
    ]


def test_wandb_offline_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    run = wandb.init(project="infoplane-test", dir=str(tmp_path), reinit="finish_previous")
    try:
        logger = make_logger(run)
        assert isinstance(logger, WandbLogger)
        for step in range(3):
            logger.log_measurement(measurement(result(step), "train", step))
        summary = dict(run.summary)
    finally:
        run.finish()
    assert summary["infoplane/step"] == 2
    assert summary["infoplane/train/fc1.act/i_xt"] == 3.5
    assert summary["infoplane/train/output/sigma"] == 0.75
    assert list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))


def test_plane_sends_each_measurement_to_every_logger(tmp_path: Path) -> None:
    import torch
    from torch import nn

    from infoplane import InformationPlane

    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    y = torch.arange(10) % 2
    writer = ScalarsOnly()
    csv = CSVLogger(tmp_path / "log.csv")
    plane = InformationPlane(model, ["1"], loggers=[csv], writer=writer, controls=())
    results = [plane.measure(x * (1 + s), y, step=s) for s in range(2)]
    table = read_table(tmp_path / "log.csv")
    assert table["step"].tolist() == [0, 0, 1, 1]
    np.testing.assert_array_equal(
        table["i_xt"], [results[s][layer]["i_xt"] for s in range(2) for layer in ("1", "output")]
    )
    want = [
        (t, v, s) for s in range(2) for t, v in scalars(measurement(results[s], "train", 0)).items()
    ]
    assert writer.calls == want
    with pytest.raises(InvalidTypeError, match="expected a logger"):
        InformationPlane(model, ["1"], loggers=[Nothing()])
