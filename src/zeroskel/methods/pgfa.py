"""PGFA: end-to-end skeleton-text alignment with test-time prototype-guided alignment.

Zhou et al., *Zero-Shot Skeleton-Based Action Recognition With Prototype-Guided Feature
Alignment*, IEEE TIP 34, 2025. A skeleton encoder (ST-GCN slim / Shift-GCN) and a linear
projection into the frozen text space are trained from scratch with a symmetric
multi-positive KL contrastive loss; at test time the unseen-class text anchors are
replaced by prototypes of confidently pseudo-labelled test features
(:func:`zeroskel.methods.alignment.prototype_alignment`).

Differences from the reference code (all documented in the run's ``metrics.json``):
the epoch is chosen on a seen-class validation split (never on the test set), accuracy
is sample-level, warm-up epoch 0 trains at ``lr/5`` (``train.warmup_reference_bug``
reproduces the reference's lr 0), and the temperature may be learnable.

Library entry points: :func:`train_pgfa` (used by :func:`zeroskel.engine.runs.train`),
:func:`evaluate_pgfa`, :class:`PGFAClassifier` (``score`` / ``predict`` for GZSL
evaluators), :class:`PGFAModel`, :func:`multi_positive_kl_loss`.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.layouts import BODY_PARTS, body_part_joints
from ..errors import CheckpointError, ConfigError, DataError, unknown_name
from ..models.modality import InputModality, check_modality
from ..engine.data import augment_batch, check_augment, load_prepared
from ..engine.trainer import PRECISIONS, autocast
from .alignment import ALIGN_DEFAULTS, align_kwargs, aligned_scores, prototype_alignment

CHECKPOINT_KIND = "zeroskel.pgfa.model"
CHECKPOINT_VERSION = 1


# =========================================================================== loss
def multi_positive_kl_loss(feats: torch.Tensor, text: torch.Tensor, labels: torch.Tensor,
                           logit_scale: torch.Tensor | float, sharpness: float = 10.0) -> torch.Tensor:
    """Symmetric multi-positive KL contrastive loss (PGFA / ActionCLIP style).

    ``L = s * cos(f_i, t_j)`` (B, B), where ``t_j`` is the text of sample j's class;
    targets ``P_i = softmax_j(sharpness * [y_i == y_j])``; loss =
    ``(KL(P || softmax_row(L)) + KL(P || softmax_row(L^T))) / 2``, each KL summed over j and
    averaged over the batch.

    Args:
        feats: (B, D) projected skeleton features (not necessarily normalised).
        text: (B, D) text embedding of each sample's class.
        labels: (B,) class ids.
        logit_scale: s (scalar, e.g. 1/0.07).
        sharpness: target sharpness (the reference uses 10).
    Returns:
        scalar loss.
    """
    f = F.normalize(feats, dim=1)
    t = F.normalize(text, dim=1)
    logits = logit_scale * f @ t.t()
    same = (labels[:, None] == labels[None, :]).to(logits.dtype)
    target = torch.softmax(sharpness * same, dim=1)
    log_target = torch.log_softmax(sharpness * same, dim=1)

    def kl(lg):
        return (target * (log_target - torch.log_softmax(lg, dim=1))).sum(dim=1).mean()

    return 0.5 * (kl(logits) + kl(logits.t()))


def contrastive_loss(model: "PGFAModel", feats: torch.Tensor, text: torch.Tensor, labels: torch.Tensor,
                     sharpness: float = 10.0) -> torch.Tensor:
    """PGFA's training loss for ``model``'s (B, feature_dim) outputs and (B, feature_dim) targets
    (each sample's class anchor): :func:`multi_positive_kl_loss`, averaged over the blocks of a
    temporal-segment model (global, then each segment against its own texts)."""
    return block_mean_loss(model, feats, text,
                           lambda f, t: multi_positive_kl_loss(f, t, labels, model.logit_scale, sharpness))


def block_mean_loss(model: "PGFAModel", feats: torch.Tensor, text: torch.Tensor, loss_fn) -> torch.Tensor:
    """Mean of ``loss_fn(feature block, text block)`` over ``model``'s blocks (one block unless
    the model has temporal segments); ``text`` is (B or C, feature_dim)."""
    return torch.stack([loss_fn(f, t) for f, t in zip(model.blocks(feats), model.blocks(text))]).mean()


def class_ce_loss(feats: torch.Tensor, class_text: torch.Tensor, target: torch.Tensor,
                  logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Cross-entropy over every training class's text anchor (CLIP-style classification).

    Unlike :func:`multi_positive_kl_loss`, whose negatives are only the classes present in
    the batch, every step contrasts each sample with all K training classes.

    Args:
        feats: (B, D) projected skeleton features; class_text: (K, D) text embeddings of
        the training classes; target: (B,) indices into those K classes; logit_scale: s.
    """
    logits = logit_scale * F.normalize(feats, dim=1) @ F.normalize(class_text, dim=1).t()
    return F.cross_entropy(logits, target)


LOSSES = ("batch_kl", "class_ce")


