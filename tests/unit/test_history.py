"""History: unique records, truncation for resumes, exact CSV/JSONL round trips, damaged files."""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from infoplane.errors import HistoryError, InvalidParameterError
from infoplane.history import History
from infoplane.io import read_table, write_table
from infoplane.schema import FIELDS, STATUS_OK, STATUS_SKIPPED

CONFIG = {
    "alpha": 1.01,
    "layers": ["layer1.act", "output"],
    "width": {"layer1.act": {"rule": "alignment", "beta": 0.9}, "output": {"rule": "median"}},
    "label_kernel": "indicator",
    "infoplane_version": "0.1.0",
}


def bits(value: float) -> str:
    """The exact bit pattern of a float64 (NaN payloads included)."""
    return struct.pack("<d", value).hex()


def record(step: int, layer: str, index: int, *, run: int = 0, split: str = "train", **kw):
    rng = np.random.default_rng(1000 * run + 10 * step + index)
    base = {
        "run": run,
        "split": split,
        "epoch": step // 10,
        "step": step,
        "layer": layer,
        "layer_index": index,
        # Values with full float64 mantissas: a lossy format would change their bits.
        "i_xt": float(rng.uniform(0, 3)) / 3.0,
        "i_ty": float(rng.uniform(0, 3)) / 7.0,
        "h_t": float(rng.uniform(3, 6)) * math.pi,
        "h_x": 6.643856189774724,
        "h_y": 3.3219280948873626,
        "sigma": float(rng.uniform(1e-4, 1e4)) / 3.0,
        "n": 100,
        "status": STATUS_OK,
    }
    base.update(kw)
    return base


def skipped(step: int, layer: str, index: int, **kw):
    nan = dict.fromkeys(("i_xt", "i_ty", "h_t", "h_x", "h_y", "sigma"), math.nan)
    return record(step, layer, index, status=STATUS_SKIPPED, **{**nan, **kw})


@pytest.fixture
def history() -> History:
    hist = History(CONFIG)
    for run in (0, 1):
        for split in ("train", "test"):
            for step in (0, 5, 10, 15):
                for index, layer in enumerate(CONFIG["layers"]):
                    hist.add(record(step, layer, index, run=run, split=split))
    hist.add(skipped(20, "layer1.act", 0))
    hist.add(skipped(20, "output", 1))
    return hist


def same_records(a: History, b: History) -> None:
    ra, rb = a.records, b.records
    assert len(ra) == len(rb)
    for x, y in zip(ra, rb, strict=True):
        assert list(x) == list(FIELDS) == list(y)
        for f in FIELDS:
            if isinstance(x[f], float):
                assert isinstance(y[f], float), f
                if math.isnan(x[f]):
                    assert math.isnan(y[f]), f
                else:
                    assert bits(x[f]) == bits(y[f]), (f, x[f], y[f])
            else:
                assert type(x[f]) is type(y[f]) and x[f] == y[f], f


# ------------------------------------------------------------------------------------ records
def test_records_are_unique_by_key_and_sorted(history: History) -> None:
    assert len(history) == 2 * 2 * 4 * 2 + 2
    keys = [(r["run"], r["split"], r["epoch"], r["step"], r["layer"]) for r in history]
    assert len(set(keys)) == len(keys)
    order = [(r["run"], r["split"], r["step"], r["layer_index"]) for r in history]
    assert order == sorted(order)
    replacement = record(5, "output", 1, i_xt=0.125)
    history.add(replacement)
    assert len(history) == 34
    match = [r for r in history if r["run"] == 0 and r["split"] == "train" and r["step"] == 5]
    assert [r["i_xt"] for r in match if r["layer"] == "output"] == [0.125]


def test_same_step_in_other_epoch_or_split_is_another_record() -> None:
    hist = History()
    hist.add(record(3, "a", 0, epoch=0))
    hist.add(record(3, "a", 0, epoch=1))
    hist.add(record(3, "a", 0, epoch=1, split="test"))
    assert len(hist) == 3


@pytest.mark.parametrize(
    ("after", "run", "dropped"),
    [
        (10, None, 2 * 2 * 2 + 2),
        (-1, None, 34),
        (100, None, 0),
        (4, 1, 2 * 3 * 2),
        (4, 0, 2 * 3 * 2 + 2),
    ],
)
def test_truncate(history: History, after: int, run: int | None, dropped: int) -> None:
    before = len(history)
    assert history.truncate(after_step=after, run=run) == dropped
    assert len(history) == before - dropped
    for r in history:
        if run is None or r["run"] == run:
            assert r["step"] <= after


def test_last_step(history: History) -> None:
    assert history.last_step() == 20
    assert history.last_step(run=1) == 15
    assert history.last_step(run=0, split="test") == 15
    assert history.last_step(run=7) is None
    assert History().last_step() is None


