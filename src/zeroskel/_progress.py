"""Progress bars that stay quiet when output is not a terminal or ZEROSKEL_QUIET is set."""
from __future__ import annotations

import os
import sys


def progress(iterable=None, desc: str = "", total: int | None = None, **kw):
    from tqdm.auto import tqdm

    disable = bool(os.environ.get("ZEROSKEL_QUIET")) or not sys.stderr.isatty()
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=False, **kw)