# =========================================================================== model
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
        learn_temperature: learn ``log(1/temperature)`` (a registered parameter, saved).
        input_frames: if set, linearly resample T to this many frames first (Shift-GCN
            needs T % 4 == 0; the reference turns 50 into 64).
        feature_norm: ``"none"`` (reference) or ``"batchnorm"``: a non-affine BatchNorm1d on
            the pooled encoder features before the projection. Pooled post-ReLU features
            share a large positive mean, so early in training every projected feature
            points the same way and all samples get the same class (the reference's first
            ~16 epochs); removing that mean lets the projection separate them from the start.
        modality: the encoder's input stream, ``joint`` (reference), ``bone``, ``motion`` or
            ``bone_motion`` (:class:`zeroskel.models.modality.InputModality`), computed
            from the joint input after resampling; needs ``layout`` unless ``joint``.
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, V, M) skeletons -> (N, D) projected (unnormalised) features."""
        if self.input_frames and x.shape[2] != self.input_frames:
            n, c, t, v, m = x.shape
            y = x.permute(0, 1, 3, 4, 2).reshape(n, c * v * m, t)
            y = F.interpolate(y, size=self.input_frames, mode="linear", align_corners=True)
            x = y.reshape(n, c, v, m, self.input_frames).permute(0, 1, 4, 2, 3).contiguous()
        if not (self.segments or self.parts):
            return self.proj(self.norm(self.encoder(self.modality(x))))
        loc = None
        if self.parts:
            loc = self.encoder.forward_local(self.modality(x))   # (N, T', V, F)
            h = loc.mean(dim=2)
        else:
            h = self.encoder.forward_temporal(self.modality(x))  # (N, T', F)
        if h.shape[1] < self.segments:
            raise DataError(f"{self.segments} temporal segments need >= {self.segments} encoder frames, "
                            f"got {h.shape[1]} (input T={x.shape[2]})")
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


def num_segments(cfg: dict) -> int:
    """Temporal segments of the model a config describes: one per ``text.segment_sources``."""
    return len(_check_segment_sources(cfg.get("text") or {}))


def part_names(cfg: dict) -> "tuple[str, ...]":
    """Body parts of the model a config describes: the keys of ``text.part_sources``."""
    return tuple(_check_part_sources(cfg.get("text") or {}))


def num_blocks(cfg: dict) -> int:
    """Text-space blocks of the model a config describes (global, segments, parts)."""
    return 1 + num_segments(cfg) + len(part_names(cfg))


def anchor_bank(blocks: "list[np.ndarray]") -> np.ndarray:
    """(C, B*D) class anchors of a segment / part model from its B (C, D) text banks (global,
    segments, parts): unit rows, each block scaled by ``1/sqrt(B)``, as :class:`PGFAModel`
    builds its outputs.
    One bank comes back as it is."""
    if len(blocks) == 1:
        return np.asarray(blocks[0], dtype=np.float32)
    k = 1.0 / math.sqrt(len(blocks))
    return (np.concatenate([_unit_rows(np.asarray(b, np.float32)) for b in blocks], axis=1) * k).astype(np.float32)


def build_model(cfg: dict, layout: str, num_persons: int, text_dim: int,
                segments: int | None = None, parts: "list[str] | None" = None) -> PGFAModel:
    """The PGFA model described by ``cfg['model']``; ``text_dim`` is the sentence encoder's
    dimension D (the anchors are ``num_blocks * D`` wide). ``segments`` defaults to one per
    ``text.segment_sources`` of ``cfg`` and ``parts`` to the keys of ``text.part_sources``
    (a bundle card gives them instead)."""
    from ..models.registry import build_encoder

    m = cfg["model"]
    args = dict(m.get("args") or {})
    if m["encoder"] == "stgcn" and m.get("preset") is not None:
        args.setdefault("preset", m["preset"])  # Shift-GCN has one size: no preset
    enc = build_encoder(m["encoder"], layout=layout, num_persons=num_persons, **args)
    return PGFAModel(enc, text_dim, temperature=float(m["temperature"]),
                     learn_temperature=bool(m["learn_temperature"]), input_frames=m.get("input_frames"),
                     feature_norm=str(m.get("feature_norm") or "none"),
                     modality=str(m.get("modality") or "joint"), layout=layout,
                     segments=num_segments(cfg) if segments is None else int(segments),
                     parts=part_names(cfg) if parts is None else tuple(parts))


# =========================================================================== data
def _source_list(src, key: str) -> list[str]:
    """``src`` (a source name or a list of them) as a list; ``key`` names the config key in errors."""
    sources = list(src) if isinstance(src, (list, tuple)) else [src]
    if not sources or not all(isinstance(x, str) and x for x in sources):
        raise ConfigError(f"{key} must be a source name or a non-empty list of them, got {src!r}")
    return sources


def _check_segment_sources(text_cfg: dict) -> list[str]:
    """``text.segment_sources`` checked: null / [] (no segments) or a list of sources."""
    seg = text_cfg.get("segment_sources")
    if seg is None or (isinstance(seg, (list, tuple)) and not seg):
        return []
    if not isinstance(seg, (list, tuple)):
        raise ConfigError(f"text.segment_sources must be null or a list of sources (one per temporal "
                          f"segment), got {seg!r}")
    _no_augmentation_with(text_cfg, "segment_sources", "segment")
    return _source_list(seg, "text.segment_sources")


def _check_part_sources(text_cfg: dict) -> "dict[str, str]":
    """``text.part_sources`` checked: null / {} (no part blocks) or ``{body part: source}``."""
    parts = text_cfg.get("part_sources")
    if parts is None or (isinstance(parts, dict) and not parts):
        return {}
    if not isinstance(parts, dict):
        raise ConfigError(f"text.part_sources must be null or a mapping {{body part: source}} with parts "
                          f"from {', '.join(BODY_PARTS)}, got {parts!r}")
    for name, src in parts.items():
        if name not in BODY_PARTS:
            raise unknown_name("body part (a key of text.part_sources)", str(name), BODY_PARTS)
        if not (isinstance(src, str) and src):
            raise ConfigError(f"text.part_sources.{name} must be one source name, got {src!r}")
    _no_augmentation_with(text_cfg, "part_sources", "part")
    return dict(parts)


def _no_augmentation_with(text_cfg: dict, key: str, what: str) -> None:
    """Segment / part texts have no augmented variants: ``text.<key>`` excludes ``text.train_sources``."""
    if text_cfg.get("train_sources") is not None:
        raise ConfigError(f"text.{key} and text.train_sources cannot be combined (the augmentation "
                          f"bank has no {what} texts); for text augmentation set text.{key}=null")


def _source_texts(cfg: dict, ds, data_root, src, key: str) -> list[list[str]]:
    """One C-list of class texts per source of ``src`` (see :func:`_source_list`)."""
    from ..text.classtexts import load_class_texts

    prompts = []
    for one in _source_list(src, key):
        texts = load_class_texts(cfg["dataset"], one, data_root)
        if len(texts) != ds.num_classes:
            raise DataError(f"text source {one!r} gives {len(texts)} texts for the "
                            f"{ds.num_classes} classes of {ds.name!r}")
        empty = [f"{i} ({ds.class_names[i]})" for i, t in enumerate(texts) if not str(t).strip()]
        if empty:
            raise DataError(f"text source {one!r}: no text for classes {', '.join(empty)}")
        prompts.append(list(texts))
    return prompts


def _source_banks(prompts: list[list[str]], enc) -> list[np.ndarray]:
    """One (C, D) float32 bank of unit sentence embeddings per C-list of class texts."""
    from ..text.cache import embed_class_texts
    return [np.asarray(embed_class_texts([t], model=enc).sentence, np.float32) for t in prompts]


def load_texts(cfg: dict, ds, data_root=None) -> dict:
    """Class texts and their embeddings: ``{"texts", "sentence" (C, D), "model", "checksum"}``.

    ``text.source`` is one source (see :func:`zeroskel.text.classtexts.load_class_texts`) or
    a list of them: a prompt ensemble, whose per-source unit embeddings are averaged and
    re-normalised per class. ``texts`` is then a list of C-lists, one per source.
    With ``text.train_sources`` (a list), ``train_bank`` (S, C, D) holds one unit embedding
    per training source and class: the targets that training draws from.
    With ``text.segment_sources`` (K sources, one per temporal segment) and / or
    ``text.part_sources`` (P body parts), ``sentence`` is the (C, (1+K+P)*D) anchor bank of
    :func:`anchor_bank` (global, segments, parts), ``segment_texts`` the K C-lists and
    ``part_texts`` ``{part: C-list}``.
    ``dim`` is the sentence encoder's D either way.
    """
    from ..text.cache import embed_class_texts
    from ..text.encoders import SentenceEncoder

    prompts = _source_texts(cfg, ds, data_root, cfg["text"]["source"], "text.source")
    enc = SentenceEncoder(cfg["text"]["model"])
    ct = embed_class_texts(prompts, model=enc, combine="mean")
    out = {"texts": prompts[0] if len(prompts) == 1 else prompts,
           "sentence": np.asarray(ct.sentence, dtype=np.float32),
           "model": getattr(ct, "model", "") or cfg["text"]["model"], "checksum": enc.checksum,
           "dim": int(ct.sentence.shape[1])}
    seg_src = _check_segment_sources(cfg["text"])
    part_src = _check_part_sources(cfg["text"])
    local: list[list[str]] = []
    if seg_src:
        out["segment_texts"] = _source_texts(cfg, ds, data_root, seg_src, "text.segment_sources")
        local += out["segment_texts"]
    if part_src:
        out["part_texts"] = {p: _source_texts(cfg, ds, data_root, src, f"text.part_sources.{p}")[0]
                             for p, src in part_src.items()}
        local += list(out["part_texts"].values())
    if local:
        out["sentence"] = anchor_bank([out["sentence"]] + _source_banks(local, enc))
    train_src = cfg["text"].get("train_sources")
    if train_src:
        tp = _source_texts(cfg, ds, data_root, train_src, "text.train_sources")
        out["train_bank"] = np.stack(_source_banks(tp, enc))
    return out


# =========================================================================== features / scoring
@torch.no_grad()
def embed(model: nn.Module, data: np.ndarray, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """(N, 3, T, V, M) preprocessed skeletons -> (N, D) projected features (eval mode)."""
    was = model.training
    model.eval()
    out = []
    for s in range(0, len(data), batch_size):
        # np.array copies: a slice of a read-only memmap is not writable (torch warns)
        xb = torch.from_numpy(np.array(data[s:s + batch_size], dtype=np.float32, order="C")).to(device)
        out.append(model(xb).float().cpu().numpy())
    model.train(was)
    return np.concatenate(out) if out else np.zeros((0, getattr(model, "feature_dim", 0)), np.float32)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero); keeps the dtype."""
    x = np.asarray(x)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _unit_rows(a) @ _unit_rows(b).T


