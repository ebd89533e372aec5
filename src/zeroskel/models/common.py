"""Small helpers shared by the encoder constructors."""
from __future__ import annotations

from typing import Sequence

from .._checks import whole
from ..errors import ConfigError, unknown_name


def resolve_widths(kind: str, unit: str, presets: dict, preset: str,
                   channels: Sequence[int] | None, strides: Sequence[int] | None) -> tuple[list[int], list[int]]:
    """Per-unit output widths and temporal strides from a preset, optionally overridden.

    ``presets[preset]`` is a list of ``(width, stride)``; ``channels`` replaces the widths
    (then ``strides`` is required when the unit count changes). Errors name the argument.
    """
    if preset not in presets:
        raise unknown_name(f"{kind} preset", preset, presets)
    base = presets[preset]
    for key, seq in (("channels", channels), ("strides", strides)):
        if seq is not None and (isinstance(seq, (str, bytes)) or not hasattr(seq, "__iter__")):
            raise ConfigError(f"{key} must be a list of integers, got {seq!r}")
    widths = [whole("channels", c) for c in channels] if channels is not None else [c for c, _ in base]
    if strides is None:
        if len(widths) != len(base):
            raise ConfigError(f"channels has {len(widths)} {unit}s but preset {preset!r} has "
                              f"{len(base)}: pass strides too")
        strides = [s for _, s in base]
    strides = [whole("strides", s) for s in strides]
    if len(strides) != len(widths) or not widths:
        raise ConfigError(f"channels ({len(widths)}) and strides ({len(strides)}) must have "
                          "the same non-zero length")
    if min(widths) < 1 or min(strides) < 1:
        raise ConfigError(f"channels and strides must be positive, got {widths}, {strides}")
    return widths, strides
