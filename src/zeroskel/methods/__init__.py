"""Registry of zero-shot methods that work on pooled skeleton features.

``METHODS`` maps a name to a factory ``factory(**kwargs) -> ZeroShotMethod``. Factories
import their module lazily, so importing this package does not import torch models.
Add a method with one line: ``METHODS["name"] = _lazy("zeroskel.methods.module", "Class")``.
"""
from __future__ import annotations

import inspect
from importlib import import_module
from typing import Callable

from ..errors import ConfigError, unknown_name
from .base import ClassTexts, ZeroShotMethod


def _lazy(module: str, cls: str) -> Callable[..., ZeroShotMethod]:
    def factory(**kwargs) -> ZeroShotMethod:
        return getattr(import_module(module), cls)(**kwargs)
    factory.__qualname__ = factory.__name__ = f"build_{cls}"
    factory.__doc__ = f"Build :class:`{module}.{cls}` with keyword arguments."
    factory.target = (module, cls)  # lets method_class() find the class without building one
    return factory


METHODS: dict[str, Callable[..., ZeroShotMethod]] = {
    "flora": _lazy("zeroskel.methods.flora", "Flora"),
    "smie": _lazy("zeroskel.methods.smie", "SMIE"),
    "devise": _lazy("zeroskel.methods.baselines", "DeViSE"),
    "cada_vae": _lazy("zeroskel.methods.baselines", "CADAVAE"),
}


def build_method(name: str, **kwargs) -> ZeroShotMethod:
    """Instantiate registered method ``name`` with constructor keyword arguments ``kwargs``.

    Raises :class:`ConfigError` for an unknown name (listing the valid ones) or an argument the
    method does not take (listing its arguments); a bad value is the constructor's ConfigError.
    """
    cls = method_class(name)  # raises the unknown-name error
    if cls is not None:
        params = inspect.signature(cls.__init__).parameters
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            valid = [k for k, p in params.items() if k != "self" and p.kind != p.VAR_POSITIONAL]
            bad = [k for k in kwargs if k not in valid]
            if bad:
                raise ConfigError(f"method {name!r} has no argument(s) {', '.join(map(repr, bad))}; "
                                  f"valid arguments: {', '.join(valid)}")
    return METHODS[name](**kwargs)


def method_class(name: str) -> type | None:
    """The class a registered factory builds (None for factories not made by ``_lazy``)."""
    if name not in METHODS:
        raise unknown_name("method", name, METHODS)
    target = getattr(METHODS[name], "target", None)
    return getattr(import_module(target[0]), target[1]) if target else None


__all__ = ["METHODS", "build_method", "method_class", "ClassTexts", "ZeroShotMethod"]
