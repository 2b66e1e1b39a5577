"""The command line through main(argv), on digits with tiny epochs, and a real interrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from infoplane.cli import main
from infoplane.history import History
from infoplane.io import read_table
from infoplane.schema import FIELDS

pytestmark = pytest.mark.slow

TINY = ["--epochs", "2", "--runs", "1", "--quiet", "--every", "3"]
DIGITS_LAYERS = ["layer1.act", "layer2.act", "layer3.act", "output"]


def _run(tmp_path: Path, *extra: str, name: str = "run") -> Path:
    out = tmp_path / name
    assert main(["run", "--out", str(out), *TINY, *extra]) == 0
    return out


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    """One tiny default run with figures and report, shared by the read-only tests below."""
    return _run(tmp_path_factory.mktemp("cli"))


def test_default_run_writes_a_complete_run_directory(digits_run: Path) -> None:
    for name in (
        "config.json",
        "history.csv",
        "history.meta.json",
        "metrics.csv",
        "state.json",
        "checkpoints/run0.pt",
        "report.md",
        "report.html",
    ):
        assert (digits_run / name).is_file(), name
    config = json.loads((digits_run / "config.json").read_text())
    assert config["preset"] == "digits" and config["epochs"] == 2 and config["every"] == 3

    hist = History.load(digits_run / "history.csv")
    assert hist.config["alpha"] == 1.01
    assert hist.config["experiment"]["model"] == "digits-mlp"
    # 1347 training samples, batch 100 -> 13 steps an epoch; every 3rd step measured.
    expected_steps = [s for s in range(1, 27) if s % 3 == 0]
    for split in ("train", "test"):
        recs = [r for r in hist.records if r["split"] == split]
        assert sorted({r["step"] for r in recs}) == expected_steps
        assert len(recs) == len(expected_steps) * len(DIGITS_LAYERS)
        for step in expected_steps:
            layers = [r["layer"] for r in recs if r["step"] == step]
            assert layers == DIGITS_LAYERS
    table = hist.columns()
    for key in ("i_xt", "i_ty", "h_t", "sigma"):
        assert np.isfinite(table[key]).all()
    assert (table["i_xt"] <= np.minimum(table["h_x"], table["h_t"]) + 1e-9).all()
    assert (table["i_ty"] <= np.minimum(table["h_y"], table["h_t"]) + 1e-9).all()
    assert (table["h_t"] <= np.log2(table["n"]) + 1e-9).all()

    metrics = read_table(digits_run / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 1, 2, 2]
    assert list(metrics["split"]) == ["train", "test", "train", "test"]
    assert (metrics["accuracy"] > 0.1).all()


def test_figures_and_report_rebuild_from_history_alone(digits_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", "history.csv", "metrics.csv"):
        (copy / name).write_bytes((digits_run / name).read_bytes())
    assert main(["plot", str(copy)]) == 0
    pngs = sorted((copy / "figures").glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert main(["report", str(copy)]) == 0
    html = (copy / "report.html").read_text()
    assert "data:image/png;base64," in html
    for layer in DIGITS_LAYERS:
        assert layer in html


def test_list_shows_every_paper_preset(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for preset in (
        "digits",
        "mlp-mnist-tanh",
        "mlp-mnist-relu",
        "cnn-mnist-tanh",
        "cnn-mnist-relu",
        "vgg16-cifar10",
    ):
        assert preset in out
    assert "lr=0.09" in out and "x_width=5.6569" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--epochs", "many"],
        ["run", "--protocol", "sometimes"],
        ["frobnicate"],
        ["run", "--no-such-flag"],
    ],
)
def test_bad_flags_exit_2(argv, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_no_command_exits_2() -> None:
    assert main([]) == 2


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["run", "no-such-preset"], "infoplane list"),
        (["run", "mlp-mnist", "--no-download", "--data-dir", "{tmp}/empty"], "data_dir"),
        (["run", "--epochs", "0"], "epochs"),
        (["run", "--set", "no_such_setting=1"], "no_such_setting"),
        (["run", "--set", "novalue"], "KEY=VALUE"),
        (["report", "{tmp}/nothing-here"], "history.csv"),
    ],
)
def test_runtime_errors_exit_1_with_one_line(argv, fragment, tmp_path, capsys) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main([*argv, "--quiet"] if argv[0] == "run" else argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert fragment in err[-1]
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "empty").exists()  # a data problem leaves no run directory


def test_unwritable_run_directory_exits_1(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["run", "--out", str(blocker / "run"), *TINY]) == 1
    assert "--out" in capsys.readouterr().err


def test_existing_run_directory_needs_resume(digits_run, capsys) -> None:
    assert main(["run", "--out", str(digits_run), *TINY]) == 1
    assert "--resume" in capsys.readouterr().err


def test_debug_shows_the_traceback() -> None:
    with pytest.raises(Exception, match="infoplane list"):
        main(["--debug", "run", "no-such-preset"])


def test_config_file_and_set_override_the_preset(tmp_path) -> None:
    cfg = tmp_path / "settings.json"
    cfg.write_text(json.dumps({"activation": "relu", "epochs": 1, "x_width": 2.5}))
    out = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--out",
                str(out),
                "--config",
                str(cfg),
                "--set",
                "every=13",
                "--set",
                'protocol="both"',
                "--runs",
                "1",
                "--quiet",
                "--no-report",
                "--probe-size",
                "200",
            ]
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    assert config["activation"] == "relu" and config["epochs"] == 1
    assert config["x_width"] == 2.5 and config["every"] == 13 and config["protocol"] == "both"
    hist = History.load(out / "history.csv")
    splits = {r["split"] for r in hist.records}
    assert splits == {"train", "test", "train-probe", "test-probe"}
    probe_steps = sorted({r["step"] for r in hist.records if r["split"] == "test-probe"})
    assert probe_steps == [0, 13]  # before training and after the one epoch
    assert {r["n"] for r in hist.records if r["split"] == "train-probe"} == {200}


def _spawn(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "infoplane", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path) -> None:
    args = ["--epochs", "2", "--runs", "2", "--every", "4", "--quiet", "--no-report"]
    whole = tmp_path / "whole"
    assert main(["run", "--out", str(whole), *args]) == 0

    part = tmp_path / "part"
    proc = _spawn(["run", "--out", str(part), *args], tmp_path)
    ckpt = part / "checkpoints" / "run0.pt"
    deadline = time.monotonic() + 600
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    interrupted = History.load(part / "history.csv")
    assert len(interrupted) < len(History.load(whole / "history.csv"))

    resumed = _spawn(["run", "--resume", "--out", str(part), "--quiet", "--no-report"], tmp_path)
    _, err = resumed.communicate(timeout=1200)  # generous: CI machines may be shared
    assert resumed.returncode == 0, err.decode()
    a = read_table(whole / "history.csv")
    b = read_table(part / "history.csv")
    assert list(a) == list(FIELDS)
    for key in FIELDS:
        assert a[key].shape == b[key].shape, key
        assert np.array_equal(a[key], b[key], equal_nan=a[key].dtype.kind == "f"), key
    assert (whole / "metrics.csv").read_text() == (part / "metrics.csv").read_text()


def test_plot_animate_writes_one_animation_per_split(digits_run: Path, capsys) -> None:
    assert main(["plot", str(digits_run), "--animate"]) == 0
    out = capsys.readouterr().out.split()
    gifs = [Path(p) for p in out if p.endswith(".gif")]
    assert sorted(p.name for p in gifs) == [
        "information_plane_test.gif",
        "information_plane_train.gif",
    ]
    for gif in gifs:
        assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
