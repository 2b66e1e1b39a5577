"""The measurement history: one record per (run, split, epoch, step, layer).

A :class:`History` keeps the configuration of the measurement once (alpha, kernel widths, the
sigma convention, the library version) and a list of records with the fields of
:data:`infoplane.schema.FIELDS`. It is the one reader and writer of history files:

* ``.jsonl``: the first line is ``{"config": {...}}``, then one JSON object per record;
* ``.csv``: the records with a header row; the configuration goes to ``<name>.meta.json`` beside
  it. Both are written atomically (:mod:`infoplane.io`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from infoplane.errors import HistoryError, InvalidParameterError
from infoplane.io import atomic_write_text, read_table, write_table
from infoplane.schema import (
    FIELDS,
    FLOAT_FIELDS,
    INT_FIELDS,
    KEY,
    OPTIONAL_FIELDS,
    STATUS_OK,
    meta_path,
)


# ----------------------------------------------------------------------------- history
def _coerce(record: Mapping[str, Any]) -> dict[str, Any]:
    missing = [
        f for f in FIELDS if f not in record and f not in OPTIONAL_FIELDS | {"status", "h_x", "h_y"}
    ]
    if missing:
        raise HistoryError(f"History.add: expected fields {missing} in the record, got none.")
    out: dict[str, Any] = {}
    for f in FIELDS:
        v = record.get(f)
        if f in INT_FIELDS:
            out[f] = int(v) if v is not None and v != "" else -1
        elif f in FLOAT_FIELDS:
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
        self._records[tuple(rec[k] for k in KEY)] = rec

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
            if f in INT_FIELDS:
                out[f] = np.array(vals, dtype=np.int64)
            elif f in FLOAT_FIELDS:
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
            atomic_write_text(meta_path(path), json.dumps(self.config, indent=2, sort_keys=True))
            return write_table(path, self.records, FIELDS)
        raise InvalidParameterError(
            f"History.save: expected a path ending in .csv or .jsonl, got {str(path)!r}."
        )

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
        meta = meta_path(path)
        config = json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}
        hist = cls(config)
        table = read_table(path)
        missing = [f for f in FIELDS if f not in table and f not in OPTIONAL_FIELDS]
        if missing:
            raise HistoryError(
                f"History.load: expected columns {list(FIELDS)} in {path}, missing {missing}."
            )
        n = len(table["run"])
        present = [f for f in FIELDS if f in table]
        hist.extend({f: table[f][i] for f in present} for i in range(n))
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


__all__ = ["History"]
