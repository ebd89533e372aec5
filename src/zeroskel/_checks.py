"""Small value checks shared by the input boundaries (ids, labels, frame counts)."""
from __future__ import annotations

import numpy as np


def whole_numbers(arr: np.ndarray) -> bool:
    """True if ``arr`` holds whole numbers: an integer dtype, or a float dtype whose values are
    all finite and integral (3.0 yes; 3.6, NaN, inf no). Booleans, strings and objects are not.
    Used where a value is an id or a count, so that truncating it would silently change it."""
    if np.issubdtype(arr.dtype, np.integer):
        return True
    return bool(np.issubdtype(arr.dtype, np.floating) and np.isfinite(arr).all() and (arr == np.round(arr)).all())
