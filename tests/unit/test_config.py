"""ExperimentConfig: one declaration per setting, validation of every setting, resume rules."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
import pytest
import torch

from infoplane.errors import InvalidParameterError
from infoplane.experiments import config as config_module
from infoplane.experiments.config import (
    FREE,
    GROW,
    MAX_SEED,
    SAME,
    ExperimentConfig,
    available_cpus,
    config_changes,
    load_config_file,
    resolve_resume,
)
from infoplane.schema import CONTROLS

FIELDS = dataclasses.fields(ExperimentConfig)


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def test_every_setting_declares_its_help_resume_rule_and_parser() -> None:
    assert len(FIELDS) >= 25
    for f in FIELDS:
        assert isinstance(f.metadata["help"], str) and len(f.metadata["help"]) > 10, f.name
        assert f.metadata["on_resume"] in (SAME, GROW, FREE), f.name
        assert f.metadata["flag"] is (f.name not in ("preset", "description")), f.name
        if f.metadata["flag"]:
            assert callable(f.metadata["parse"]), f.name
    rules = {f.name: f.metadata["on_resume"] for f in FIELDS}
    assert {n for n, r in rules.items() if r == GROW} == {"epochs", "runs"}
    assert {n for n, r in rules.items() if r == FREE} == {
        "threads",
        "device",
        "data_dir",
        "download",
    }


def test_the_defaults_are_valid_and_controls_default_to_all() -> None:
    c = ExperimentConfig().validate()
    assert c.controls == CONTROLS == ("null", "fixed")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([], ()),
        ((), ()),
        ("none", ()),
        (["none"], ()),
        ("null", ("null",)),
        (["fixed", "null"], ("fixed", "null")),
        (("null", "fixed"), ("null", "fixed")),
    ],
)
def test_controls_spellings(value, expected) -> None:
    assert ExperimentConfig(controls=value).validate().controls == expected


def _message(exc_info: pytest.ExceptionInfo) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


BAD_SETTINGS = [
    ("momentum", -1),
    ("momentum", 1.0),
    ("momentum", True),
    ("momentum", float("nan")),
    ("weight_decay", "x"),
    ("weight_decay", -0.1),
    ("weight_decay", float("inf")),
    ("model_options", 5),
    ("model_options", {"dropout": float("nan")}),
    ("model_options", {"init": object()}),
    ("dataset_options", [1]),
    ("dataset_options", {1: "a"}),
    ("device", "nonsense"),
    ("device", 0),
    ("device", "meta"),
    ("seed", 10**23),
    ("seed", MAX_SEED + 1),
    ("seed", -1),
    ("seed", "10**23"),
    ("seed", 1.0),
    ("download", 1),
    ("download", "yes"),
    ("threads", 0),
    ("threads", 100_000),
    ("threads", 2.0),
    ("controls", None),
    ("controls", ["bogus"]),
    ("controls", ["null", "null"]),
    ("controls", ["none", "null"]),
    ("controls", 3),
    ("null_permutations", 0),
    ("null_permutations", 2.5),
    ("x_width", -1.0),
    ("x_width", "bogus"),
    ("x_width", True),
    ("width", "foo"),
    ("width", {"layer1": -2.0}),
    ("lr", float("nan")),
    ("lr", 0),
    ("alpha", 0),
    ("epochs", 0),
    ("batch_size", 1),
    ("protocol", "sometimes"),
    ("model", 3),
    ("data_dir", 5),
]


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS)
def test_every_bad_setting_is_one_clear_line(name, value) -> None:
    with pytest.raises(InvalidParameterError) as exc_info:
        ExperimentConfig().with_overrides({name: value}).validate()
    message = _message(exc_info)
    assert message.startswith("ExperimentConfig: expected ")
    assert name in message and ", got " in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("seed", MAX_SEED),
        ("seed", 0),
        ("momentum", 0.99),
        ("momentum", 0),
        ("weight_decay", 0),
        ("weight_decay", 5e-4),
        ("threads", None),
        ("threads", 1),
        ("x_width", 2.5),
        ("x_width", "median"),
        ("width", {"layer1.act": "median", "output": 1.5}),
        ("device", "cpu"),
        ("data_dir", "/data"),
        ("download", False),
        ("model_options", {"dropout": 0.3, "widths": [4, 8]}),
    ],
)
def test_good_settings_pass_unchanged(name, value) -> None:
    c = ExperimentConfig().with_overrides({name: value}).validate()
    assert getattr(c, name) == value


def test_seed_bound_is_what_numpy_and_torch_accept() -> None:
    np.random.RandomState(MAX_SEED)
    torch.Generator().manual_seed(MAX_SEED)
    with pytest.raises(ValueError):
        np.random.RandomState(MAX_SEED + 1)


def test_threads_are_bounded_by_the_cpus_of_this_process(monkeypatch) -> None:
    assert available_cpus() == _cpus()
    ExperimentConfig(threads=_cpus()).validate()
    with pytest.raises(InvalidParameterError, match=f"the {_cpus()} CPUs"):
        ExperimentConfig(threads=_cpus() + 1).validate()
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert available_cpus() == 3
    ExperimentConfig(threads=3).validate()
    with pytest.raises(InvalidParameterError, match="the 3 CPUs"):
        ExperimentConfig(threads=4).validate()


def test_cuda_devices_are_checked_against_those_present(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    ExperimentConfig(device="cuda").validate()
    ExperimentConfig(device="cuda:1").validate()
    with pytest.raises(InvalidParameterError, match="2 CUDA device"):
        ExperimentConfig(device="cuda:2").validate()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InvalidParameterError, match="--device cpu"):
        ExperimentConfig(device="cuda").validate()


# ----------------------------------------------------------------------------- resume
SAVED = ExperimentConfig(epochs=2, runs=1, every=3, controls=("null",)).validate()


@pytest.mark.parametrize(
    "overrides",
    [
        {"epochs": 5},
        {"runs": 4},
        {"epochs": 3, "runs": 2, "threads": 1, "download": False, "data_dir": "/elsewhere"},
        {"device": "cpu", "threads": None},
        {},
    ],
)
def test_resume_applies_legitimate_changes(overrides) -> None:
    resumed = resolve_resume(SAVED, overrides)
    expected = dataclasses.replace(SAVED, **overrides)
    assert resumed == expected
    assert config_changes(SAVED, resumed) == {
        k: (getattr(SAVED, k), v) for k, v in overrides.items() if getattr(SAVED, k) != v
    }


def test_resume_accepts_the_saved_values_in_any_spelling() -> None:
    same = {"lr": 0.09, "every": 3, "controls": ["null"], "epochs": 2, "x_width": "median"}
    assert resolve_resume(SAVED, same) == SAVED
    assert config_changes(SAVED, resolve_resume(SAVED, same)) == {}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"lr": 0.5}, ["lr=0.5 (saved 0.09)"]),
        ({"epochs": 1}, ["epochs=1 (saved 2)"]),
        ({"runs": 4, "every": 1, "protocol": "epoch"}, ["every=1 (saved 3)", "protocol='epoch'"]),
        ({"controls": ["null", "fixed"]}, ["controls=('null', 'fixed')"]),
        ({"preset": "digits-cnn", "seed": 1}, ["preset='digits-cnn'", "seed=1 (saved 0)"]),
        ({"model_options": {"dropout": 0.1}}, ["model_options"]),
    ],
)
def test_resume_refuses_conflicting_settings_by_name(overrides, named) -> None:
    with pytest.raises(InvalidParameterError) as exc_info:
        resolve_resume(SAVED, overrides)
    message = _message(exc_info)
    assert message.startswith("infoplane run --resume: expected the saved settings")
    for fragment in named:
        assert fragment in message
    assert "runs=" not in message  # more runs is legitimate, even beside a conflict


def test_resume_validates_the_changes() -> None:
    with pytest.raises(InvalidParameterError, match="threads"):
        resolve_resume(SAVED, {"threads": _cpus() + 1})
    with pytest.raises(InvalidParameterError, match="no_such_setting"):
        resolve_resume(SAVED, {"no_such_setting": 1})


# ----------------------------------------------------------------------------- files
def test_save_and_load_round_trip(tmp_path) -> None:
    c = ExperimentConfig(width={"output": 2.0}, controls=("fixed",), data_dir="/d").validate()
    path = c.save(tmp_path / "config.json")
    assert json.loads(path.read_text(encoding="utf-8"))["controls"] == ["fixed"]
    assert ExperimentConfig.load(path) == c


def test_a_config_file_without_a_setting_loads_its_default(tmp_path) -> None:
    data = ExperimentConfig().to_dict()
    del data["controls"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert ExperimentConfig.load(path).validate().controls == CONTROLS


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\xff\xfe{}", "UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b"null", "JSON object"),
        (b'{"lr": ', "valid JSON"),
    ],
)
def test_bad_config_files_are_one_clear_line(tmp_path, content, fragment) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    for load in (load_config_file, ExperimentConfig.load):
        with pytest.raises(InvalidParameterError) as exc_info:
            load(path)
        assert fragment in _message(exc_info)


def test_toml_config_files(tmp_path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('activation = "relu"\nlr = 0.5\n[model_options]\ndropout = 0.25\n')
    data = load_config_file(path)
    assert data == {"activation": "relu", "lr": 0.5, "model_options": {"dropout": 0.25}}
    with pytest.raises(InvalidParameterError, match="valid JSON in"):
        ExperimentConfig.load(path)  # config.json is JSON, whatever its name


def test_from_dict_refuses_what_is_not_a_mapping() -> None:
    with pytest.raises(InvalidParameterError, match="mapping"):
        ExperimentConfig.from_dict([("lr", 1.0)])


def test_number_or_name_parses_numbers_exactly() -> None:
    assert config_module.number_or_name("2.5") == 2.5
    assert config_module.number_or_name("median") == "median"
    assert math.isinf(config_module.number_or_name("inf"))  # then refused by validate()
