"""Exceptions raised at zeroskel's boundaries.

Every error a user can cause (bad path, bad file, bad flag, bad config key) is a
:class:`ZeroskelError` whose message names the offending file, key or flag, so the CLI
can print it without a traceback.
"""
from __future__ import annotations


class ZeroskelError(Exception):
    """Base class of user-facing errors."""


class DataError(ZeroskelError):
    """A data file or data root is missing, unreadable, truncated or malformed."""


class ConfigError(ZeroskelError):
    """An unknown name, a bad option value or an inconsistent configuration."""


class CheckpointError(ZeroskelError):
    """A checkpoint or model bundle is corrupt or incompatible."""


def unknown_name(kind: str, name: str, valid) -> ConfigError:
    """Error for an unknown registry name that lists the valid ones."""
    valid = sorted(valid)
    # "valid: ..." rather than "valid {kind}s", which misreads for kinds like "model.loss"
    return ConfigError(f"unknown {kind} {name!r}; valid: {', '.join(valid)}")


def yaml_problem(e: BaseException) -> str:
    """A YAML parse error in one line: ``line L, column C: <problem>`` (PyYAML's own text
    spans several lines and quotes the input with a caret)."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or getattr(e, "context", None)
    if mark is None or not problem:
        return " ".join(str(e).split())
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
