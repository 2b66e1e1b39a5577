"""``infoplane run --resume``: conflicting settings refused by name, legitimate changes applied."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from infoplane.cli import main
from infoplane.history import History
from infoplane.schema import RunDir

pytestmark = pytest.mark.slow

BASE = ["--epochs", "1", "--runs", "1", "--every", "13", "--controls", "null"]
QUIET = ["--quiet", "--no-report"]


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resume") / "digits-20250101-000000"
    assert main(["run", "--out", str(out), *BASE, *QUIET]) == 0
    return out


@pytest.fixture
def run_copy(saved_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved_run, tmp_path / saved_run.name))


def _snapshot(folder: Path, *, results_only: bool = False) -> dict[str, bytes]:
    """Every file's bytes; ``results_only`` leaves out what each session rewrites (its
    provenance entry and the lock file)."""
    sessions = {RunDir(folder).provenance, RunDir(folder).lock} if results_only else set()
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p not in sessions
    }


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--epochs", "2", "--set", "lr=0.5"], ["lr=0.5 (saved 0.09)"]),
        (["--every", "1", "--measure-n", "50"], ["every=1 (saved 13)", "measure_n=50"]),
        (["--controls", "null", "fixed"], ["controls="]),
        (["--controls", "none"], ["controls=() (saved ('null',))"]),
        (["--epochs", "0"], ["epochs"]),
        (["cnn-mnist"], ["preset='cnn-mnist-tanh' (saved 'digits')"]),
    ],
)
def test_conflicting_settings_are_refused_by_name(run_copy, argv, named, capsys) -> None:
    before = _snapshot(run_copy)
    assert main(["run", "--resume", "--out", str(run_copy), *QUIET, *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for fragment in named:
        assert fragment in err[0]
    assert _snapshot(run_copy) == before


def test_more_runs_and_other_threads_are_applied_and_recorded(run_copy, capsys) -> None:
    before = RunDir(run_copy).history.read_text(encoding="utf-8").splitlines()
    argv = ["run", "--resume", "--out", str(run_copy), *QUIET, "--runs", "2", "--threads", "1"]
    assert main(argv) == 0
    assert "resuming with runs 1 -> 2" in capsys.readouterr().err
    saved = json.loads(RunDir(run_copy).config.read_text(encoding="utf-8"))
    assert saved["runs"] == 2 and saved["every"] == 13 and saved["controls"] == ["null"]
    after = RunDir(run_copy).history.read_text(encoding="utf-8").splitlines()
    assert after[: len(before)] == before  # run 0 kept as it was, byte for byte
    assert all(line.startswith("1,") for line in after[len(before) :])
    records = History.load(RunDir(run_copy).history).records
    assert {(r["run"], r["step"]) for r in records} == {(0, 13), (1, 13)}


def test_the_same_settings_resume_without_changes(run_copy, capsys) -> None:
    before = _snapshot(run_copy, results_only=True)
    assert main(["run", "--resume", "--out", str(run_copy), *QUIET, *BASE]) == 0
    assert "resuming with" not in capsys.readouterr().err
    assert _snapshot(run_copy, results_only=True) == before  # every run is complete
    provenance = json.loads(RunDir(run_copy).provenance.read_text(encoding="utf-8"))
    assert provenance["sessions"][-1]["command"][:3] == ["infoplane", "run", "--resume"]


def test_more_epochs_train_the_extra_epochs(run_copy) -> None:
    assert main(["run", "--resume", "--out", str(run_copy), *QUIET, "--epochs", "2"]) == 0
    assert json.loads(RunDir(run_copy).config.read_text(encoding="utf-8"))["epochs"] == 2
    history = History.load(RunDir(run_copy).history)
    assert {r["epoch"] for r in history.records} == {1, 2}


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"\x80\x81", "UTF-8"), (b'{"lr": 0.09', "valid JSON"), (b"[]", "JSON object")],
)
def test_a_corrupted_config_is_one_line(run_copy, content, fragment, capsys) -> None:
    RunDir(run_copy).config.write_bytes(content)
    assert main(["run", "--resume", "--out", str(run_copy), *QUIET]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and "config.json" in err[0]


def test_resume_without_out_takes_the_newest_run_of_the_preset(
    saved_run, tmp_path, monkeypatch, capsys
) -> None:
    runs = tmp_path / "runs"
    mine = Path(shutil.copytree(saved_run, runs / saved_run.name))
    other = runs / "digits-cnn-20990101-000000"  # newer, and its name starts with "digits-"
    other.mkdir()
    saved_config = json.loads(RunDir(mine).config.read_text(encoding="utf-8"))
    RunDir(other).config.write_text(
        json.dumps({**saved_config, "preset": "digits-cnn"}), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--resume", *QUIET]) == 0
    assert capsys.readouterr().out.strip() == str(Path("runs") / saved_run.name)
