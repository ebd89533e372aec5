"""Strict JSON for result files: NaN / inf become ``null`` (``json.dumps`` writes bare ``NaN``,
which ``jq`` and other strict readers reject), numpy values become plain numbers."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def plain(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays as Python values and non-finite floats as None."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def dumps(obj: Any, indent: int | None = 1) -> str:
    """Strict JSON text of ``obj`` (see :func:`plain`); other objects are an error."""
    return json.dumps(plain(obj), indent=indent, allow_nan=False)


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as strict JSON to ``path`` through a temporary file (never half written)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(dumps(obj), encoding="utf-8")
    tmp.replace(path)
