"""Progress bars: tqdm on stderr when it is installed and wanted, else nothing.

tqdm is optional (the ``experiments`` extra installs it); every bar infoplane shows (training
runs, downloads) is made here, so its absence is handled once.
"""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(total: int | None, desc: str, enabled: bool, **options: Any) -> Any:
    """A tqdm bar, or ``None`` when ``enabled`` is false or tqdm is not installed."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional: no bar
        return None
    return tqdm(total=total, desc=desc, dynamic_ncols=True, file=sys.stderr, **options)


__all__ = ["progress_bar"]
