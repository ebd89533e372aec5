"""Build a feature-method factory from a name, a preset and ``key=value`` overrides.

Methods that ship ``configs/<name>/base.yaml`` (Flora) are configured through it, with the
same schema checks as training runs (:mod:`zeroskel.engine.config`); the others take the
overrides as constructor keyword arguments. The factory is what
:func:`zeroskel.eval.protocol.evaluate_method` calls (``factory(**budget_overrides)``).
"""
from __future__ import annotations

import inspect
from typing import Callable, Iterable

from ..engine.config import (available_methods, load_base, load_preset, merge, merge_layer, open_sections,
                             parse_override)
from .._checks import check_seed
from ..errors import ConfigError
from . import METHODS, ZeroShotMethod, build_method, method_class


def method_config(name: str, preset: str | None = None, overrides: Iterable[str] = (),
                  dataset: str | None = None) -> dict | None:
    """Merged YAML config of a method with a config schema, else ``None``.

    ``dataset`` (the dataset the features come from, e.g. ``utd_mhad``) applies the preset's
    ``per_dataset`` block for it; other names use the preset as it is. A preset that has such
    blocks needs the dataset named: without it the result would silently be the generic
    setting for data the preset tunes differently (:class:`ConfigError`).
    """
    if name not in available_methods():
        if preset:
            raise ConfigError(f"preset {preset!r} (--preset; --config for benchmark): method {name!r} has no config "
                              "presets")
        return None
    cfg = load_base(name)
    opened = open_sections(cfg)
    if preset:
        layer = load_preset(name, preset)
        blocks = layer.get("per_dataset") or {}
        blocks = sorted(blocks) if isinstance(blocks, dict) else []  # a bad block: merge_layer says so
        if blocks and dataset is None:
            raise ConfigError(f"preset {name}/{preset}.yaml has settings for the datasets {', '.join(blocks)}: "
                              "name the dataset the features come from (--dataset; any other name uses "
                              "the preset as it is)")
        if blocks and str(dataset) not in blocks:
            _refuse_near_miss(str(dataset), blocks, f"preset {name}/{preset}.yaml")
        cfg = merge_layer(cfg, layer, f"preset {name}/{preset}.yaml", dataset, opened)
    for item in overrides:
        cfg = merge(cfg, parse_override(item), f"--set {item}", open_paths=opened)
    return cfg


def _squash(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _refuse_near_miss(dataset: str, blocks, where: str) -> None:
    """A ``--dataset`` spelled like a dataset the preset tunes (``utd-mhad``, ``UTD_MHAD``) but
    not equal to it would silently get the generic settings: :class:`ConfigError` instead.
    Other names (a registered dataset without a block, a custom dataset) pass."""
    from ..data.registry import DATASETS

    if dataset in DATASETS:
        return
    for b in blocks:
        if _squash(dataset) == _squash(str(b)):
            raise ConfigError(f"--dataset {dataset!r}: did you mean {b!r}? {where} has settings for "
                              f"{', '.join(sorted(map(str, blocks)))}, and a name that differs from them gets the "
                              "preset's generic settings")


def make_factory(name: str, preset: str | None = None, overrides: Iterable[str] = (), seed: int = 1,
                 device: str = "cpu", dataset: str | None = None
                 ) -> tuple[Callable[..., ZeroShotMethod], dict | None]:
    """``(factory, config)`` for method ``name``; unknown names list the registered ones.
    ``dataset`` picks the preset's per-dataset block (:func:`method_config`). One method is built
    (not fitted) to check the values as well as the keys."""
    if name not in METHODS:
        build_method(name)  # raises ConfigError listing the valid names
    check_seed(seed, "seed (--seed)")  # named as the flag, before the method built below names it
    overrides = list(overrides)
    for item in overrides:
        for key in parse_override(item):
            if key in ("seed", "device"):  # the argument wins for some methods, --set for others
                raise ConfigError(f"--set {item}: the {key} is set by --{key}, not by --set")
    cfg = method_config(name, preset, overrides, dataset)
    cls = method_class(name)
    if cfg is not None and hasattr(cls, "from_config"):
        full = dict(cfg, seed=seed, device=device)
        factory = lambda **o: cls.from_config(full, **o)  # noqa: E731
        factory()  # a bad value (--set train.lr=-1) fails here, as a bad key does
        return factory, cfg
    kw: dict = {}
    params = inspect.signature(cls.__init__).parameters if cls is not None else {}
    valid = [k for k, p in params.items() if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    for item in overrides:
        parsed = parse_override(item)
        # keys are constructor arguments: a wrong one is named here, not a TypeError from the constructor
        for key in parsed:
            if params and not takes_any and key not in valid:
                raise ConfigError(f"--set {item}: {name} has no option {key!r}; valid: {', '.join(valid)}")
        kw.update(parsed)
    for key, val in (("seed", seed), ("device", device)):
        if key in params:
            kw.setdefault(key, val)
    factory = lambda **o: build_method(name, **dict(kw, **o))  # noqa: E731
    # built once: a bad value (--set epochs=0) used to pass here and fail at the first fit, after
    # `zeroskel benchmark` had tied its folder to the bad settings (benchmark.json)
    factory()
    return factory, cfg
