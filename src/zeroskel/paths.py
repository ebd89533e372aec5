"""Where data and caches live. Nothing is ever downloaded."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError, DataError

DATA_ENV = "ZEROSKEL_DATA"
CACHE_ENV = "ZEROSKEL_CACHE"


def looks_like_path(value: str) -> bool:
    """Whether a dataset / split / config / text-source argument is written as a path: it holds
    a ``/`` or a ``\\`` (Windows' separator; no registered name holds either), on any system."""
    return "/" in value or "\\" in value


def path_name(value: str) -> str:
    """The last component of a path written with ``/`` or ``\\`` (``C:\\data\\mine.npz`` gives
    ``mine.npz`` on Linux as on Windows), for naming run folders and caches after it."""
    return value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or value


def data_root(explicit: str | os.PathLike | None = None, *, must_exist: bool = True) -> Path:
    """Resolve the data root: explicit argument (``--data-root``), else ``$ZEROSKEL_DATA``.

    Raises :class:`DataError` naming the flag/variable when neither is set or the folder
    is missing.
    """
    raw = explicit if explicit is not None else os.environ.get(DATA_ENV)
    if raw is None or str(raw) == "":
        raise DataError(
            f"no data root: pass --data-root DIR or set the {DATA_ENV} environment variable "
            "(see README, 'Datasets')"
        )
    if not isinstance(raw, (str, os.PathLike)):
        raise DataError(f"data root (--data-root / data_root argument) must be a folder path, "
                        f"got {type(raw).__name__} {raw!r}")
    root = Path(raw).expanduser()
    if must_exist and not root.is_dir():
        src = "--data-root" if explicit is not None else f"${DATA_ENV}"
        raise DataError(f"data root {root} (from {src}) does not exist or is not a directory")
    return root


def cache_root(explicit: str | os.PathLike | None = None) -> Path:
    """Cache folder: explicit, else ``$ZEROSKEL_CACHE``, else ``~/.cache/zeroskel``."""
    raw = explicit if explicit is not None else os.environ.get(CACHE_ENV)
    root = Path(raw).expanduser() if raw else Path.home() / ".cache" / "zeroskel"
    root.mkdir(parents=True, exist_ok=True)
    return root


def new_output(path: str | os.PathLike, flag: str, force: bool = False,
               force_flag: str | None = "--force") -> Path:
    """``path`` as a file a command may write. An existing file is an error naming ``flag``
    (and ``force_flag``, when the command has one) unless ``force`` is set, so one command's
    results never replace another's by accident. Called before the command's work."""
    out = Path(path).expanduser()
    if out.is_dir():
        raise ConfigError(f"{flag} {out} is a folder; give a file name")
    if out.exists() and not force:
        hint = f" or pass {force_flag} to replace it" if force_flag else ""
        raise ConfigError(f"{flag} {out} exists; choose another name{hint}")
    return out