def zsl_eval(feats: np.ndarray, labels: np.ndarray, classes: np.ndarray, text: np.ndarray,
             align: dict | None = None, details: bool = False) -> dict:
    """Top-1 of nearest text anchor over ``classes`` (and with prototype alignment).

    Args:
        feats: (N, D) features; labels: (N,) global ids; classes: (K,) candidate ids;
        text: (C, D) text embeddings of all classes; align: the ``alignment`` config.
    """
    from ..eval.metrics import confusion_matrix, per_class_accuracy, top1

    anchors = text[classes]
    pred = classes[cosine(feats, anchors).argmax(1)]
    out: dict[str, Any] = {"top1": top1(pred, labels)}
    if details:
        out["per_class"] = {str(k): v for k, v in per_class_accuracy(pred, labels, classes).items()}
        out["confusion"] = confusion_matrix(pred, labels, classes).tolist()
    if align and align.get("enabled", True):
        _, ap = prototype_alignment(feats, anchors, **align_kwargs(align))
        apred = classes[ap]
        out["top1_aligned"] = top1(apred, labels)
        if details:
            out["per_class_aligned"] = {str(k): v for k, v in per_class_accuracy(apred, labels, classes).items()}
            out["confusion_aligned"] = confusion_matrix(apred, labels, classes).tolist()
    return out


class PGFAClassifier:
    """A trained PGFA model with its class-text bank: ``score`` / ``predict`` for any classes.

    Args:
        model: trained :class:`PGFAModel`.
        text: (C, D) text embeddings of every class of the dataset (row = class id).
        card: the checkpoint card (config, class names, seen / unseen, text model...).
        device: torch device for skeleton inputs.
    """

    def __init__(self, model: PGFAModel, text: np.ndarray, card: dict | None = None,
                 device: torch.device | str = "cpu") -> None:
        from ..engine.trainer import resolve_device

        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.text = np.asarray(text, dtype=np.float32)
        if self.text.ndim != 2 or self.text.shape[1] != model.feature_dim:
            raise CheckpointError(f"text embeddings of shape {self.text.shape} do not match the model's "
                                  f"anchor dimension {model.feature_dim}")
        self.card = dict(card or {})

    @property
    def feature_dim(self) -> int:
        return self.model.feature_dim

    @property
    def seen_classes(self) -> np.ndarray:
        return np.asarray(self.card.get("seen", []), dtype=np.int64)

    @property
    def unseen_classes(self) -> np.ndarray:
        return np.asarray(self.card.get("unseen", []), dtype=np.int64)

    def features(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, 3, T, V, M) preprocessed skeletons -> (N, D); (N, D) features pass through."""
        x = np.asarray(x)
        if x.ndim == 2:
            if x.shape[1] != self.feature_dim:
                raise DataError(f"features of dimension {x.shape[1]} do not match the model's {self.feature_dim}")
            return x.astype(np.float32)
        if x.ndim != 5:
            raise DataError(f"expected skeletons (N, 3, T, V, M) or features (N, {self.feature_dim}), "
                            f"got shape {x.shape}")
        if not np.isfinite(x).all():
            raise DataError("skeletons contain NaN or inf")
        return embed(self.model, x, self.device, batch_size)

    def _classes(self, classes) -> np.ndarray:
        from .base import check_classes
        return check_classes(classes, len(self.text), "PGFAClassifier classes")

    def score(self, x: np.ndarray, classes, align: dict | None = None) -> np.ndarray:
        """(N, K) cosine similarities of ``x`` (skeletons or features) to ``classes``' anchors.

        With ``align`` (an ``alignment`` config dict), the anchors are first replaced by the
        prototypes of :func:`prototype_alignment` computed on these same samples
        (transductive; meaningful when all samples come from ``classes``).
        """
        feats = self.features(x)
        classes = self._classes(classes)
        anchors = self.text[classes]
        if align:
            return aligned_scores(feats, anchors, **align_kwargs(align)).astype(np.float32)
        return cosine(feats, anchors).astype(np.float32)

    def predict(self, x: np.ndarray, classes, align: dict | None = None) -> np.ndarray:
        """(N,) predicted global class ids among ``classes``."""
        classes = self._classes(classes)
        return classes[self.score(x, classes, align).argmax(1)]

    # ------------------------------------------------------------ persistence
    def state(self) -> dict:
        return {"kind": CHECKPOINT_KIND, "version": CHECKPOINT_VERSION,
                "model": self.model.state_dict(), "text": torch.from_numpy(self.text), **self.card}

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu", text: np.ndarray | None = None,
             data_root=None) -> "PGFAClassifier":
        """Load a final-model checkpoint (``final.pt`` of a run directory, or the folder).

        ``text`` (C, D) replaces the stored text bank (e.g. new class texts); its dimension
        must match the checkpoint's.
        """
        from ..engine.trainer import load_checkpoint

        path = Path(path)
        if path.is_dir():
            path = path / "final.pt"
        st = load_checkpoint(path)
        if st.get("kind") != CHECKPOINT_KIND:
            raise CheckpointError(f"{path}: not a PGFA model checkpoint (kind {st.get('kind')!r})")
        for key in ("config", "model", "text", "layout", "num_persons"):
            if key not in st:
                raise CheckpointError(f"{path}: missing key {key!r}")
        stored = st["text"].numpy()
        if text is not None:
            text = np.asarray(text, dtype=np.float32)
            if text.ndim != 2 or text.shape[1] != stored.shape[1]:
                raise CheckpointError(f"{path}: model was trained on {stored.shape[1]}-d text embeddings "
                                      f"({st.get('text_model')}), got text of shape {text.shape}")
        cfg = st["config"]
        model = build_model(cfg, st["layout"], int(st["num_persons"]), stored.shape[1] // num_blocks(cfg))
        try:
            model.load_state_dict(st["model"])
        except RuntimeError as e:
            raise CheckpointError(f"{path}: weights do not match the configured model "
                                  f"({str(e).splitlines()[0][:200]})") from None
        card = {k: v for k, v in st.items() if k not in ("model", "text")}
        return cls(model, stored if text is None else text, card, device)


class PGFAEnsemble(PGFAClassifier):
    """Several trained PGFA models of one split scored as one (e.g. different training seeds).

    A sample's ensemble feature is the concatenation of the members' L2-normalised features,
    each block scaled by ``1/sqrt(M)``; a class anchor is the same concatenation of the
    members' normalised text anchors. The ensemble cosine is therefore the mean of the
    members' cosines, and the prototype alignment runs unchanged on the joint features.
    Members must share dataset, partition, class lists, split, layout and preprocessing.

    Args:
        members: the trained :class:`PGFAClassifier` s (at least one).
        names: how errors name the members (e.g. their run directories).
    """

    #: card keys the members must agree on (and ``config.data.pipeline``)
    MUST_MATCH = ("dataset", "partition", "class_names", "seen", "unseen", "layout", "num_persons", "frames")

    def __init__(self, members: "list[PGFAClassifier]", names: "list[str] | None" = None) -> None:
        members = list(members)
        if not members:
            raise ConfigError("PGFAEnsemble needs at least one member")
        names = list(names) if names is not None else [f"member {i}" for i in range(len(members))]
        first = members[0]
        for name, m in zip(names[1:], members[1:]):
            for key in self.MUST_MATCH:
                if first.card.get(key) != m.card.get(key):
                    raise CheckpointError(f"ensemble members {names[0]} and {name} differ in {key!r}: "
                                          f"{first.card.get(key)!r} vs {m.card.get(key)!r}")
            pa = first.card.get("config", {}).get("data", {}).get("pipeline")
            pb = m.card.get("config", {}).get("data", {}).get("pipeline")
            if pa != pb:
                raise CheckpointError(f"ensemble members {names[0]} and {name} use different preprocessing "
                                      f"(data.pipeline {pa!r} vs {pb!r})")
        self.members = members
        self._scale = 1.0 / math.sqrt(len(members))
        self.device = first.device
        self.text = np.concatenate([_unit_rows(m.text) for m in members], axis=1) * self._scale
        self.card = {**first.card, "ensemble": names}

    @property
    def feature_dim(self) -> int:
        return int(sum(m.feature_dim for m in self.members))

    def features(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, 3, T, V, M) preprocessed skeletons -> (N, sum of member dims); joint features pass through."""
        x = np.asarray(x)
        if x.ndim == 2:
            return super().features(x)
        return self.join([m.features(x, batch_size) for m in self.members])

    def join(self, member_feats: "list[np.ndarray]") -> np.ndarray:
        """The ensemble features of the members' own (N, D_m) features, in member order."""
        if len(member_feats) != len(self.members):
            raise DataError(f"join: {len(member_feats)} feature arrays for {len(self.members)} members")
        return np.concatenate([_unit_rows(f) for f in member_feats], axis=1) * self._scale

    def state(self) -> dict:
        raise CheckpointError("a PGFAEnsemble is not saved as one checkpoint; keep its members' run directories")


