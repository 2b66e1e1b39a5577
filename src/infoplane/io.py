"""Files: atomic writes and CSV tables, for every file infoplane writes.

A file is written to a temporary file in the destination folder, flushed, renamed onto its final
name and the folder flushed, so an interrupted or crashed write never leaves a half-written file
and a completed one survives a power loss. :func:`write_table` / :func:`read_table` are the plain
CSV helpers (training metrics, summaries); a table in memory is ``dict[str, numpy.ndarray]``.
"""

from __future__ import annotations

import contextlib
import csv
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
def _staged(path: Path, mode: str) -> Iterator[tuple[Any, str]]:
    """``(file, temporary path)`` beside ``path``; once the block ends the temporary file is
    complete, flushed to disk and has the usual permissions. If the block raises, it is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh, tmp
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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
    with _staged(path, mode) as (fh, tmp):
        yield fh
    try:
        if verify is not None:
            verify(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)  # the rename itself survives a power loss once this returns


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


def atomic_write_texts(texts: Mapping[str | os.PathLike[str], str]) -> list[Path]:
    """Write several files as one unit: every file is written and flushed to a temporary file
    first, and only when all succeeded are they renamed into place (renames do not need space),
    so a full disk never leaves a new file beside a stale partner."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, text in texts.items():
            path = Path(path)
            with _staged(path, "w") as (fh, tmp):
                fh.write(text)
            staged.append((tmp, path))
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
    for parent in {path.parent for _, path in staged}:
        fsync_dir(parent)
    return [path for _, path in staged]


# ----------------------------------------------------------------------------- tables
_QUOTE_IF = (",", '"', "\r", "\n")


def _csv_cell(text: str) -> str:
    """RFC 4180 quoting; unlike :mod:`csv` with a ``\\n`` terminator, a bare ``\\r`` is quoted
    too, so every string survives a round trip."""
    if any(c in text for c in _QUOTE_IF):
        return '"' + text.replace('"', '""') + '"'
    return text


def table_text(rows: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> str:
    """The CSV text of rows (mappings) with the header ``fields``."""
    lines = [",".join(_csv_cell(f) for f in fields)]
    lines += [",".join(_csv_cell(_format_value(row.get(f))) for f in fields) for row in rows]
    return "\n".join(line or '""' for line in lines) + "\n"  # a lone empty cell stays a row


def write_table(
    path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]], fields: Sequence[str]
) -> Path:
    """Write rows (mappings) as CSV with the header ``fields``, atomically."""
    return atomic_write_text(path, table_text(rows, fields))


def _guess_column(values: list[str]) -> np.ndarray:
    """Integers, then floats (empty cells as NaN), else strings."""
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        pass
    try:
        return np.array([float(v) if v != "" else math.nan for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=object)


def _typed_column(values: list[str], kind: type, name: str, path: Path) -> np.ndarray:
    if kind is str:
        return np.array(values, dtype=object)
    out = []
    for line, v in enumerate(values, start=2):
        try:
            out.append(kind(v) if v != "" else (math.nan if kind is float else -1))
        except ValueError:
            raise HistoryError(
                f"read_table: expected a number in column {name!r} of {path}, got {v!r} on line "
                f"{line}. The file is damaged; restore it or delete it to start over."
            ) from None
    return np.array(out, dtype=np.float64 if kind is float else np.int64)


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise HistoryError(
            f"read_table: expected UTF-8 text in {path}, got undecodable bytes at offset "
            f"{exc.start}. The file is damaged; restore it or delete it to start over."
        ) from None
    except csv.Error as exc:
        raise HistoryError(f"read_table: expected CSV in {path}, got an error: {exc}.") from None
    if header is None:
        raise HistoryError(f"read_table: expected a header row in {path}, got an empty file.")
    return header, rows


def read_table(
    path: str | os.PathLike[str], types: Mapping[str, type] | None = None
) -> dict[str, np.ndarray]:
    """Read a CSV written by :func:`write_table` as ``{column: numpy array}``.

    ``types`` maps columns to ``int``, ``float`` or ``str``: such a column is parsed as that type
    (``"007"`` stays a string; a non-number in a numeric column raises). Other columns are
    guessed: integers, then floats, else strings.
    """
    path = Path(path)
    if not path.is_file():
        raise HistoryError(f"read_table: expected a CSV file, got {str(path)!r} (not found).")
    header, rows = _read_rows(path)
    for i, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise HistoryError(
                f"read_table: expected {len(header)} cells per row in {path}, got {len(row)} on "
                f"line {i}. The file is damaged; restore it or delete it to start over."
            )
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    types = types or {}
    return {
        name: _typed_column(list(col), types[name], name, path)
        if name in types
        else _guess_column(list(col))
        for name, col in zip(header, columns, strict=True)
    }


__all__ = [
    "atomic_open",
    "atomic_write_text",
    "atomic_write_texts",
    "fsync_dir",
    "read_table",
    "table_text",
    "write_table",
]
