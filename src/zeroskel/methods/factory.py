"""Build a feature-method factory from a name, a preset and ``key=value`` overrides.

Methods that ship ``configs/<name>/base.yaml`` (Flora) are configured through it, with the
same schema checks as training runs (:mod:`zeroskel.engine.config`); the others take the
overrides as constructor keyword arguments. The factory is what
:func:`zeroskel.eval.protocol.evaluate_method` calls (``factory(**budget_overrides)``).
"""
from __future__ import annotations

import inspect
from typing import Callable, Iterable

from ..engine.config import available_methods, load_base, load_preset, merge, parse_override
from ..errors import ConfigError
from . import METHODS, ZeroShotMethod, build_method, method_class


def method_config(name: str, preset: str | None = None, overrides: Iterable[str] = ()) -> dict | None:
    """Merged YAML config of a method with a config schema, else ``None``."""
    if name not in available_methods():
        if preset:
            raise ConfigError(f"--preset {preset}: method {name!r} has no config presets")
        return None
    cfg = load_base(name)
    if preset:
        cfg = merge(cfg, load_preset(name, preset), f"preset {name}/{preset}.yaml")
    for item in overrides:
        cfg = merge(cfg, parse_override(item), f"--set {item}")
    return cfg


def make_factory(name: str, preset: str | None = None, overrides: Iterable[str] = (), seed: int = 1,
                 device: str = "cpu") -> tuple[Callable[..., ZeroShotMethod], dict | None]:
    """``(factory, config)`` for method ``name``; unknown names list the registered ones."""
    if name not in METHODS:
        build_method(name)  # raises ConfigError listing the valid names
    overrides = list(overrides)
    cfg = method_config(name, preset, overrides)
    cls = method_class(name)
    if cfg is not None and hasattr(cls, "from_config"):
        full = dict(cfg, seed=seed, device=device)
        return (lambda **o: cls.from_config(full, **o)), cfg
    kw: dict = {}
    for item in overrides:
        kw.update(parse_override(item))
    params = inspect.signature(cls.__init__).parameters if cls is not None else {}
    for key, val in (("seed", seed), ("device", device)):
        if key in params:
            kw.setdefault(key, val)
    return (lambda **o: build_method(name, **dict(kw, **o))), cfg