# =========================================================================== training
def _optim_cfg(cfg: dict, epochs: int):
    from ..engine.trainer import OptimConfig

    t = cfg["train"]
    return OptimConfig(optimizer=t["optimizer"], lr=t["lr"], momentum=t["momentum"], nesterov=bool(t["nesterov"]),
                       weight_decay=t["weight_decay"], schedule=t["schedule"], milestones=tuple(t["milestones"]),
                       gamma=t["gamma"], min_lr=t["min_lr"], warmup_epochs=t["warmup_epochs"],
                       warmup_reference_bug=bool(t["warmup_reference_bug"]), epochs=int(epochs))


def check_config(cfg: dict) -> None:
    """Value checks beyond the schema (names and ranges), with the offending key named."""
    for key in ("dataset", "split"):
        if not cfg.get(key):
            raise ConfigError(f"config key {key!r} is not set (--{key})")
    v = cfg["validation"]
    if v["mode"] not in ("pseudo_unseen", "heldout_seen", "none"):
        raise unknown_name("validation.mode", str(v["mode"]), ["pseudo_unseen", "heldout_seen", "none"])
    if select_rule(v) not in SELECT_RULES:
        raise unknown_name("validation.select", str(v["select"]), SELECT_RULES)
    if v["metric"] not in ("top1", "top1_aligned"):
        raise unknown_name("validation.metric", str(v["metric"]), ["top1", "top1_aligned"])
    align_kwargs(cfg["alignment"])  # bad alignment options fail before training, not after
    loss = cfg["model"].get("loss", "batch_kl")
    if loss not in LOSSES:
        raise unknown_name("model.loss", str(loss), LOSSES)
    train_sources = cfg["text"].get("train_sources")
    if train_sources is not None:
        _source_list(train_sources, "text.train_sources")
        if loss == "class_ce":
            raise ConfigError("model.loss class_ce uses one text per class; it cannot be combined with "
                              "text.train_sources")
    _check_segment_sources(cfg["text"])
    _check_part_sources(cfg["text"])
    if v.get("heldout_group") and v["mode"] == "none":
        raise ConfigError("validation.heldout_group needs validation.mode pseudo_unseen or heldout_seen, got 'none'")
    cf = v.get("calibration_fraction")
    if cf is not None and not (isinstance(cf, (int, float)) and 0.0 <= cf < 1.0):
        raise ConfigError(f"validation.calibration_fraction must be in [0, 1), got {cf!r}")
    if int(v["smooth"]) < 1 or int(v["min_epoch"]) < 1:
        raise ConfigError("validation.smooth and validation.min_epoch must be >= 1")
    every = v.get("every", 1)
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ConfigError(f"validation.every must be a positive integer, got {every!r}")
    t = cfg["train"]
    if v["mode"] != "none" and select_rule(v) == "best" and int(v["min_epoch"]) > int(t["epochs"]):
        raise ConfigError(f"validation.min_epoch={v['min_epoch']} is after the last epoch "
                          f"(train.epochs={t['epochs']}): no epoch could be selected")
    if t.get("precision", "fp32") not in PRECISIONS:
        raise unknown_name("train.precision", str(t["precision"]), PRECISIONS)
    if not isinstance(t["batch_size"], int) or t["batch_size"] < 2:
        raise ConfigError(f"train.batch_size must be an integer >= 2, got {t['batch_size']!r}")
    if cfg["model"]["encoder"] not in ("stgcn", "shiftgcn"):
        raise unknown_name("encoder (model.encoder)", str(cfg["model"]["encoder"]), ["stgcn", "shiftgcn"])
    check_modality(cfg["model"].get("modality") or "joint")
    check_augment(cfg["data"]["augment"])
    _optim_cfg(cfg, max(1, int(t["epochs"])))  # optimiser names / ranges


