"""Class texts of a PGFA config: the text-source keys checked, the texts loaded and embedded
with the frozen sentence encoder, and the anchor bank of segment / part models.
"""
from __future__ import annotations

import math

import numpy as np

from ...data.layouts import BODY_PARTS
from ...errors import ConfigError, DataError, ZeroskelError, unknown_name
from .scoring import _unit_rows


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
    from ...text.classtexts import load_class_texts

    prompts = []
    for one in _source_list(src, key):
        try:
            texts = load_class_texts(cfg["dataset"], one, data_root, class_names=list(ds.class_names))
        except ZeroskelError as e:  # name the config key: a preset's source may not fit this dataset
            raise type(e)(f"{key}: {e}") from None
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
    from ...text.cache import embed_class_texts
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
    from ...text.cache import embed_class_texts
    from ...text.encoders import SentenceEncoder

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
        out["train_texts"] = tp
    return out


def text_record(tx: dict) -> dict:
    """What a run's texts are, for its checkpoints (:func:`zeroskel.engine.runs.check_data_unchanged`):
    a digest of every text it embeds (class, segment, part and training texts) and the text
    model's weight checksum. Of the strings, not of the embeddings, whose last bits may differ
    between machines."""
    import hashlib
    import json

    texts = {k: tx.get(k) for k in ("texts", "segment_texts", "part_texts", "train_texts")}
    return {"class_texts": hashlib.sha256(json.dumps(texts, sort_keys=True).encode()).hexdigest()[:16],
            "text_model": str(tx.get("checksum") or "")[:16]}
