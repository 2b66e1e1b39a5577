"""The Lightning callback with a real lightning.Trainer on tiny random data (CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

pl = pytest.importorskip("lightning.pytorch")

from infoplane import History, InformationPlane  # noqa: E402
from infoplane.integrations.lightning import VAL_SPLIT, InformationPlaneCallback  # noqa: E402
from infoplane.io import read_table  # noqa: E402
from tests.helpers.ddp import EndProcessGroup  # noqa: E402
from tests.helpers.examples import load_example  # noqa: E402
from tests.helpers.hooks import assert_no_hooks  # noqa: E402

example = load_example("lightning_callback")  # its LightningModule: layers net.1, net.3

pytestmark = pytest.mark.usefixtures("single_thread")

N_TRAIN, N_VAL, BATCH = 48, 24, 12  # 4 training steps per epoch, 2 validation batches


def loaders() -> tuple[DataLoader, DataLoader]:
    """The example's blobs, unshuffled (a resumed fit sees the batches a straight one sees)."""
    return (
        DataLoader(example.data(N_TRAIN, 1), batch_size=BATCH),
        DataLoader(example.data(N_VAL, 2), batch_size=BATCH),
    )


def trainer(root: Path, epochs: int, **kwargs) -> pl.Trainer:
    """A quiet CPU trainer logging to CSV under ``root``; ``kwargs`` override any setting."""
    settings = {
        "max_epochs": epochs,
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": str(root),
        "logger": pl.loggers.CSVLogger(str(root), name="logs"),
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 1,
        "deterministic": True,
    }
    return pl.Trainer(**{**settings, **kwargs})


def fit(root: Path, epochs: int, ckpt_path: str | None = None, **options):
    pl.seed_everything(0, verbose=False)
    module = example.Classifier()
    callback = InformationPlaneCallback(**{"layers": ["net.1", "net.3"], "every": 2, **options})
    checkpoint = pl.callbacks.ModelCheckpoint(dirpath=str(root / "ckpt"), save_last=True)
    t = trainer(root, epochs, callbacks=[callback, checkpoint])
    train, val = loaders()
    t.fit(module, train, val, ckpt_path=ckpt_path)
    return module, callback, t


def test_fit_measures_logs_and_saves(tmp_path: Path) -> None:
    module, callback, t = fit(tmp_path, epochs=2, batch_size=BATCH)
    history = callback.plane.history
    train = [r for r in history if r["split"] == "train"]
    val = [r for r in history if r["split"] == VAL_SPLIT]
    assert sorted({r["step"] for r in train}) == [2, 4, 6, 8]  # every 2 of 8 optimizer steps
    assert sorted({(r["step"], r["epoch"]) for r in val}) == [(4, 1), (8, 2)]  # no sanity check
    assert {r["layer"] for r in history} == {"net.1", "net.3", "output"}
    assert all(r["n"] == BATCH for r in train) and all(r["n"] == N_VAL for r in val)
    # the history file in the trainer's log dir is the callback's history
    saved = History.load(Path(t.log_dir) / "history.csv")
    assert len(saved) == len(history)
    for a, b in zip(saved.records, history.records, strict=True):
        assert a == pytest.approx(b, nan_ok=True)
    # the trainer's logger got the scalars at the measured steps
    metrics = read_table(Path(t.log_dir) / "metrics.csv")
    column = metrics["infoplane/train/net.3/i_ty"]
    logged = dict(zip(metrics["step"][column == column], column[column == column], strict=True))
    want = {r["step"]: r["i_ty"] for r in train if r["layer"] == "net.3"}
    assert logged == pytest.approx(want, rel=1e-6)  # the CSV logger rounds to float32
    assert_no_hooks(module)
    assert module.training  # the callback's eval-mode forward restored train mode


def test_measurement_equals_the_plain_api(tmp_path: Path) -> None:
    """A fixed-width measurement of the final model, recomputed through InformationPlane."""
    options = {"width": 1.0, "x_width": 2.0, "val": False, "every": 4}
    module, callback, _ = fit(tmp_path, epochs=1, **options)
    last = max(r["step"] for r in callback.plane.history)
    train, _ = loaders()
    x, y = list(train)[-1]  # the batch of the last step (no shuffling)
    direct = InformationPlane(module, ["net.1", "net.3"], width=1.0, x_width=2.0)
    expected = direct.measure(x, y, step=last)
    got = {r["layer"]: r for r in callback.plane.history if r["step"] == last}
    for layer, q in expected.items():
        for key in ("i_xt", "i_ty", "h_t", "sigma"):
            assert got[layer][key] == pytest.approx(q[key], abs=1e-12)