def select_epoch(history: list[dict], metric: str, smooth: int = 1, min_epoch: int = 1) -> int:
    """1-based epoch maximising the (trailing-window mean of the) validation ``metric``.

    Ties go to the earliest epoch. ``history`` entries carry ``val_<metric>``; only epochs
    that were evaluated (``validation.every``) can be picked, and the window averages the
    evaluated epochs among the last ``smooth``.
    """
    key = f"val_{metric}"
    vals = np.array([h.get(key, np.nan) for h in history], dtype=np.float64)
    done = ~np.isnan(vals)
    if not done.any():
        raise ConfigError(f"no validation metric {key!r} recorded; cannot select an epoch")
    sm = np.full(len(vals), -np.inf)
    for i in np.flatnonzero(done):
        w = slice(max(0, i - smooth + 1), i + 1)
        sm[i] = vals[w][done[w]].mean()
    sm[: max(0, min_epoch - 1)] = -np.inf
    if np.isneginf(sm).all():
        raise ConfigError(f"no validated epoch at or after validation.min_epoch={min_epoch} "
                          f"(last validated: {int(np.flatnonzero(done)[-1]) + 1})")
    return int(np.argmax(sm)) + 1


SELECT_RULES = ("best", "last")


def select_rule(vcfg: dict) -> str:
    """``validation.select``; ``best`` for run configs saved before the key existed."""
    return vcfg.get("select", "best")


def chosen_epoch(history: list[dict], vcfg: dict) -> int:
    """The stage-1 epoch that ``validation`` config ``vcfg`` picks: ``select: best`` is
    :func:`select_epoch` on the validation curve; ``select: last`` is the last epoch of the
    budget (the validation stage then only supplies the GZSL calibration and the curve)."""
    if select_rule(vcfg) == "last":
        return len(history)
    return select_epoch(history, vcfg["metric"], int(vcfg["smooth"]), int(vcfg["min_epoch"]))


