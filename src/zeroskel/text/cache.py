"""On-disk cache of class-text embeddings.

Keyed by the text model's weight checksum, a checksum of the rest of its folder (pooling,
tokenizer, configs), the exact texts and the encoding options, so a changed description,
model, model configuration or ``max_length`` never returns stale vectors. Files are
plain ``.npy`` written atomically (safe with several processes).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..paths import cache_root
from ..methods.base import ClassTexts

log = logging.getLogger(__name__)


def embedding_key(checksum: str, texts: list[str], kind: str, **options) -> str:
    """Hex key for ``texts`` encoded by the model with weight ``checksum``.

    ``kind`` is ``"sentence"`` or ``"tokens"``; ``options`` (e.g. ``max_length``,
    ``normalize``) take part in the key.
    """
    payload = json.dumps({"model": checksum, "kind": kind, "options": options, "texts": list(texts)},
                         sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Folder of cached arrays, ``<folder>/<key[:2]>/<key>.npy``.

    Args:
        folder: default ``<cache root>/text_embeddings`` (``$ZEROSKEL_CACHE``).
    """

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder).expanduser() if folder is not None else cache_root() / "text_embeddings"

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            return np.load(p, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:  # truncated by a crash (EOFError: empty): rewrite it
            log.warning("text embedding cache: %s is damaged (%s); computing it again", p, e)
            return None

    def put(self, key: str, array: np.ndarray) -> Path:
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f"{p.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npy")  # one per writer
        np.save(tmp, np.asarray(array, dtype=np.float32))
        tmp.replace(p)
        return p


def _cached(cache: EmbeddingCache, encoder, texts: list[str], kind: str, compute, **options) -> np.ndarray:
    # the weights and the rest of the model folder (pooling, tokenizer, max length) both shape the vectors
    key = embedding_key(encoder.checksum, texts, kind, model_setup=getattr(encoder, "setup_checksum", None),
                        **options)
    arr = cache.get(key)
    if arr is not None and len(arr) != len(texts):  # a damaged or foreign file under this key: recompute
        arr = None
    if arr is None:
        arr = compute()
        cache.put(key, arr)
    return arr


def embed_class_texts(texts, model="all-MiniLM-L6-v2", tokens_max_length: int | None = None,
                      cache_dir: str | os.PathLike | None = None, device: str = "cpu",
                      normalize: bool = True, combine: str = "mean", names: list[str] | None = None,
                      use_cache: bool = True) -> ClassTexts:
    """Encode class texts into a :class:`ClassTexts` bank, with an on-disk cache.

    Args:
        texts: C strings (row i = class id i), or a list of P such lists (several prompts
            per class, e.g. ``[names, descriptions]``).
        model: a model name / folder, or a :class:`SentenceEncoder` (reused, loaded only on a
            cache miss).
        tokens_max_length: if given, also compute Flora-style token banks
            (C, L+1, D * P): each prompt's :meth:`SentenceEncoder.encode_tokens` output,
            concatenated on channels.
        cache_dir: cache folder (default ``<cache root>/text_embeddings``).
        device: torch device when ``model`` is a name.
        normalize: L2-normalise the sentence embeddings (per prompt, and again after
            averaging).
        combine: how P prompts give one sentence vector: ``"mean"`` (D) or ``"concat"`` (P*D).
        names: class names stored in the bank (default: the first prompt's texts).
        use_cache: read/write the cache.

    Returns:
        ClassTexts with ``sentence`` (C, D or P*D), ``tokens`` or None, ``names``, ``model``.
    """
    from .encoders import SentenceEncoder

    prompts = [list(texts)] if texts and isinstance(texts[0], str) else [list(t) for t in texts]
    if not prompts or not prompts[0]:
        raise ConfigError("embed_class_texts: no texts")
    sizes = {len(p) for p in prompts}
    if len(sizes) != 1:
        raise ConfigError(f"embed_class_texts: prompt lists have different lengths {[len(p) for p in prompts]}")
    if combine not in ("mean", "concat"):
        raise ConfigError(f"embed_class_texts: combine must be 'mean' or 'concat', got {combine!r}")
    encoder = model if isinstance(model, SentenceEncoder) else SentenceEncoder(model, device=device)
    cache = EmbeddingCache(cache_dir)

    def one(p, kind, compute, **opts):
        return _cached(cache, encoder, p, kind, compute, **opts) if use_cache else compute()

    sent = [one(p, "sentence", lambda p=p: encoder.encode(p, normalize=normalize), normalize=normalize)
            for p in prompts]
    if combine == "concat":
        sentence = np.concatenate(sent, axis=1)
    else:
        sentence = np.mean(sent, axis=0)
        if normalize and len(sent) > 1:
            sentence = sentence / np.maximum(np.linalg.norm(sentence, axis=1, keepdims=True), 1e-12)
    tokens = None
    if tokens_max_length is not None:
        toks = [one(p, "tokens", lambda p=p: encoder.encode_tokens(p, tokens_max_length),
                    max_length=int(tokens_max_length)) for p in prompts]
        tokens = np.concatenate(toks, axis=2)
    return ClassTexts(sentence=sentence.astype(np.float32), tokens=tokens,
                      names=list(names) if names is not None else list(prompts[0]), model=encoder.name)
