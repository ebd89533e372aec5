"""Encoder registry and model cards.

``build_encoder("stgcn", layout="kinect_v1", num_persons=1)`` builds an encoder by name;
an :class:`EncoderCard` (in the spirit of timm's ``PretrainedCfg``) records what a trained
encoder expects and where it came from, as plain JSON (``dataclasses.asdict``), so it can be
stored next to a ``torch.save``'d state dict and loaded with ``weights_only=True``.
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from torch import nn

from ..errors import ConfigError, unknown_name
from .shiftgcn import ShiftGCN
from .stgcn import STGCN

_ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "stgcn": STGCN,          # preset="slim" (PGFA) or "standard"
    "shiftgcn": ShiftGCN,
}

# Constructor arguments that the card stores as first-class fields.
_CARD_ARGS = ("layout", "in_channels", "num_persons")


def list_encoders() -> list[str]:
    """Registered encoder names."""
    return sorted(_ENCODERS)


def build_encoder(name: str, **kwargs: Any) -> nn.Module:
    """Build encoder ``name`` (:func:`list_encoders`) with constructor keyword arguments ``kwargs``.

    The module maps (N, C, T, V, M) float32 skeletons (coordinates C, frames T, joints V of
    ``layout``, persons M) to (N, ``feature_dim``) features. Raises :class:`ConfigError` for an
    unknown name or an unknown/invalid argument.
    """
    if name not in _ENCODERS:
        raise unknown_name("encoder", name, _ENCODERS)
    cls = _ENCODERS[name]
    params = inspect.signature(cls).parameters
    bad = [k for k in kwargs if k not in params]
    if bad:
        valid = [k for k in params if k != "self"]
        raise ConfigError(f"encoder {name!r} has no argument(s) {', '.join(map(repr, bad))}; "
                          f"valid arguments: {', '.join(valid)}")
    return cls(**kwargs)


@dataclass
class EncoderCard:
    """What an encoder expects and where its weights came from (JSON-able).

    Attributes:
        name: registry name (``"stgcn"``, ``"shiftgcn"``).
        layout: joint layout of the input (``"ntu25"``, ``"kinect_v1"``).
        in_channels: coordinates per joint ``C``.
        frames: frames ``T`` the encoder was trained on (None: any).
        num_persons: persons ``M`` per sample.
        feature_dim: output width.
        dataset: training dataset name, if trained.
        split: zero-shot split name/id, if trained.
        text_model: text encoder the features were aligned to, if any.
        num_params: trainable parameter count.
        kwargs: remaining constructor arguments (``preset``, ``channels``, ...).
        extra: free-form JSON-able metadata (training config, metrics, ...).
    """

    name: str
    layout: str
    in_channels: int
    frames: int | None
    num_persons: int
    feature_dim: int
    dataset: str | None = None
    split: str | None = None
    text_model: str | None = None
    num_params: int | None = None
    kwargs: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The card as a JSON-able dict (:meth:`from_dict` reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "encoder card") -> "EncoderCard":
        """Inverse of :meth:`to_dict`; ``source`` names the file in error messages."""
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a mapping, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        unknown = sorted(set(d) - names)
        missing = sorted(required - set(d))
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}")
        if missing:
            raise ConfigError(f"{source}: missing key(s) {', '.join(missing)}")
        for key in ("kwargs", "extra"):
            if key in d and not isinstance(d[key], dict):
                raise ConfigError(f"{source}: {key!r} must be a mapping, got {type(d[key]).__name__}")
        # these are card fields: in kwargs too, build() would pass them twice (a TypeError)
        twice = sorted(set(d.get("kwargs") or {}) & {"name", *_CARD_ARGS})
        if twice:
            raise ConfigError(f"{source}: 'kwargs' must not hold {', '.join(map(repr, twice))} (card fields)")
        return cls(**d)

    def build(self) -> nn.Module:
        """A freshly initialised encoder with this card's architecture."""
        return build_encoder(self.name, layout=self.layout, in_channels=self.in_channels,
                             num_persons=self.num_persons, **self.kwargs)


def make_card(name: str, model: nn.Module, *, frames: int | None = None,
              dataset: str | None = None, split: str | None = None,
              text_model: str | None = None, extra: dict | None = None) -> EncoderCard:
    """Card of a model built by :func:`build_encoder` (uses its ``config()``)."""
    if name not in _ENCODERS:
        raise unknown_name("encoder", name, _ENCODERS)
    if not isinstance(model, _ENCODERS[name]):
        raise ConfigError(f"model is a {type(model).__name__}, not a {name!r} encoder")
    cfg = model.config()
    return EncoderCard(
        name=name, layout=cfg["layout"], in_channels=cfg["in_channels"], frames=frames,
        num_persons=cfg["num_persons"], feature_dim=int(model.feature_dim), dataset=dataset,
        split=split, text_model=text_model,
        num_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        kwargs={k: v for k, v in cfg.items() if k not in _CARD_ARGS}, extra=dict(extra or {}))