class _Stage:
    """Data and closures for one training stage (stage 1 = selection, stage 2 = refit).

    ``text_t`` is (C, D): every sample's target is its class text; or (S, C, D) (text
    augmentation, ``text.train_sources``): each sample's target is drawn from the S texts
    of its class at every step.
    """

    def __init__(self, cfg, data, lengths, labels, text_t, device):
        self.cfg, self.data, self.lengths, self.labels = cfg, data, lengths, labels
        self.text_t, self.device = text_t, device
        self.precision = cfg["train"].get("precision", "fp32")
        self.loss = cfg["model"].get("loss", "batch_kl")
        if self.loss == "class_ce":  # the stage's own classes (pseudo-seen in stage 1, seen in stage 2)
            classes = np.unique(labels)
            self.class_index = torch.full((int(classes.max()) + 1,), -1, dtype=torch.long, device=device)
            self.class_index[torch.from_numpy(classes).to(device)] = torch.arange(len(classes), device=device)
            self.class_text = text_t[torch.from_numpy(classes).to(device)]

    def batches(self, epoch: int, rng: np.random.Generator):
        t = self.cfg["train"]
        bs = int(t["batch_size"])
        n = len(self.labels)
        perm = rng.permutation(n)
        stop = (n // bs) * bs if t["drop_last"] and n >= bs else n
        aug = self.cfg["data"]["augment"]
        for s in range(0, stop, bs):
            idx = perm[s:s + bs]
            if len(idx) < 2:
                continue
            x = np.asarray(self.data[idx], dtype=np.float32)
            x = augment_batch(x, self.lengths[idx], aug, rng)
            if not x.flags.writeable:  # e.g. a view of a read-only memmap: torch warns
                x = x.copy()
            y = torch.from_numpy(np.array(self.labels[idx]))
            if self.text_t.dim() == 3:  # drawn here, from the epoch's generator: reproducible on resume
                yield torch.from_numpy(x), y, torch.from_numpy(rng.integers(self.text_t.shape[0], size=len(idx)))
            else:
                yield torch.from_numpy(x), y

    def step(self, model: PGFAModel, batch):
        x, y = batch[0].to(self.device), batch[1].to(self.device)
        with autocast(self.device, self.precision):
            feats = model(x)
        feats = feats.float()  # the loss in fp32 under any precision
        if self.loss == "class_ce":
            target = self.class_index[y]
            return block_mean_loss(model, feats, self.class_text,
                                   lambda f, t: class_ce_loss(f, t, target, model.logit_scale)), len(y)
        target = self.text_t[batch[2].to(self.device), y] if len(batch) == 3 else self.text_t[y]
        return contrastive_loss(model, feats, target, y, float(self.cfg["model"]["target_sharpness"])), len(y)


def _set_threads(cfg):
    th = cfg["train"].get("threads")
    if th:
        torch.set_num_threads(int(th))


def train_pgfa(cfg: dict, run_dir: str | Path, data_root=None, logger=None,
               max_epochs: int | None = None) -> dict | None:
    """Train (or resume) a PGFA run in ``run_dir`` and write ``metrics.json``.

    Stages:
      1. *selection*: train on the seen classes minus the validation part, evaluate the
         validation set after every epoch (pseudo-unseen ZSL or held-out seen samples),
         pick the epoch (:func:`chosen_epoch`: the best on validation, or with
         ``validation.select: last`` the last of the budget). Skipped for ``validation.mode: none``.
         In ``pseudo_unseen`` mode, ``validation.calibration_fraction`` of each pseudo-seen
         class is also held out; the GZSL calibrated-stacking gamma of the selected epoch
         (chosen on those + the pseudo-unseen samples) is stored in ``selection.json``.
      2. *final*: with ``validation.refit`` retrain from scratch on all seen classes for the
         selected number of epochs (else keep the stage-1 model of the selected epoch).
    Then the final model is evaluated on the test set (ZSL over the unseen classes of the
    test partition, with and without alignment; optionally GZSL) and saved as
    ``final.pt`` (a :class:`PGFAClassifier` checkpoint).

    Every epoch is checkpointed (``stage1_last.pt`` / ``stage2_last.pt``); calling again on
    the same run directory resumes where it stopped, with identical results.
    ``max_epochs`` stops the current stage after that many completed epochs (returns None):
    a hook to simulate interruptions.

    Returns:
        the metrics dict (also written to ``run_dir/metrics.json``), or None if stopped.
    """
    from ..engine.trainer import close_logger, run_logger

    import os
    import sys

    echo = sys.stderr.isatty() and not os.environ.get("ZEROSKEL_QUIET")
    log = logger or run_logger(Path(run_dir) / "train.log", echo=echo)
    try:
        return _train_pgfa(cfg, Path(run_dir), data_root, log, max_epochs)
    finally:
        if logger is None:
            close_logger(log)


def _train_pgfa(cfg: dict, run_dir: Path, data_root, log, max_epochs: int | None) -> dict | None:
    from ..data.splits import get_split, holdout_group, stratified_holdout
    from ..engine.trainer import (Trainer, check_precision, load_checkpoint, resolve_device, save_checkpoint,
                                  seed_everything, versions)

    from ..eval.protocol import calibrate

    check_config(cfg)
    _set_threads(cfg)
    device = resolve_device(cfg.get("device", "auto"))
    check_precision(cfg["train"].get("precision", "fp32"), device)
    seed = int(cfg["seed"])
    seed_everything(seed, bool(cfg["train"]["deterministic"]))
    data_root = data_root if data_root is not None else cfg.get("data_root")
    t_start = time.perf_counter()

    ds, part = load_prepared(cfg, data_root)
    split = get_split(cfg["dataset"], cfg["split"])
    split.check(ds, part)
    tx = load_texts(cfg, ds, data_root)
    text = tx["sentence"]
    # training targets: the class texts, or the augmentation bank (S, C, D) of text.train_sources
    text_t = torch.from_numpy(tx.get("train_bank", text)).to(device)
    labels = ds.labels
    train_part, test_part = ds.partition(part, "train"), ds.partition(part, "test")
    lim = cfg["data"].get("limit_per_class")
    if lim is not None:
        if not isinstance(lim, int) or lim < 1:
            raise ConfigError(f"data.limit_per_class must be null or a positive integer, got {lim!r}")
        train_part = np.sort(np.concatenate([train_part[labels[train_part] == c][:lim]
                                             for c in np.unique(labels[train_part])]))
    seen, unseen = split.seen_array, split.unseen_array
    train_idx = train_part[np.isin(labels[train_part], seen)]
    num_persons = int(ds.data.shape[-1])
    prec = cfg["train"].get("precision", "fp32")
    log.info(f"pgfa {cfg['dataset']} {split.name} seed {seed} device {device}"
             f"{'' if prec == 'fp32' else f' ({prec} autocast)'}: {len(train_idx)} training "
             f"samples of {len(seen)} seen classes, partition {part!r}, text {tx['model']} ({text.shape[1]}-d)")

    def make_model():
        torch.manual_seed(seed)  # identical initial weights in every stage and on resume
        return build_model(cfg, ds.layout, num_persons, tx["dim"])

    card = {"config": cfg, "dataset": ds.name, "class_names": list(ds.class_names), "layout": ds.layout,
            "num_persons": num_persons, "frames": int(ds.data.shape[2]), "partition": part,
            "split": split.to_dict(), "seen": seen.tolist(), "unseen": unseen.tolist(),
            "text_model": tx["model"], "text_checksum": tx["checksum"], "text_source": cfg["text"]["source"],
            "text_train_sources": cfg["text"].get("train_sources"),
            "text_segment_sources": cfg["text"].get("segment_sources"),
            "text_part_sources": cfg["text"].get("part_sources"), "versions": versions()}

    def gather(idx):
        return np.asarray(ds.data[idx], dtype=np.float32)

    epochs = int(cfg["train"]["epochs"])
    vcfg = cfg["validation"]
    align = cfg["alignment"]
    eval_bs = int(cfg["eval"]["batch_size"])
    selection: dict[str, Any] = {"mode": vcfg["mode"]}
    sel_path = run_dir / "selection.json"

    # ------------------------------------------------------------------ stage 1
    cal_idx = np.zeros(0, np.int64)
    calib_reason = {"none": "validation.mode is none: no held-out seen data to choose gamma on",
                    "heldout_seen": "validation.mode heldout_seen: the held-out data has no (pseudo-)unseen "
                                    "classes, so the seen/unseen trade-off cannot be measured"}.get(vcfg["mode"])
    if vcfg["mode"] != "none":
        vseed = seed if vcfg["seed"] is None else int(vcfg["seed"])
        fit_pool = val_pool = train_part
        group_key = vcfg.get("heldout_group")
        if group_key:
            fit_pool, val_pool, held = holdout_group(ds, train_part, str(group_key), vseed,
                                                     vcfg.get("heldout_count", 1))
            selection.update(heldout_group={"key": str(group_key), "value": held})
            log.info(f"validation: samples of {group_key} {held!r} only; stage 1 never sees that {group_key}")
        if vcfg["mode"] == "pseudo_unseen":
            vsplit = split.validation_split(num_unseen=vcfg["num_unseen"], seed=vseed)
            fit_idx = fit_pool[np.isin(labels[fit_pool], vsplit.seen_array)]
            val_idx = val_pool[np.isin(labels[val_pool], vsplit.unseen_array)]
            val_classes = vsplit.unseen_array
            selection.update(pseudo_seen=vsplit.seen_array.tolist(), pseudo_unseen=val_classes.tolist())
            cfrac = float(vcfg.get("calibration_fraction") or 0.0)
            if cfrac > 0:
                # held-out pseudo-seen samples: the "seen" side of the GZSL calibration
                fit_idx, cal_idx = stratified_holdout(labels[fit_idx], vsplit.seen_array, cfrac, vseed, fit_idx)
            if len(cal_idx) == 0:
                calib_reason = ("validation.calibration_fraction is 0: no held-out pseudo-seen samples"
                                if cfrac <= 0 else "no pseudo-seen class has 2 samples to hold one out")
        elif group_key:  # heldout_seen by group: every seen sample of the held-out subjects/views
            fit_idx = fit_pool[np.isin(labels[fit_pool], seen)]
            val_idx = val_pool[np.isin(labels[val_pool], seen)]
            val_classes = seen
        else:
            fit_idx, val_idx = split.holdout_seen(labels, fraction=float(vcfg["fraction"]), seed=vseed,
                                                  index=train_part)
            val_classes = seen
        if len(val_idx) == 0 or len(fit_idx) < 2:
            raise DataError(f"validation mode {vcfg['mode']!r} leaves {len(fit_idx)} training and "
                            f"{len(val_idx)} validation samples; use validation.mode none")
        selection.update(fit_samples=int(len(fit_idx)), val_samples=int(len(val_idx)))
        vdata, vlab = gather(val_idx), labels[val_idx]
        stage_align = align if vcfg["mode"] == "pseudo_unseen" else None
        if len(cal_idx):
            selection["calibration_samples"] = int(len(cal_idx))
            cdata, clab = gather(cal_idx), np.concatenate([labels[cal_idx], vlab])
            cal_classes = np.concatenate([vsplit.seen_array, val_classes])

        def val_fn(model, epoch):
            f = embed(model, vdata, device, eval_bs)
            r = zsl_eval(f, vlab, val_classes, text, stage_align)
            out = {f"val_{k}": v for k, v in r.items()}
            if len(cal_idx):
                # GZSL over pseudo-seen + pseudo-unseen of held-out samples only (never test)
                sc = cosine(np.concatenate([embed(model, cdata, device, eval_bs), f]), text[cal_classes])
                c = calibrate(sc, clab, cal_classes, vsplit.seen_array, val_classes)["stacking"]
                out.update({f"val_calib_{k}": v for k, v in c.items()})
            return out

        if not sel_path.is_file():
            st1 = _Stage(cfg, gather(fit_idx), ds.lengths[fit_idx], labels[fit_idx], text_t, device)

            def keep_best(trainer, res):
                # the trailing-window criterion of an epoch never depends on later epochs,
                # so "best so far" is final: keep that model for refit: false
                if (not vcfg["refit"] and res.metrics and trainer.epoch >= int(vcfg["min_epoch"])
                        and chosen_epoch(trainer.history, vcfg) == trainer.epoch):
                    save_checkpoint({"model": trainer.model.state_dict(), "epoch": trainer.epoch},
                                    run_dir / "stage1_best.pt")

            tr = Trainer(make_model(), st1.step, st1.batches, _optim_cfg(cfg, epochs), seed=seed, device=device,
                         checkpoint=run_dir / "stage1_last.pt", eval_fn=val_fn, on_epoch_end=keep_best,
                         logger=log, grad_clip=cfg["train"]["grad_clip"], eval_every=int(vcfg.get("every", 1)),
                         extra_state={"stage": 1, "config": cfg})
            log.info(f"stage 1 (selection, {vcfg['mode']}): {len(fit_idx)} fit / {len(val_idx)} validation samples")
            tr.fit(epochs, max_epochs=max_epochs)
            if tr.epoch < epochs:
                log.info(f"stopped after epoch {tr.epoch} of stage 1 (max_epochs={max_epochs})")
                return None
            best = chosen_epoch(tr.history, vcfg)
            selection.update(best_epoch=best, metric=vcfg["metric"], rule=select_rule(vcfg),
                             val_curve=[{k: h[k] for k in h if k.startswith("val_") or k in ("epoch", "loss")}
                                        for h in tr.history],
                             best_val=tr.history[best - 1].get(f"val_{vcfg['metric']}"),
                             seconds=float(sum(h["seconds"] for h in tr.history)))
            h = tr.history[best - 1]
            selection["calibration"] = {"available": False, "reason": calib_reason} if not len(cal_idx) else {
                "available": True, "rule": "stacking", "gamma": float(h["val_calib_gamma"]),
                "heldout": {k: float(h[f"val_calib_{k}"]) for k in ("S", "U", "H")}, "epoch": best,
                "source": f"stage-1 model at the selected epoch; cosine scores over the pseudo-seen + "
                          f"pseudo-unseen classes of {len(cal_idx)} held-out pseudo-seen and {len(val_idx)} "
                          f"pseudo-unseen training samples (zeroskel.eval.protocol.calibrate); no test data"}
            log.info(f"selected epoch {best} ({'the last of the budget; ' if selection['rule'] == 'last' else ''}"
                     f"validation {vcfg['metric']} {selection['best_val']:.2f})")
            tmp = sel_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(selection, indent=1))
            tmp.replace(sel_path)
        selection = json.loads(sel_path.read_text())
        final_epochs = int(selection["best_epoch"])
    else:
        final_epochs = epochs
        selection["best_epoch"] = epochs
    # runs started before calibration existed have no record: say so rather than guess
    selection.setdefault("calibration", {"available": False, "reason": calib_reason or
                                         "selection.json predates GZSL calibration"})

    # ------------------------------------------------------------------ stage 2
    test_idx = test_part[np.isin(labels[test_part], unseen)]
    test_data = gather(test_idx)
    ref_fn = None
    if cfg["eval"]["reference_protocol"]:
        def ref_fn(model, epoch):
            f = embed(model, test_data, device, eval_bs)
            r = zsl_eval(f, labels[test_idx], unseen, text, align)
            return {f"test_{k}": v for k, v in r.items()}

    if vcfg["mode"] != "none" and not vcfg["refit"]:
        model = make_model()
        model.load_state_dict(load_checkpoint(run_dir / "stage1_best.pt")["model"])
        model.to(device)
        history2: list[dict] = []
        stage2_seconds = 0.0
    else:
        st2 = _Stage(cfg, gather(train_idx), ds.lengths[train_idx], labels[train_idx], text_t, device)
        # the reference protocol needs every epoch of a full-length run
        n2 = epochs if ref_fn is not None else final_epochs
        # same schedule horizon as stage 1, so the refit model at epoch e saw the same lrs
        tr = Trainer(make_model(), st2.step, st2.batches, _optim_cfg(cfg, epochs), seed=seed,
                     device=device, checkpoint=run_dir / "stage2_last.pt", eval_fn=ref_fn, logger=log,
                     grad_clip=cfg["train"]["grad_clip"], extra_state={"stage": 2, "config": cfg})
        if ref_fn is None:
            log.info(f"stage 2 (final model): {len(train_idx)} samples, {final_epochs} epochs")
            tr.fit(final_epochs, max_epochs=max_epochs)
            if tr.epoch < final_epochs:
                log.info(f"stopped after epoch {tr.epoch} of stage 2 (max_epochs={max_epochs})")
                return None
        else:
            # keep the weights at the selected epoch while the run continues to the end
            def keep(trainer, res):
                if trainer.epoch == final_epochs:
                    save_checkpoint({"model": trainer.model.state_dict(), "epoch": final_epochs},
                                    run_dir / "stage2_selected.pt")
            tr.on_epoch_end = keep
            log.info(f"stage 2 (final model at epoch {final_epochs}; running all {n2} epochs for "
                     "the reference protocol)")
            tr.fit(n2, max_epochs=max_epochs)
            if tr.epoch < n2:
                return None
            tr.model.load_state_dict(load_checkpoint(run_dir / "stage2_selected.pt")["model"])
        model = tr.model
        history2 = tr.history
        stage2_seconds = float(sum(h["seconds"] for h in tr.history))

    # ------------------------------------------------------------------ final model + test
    from ..models.registry import make_card
    enc_card = make_card(cfg["model"]["encoder"], model.encoder, frames=card["frames"], dataset=ds.name,
                         split=split.name, text_model=tx["model"]).to_dict()
    clf = PGFAClassifier(model, text, {**card, "encoder_card": enc_card,
                                       "selection": {k: v for k, v in selection.items() if k != "val_curve"}},
                         device)
    save_checkpoint(clf.state(), run_dir / "final.pt")
    metrics = evaluate_classifier(clf, ds, part, align, gzsl=bool(cfg["eval"]["gzsl"]), batch_size=eval_bs,
                                  calibration=selection["calibration"])
    metrics["selection"] = selection
    if ref_fn is not None and history2:
        curve = [h.get("test_top1_aligned", h.get("test_top1")) for h in history2]
        plain = [h.get("test_top1") for h in history2]
        metrics["reference_protocol_best_epoch_on_test"] = {
            "note": "max over epochs of the TEST accuracy (the reference code's protocol); "
                    "test-selected, NOT a valid zero-shot estimate; for comparison only",
            "top1": max(plain), "top1_epoch": int(np.argmax(plain)) + 1,
            "top1_aligned": max(curve) if align.get("enabled", True) else None,
            "top1_aligned_epoch": int(np.argmax(curve)) + 1}
    metrics["train_seconds"] = {"stage1": float(selection.get("seconds", 0.0)), "stage2": stage2_seconds,
                                "total_wall": time.perf_counter() - t_start}
    metrics["final_epochs"] = final_epochs
    metrics["device"] = str(device)
    metrics["precision"] = cfg["train"].get("precision", "fp32")
    metrics["torch_threads"] = torch.get_num_threads()
    write_json(metrics, run_dir / "metrics.json")
    log.info(f"test ZSL top1 {metrics['zsl_top1']:.2f}"
             + (f", with alignment {metrics['zsl_top1_aligned']:.2f}" if "zsl_top1_aligned" in metrics else ""))
    return metrics


