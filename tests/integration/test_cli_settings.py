"""The command line's flags come from ExperimentConfig; bad settings stop it before it writes."""

from __future__ import annotations

import argparse
import dataclasses
import os

import pytest

import infoplane
from infoplane.cli import _build_parser, main
from infoplane.experiments import config as config_module
from infoplane.experiments import presets as presets_module
from infoplane.experiments.config import ExperimentConfig, setting
from infoplane.experiments.presets import PRESETS

SETTINGS = [
    f for f in dataclasses.fields(ExperimentConfig) if f.name not in ("preset", "description")
]


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_setting_is_a_flag_and_every_flag_has_help() -> None:
    parser = _build_parser()
    commands = _subparsers(parser)
    assert set(commands) == {"run", "list", "plot", "report"}
    run_dests = {a.dest for a in commands["run"]._actions}
    assert {f.name for f in SETTINGS} <= run_dests
    for p in (parser, *commands.values()):
        assert p.allow_abbrev is False, p.prog
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and action.help.strip(), (p.prog, action.dest)


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        (["--batch-size", "7"], "batch_size", 7),
        (["--data-dir", "/d"], "data_dir", "/d"),
        (["--no-download"], "download", False),
        (["--download"], "download", True),
        (["--measure-n", "50"], "measure_n", 50),
        (["--x-width", "2.5"], "x_width", 2.5),
        (["--width", "median"], "width", "median"),
        (["--momentum", "0.9"], "momentum", 0.9),
        (["--model-options", '{"dropout": 0.3}'], "model_options", {"dropout": 0.3}),
        (["--controls", "null", "fixed"], "controls", ["null", "fixed"]),
        (["--controls", "none"], "controls", ["none"]),
        (["--controls"], "controls", []),
        (["--threads", "1"], "threads", 1),
    ],
)
def test_flags_keep_their_spellings_and_types(argv, dest, value) -> None:
    args = _build_parser().parse_args(["run", *argv])
    assert getattr(args, dest) == value
    given = {f.name for f in SETTINGS if f.name in args}
    assert given == {dest}  # an unset flag leaves the preset's value alone


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--eps", "3"],  # prefix of --epochs
        ["run", "--batch", "3"],
        ["run", "--no-rep"],
        ["--ver"],
        ["--deb", "list"],
        ["run", "--controls", "bogus"],
        ["run", "--model-options", "{not json"],
        ["run", "--threads", "two"],
    ],
)
def test_abbreviations_and_unparseable_flags_exit_2(argv, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"infoplane {infoplane.__version__}"


@pytest.mark.parametrize(
    "argv",
    [["--debug", "run", "no-such-preset"], ["run", "no-such-preset", "--debug"]],
)
def test_debug_before_or_after_the_command(argv) -> None:
    with pytest.raises(infoplane.InvalidParameterError, match="infoplane list"):
        main(argv)


def test_debug_after_list_is_accepted(capsys) -> None:
    assert main(["list", "--debug"]) == 0
    assert "digits" in capsys.readouterr().out


def test_unexpected_errors_are_one_line_without_debug(monkeypatch, capsys) -> None:
    def broken(args):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setitem(main.__globals__["_COMMANDS"], "list", broken)
    assert main(["list"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "infoplane: unexpected RuntimeError: something broke (rerun with --debug for the traceback)"
    ]
    with pytest.raises(RuntimeError, match="something broke"):
        main(["list", "--debug"])


def _list_blocks(out: str) -> dict[str, str]:
    """``infoplane list`` output: preset name -> its indented lines, joined."""
    blocks: dict[str, list[str]] = {}
    name = None
    for line in out.splitlines():
        if line.startswith("    ") and name is not None:
            blocks[name].append(line.strip())
        else:
            name = line
            blocks[name] = []
    return {k: " ".join(v) for k, v in blocks.items()}


def test_list_shows_every_setting_of_every_preset(capsys) -> None:
    assert main(["list"]) == 0
    blocks = _list_blocks(capsys.readouterr().out)
    assert set(PRESETS) <= set(blocks)
    shown = [f.name for f in SETTINGS if f.metadata["on_resume"] != "free"]
    assert "momentum" in shown and "controls" in shown and "device" not in shown
    for name, preset in PRESETS.items():
        for key in shown:
            assert f" {key}=" in blocks[name] or blocks[name].startswith(f"{key}="), (name, key)
        assert f"lr={preset.lr}," in blocks[name]
        assert f"epochs={preset.epochs}," in blocks[name]
        assert "controls=null fixed," in blocks[name]


BAD_SETTINGS = [
    (["--set", "momentum=-1"], "momentum"),
    (["--set", 'weight_decay="x"'], "weight_decay"),
    (["--set", "model_options=5"], "model_options"),
    (["--set", "dataset_options=[1]"], "dataset_options"),
    (["--set", 'device="nonsense"'], "device"),
    (["--device", "nonsense"], "device"),
    (["--set", "seed=100000000000000000000000"], "seed"),
    (["--set", "seed=10**23"], "seed"),
    (["--set", "download=1"], "download"),
    (["--set", 'download="no"'], "download"),
    (["--threads", str(_cpus() + 1)], "threads"),
    (["--threads", "100000"], "threads"),
    (["--threads", "0"], "threads"),
    (["--controls", "none", "null"], "controls"),
    (["--set", "controls=null"], "controls"),
    (["--x-width", "-1"], "x_width"),
    (["--x-width", "nan"], "x_width"),
    (["--width", "bogus"], "width"),
    (["--alpha", "0"], "alpha"),
    (["--set", "lr=NaN"], "lr"),
    (["--config", "{tmp}/latin1.json"], "UTF-8"),
    (["--config", "{tmp}/list.json"], "JSON object"),
    (["--config", "{tmp}/broken.json"], "valid JSON"),
    (["--config", "{tmp}/missing.json"], "not found"),
]


@pytest.mark.parametrize(("argv", "fragment"), BAD_SETTINGS)
def test_bad_settings_exit_1_with_one_line_and_write_nothing(argv, fragment, tmp_path, capsys):
    (tmp_path / "latin1.json").write_bytes('{"activation": "tänh"}'.encode("latin-1"))
    (tmp_path / "list.json").write_text("[1]", encoding="utf-8")
    (tmp_path / "broken.json").write_text('{"lr": 0.1', encoding="utf-8")
    out = tmp_path / "run"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["run", "--out", str(out), "--quiet", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.json", "latin1.json", "list.json"]


def test_a_new_setting_is_one_edit(monkeypatch, capsys) -> None:
    """A field added to the configuration becomes a flag with its help and a ``list`` key."""

    @dataclasses.dataclass
    class Extended(ExperimentConfig):
        label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy loss")

    monkeypatch.setattr(config_module, "ExperimentConfig", Extended)
    args = _build_parser().parse_args(["run", "--label-smoothing", "0.1"])
    assert args.label_smoothing == 0.1
    assert (
        "label smoothing of the cross-entropy" in _subparsers(_build_parser())["run"].format_help()
    )
    monkeypatch.setattr(presets_module, "PRESETS", {"digits": Extended(preset="digits")})
    assert main(["list"]) == 0
    assert "label_smoothing=0.0\n" in capsys.readouterr().out