def _train_records(history: History, epoch: int) -> tuple[list[tuple], list[float]]:
    """Keys ``(step, layer)`` and the flat values ``i_xt, i_ty, sigma`` of an epoch's records."""
    rows = [r for r in history if r["split"] == "train" and r["epoch"] == epoch]
    keys = [(r["step"], r["layer"]) for r in rows]
    return keys, [r[q] for r in rows for q in ("i_xt", "i_ty", "sigma")]


def test_resumed_fit_continues_the_moving_averages(tmp_path: Path) -> None:
    _, straight, _ = fit(tmp_path / "straight", epochs=2)
    _, first, _ = fit(tmp_path / "resumed", epochs=1)
    last = tmp_path / "resumed" / "ckpt" / "last.ckpt"
    state = torch.load(last, weights_only=False)["callbacks"][first.state_key]
    assert state == {"plane": first.plane.state_dict()}
    ckpt = torch.load(last, weights_only=False)  # before the resumed fit overwrites last.ckpt
    _, resumed, _ = fit(tmp_path / "resumed", epochs=2, ckpt_path=str(last))
    keys, want = _train_records(straight.plane.history, 2)
    assert keys == [(s, n) for s in (6, 8) for n in ("net.1", "net.3", "output")]
    got_keys, got = _train_records(resumed.plane.history, 2)
    assert got_keys == keys
    assert got == pytest.approx(want, abs=1e-12)

    # Control: the same resume without the callback's state starts new moving averages.
    del ckpt["callbacks"][first.state_key]
    torch.save(ckpt, tmp_path / "no_state.ckpt")
    _, fresh, _ = fit(tmp_path / "fresh", epochs=2, ckpt_path=str(tmp_path / "no_state.ckpt"))
    fresh_keys, fresh_values = _train_records(fresh.plane.history, 2)
    assert fresh_keys == keys
    assert fresh_values != pytest.approx(want, abs=1e-9)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="every"):
        InformationPlaneCallback(every=-1)
    with pytest.raises(ValueError, match="without 'model'/'every'"):
        InformationPlaneCallback(model=nn.Linear(2, 2))


def test_ddp_spawn_measures_on_every_rank_and_writes_once(tmp_path: Path) -> None:
    """Two gloo processes: each measures (the shards are gathered), rank 0 alone writes."""
    pl.seed_everything(0, verbose=False)
    callback = InformationPlaneCallback(["net.1"], every=2, batch_size=BATCH, controls=())
    t = trainer(
        tmp_path,
        1,
        devices=2,
        strategy="ddp_spawn",
        deterministic=False,
        num_sanity_val_steps=0,
        callbacks=[callback, EndProcessGroup()],
    )
    train, val = loaders()
    t.fit(example.Classifier(), train, val)
    written = sorted(tmp_path.rglob("history.csv"))
    assert written == [tmp_path / "logs" / "version_0" / "history.csv"]
    history = History.load(written[0])
    train_rows = [r for r in history if r["split"] == "train"]
    # 48 samples over 2 ranks in batches of 12: 2 steps per epoch, each measured on 2 x 12
    assert sorted({r["step"] for r in train_rows}) == [2]
    assert {r["n"] for r in train_rows} == {2 * BATCH}
    assert {r["n"] for r in history if r["split"] == VAL_SPLIT} == {N_VAL}
    assert not list(tmp_path.glob("*.csv"))  # no stray files from rank 1


def test_tensorboard_logger_gets_scalars_and_figures(tmp_path: Path) -> None:
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    pl.seed_everything(0, verbose=False)
    callback = InformationPlaneCallback(["net.1"], every=1, val=False, figure_every=3)
    tensorboard = pl.loggers.TensorBoardLogger(str(tmp_path), name="tb")
    t = trainer(tmp_path, 1, logger=tensorboard, callbacks=[callback])
    train, val = loaders()
    t.fit(example.Classifier(), train, val)
    events = accumulator.EventAccumulator(t.log_dir)
    events.Reload()
    assert [e.step for e in events.Images("infoplane/train/information_plane")] == [3]
    i_xt = [(e.step, e.value) for e in events.Scalars("infoplane/train/net.1/i_xt")]
    want = [(r["step"], r["i_xt"]) for r in callback.plane.history if r["layer"] == "net.1"]
    assert [s for s, _ in i_xt] == [s for s, _ in want] == [1, 2, 3, 4]
    assert [v for _, v in i_xt] == pytest.approx([v for _, v in want], rel=1e-6)  # float32