def write_json(obj: dict, path: Path) -> None:
    tmp = Path(path).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float))
    tmp.replace(path)


def evaluate_classifier(clf: PGFAClassifier, ds, partition: str, align: dict, gzsl: bool = True,
                        batch_size: int = 256, calibration: dict | None = None) -> dict:
    """Test metrics of a final model on ``ds`` (preprocessed as in training).

    ZSL: unseen classes of the test part, argmax over the unseen classes, with and without
    prototype alignment; sample-level top-1 %, per-class accuracy, confusion matrices.
    GZSL: every test sample, cosine scores over seen + unseen; S / U / H uncalibrated
    (``gzsl_uncalibrated``) and with calibrated stacking (``gzsl_calibrated``) at the gamma
    of ``calibration`` (``selection["calibration"]``, chosen on held-out training data).
    Flora's ratio gate is not applied: it is defined on non-negative errors (min error
    ratio), and a cosine similarity is not one.
    """
    from ..eval.gzsl import gzsl_eval
    from ..eval.metrics import gzsl_scores, top1

    labels = ds.labels
    test_part = ds.partition(partition, "test")
    seen, unseen = clf.seen_classes, clf.unseen_classes
    test_idx = test_part[np.isin(labels[test_part], unseen)]
    if len(test_idx) == 0:
        raise DataError(f"no test samples of the unseen classes {unseen.tolist()} in partition {partition!r}")
    feats = clf.features(np.asarray(ds.data[test_idx], dtype=np.float32), batch_size)
    r = zsl_eval(feats, labels[test_idx], unseen, clf.text, align, details=True)
    out: dict[str, Any] = {"zsl_top1": r["top1"]}
    if "top1_aligned" in r:
        out["zsl_top1_aligned"] = r["top1_aligned"]
    out["test_samples"] = int(len(test_idx))
    out["unseen_classes"] = unseen.tolist()
    out["zsl_per_class"] = r["per_class"]
    out["zsl_confusion"] = r["confusion"]
    if "per_class_aligned" in r:
        out["zsl_per_class_aligned"] = r["per_class_aligned"]
        out["zsl_confusion_aligned"] = r["confusion_aligned"]
    if gzsl:
        all_idx = test_part[np.isin(labels[test_part], np.concatenate([seen, unseen]))]
        gf = clf.features(np.asarray(ds.data[all_idx], dtype=np.float32), batch_size)
        classes = np.concatenate([seen, unseen])
        scores = clf.score(gf, classes)
        pred = classes[scores.argmax(1)]
        g = gzsl_scores(pred, labels[all_idx], seen, unseen)
        out["gzsl_uncalibrated"] = {**g, "top1_all": top1(pred, labels[all_idx]),
                                    "note": "argmax over seen+unseen text anchors, no calibration"}
        cal = calibration or {"available": False, "reason": "no calibration record (run predates it)"}
        if cal.get("available"):
            r = gzsl_eval(scores, labels[all_idx], classes, seen, unseen, gamma=float(cal["gamma"]))
            out["gzsl_calibrated"] = {"available": True, **r, "rule": "stacking", "gamma_source": cal["source"],
                                      "heldout": cal["heldout"]}
        else:
            out["gzsl_calibrated"] = {"available": False, "reason": cal.get("reason")}
        out["gzsl_gate"] = "not applicable: Flora's ratio gate needs non-negative error scores, PGFA gives cosines"
    return out


