"""Files: atomic writes, CSV tables that keep strings as strings, and damaged-file errors."""

from __future__ import annotations

import csv
import errno
import json
import math
import os
from pathlib import Path

import pytest

from infoplane.errors import HistoryError
from infoplane.history import History
from infoplane.io import atomic_write_texts, read_table, table_text, write_table
from infoplane.schema import FIELDS, meta_path

CONFIG = {"alpha": 1.0, "layers": ["x"]}


def record(layer: str, step: int = 0, **kw) -> dict:
    return {
        "run": 0,
        "split": "train",
        "epoch": 1,
        "step": step,
        "layer": layer,
        "layer_index": 0,
        "i_xt": 1.0,
        "i_ty": 0.5,
        "h_t": 2.0,
        "sigma": 1.0,
        "n": 10,
        **kw,
    }


@pytest.mark.parametrize("layer", ["007", "1e3", "a\rb", "c\nd", 'q"uote', "comma,name", "nan"])
def test_layer_names_survive_a_csv_round_trip(tmp_path: Path, layer: str) -> None:
    hist = History(CONFIG)
    hist.add(record(layer))
    hist.add(record("other", step=1))
    path = hist.save(tmp_path / "h.csv")
    loaded = History.load(path)
    assert [r["layer"] for r in loaded.records] == [layer, "other"]


def test_table_text_matches_the_csv_module_reading_it_back() -> None:
    rows = [{"a": "x\ry", "b": 1.5, "c": None}, {"a": "", "b": math.nan, "c": 7}]
    text = table_text(rows, ["a", "b", "c"])
    parsed = list(csv.reader(text.splitlines(keepends=True)))
    assert parsed == [["a", "b", "c"], ["x\ry", "1.5", ""], ["", "", "7"]]
    assert table_text([{"a": ""}], ["a"]) == 'a\n""\n'  # a lone empty cell stays a row


def test_history_save_replaces_data_and_configuration_together(tmp_path, monkeypatch) -> None:
    """A full disk while writing: neither file is replaced, so the pair never mismatches."""
    path = tmp_path / "h.csv"
    old = History(CONFIG)
    old.add(record("x"))
    old.save(path)
    before = (path.read_bytes(), meta_path(path).read_bytes())
    new = History({"alpha": 2.0})
    new.add(record("y"))
    real_fdopen = os.fdopen
    calls = {"n": 0}

    def failing_fdopen(fd, *args, **kwargs):
        calls["n"] += 1
        fh = real_fdopen(fd, *args, **kwargs)
        if calls["n"] == 2:  # the second file of the unit hits a full disk
            fh.close()
            raise OSError(errno.ENOSPC, "No space left on device")
        return fh

    monkeypatch.setattr(os, "fdopen", failing_fdopen)
    with pytest.raises(OSError, match="No space"):
        new.save(path)
    monkeypatch.undo()
    assert (path.read_bytes(), meta_path(path).read_bytes()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_texts_writes_every_file(tmp_path: Path) -> None:
    paths = atomic_write_texts({tmp_path / "a.txt": "A", tmp_path / "sub" / "b.txt": "B"})
    assert [p.read_text() for p in paths] == ["A", "B"]


def test_typed_columns_keep_strings_and_reject_text_in_numbers(tmp_path: Path) -> None:
    path = write_table(tmp_path / "t.csv", [{"name": "007", "v": 1}], ["name", "v"])
    assert read_table(path, {"name": str})["name"].tolist() == ["007"]
    assert read_table(path)["name"].tolist() == [7]  # untyped columns are guessed
    bad = write_table(tmp_path / "bad.csv", [{"v": "ten"}], ["v"])
    with pytest.raises(HistoryError, match=r"expected a number in column 'v'.*'ten' on line 2"):
        read_table(bad, {"v": float})


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda p: p.write_bytes(b"run,split\n\xff\xfe,0\n"), "expected UTF-8"),
        (
            lambda p: p.write_text(p.read_text().replace(",1.0,", ",one,", 1)),
            "expected a number",
        ),
        (lambda p: meta_path(p).write_text("{broken"), "expected JSON"),
        (lambda p: meta_path(p).write_bytes(b"\xff"), "expected JSON"),
        (lambda p: meta_path(p).write_text("[1, 2]"), "expected a JSON object"),
    ],
)
def test_damaged_history_files_give_one_line(tmp_path: Path, mutate, match: str) -> None:
    hist = History(CONFIG)
    hist.add(record("x"))
    path = hist.save(tmp_path / "h.csv")
    mutate(path)
    with pytest.raises(HistoryError, match=match) as info:
        History.load(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("line", ["null", "3", '"text"', "[1]"])
def test_jsonl_records_that_are_not_objects_give_one_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps({"config": CONFIG}) + "\n" + line + "\n")
    with pytest.raises(HistoryError, match="malformed"):
        History.load(path)


def test_history_add_rejects_text_in_a_numeric_field() -> None:
    with pytest.raises(HistoryError, match="expected 'i_xt' as float"):
        History(CONFIG).add(record("x", i_xt="high"))


def test_history_repr_summarises_it() -> None:
    hist = History(CONFIG)
    assert repr(hist) == "History(0 records, alpha=1.0)"
    for step in range(3):
        for i, layer in enumerate(["a", "b", "c", "d", "out"]):
            hist.add(record(layer, step=step, layer_index=i))
    text = repr(hist)
    assert "15 records" in text and "steps 0-2" in text and "5 layers" in text
    assert "'...'" in text  # long layer lists are shortened
    html = hist._repr_html_()
    assert html.count("<tr>") == 1 + 5 and "I(T;Y)" in html


def test_old_histories_without_control_columns_still_load(tmp_path: Path) -> None:
    """Files written before the controls existed lack their columns: they load as missing."""
    old_fields = [f for f in FIELDS if not f.endswith(("_null", "_fixed", "_se"))]
    path = write_table(
        tmp_path / "old.csv", [record("x", h_x=3.0, h_y=1.0, status="ok")], old_fields
    )
    (loaded,) = History.load(path).records
    assert loaded["i_xt"] == 1.0 and math.isnan(loaded["i_ty_null"])
