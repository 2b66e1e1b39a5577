"""The measurement history: one record per (run, split, epoch, step, layer), saved atomically.

A :class:`History` keeps the configuration of the measurement once (alpha, kernel widths, the
sigma convention, the library version) and a list of records with the fields of
:data:`FIELDS`. Files are written to a temporary file in the destination folder and renamed onto
the final name, so an interrupted save never leaves a half-written history.

Formats:

* ``.jsonl``: the first line is ``{"config": {...}}``, then one JSON object per record;
* ``.csv``: the records with a header row; the configuration goes to ``<name>.meta.json`` beside it.

:func:`write_table` / :func:`read_table` are the plain CSV helpers the rest of infoplane uses for
any table (training metrics, summaries); a table in memory is ``dict[str, numpy.ndarray]``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from infoplane.errors import HistoryError, InvalidParameterError

#: The fields of one history record, in file order.
FIELDS: tuple[str, ...] = (
    "run",
    "split",
    "epoch",
    "step",
    "layer",
    "layer_index",
    "i_xt",
    "i_ty",
    "h_t",
    "h_x",
    "h_y",
    "sigma",
    "n",
    "status",
)
_INT_FIELDS = frozenset({"run", "epoch", "step", "layer_index", "n"})
_FLOAT_FIELDS = frozenset({"i_xt", "i_ty", "h_t", "h_x", "h_y", "sigma"})
_KEY = ("run", "split", "epoch", "step", "layer")

#: ``status`` of a measured record, and of a step skipped because activations were not finite.
STATUS_OK = "ok"
STATUS_SKIPPED = "skipped"


# ----------------------------------------------------------------------------- atomic file helpers
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


# ----------------------------------------------------------------------------- history
def _coerce(record: Mapping[str, Any]) -> dict[str, Any]:
    missing = [f for f in FIELDS if f not in record and f not in ("status", "h_x", "h_y")]
    if missing:
        raise HistoryError(f"History.add: expected fields {missing} in the record, got none.")
    out: dict[str, Any] = {}
    for f in FIELDS:
        v = record.get(f)
        if f in _INT_FIELDS:
            out[f] = int(v) if v is not None and v != "" else -1
        elif f in _FLOAT_FIELDS:
            out[f] = float(v) if v is not None and v != "" else math.nan
        else:
            out[f] = str(v) if v is not None else ""
    if not out["status"]:
        out["status"] = STATUS_OK
    if out["status"] == STATUS_OK:
        bad = [f for f in ("i_xt", "i_ty", "h_t") if not math.isfinite(out[f])]
        if bad:
            raise HistoryError(
                f"History.add: expected finite {bad} in a record with status 'ok', got "
                f"{[out[f] for f in bad]}. Record the step as skipped instead."
            )
    return out


class History:
    """Per-layer information-plane records with the measurement configuration kept once.

    Records are unique by ``(run, split, epoch, step, layer)``: adding a record with an existing
    key replaces the old one, so re-measuring steps after a restart never duplicates them.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})
        self._records: dict[tuple, dict[str, Any]] = {}

    # -- records
    def add(self, record: Mapping[str, Any]) -> None:
        """Add one record (a mapping with the fields of :data:`FIELDS`)."""
        rec = _coerce(record)
        self._records[tuple(rec[k] for k in _KEY)] = rec

    def extend(self, records: Iterable[Mapping[str, Any]]) -> None:
        for r in records:
            self.add(r)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    @property
    def records(self) -> list[dict[str, Any]]:
        """All records, ordered by run, split, step, layer index."""
        return sorted(
            self._records.values(),
            key=lambda r: (r["run"], r["split"], r["step"], r["epoch"], r["layer_index"]),
        )

    def truncate(self, *, after_step: int, run: int | None = None) -> int:
        """Drop records with ``step > after_step`` (for ``run`` only, if given); return how many.

        Used when resuming from a checkpoint older than the last saved history.
        """
        drop = [
            k
            for k, r in self._records.items()
            if r["step"] > after_step and (run is None or r["run"] == run)
        ]
        for k in drop:
            del self._records[k]
        return len(drop)

    def last_step(self, run: int | None = None, split: str | None = None) -> int | None:
        """The largest recorded step (optionally of one run/split), or None if empty."""
        steps = [
            r["step"]
            for r in self._records.values()
            if (run is None or r["run"] == run) and (split is None or r["split"] == split)
        ]
        return max(steps) if steps else None

    def columns(self) -> dict[str, np.ndarray]:
        """The records as ``{field: numpy array}`` (the table shape plots and reports use)."""
        recs = self.records
        out: dict[str, np.ndarray] = {}
        for f in FIELDS:
            vals = [r[f] for r in recs]
            if f in _INT_FIELDS:
                out[f] = np.array(vals, dtype=np.int64)
            elif f in _FLOAT_FIELDS:
                out[f] = np.array(vals, dtype=np.float64)
            else:
                out[f] = np.array(vals, dtype=object)
        return out

    def to_dataframe(self):
        """The records as a pandas DataFrame (requires pandas), with ``attrs['config']``."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "History.to_dataframe: pandas is not installed. Run: pip install pandas"
            ) from exc
        df = pd.DataFrame(self.records, columns=list(FIELDS))
        df.attrs["config"] = dict(self.config)
        return df

    # -- files
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save atomically as ``.csv`` (config in ``<name>.meta.json``) or ``.jsonl``."""
        path = Path(path)
        if path.suffix == ".jsonl":
            lines = [json.dumps({"config": self.config}, sort_keys=True)]
            lines += [json.dumps(_json_safe(r), allow_nan=False) for r in self.records]
            return atomic_write_text(path, "\n".join(lines) + "\n")
        if path.suffix == ".csv":
            atomic_write_text(_meta_path(path), json.dumps(self.config, indent=2, sort_keys=True))
            return write_table(path, self.records, FIELDS)
        raise InvalidParameterError(
            f"History.save: expected a path ending in .csv or .jsonl, got {str(path)!r}."
        )

    to_csv = save
    to_jsonl = save

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> History:
        """Load a history saved by :meth:`save` (``.csv`` or ``.jsonl``)."""
        path = Path(path)
        if not path.is_file():
            raise HistoryError(f"History.load: expected a history file, got {str(path)!r}.")
        if path.suffix == ".jsonl":
            return cls._load_jsonl(path)
        if path.suffix != ".csv":
            raise InvalidParameterError(
                f"History.load: expected a path ending in .csv or .jsonl, got {str(path)!r}."
            )
        meta = _meta_path(path)
        config = json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}
        hist = cls(config)
        table = read_table(path)
        missing = [f for f in FIELDS if f not in table]
        if missing:
            raise HistoryError(
                f"History.load: expected columns {list(FIELDS)} in {path}, missing {missing}."
            )
        n = len(table["run"])
        hist.extend({f: table[f][i] for f in FIELDS} for i in range(n))
        return hist

    @classmethod
    def _load_jsonl(cls, path: Path) -> History:
        lines = path.read_text(encoding="utf-8").splitlines()
        try:
            head = json.loads(lines[0]) if lines else {}
            if "config" not in head:
                raise ValueError("no config line")
            hist = cls(head["config"])
            hist.extend(json.loads(line) for line in lines[1:] if line.strip())
        except (ValueError, IndexError) as exc:
            raise HistoryError(
                f"History.load: expected a config line then JSON records in {path}, got a "
                f"malformed file ({exc}). Restore it or delete it to start over."
            ) from exc
        return hist


def _json_safe(record: Mapping[str, Any]) -> dict[str, Any]:
    """Non-finite floats (skipped steps) become null: JSON has no NaN."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()
    }


def _meta_path(path: Path) -> Path:
    return path.with_name(path.stem + ".meta.json")


__all__ = [
    "FIELDS",
    "STATUS_OK",
    "STATUS_SKIPPED",
    "History",
    "atomic_open",
    "atomic_write_text",
    "read_table",
    "write_table",
]
