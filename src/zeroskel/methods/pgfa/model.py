"""The PGFA network: a skeleton encoder and linear projection(s) into the text space, and
:func:`build_model` to make one from a config.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...data.layouts import body_part_joints
from ...errors import ConfigError, DataError, unknown_name
from ...models.modality import InputModality, channel_factor
from .texts import num_segments, part_names


def _projection_heads(n: int, feat_dim: int, text_dim: int) -> nn.ModuleList:
    """``n`` linear projections into the text space, initialised as the global one (all are
    built before any is re-initialised, so the random stream is that of earlier versions)."""
    heads = nn.ModuleList(nn.Linear(feat_dim, text_dim) for _ in range(n))
    for lin in heads:
        nn.init.kaiming_normal_(lin.weight, mode="fan_out")
        nn.init.zeros_(lin.bias)
    return heads


class PGFAModel(nn.Module):
    """Skeleton encoder + linear projection into the text space.

    Args:
        encoder: module mapping (N, 3, T, V, M) to (N, F); must expose ``feature_dim``.
        text_dim: dimension D of the text embeddings.
        temperature: initial temperature; logit scale = 1 / temperature.
        learn_temperature: learn ``log(1/temperature)`` (a registered parameter, saved), exempt
            from weight decay and capped at a logit scale of 100 after each update, as CLIP.
        input_frames: if set, linearly resample T to this many frames first (Shift-GCN
            needs T % 4 == 0; the reference turns 50 into 64). The first and last frames
            map onto each other (``align_corners=True``); the reference's
            ``F.interpolate(scale_factor=(1.28, 1, 1), mode='trilinear')`` (half-frame
            centres) samples 50 -> 64 at times up to 0.11 frame away from these.
        feature_norm: ``"none"`` (reference) or ``"batchnorm"``: a non-affine BatchNorm1d on
            the pooled encoder features before the projection. Pooled post-ReLU features
            share a large positive mean, so early in training every projected feature
            points the same way and all samples get the same class (the reference's first
            ~16 epochs); removing that mean lets the projection separate them from the start.
        modality: the encoder's input stream, ``joint`` (reference), ``bone``, ``motion``,
            ``bone_motion`` or ``joint_motion`` (:class:`zeroskel.models.modality.InputModality`),
            computed from the joint input after resampling; needs ``layout`` for bones. The
            encoder must take its channels (``joint_motion``: twice the coordinates;
            :func:`build_model` sees to it).
        layout: the input's joint layout.
        segments: K > 0 adds K temporal segments (PURLS-style local alignment): the encoder's
            time axis is cut into K consecutive parts, each pooled and projected by its own
            linear layer into the text space, to be aligned with a text of that phase of
            the action (``text.segment_sources``, e.g. start / middle / end). The output is
            then ``K + 1`` unit blocks (global first) scaled by ``1/sqrt(K + 1)``, so a
            cosine against anchors built the same way (:func:`anchor_bank`) is the mean of
            the blocks' cosines, and scoring, alignment, GZSL and ensembles are unchanged.
        parts: body-part names (:data:`zeroskel.data.layouts.BODY_PARTS`, e.g. ``("head",
            "hands", "torso", "legs")``), PURLS-style part-level alignment: the encoder's last
            feature map is pooled over each part's joints (and all of time) and projected by
            its own linear layer, to be aligned with a text about that part
            (``text.part_sources``). Part blocks follow the segment blocks; needs ``layout``.
    """

    FEATURE_NORMS = ("none", "batchnorm")
    #: cap of a learned logit scale (CLIP's): an uncapped scale can grow until the softmax is one-hot
    MAX_LOGIT_SCALE = 100.0

    def __init__(self, encoder: nn.Module, text_dim: int, temperature: float = 0.07,
                 learn_temperature: bool = False, input_frames: int | None = None,
                 feature_norm: str = "none", modality: str = "joint",
                 layout: str | None = None, segments: int = 0, parts: "tuple[str, ...]" = ()) -> None:
        super().__init__()
        if not temperature > 0:
            raise ConfigError(f"model.temperature must be > 0, got {temperature}")
        if feature_norm not in self.FEATURE_NORMS:
            raise unknown_name("model.feature_norm", str(feature_norm), self.FEATURE_NORMS)
        self.modality = InputModality(modality, layout)
        self.encoder = encoder
        feat_dim = int(getattr(encoder, "feature_dim"))
        self.feature_norm = feature_norm
        self.norm = self._feature_norm(feat_dim)
        self.proj = nn.Linear(feat_dim, text_dim)
        nn.init.kaiming_normal_(self.proj.weight, mode="fan_out")
        nn.init.zeros_(self.proj.bias)
        init = torch.tensor(math.log(1.0 / temperature), dtype=torch.float32)
        if learn_temperature and temperature < 1.0 / self.MAX_LOGIT_SCALE:
            raise ConfigError(f"model.temperature must be >= {1.0 / self.MAX_LOGIT_SCALE} with "
                              f"model.learn_temperature (the learned logit scale is capped at "
                              f"{self.MAX_LOGIT_SCALE:g}), got {temperature}")
        if learn_temperature:
            self.log_scale = nn.Parameter(init)
        else:
            self.register_buffer("log_scale", init)
        self.text_dim = int(text_dim)
        self.input_frames = input_frames
        if not (isinstance(segments, int) and segments >= 0):
            raise ConfigError(f"segments must be an integer >= 0, got {segments!r}")
        self.segments = segments
        if segments:
            if not hasattr(encoder, "forward_temporal"):
                raise ConfigError(f"{type(encoder).__name__} has no forward_temporal: no temporal segments")
            self.seg_norm = self._feature_norm(feat_dim)
            self.seg_proj = _projection_heads(segments, feat_dim, text_dim)
        self.parts = tuple(parts)
        self._part_joints: list[list[int]] = []
        if self.parts:
            if not hasattr(encoder, "forward_local"):
                raise ConfigError(f"{type(encoder).__name__} has no forward_local: no body-part blocks")
            if layout is None:
                raise ConfigError("body-part blocks need the input's joint layout")
            if len(set(self.parts)) != len(self.parts):
                raise ConfigError(f"body parts must be distinct, got {list(self.parts)}")
            try:
                self._part_joints = [list(body_part_joints(layout, p)) for p in self.parts]
            except ValueError as e:
                raise ConfigError(str(e)) from None
            self.part_norm = self._feature_norm(feat_dim)
            self.part_proj = _projection_heads(len(self.parts), feat_dim, text_dim)

    def _feature_norm(self, feat_dim: int) -> nn.Module:
        """The pooled-feature normalisation that ``feature_norm`` names (one per head group)."""
        return nn.BatchNorm1d(feat_dim, affine=False) if self.feature_norm == "batchnorm" else nn.Identity()

    @property
    def feature_dim(self) -> int:
        """Width of the output features and of the class anchors: ``num_blocks * text_dim``."""
        return self.text_dim * self.num_blocks

    @property
    def num_blocks(self) -> int:
        """Global block + one per temporal segment + one per body part."""
        return 1 + self.segments + len(self.parts)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def no_weight_decay(self) -> set[str]:
        """Parameters the optimiser must not decay: a learned log logit scale (decay would pull
        the temperature towards 1 whatever the loss says; CLIP exempts it too)."""
        return {"log_scale"} if isinstance(self.log_scale, nn.Parameter) else set()

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Cap a learned logit scale at :attr:`MAX_LOGIT_SCALE` after each update (as CLIP does);
        clamping the value, not the forward pass, lets the gradient bring it back down."""
        if isinstance(self.log_scale, nn.Parameter):
            self.log_scale.clamp_(max=math.log(self.MAX_LOGIT_SCALE))

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input: resampled to ``input_frames`` and turned into ``modality``."""
        if self.input_frames and x.shape[2] != self.input_frames:
            n, c, t, v, m = x.shape
            y = x.permute(0, 1, 3, 4, 2).reshape(n, c * v * m, t)
            y = F.interpolate(y, size=self.input_frames, mode="linear", align_corners=True)
            x = y.reshape(n, c, v, m, self.input_frames).permute(0, 1, 4, 2, 3).contiguous()
        return self.modality(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, V, M) skeletons -> (N, F) pooled encoder features (before any projection)."""
        return self.encoder(self._input(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, V, M) skeletons -> (N, D) projected (unnormalised) features."""
        if not (self.segments or self.parts):
            return self.proj(self.norm(self.encode(x)))
        t_in = x.shape[2]  # the caller's frame count, for the error below
        x = self._input(x)
        loc = None
        if self.parts:
            loc = self.encoder.forward_local(x)   # (N, T', V, F)
            h = loc.mean(dim=2)
        else:
            h = self.encoder.forward_temporal(x)  # (N, T', F)
        if h.shape[1] < self.segments:
            raise DataError(f"{self.segments} temporal segments need >= {self.segments} encoder frames, "
                            f"got {h.shape[1]} (input T={t_in})")
        blocks = [self.proj(self.norm(h.mean(dim=1)))]
        if self.segments:
            for seg, lin in zip(torch.tensor_split(h, self.segments, dim=1), self.seg_proj):
                blocks.append(lin(self.seg_norm(seg.mean(dim=1))))
        if self.parts:
            for joints, lin in zip(self._part_joints, self.part_proj):
                blocks.append(lin(self.part_norm(loc[:, :, joints].mean(dim=(1, 2)))))
        return torch.cat([F.normalize(b, dim=1) for b in blocks], dim=1) / math.sqrt(len(blocks))

    def blocks(self, feats: torch.Tensor) -> "list[torch.Tensor]":
        """Split (N, feature_dim) outputs (or anchors) into the ``num_blocks`` (N, text_dim) blocks."""
        return list(torch.split(feats, self.text_dim, dim=-1))


def build_model(cfg: dict, layout: str, num_persons: int, text_dim: int,
                segments: int | None = None, parts: "list[str] | None" = None) -> PGFAModel:
    """The PGFA model described by ``cfg['model']``; ``text_dim`` is the sentence encoder's
    dimension D (the anchors are ``num_blocks * D`` wide). ``segments`` defaults to one per
    ``text.segment_sources`` of ``cfg`` and ``parts`` to the keys of ``text.part_sources``
    (a bundle card gives them instead)."""
    from ...models.registry import build_encoder

    m = cfg["model"]
    args = dict(m.get("args") or {})
    if m["encoder"] == "stgcn" and m.get("preset") is not None:
        args.setdefault("preset", m["preset"])  # Shift-GCN has one size: no preset
    modality = str(m.get("modality") or "joint")
    factor = channel_factor(modality)
    if factor != 1:  # e.g. joint_motion: position and velocity stacked, 2 x 3 channels per joint
        args["in_channels"] = factor * int(args.get("in_channels", 3))
    enc = build_encoder(m["encoder"], layout=layout, num_persons=num_persons, **args)
    return PGFAModel(enc, text_dim, temperature=float(m["temperature"]),
                     learn_temperature=bool(m["learn_temperature"]), input_frames=m.get("input_frames"),
                     feature_norm=str(m.get("feature_norm") or "none"),
                     modality=modality, layout=layout,
                     segments=num_segments(cfg) if segments is None else int(segments),
                     parts=part_names(cfg) if parts is None else tuple(parts))
