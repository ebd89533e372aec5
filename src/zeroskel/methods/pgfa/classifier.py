"""A trained PGFA model with its class-text bank (:class:`PGFAClassifier`), saved as one
checkpoint, and seed ensembles of such models (:class:`PGFAEnsemble`).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ...errors import CheckpointError, ConfigError, DataError
from ..alignment import align_kwargs, aligned_scores
from .model import PGFAModel, build_model
from .scoring import _unit_rows, cosine, embed
from .texts import num_blocks


CHECKPOINT_KIND = "zeroskel.pgfa.model"
CHECKPOINT_VERSION = 1


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
        from ...engine.trainer import resolve_device

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
        from ..base import check_classes
        return check_classes(classes, len(self.text), "PGFAClassifier classes")

    def score(self, x: np.ndarray, classes, align: dict | None = None, groups=None) -> np.ndarray:
        """(N, K) cosine similarities of ``x`` (skeletons or features) to ``classes``' anchors.

        With ``align`` (an ``alignment`` config dict), the anchors are first replaced by the
        prototypes of :func:`prototype_alignment` computed on these same samples
        (transductive; meaningful when all samples come from ``classes``). ``groups`` (N,):
        the ``alignment.center_by`` value of each sample (e.g. its subject), needed when
        ``align`` centres per group. An ``align`` dict with ``enabled: false`` (a run's
        ``alignment`` section switched off) scores without alignment, as the run's evaluation.
        """
        feats = self.features(x)
        classes = self._classes(classes)
        anchors = self.text[classes]
        if align:
            align_kwargs(align)  # checks enabled (a boolean) and every value, also when it is off
        if align and align.get("enabled", True):
            if align.get("center_by") and align.get("center") and groups is None:
                raise ConfigError(f"alignment.center_by {align['center_by']!r} centres each group on its own "
                                  "mean: pass groups= (one per sample), or set center_by None for one mean")
            return aligned_scores(feats, anchors, groups=groups, **align_kwargs(align)).astype(np.float32)
        return cosine(feats, anchors).astype(np.float32)

    def predict(self, x: np.ndarray, classes, align: dict | None = None, groups=None) -> np.ndarray:
        """(N,) predicted global class ids among ``classes`` (``align``, ``groups``: see :meth:`score`)."""
        classes = self._classes(classes)
        return classes[self.score(x, classes, align, groups).argmax(1)]

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
        from ...engine.trainer import load_checkpoint

        path = Path(path)
        if path.is_dir():
            path = path / "final.pt"
        st = load_checkpoint(path)
        if st.get("kind") != CHECKPOINT_KIND:
            raise CheckpointError(f"{path}: not a PGFA model checkpoint (kind {st.get('kind')!r})")
        version = st.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool) or version > CHECKPOINT_VERSION:
            # a later format may store what this version would read differently, silently
            raise CheckpointError(f"{path}: PGFA checkpoint version {version!r} is newer than this zeroskel "
                                  f"{_zeroskel_version()} understands ({CHECKPOINT_VERSION}); update zeroskel")
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


def _zeroskel_version() -> str:
    import zeroskel
    return str(zeroskel.__version__)


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
