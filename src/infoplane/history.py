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
from infoplane.io import atomic_write_text, atomic_write_texts, read_table, table_text
from infoplane.schema import (
    FIELDS,
    FLOAT_FIELDS,
    INT_FIELDS,
    KEY,
    OPTIONAL_FIELDS,
    STATUS_OK,
    STR_FIELDS,
    meta_path,
)

#: The type of each field in a history file.
_TYPES: dict[str, type] = {
    **dict.fromkeys(INT_FIELDS, int),
    **dict.fromkeys(FLOAT_FIELDS, float),
    **dict.fromkeys(STR_FIELDS, str),
}


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
        kind = _TYPES[f]
        if v is None or (v == "" and kind is not str):
            out[f] = {int: -1, float: math.nan, str: ""}[kind]
            continue
        try:
            out[f] = kind(v)
        except (TypeError, ValueError):
            raise HistoryError(
                f"History.add: expected {f!r} as {kind.__name__}, got {v!r}. The record or file "
                "is damaged; restore it or measure the step again."
            ) from None
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

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from infoplane import History
        >>> history = History({"alpha": 1.01})
        >>> record = {"run": 0, "split": "train", "epoch": 0, "step": 10, "layer": "fc1",
        ...           "layer_index": 0, "i_xt": 3.5, "i_ty": 0.75, "h_t": 3.75, "sigma": 2.0,
        ...           "n": 100}
        >>> history.add(record)
        >>> history.add({**record, "i_xt": 3.25})  # the same key: replaces the record
        >>> len(history), history.records[0]["i_xt"], history.last_step()
        (1, 3.25, 10)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = history.save(Path(folder) / "history.csv")
        ...     loaded = History.load(path)
        >>> loaded.config, [r["i_xt"] for r in loaded]
        ({'alpha': 1.01}, [3.25])
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})
        self._records: dict[tuple, dict[str, Any]] = {}

    # -- display
    def _summary(self) -> dict[str, Any]:
        recs = self.records
        layers = list(dict.fromkeys(r["layer"] for r in recs))
        steps = [r["step"] for r in recs]
        return {
            "records": len(recs),
            "runs": sorted({r["run"] for r in recs}),
            "splits": sorted({r["split"] for r in recs}),
            "steps": (min(steps), max(steps)) if steps else None,
            "layers": layers,
            "alpha": self.config.get("alpha"),
        }

    def __repr__(self) -> str:
        s = self._summary()
        if not s["records"]:
            return f"History(0 records, alpha={s['alpha']})"
        layers = (
            s["layers"] if len(s["layers"]) <= 4 else [*s["layers"][:2], "...", s["layers"][-1]]
        )
        return (
            f"History({s['records']} records: runs {s['runs']}, splits {s['splits']}, steps "
            f"{s['steps'][0]}-{s['steps'][1]}, {len(s['layers'])} layers {layers}, "
            f"alpha={s['alpha']})"
        )

    def _repr_html_(self) -> str:
        """A notebook view: the summary and each layer's last measured values per split."""
        import html

        last: dict[tuple[str, str], dict[str, Any]] = {}
        for r in self.records:  # ordered by run, split, step: the last one wins
            last[(r["split"], r["layer"])] = r
        cells = "".join(
            f"<tr><td>{html.escape(sp)}</td><td>{html.escape(ly)}</td><td>{r['step']}</td>"
            f"<td>{r['i_xt']:.3f}</td><td>{r['i_ty']:.3f}</td><td>{r['h_t']:.3f}</td></tr>"
            for (sp, ly), r in last.items()
        )
        return (
            f"<p><code>{html.escape(repr(self))}</code></p><table><thead><tr><th>split</th>"
            "<th>layer</th><th>last step</th><th>I(X;T)</th><th>I(T;Y)</th><th>S(T)</th></tr>"
            f"</thead><tbody>{cells}</tbody></table>"
        )

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
            # Data and configuration are replaced together or not at all.
            atomic_write_texts(
                {
                    path: table_text(self.records, FIELDS),
                    meta_path(path): json.dumps(self.config, indent=2, sort_keys=True),
                }
            )
            return path
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
        hist = cls(_load_meta(meta_path(path)))
        table = read_table(path, _TYPES)
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
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            head = json.loads(lines[0]) if lines else {}
            if not isinstance(head, dict) or not isinstance(head.get("config"), dict):
                raise ValueError("no config line")
            hist = cls(head["config"])
            for number, line in enumerate(lines[1:], start=2):
                if not line.strip():
                    continue
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"line {number} is {type(record).__name__}, not an object")
                hist.add(record)
        except (ValueError, IndexError, TypeError) as exc:
            raise HistoryError(
                f"History.load: expected a config line then JSON records in {path}, got a "
                f"malformed file ({exc}). Restore it or delete it to start over."
            ) from exc
        return hist


def _load_meta(path: Path) -> dict[str, Any]:
    """The configuration beside a CSV history ({} when there is none)."""
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HistoryError(
            f"History.load: expected JSON in {path}, got a damaged file ({exc}). Restore it, or "
            "delete it to load the records without their configuration."
        ) from None
    if not isinstance(config, dict):
        raise HistoryError(
            f"History.load: expected a JSON object in {path}, got {type(config).__name__}. "
            "Restore it, or delete it to load the records without their configuration."
        )
    return config


def _json_safe(record: Mapping[str, Any]) -> dict[str, Any]:
    """Non-finite floats (skipped steps) become null: JSON has no NaN."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()
    }


__all__ = ["History"]
