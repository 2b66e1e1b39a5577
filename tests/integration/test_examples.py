"""Every script of examples/ runs to the end on its tiny data and leaves a loadable history."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infoplane import History

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: script -> (optional package it needs, history path under --out, expected splits)
CASES = {
    "plain_api.py": (None, "history.csv", {"train", "test"}),
    "lightning_callback.py": (
        "lightning",
        "lightning_logs/version_0/history.csv",
        {"train", "val"},
    ),
    "hf_trainer.py": ("transformers", "history.csv", {"train", "eval"}),
    "distributed_gloo.py": (None, "history.csv", {"train"}),
}


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CASES)


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs(script: str, tmp_path: Path) -> None:
    package, history, splits = CASES[script]
    if package is not None and importlib.util.find_spec(package) is None:
        pytest.skip(f"{script} needs the optional package {package!r}")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(EXAMPLES.parent / "src"), os.environ.get("PYTHONPATH", "")]
        ),
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--out", str(tmp_path), "--epochs", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    path = tmp_path / history
    assert f"history: {path}" in done.stdout
    loaded = History.load(path)
    assert {r["split"] for r in loaded} == splits
    assert all(r["status"] == "ok" for r in loaded)
    assert all(0.0 <= r["i_ty"] <= r["h_y"] + 1e-9 for r in loaded)  # I(T;Y) <= S(Y)
