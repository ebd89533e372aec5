"""Why a NumPy file could not be read, in words a user can act on.

``np.load`` on a file that is neither an ``.npy`` nor an ``.npz`` (a truncated download, a
text file, a ``.mat`` renamed) falls through to pickle and, with ``allow_pickle=False``,
says the file "contains pickled (object) data", which sends the reader the wrong way.
"""
from __future__ import annotations

from pathlib import Path

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK"


def load_failure(path: str | Path, error: BaseException) -> str:
    """A one-line reason for ``np.load(path)`` raising ``error``, from the file's first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(NPY_MAGIC))
    except OSError as e:
        return f"cannot open ({e.strerror or e})"
    if not head:
        return "the file is empty"
    if not (head.startswith(NPY_MAGIC) or head.startswith(ZIP_MAGIC)):
        return ("not a NumPy file: it starts with neither the .npy header nor a zip (.npz) "
                "header; a truncated download or another format?")
    return str(error)
