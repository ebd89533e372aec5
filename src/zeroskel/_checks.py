"""Small value checks shared by the input boundaries (ids, labels, frame counts, option values)."""
from __future__ import annotations

import numpy as np


def whole_numbers(arr: np.ndarray) -> bool:
    """True if ``arr`` holds whole numbers: an integer dtype, or a float dtype whose values are
    all finite and integral (3.0 yes; 3.6, NaN, inf no). Booleans, strings and objects are not.
    Used where a value is an id or a count, so that truncating it would silently change it."""
    if np.issubdtype(arr.dtype, np.integer):
        return True
    return bool(np.issubdtype(arr.dtype, np.floating) and np.isfinite(arr).all() and (arr == np.round(arr)).all())


def check_seed(seed, where: str) -> int:
    """``seed`` as an int >= 0 (what numpy's generators accept); :class:`ConfigError` naming
    ``where`` (e.g. ``--seed``) otherwise, instead of numpy's 'expected non-negative integer'."""
    from .errors import ConfigError

    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"{where} must be an integer >= 0, got {seed!r}")
    return int(seed)


def whole(name: str, value, low: int = 1) -> int:
    """``value`` as an int >= ``low``; :class:`ConfigError` naming ``name`` otherwise (a string
    from ``--set ...`` or 1.5 must not end in a ValueError or a truncated count). Whole floats
    (``1e3``) are accepted."""
    from .errors import ConfigError

    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating))
            or not np.isfinite(value) or value != int(value) or value < low):
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)
