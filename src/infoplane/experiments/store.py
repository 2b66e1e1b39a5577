"""A run directory on disk: its files, lock, provenance, state and checkpoints.

:class:`RunStore` is the one place that reads and writes a run directory for the runner (file
names from :class:`infoplane.schema.RunDir`, writes through :mod:`infoplane.io`). It knows
nothing about training.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from infoplane._version import __version__
from infoplane.errors import HistoryError, first_line
from infoplane.experiments.config import ExperimentConfig
from infoplane.history import History
from infoplane.io import atomic_open, atomic_write_text
from infoplane.schema import RunDir

try:  # POSIX advisory locks; elsewhere a run directory is not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class RunStore:
    """The files of one run directory, for one configuration."""

    def __init__(self, run_dir: str | Path, config: ExperimentConfig, device: torch.device):
        self.run_dir = Path(run_dir)
        self.files = RunDir(run_dir)
        self.config = config
        self.device = device

    def state(self) -> dict[str, Any]:
        path = self.files.state
        if not path.is_file():
            return {"done": []}
        state = _read_json(path)
        done = state.get("done") if isinstance(state, dict) else None
        if not isinstance(done, list) or not all(isinstance(r, int) for r in done):
            raise HistoryError(
                f"infoplane run: expected {{'done': [run, ...]}} in {path}, got {state!r}. "
                "Delete the file to re-run the unfinished runs from their checkpoints."
            )
        return state

    def save_state(self, state: dict[str, Any]) -> None:
        atomic_write_text(self.files.state, json.dumps(state, indent=2))

    def prepare(self, *, resume: bool) -> None:
        """Create the run directory and write the configuration (or check it on resume)."""
        config_path = self.files.config
        if resume:
            if not config_path.is_file():
                raise HistoryError(
                    f"infoplane run: expected a run to resume in {self.run_dir}, got no "
                    "config.json there. Start a new run without --resume."
                )
            _read_json(config_path)
            _remove_stale_temporaries(self.run_dir)
            self.config.save(config_path)  # the legitimate changes of a resume, recorded
            return
        if config_path.exists():
            raise HistoryError(
                f"infoplane run: expected a new run directory, got existing {self.run_dir}. "
                "Pass --resume to continue it, or choose another --out."
            )
        try:
            self.config.save(config_path)
        except OSError as exc:
            raise self._unwritable(exc) from exc

    def _unwritable(self, exc: OSError) -> HistoryError:
        return HistoryError(
            f"infoplane run: expected a writable run directory, got {self.run_dir} "
            f"({exc.strerror}). Choose another --out."
        )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the run directory for the run's lifetime."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fh = open(self.files.lock, "a+")
        except OSError as exc:
            raise self._unwritable(exc) from exc
        with fh:
            if fcntl is not None:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    raise HistoryError(
                        f"infoplane run: expected {self.run_dir} to be free, got another run "
                        "writing there. Wait for it to finish, or choose another --out."
                    ) from None
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def write_provenance(
        self, started: float, *, resume: bool, finished: bool, command: list[str]
    ) -> None:
        previous = _read_json(self.files.provenance) if self.files.provenance.is_file() else {}
        sessions = previous.get("sessions", []) if isinstance(previous, dict) else []
        entry = {
            "command": command,
            "resume": resume,
            "start": _iso(started),
            "end": _iso(time.time()) if finished else None,
            "duration_s": round(time.time() - started, 3) if finished else None,
        }
        if sessions and sessions[-1].get("start") == entry["start"]:
            sessions[-1] = entry
        else:
            sessions.append(entry)
        provenance = {
            "infoplane": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "sessions": sessions,
            "duration_s": round(sum(s["duration_s"] or 0.0 for s in sessions), 3),
        }
        atomic_write_text(self.files.provenance, json.dumps(provenance, indent=2))

    def load_checkpoint(self, run: int) -> dict[str, Any] | None:
        path = self.files.checkpoint(run)
        if not path.is_file():
            return None
        try:
            # weights_only: a checkpoint holds tensors and plain containers only, so a crafted
            # file in a shared run directory cannot execute code when it is loaded.
            ckpt = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:
            reason = first_line(exc)
            raise HistoryError(
                f"infoplane run: expected a checkpoint of plain tensors in {path}, got a file "
                f"that cannot be loaded safely ({reason[:160]}). Delete it to re-run run {run} "
                "from its start."
            ) from None
        if not isinstance(ckpt, dict) or not {"model", "epoch", "step"} <= set(ckpt):
            raise HistoryError(
                f"infoplane run: expected an infoplane checkpoint in {path}, got another object. "
                f"Delete it to re-run run {run} from its start."
            )
        return ckpt

    def save_checkpoint(self, payload: dict[str, Any], run: int) -> None:
        with atomic_open(self.files.checkpoint(run), "wb") as fh:
            torch.save(payload, fh)

    def checkpoint_positions(self) -> dict[int, tuple[int, int]]:
        """``{run: (epoch, step)}`` of every run that has a checkpoint (each file read once)."""
        positions = {}
        for run in range(self.config.runs):
            ckpt = self.load_checkpoint(run)
            if ckpt is not None:
                positions[run] = (int(ckpt["epoch"]), int(ckpt["step"]))
        return positions

    def check_history_covers_checkpoints(
        self, history: History, positions: dict[int, tuple[int, int]]
    ) -> None:
        """Refuse to resume when the history lacks steps that a checkpoint says were measured
        (``positions``: :meth:`checkpoint_positions`): continuing would leave a silent hole in the
        records."""
        c = self.config
        for run, (_, step) in positions.items():
            expected = step if c.protocol != "step" else step - step % c.every
            last = history.last_step(run=run)
            if expected > 0 and (last is None or last < expected):
                raise HistoryError(
                    f"infoplane run: expected {self.files.history} to hold run {run}'s records "
                    f"up to step {expected}, which its checkpoint covers, got "
                    f"{'none' if last is None else f'records up to step {last}'}. Restore the "
                    "history file, or start a new run."
                )


def _read_json(path: Path) -> Any:
    """A JSON file of the run directory, or one clear line when it is damaged."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HistoryError(
            f"infoplane run: expected JSON in {path}, got a damaged file ({exc}). Restore it, "
            "or start a new run."
        ) from None


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds")


def _remove_stale_temporaries(run_dir: Path) -> None:
    """Remove the temporary files of atomic writes that a killed run left (``.NAME.*.tmp``)."""
    for folder in (run_dir, RunDir(run_dir).checkpoints):
        if folder.is_dir():
            for path in folder.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    os.unlink(path)


__all__ = ["RunStore"]