def test_columns_and_dataframe(history: History) -> None:
    cols = history.columns()
    assert list(cols) == list(FIELDS)
    assert cols["step"].dtype == np.int64 and cols["i_xt"].dtype == np.float64
    assert cols["layer"].dtype == object
    assert len(cols["run"]) == len(history)
    assert int(np.isnan(cols["i_xt"]).sum()) == 2
    pd = pytest.importorskip("pandas")
    df = history.to_dataframe()
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(FIELDS)
    assert df.attrs["config"] == CONFIG
    np.testing.assert_array_equal(df["i_ty"].to_numpy(), cols["i_ty"])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"i_xt": math.nan}, r"finite \['i_xt'\]"),
        ({"h_t": math.inf, "i_ty": math.nan}, r"finite \['i_ty', 'h_t'\]"),
    ],
)
def test_ok_record_must_be_finite(change: dict, match: str) -> None:
    with pytest.raises(HistoryError, match=match):
        History().add(record(0, "a", 0, **change))


def test_missing_fields_are_an_error() -> None:
    bad = record(0, "a", 0)
    del bad["sigma"], bad["step"]
    with pytest.raises(HistoryError, match=r"\['step', 'sigma'\]"):
        History().add(bad)


# ------------------------------------------------------------------------------------ files
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_round_trip_is_bit_exact(history: History, tmp_path: Path, suffix: str) -> None:
    path = history.save(tmp_path / f"hist{suffix}")
    assert path == tmp_path / f"hist{suffix}"
    loaded = History.load(path)
    same_records(history, loaded)
    assert loaded.config == CONFIG
    # and once more: load -> save -> load is a fixed point, byte for byte
    again = loaded.save(tmp_path / f"again{suffix}")
    assert again.read_bytes() == path.read_bytes()


def test_csv_has_its_config_beside_it(history: History, tmp_path: Path) -> None:
    history.save(tmp_path / "run.csv")
    meta = tmp_path / "run.meta.json"
    assert json.loads(meta.read_text()) == CONFIG
    meta.unlink()
    loaded = History.load(tmp_path / "run.csv")
    assert loaded.config == {}
    same_records(history, loaded)


def test_skipped_records_are_empty_cells_and_nulls(history: History, tmp_path: Path) -> None:
    history.save(tmp_path / "h.csv")
    history.save(tmp_path / "h.jsonl")
    text = (tmp_path / "h.csv").read_text()
    assert "nan" not in text.lower() and "inf" not in text.lower()
    header = text.splitlines()[0].split(",")
    skipped_rows = [line.split(",") for line in text.splitlines()[1:] if line.endswith("skipped")]
    assert len(skipped_rows) == 2
    for row in skipped_rows:
        for f in ("i_xt", "i_ty", "h_t", "h_x", "h_y", "sigma"):
            assert row[header.index(f)] == ""
    lines = (tmp_path / "h.jsonl").read_text().splitlines()
    assert "NaN" not in "".join(lines)
    nulls = [json.loads(line) for line in lines[1:] if '"skipped"' in line]
    assert len(nulls) == 2 and all(r["i_xt"] is None and r["sigma"] is None for r in nulls)


@pytest.mark.parametrize("suffix", [".txt", ".json", ""])
def test_bad_suffix(history: History, tmp_path: Path, suffix: str) -> None:
    with pytest.raises(InvalidParameterError, match=r"\.csv or \.jsonl"):
        history.save(tmp_path / f"h{suffix}")
    (tmp_path / f"x{suffix}").write_text("whatever")
    with pytest.raises((InvalidParameterError, HistoryError)):
        History.load(tmp_path / f"x{suffix}")


def test_save_replaces_atomically_and_leaves_no_temporary_files(
    history: History, tmp_path: Path
) -> None:
    target = tmp_path / "h.jsonl"
    target.write_text("old content\n")
    history.save(target)
    assert History.load(target).config == CONFIG
    assert sorted(os.listdir(tmp_path)) == ["h.jsonl"]


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="expected a history file"):
        History.load(tmp_path / "none.csv")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("", id="empty"),
        pytest.param('{"not": "config"}\n', id="no-config"),
        pytest.param('{"config": {}}\n{broken\n', id="bad-record"),
    ],
)
def test_load_damaged_jsonl(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(HistoryError, match="malformed"):
        History.load(path)


def test_load_damaged_csv(history: History, tmp_path: Path) -> None:
    path = history.save(tmp_path / "h.csv")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:3], lines[3].rsplit(",", 2)[0]]) + "\n")
    with pytest.raises(HistoryError, match="line 4"):
        History.load(path)
    path.write_text("run,split\n0,train\n")
    with pytest.raises(HistoryError, match="missing"):
        History.load(path)


def test_write_and_read_table(tmp_path: Path) -> None:
    rows = [
        {"a": 1, "b": 0.1 + 0.2, "c": "x"},
        {"a": 2, "b": math.nan, "c": "y"},
        {"a": 3, "b": None},
    ]
    write_table(tmp_path / "t.csv", rows, ["a", "b", "c"])
    table = read_table(tmp_path / "t.csv")
    assert table["a"].tolist() == [1, 2, 3]
    assert table["b"][0] == 0.1 + 0.2 and np.isnan(table["b"][1:]).all()
    assert table["c"].tolist() == ["x", "y", ""]
