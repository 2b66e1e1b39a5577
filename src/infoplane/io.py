"""Files: atomic writes and CSV tables, for every file infoplane writes.

A file is written to a temporary file in the destination folder, flushed, renamed onto its final
name and the folder flushed, so an interrupted or crashed write never leaves a half-written file
and a completed one survives a power loss. :func:`write_table` / :func:`read_table` are the plain
CSV helpers (training metrics, summaries); a table in memory is ``dict[str, numpy.ndarray]``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from infoplane.errors import HistoryError


# ----------------------------------------------------------------------------- atomic files
def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename into it) to disk; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - e.g. Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    verify: Callable[[Path], None] | None = None,
) -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success it is renamed onto ``path``.

    If the block raises (or the process dies), ``path`` keeps its old content and the
    temporary file is removed: nobody ever sees a half-written file. ``verify``, when given, is
    called with the temporary file's path once it is complete; if it raises, nothing is renamed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if verify is not None:
            verify(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
        fsync_dir(path.parent)  # the rename itself survives a power loss once this returns
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written)."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def _format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return repr(value) if math.isfinite(value) else ""  # repr round-trips float64 exactly
    return str(value)


# ----------------------------------------------------------------------------- tables
def write_table(
    path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]], fields: Sequence[str]
) -> Path:
    """Write rows (mappings) as CSV with the header ``fields``, atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_format_value(row.get(f)) for f in fields])
    return atomic_write_text(path, buf.getvalue())


def _parse_column(values: list[str]) -> np.ndarray:
    """Integers, then floats (empty cells as NaN), else strings."""
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        pass
    try:
        return np.array([float(v) if v != "" else math.nan for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=object)


def read_table(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a CSV written by :func:`write_table` as ``{column: numpy array}``."""
    path = Path(path)
    if not path.is_file():
        raise HistoryError(f"read_table: expected a CSV file, got {str(path)!r} (not found).")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise HistoryError(
                f"read_table: expected a header row in {path}, got an empty file."
            ) from None
        rows = list(reader)
    for i, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise HistoryError(
                f"read_table: expected {len(header)} cells per row in {path}, got {len(row)} on "
                f"line {i}. The file is damaged; restore it or delete it to start over."
            )
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    return {name: _parse_column(list(col)) for name, col in zip(header, columns, strict=True)}


__all__ = ["atomic_open", "atomic_write_text", "fsync_dir", "read_table", "write_table"]
