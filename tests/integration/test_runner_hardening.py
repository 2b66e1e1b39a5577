"""The run directory under attack: crafted checkpoints, lost histories, stale temporaries,
damaged files and two runs at once. Each case fails with one clear line and loses nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from infoplane.errors import HistoryError
from infoplane.experiments.config import ExperimentConfig
from infoplane.experiments.runner import Experiment
from infoplane.schema import RunDir

pytestmark = pytest.mark.slow


def tiny_config(**kw) -> ExperimentConfig:
    base = {"epochs": 2, "runs": 1, "every": 5, "controls": ()} | kw
    known = {f for f in ExperimentConfig.__dataclass_fields__}
    return ExperimentConfig(**{k: v for k, v in base.items() if k in known})


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runner") / "run"
    Experiment(tiny_config(), out, progress=False).run()
    return out


def copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_a_checkpoint_that_carries_code_is_refused(finished: Path, tmp_path: Path) -> None:
    run = copy_run(finished, tmp_path / "run")
    ckpt = RunDir(run).checkpoint(0)
    marker = tmp_path / "pwned"
    payload = torch.load(ckpt, weights_only=True)
    payload["hook"] = _Exploit(str(marker))
    torch.save(payload, ckpt)
    json.loads(RunDir(run).state.read_text())
    RunDir(run).state.write_text(json.dumps({"done": []}))
    with pytest.raises(HistoryError, match="cannot be loaded safely") as info:
        Experiment(tiny_config(), run, progress=False).run(resume=True)
    assert "\n" not in str(info.value)
    assert not marker.exists()


class _Exploit:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_truncated_checkpoint_gives_one_line(finished: Path, tmp_path: Path) -> None:
    run = copy_run(finished, tmp_path / "run")
    ckpt = RunDir(run).checkpoint(0)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    RunDir(run).state.write_text(json.dumps({"done": []}))
    with pytest.raises(HistoryError, match="cannot be loaded safely"):
        Experiment(tiny_config(), run, progress=False).run(resume=True)


def test_resume_refuses_a_history_that_lacks_checkpointed_steps(finished, tmp_path) -> None:
    run = copy_run(finished, tmp_path / "run")
    RunDir(run).history.unlink()
    RunDir(run).state.write_text(json.dumps({"done": []}))
    with pytest.raises(HistoryError, match=r"records up to step|got none"):
        Experiment(tiny_config(), run, progress=False).run(resume=True)


@pytest.mark.parametrize("name", ["state", "config"])
def test_damaged_json_files_give_one_line(finished: Path, tmp_path: Path, name: str) -> None:
    run = copy_run(finished, tmp_path / "run")
    getattr(RunDir(run), name).write_bytes(b"\xff{not json")
    with pytest.raises(HistoryError, match="expected JSON") as info:
        Experiment(tiny_config(), run, progress=False).run(resume=True)
    assert "\n" not in str(info.value)


def test_stale_temporaries_are_removed_on_resume(finished: Path, tmp_path: Path) -> None:
    run = copy_run(finished, tmp_path / "run")
    stale = [RunDir(run).checkpoints / ".run0.pt.abc123.tmp", run / ".history.csv.x.tmp"]
    for path in stale:
        path.write_bytes(b"0" * 1000)
    keep = run / "notes.tmp"  # not ours: left alone
    keep.write_text("mine")
    Experiment(tiny_config(), run, progress=False).run(resume=True)
    assert not any(p.exists() for p in stale)
    assert keep.read_text() == "mine"


def test_provenance_records_versions_and_each_session(finished: Path, tmp_path: Path) -> None:
    run = copy_run(finished, tmp_path / "run")
    first = json.loads(RunDir(run).provenance.read_text())
    assert first["torch"] == torch.__version__ and first["infoplane"]
    assert len(first["sessions"]) == 1 and first["sessions"][0]["duration_s"] > 0
    Experiment(tiny_config(), run, progress=False, command=["again"]).run(resume=True)
    second = json.loads(RunDir(run).provenance.read_text())
    assert [s["command"] for s in second["sessions"]][-1] == ["again"]
    assert second["sessions"][-1]["resume"] is True


LOCK_HOLDER = """
import fcntl, sys, time
fh = open(sys.argv[1], "a+")
fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX advisory locks")
def test_a_second_run_on_the_same_directory_is_refused(finished: Path, tmp_path: Path) -> None:
    run = copy_run(finished, tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(RunDir(run).lock)], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline().strip() == b"locked"
        with pytest.raises(HistoryError, match="another run writing there"):
            Experiment(tiny_config(), run, progress=False).run(resume=True)
    finally:
        holder.kill()
        holder.wait(timeout=30)