def evaluate_pgfa(run_dir: "str | Path | list", data_root=None, device: str | None = None,
                  alignment: dict | None = None) -> dict:
    """Re-evaluate a finished PGFA run from its ``final.pt`` and ``config.yaml``.

    ``run_dir`` may be a list of run directories of the same split: they are evaluated as
    one :class:`PGFAEnsemble` (mean of the members' cosines; the first run's alignment and
    evaluation settings). GZSL calibration is per model, so an ensemble reports GZSL
    uncalibrated only.
    ``alignment`` overrides keys of the run's ``alignment`` config (e.g.
    ``{"pseudo_labels": "balanced"}``); unknown keys and bad values are errors.
    """
    from ..engine.config import merge
    from ..engine.trainer import resolve_device

    dirs = [Path(d) for d in run_dir] if isinstance(run_dir, (list, tuple)) else [Path(run_dir)]
    if not dirs:
        raise ConfigError("evaluate_pgfa: no run directory given")
    clfs = []
    for d in dirs:
        ck = d / "final.pt"
        if not ck.is_file():
            raise CheckpointError(f"{d}: no final.pt; the run did not finish (resume it with "
                                  "zeroskel.engine.runs.resume_run)")
        clfs.append(PGFAClassifier.load(ck, device=resolve_device(device or "auto")))
    clf = clfs[0] if len(clfs) == 1 else PGFAEnsemble(clfs, [str(d) for d in dirs])
    ck = dirs[0] / "final.pt"
    cfg = clf.card["config"]
    align = {**ALIGN_DEFAULTS, "enabled": True, **cfg["alignment"]}  # older runs lack newer keys
    if alignment:
        align = merge(align, dict(alignment), "alignment override", prefix="alignment.")
    align_kwargs(align)  # a bad override fails before the dataset is loaded
    data_root = data_root if data_root is not None else cfg.get("data_root")
    ds, part = load_prepared(cfg, data_root)
    if list(ds.class_names) != list(clf.card["class_names"]):
        raise CheckpointError(f"{ck}: class names of the checkpoint differ from dataset {ds.name!r}")
    if int(ds.data.shape[2]) != int(clf.card["frames"]):
        raise CheckpointError(f"{ck}: trained on {clf.card['frames']} frames, data has {ds.data.shape[2]}")
    calibration = clf.card.get("selection", {}).get("calibration") if len(clfs) == 1 else {
        "available": False, "reason": "ensemble: each member's gamma was chosen for its own scores"}
    out = evaluate_classifier(clf, ds, part, align, gzsl=bool(cfg["eval"]["gzsl"]),
                              batch_size=int(cfg["eval"]["batch_size"]), calibration=calibration)
    out["alignment"] = align
    if len(clfs) > 1:
        out["ensemble"] = [str(d) for d in dirs]
    return out
