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


def as_whole(value) -> int | None:
    """``value`` as an int if it is a whole number: an int, or a finite float with no fraction
    (``2.0``, ``1e3``, as YAML reads them); None otherwise (1.5, NaN, a string, a boolean).
    The one integer rule of option values (:func:`whole`, ``engine.config.check_int``): a float
    spelling of a count means the count; a fraction is never truncated."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)):
        return None
    if not np.isfinite(value) or value != int(value):
        return None
    return int(value)


def check_seed(seed, where: str) -> int:
    """``seed`` as an int >= 0 (what numpy's generators accept; ``3.0`` is 3, see :func:`as_whole`);
    :class:`ConfigError` naming ``where`` (e.g. ``--seed``) otherwise, instead of numpy's
    'expected non-negative integer'."""
    return whole(where, seed, 0)


def whole(name: str, value, low: int = 1, none_ok: bool = False) -> int | None:
    """``value`` as an int >= ``low`` (None stays None with ``none_ok``); :class:`ConfigError`
    naming ``name`` otherwise (a string from ``--set ...`` or 1.5 must not end in a ValueError or a
    truncated count). Whole floats (``2.0``, ``1e3``) are their int (:func:`as_whole`)."""
    from .errors import ConfigError

    if value is None and none_ok:
        return None
    n = as_whole(value)
    if n is None or n < low:
        raise ConfigError(f"{name} must be an integer >= {low}{' or null' if none_ok else ''}, got {value!r}")
    return n
