"""One interface for every zero-shot method that works on skeleton features.

A method is fitted on seen-class features and the text of *all* classes it may later be
asked about (class texts are side information; unseen *samples* are never seen in fit),
then scores any set of classes::

    method.fit(train_feats, train_labels, texts, seen_classes)
    scores = method.score(test_feats, candidate_classes)   # (N, K), higher = more likely
    pred = method.predict(test_feats, candidate_classes)   # (N,) class ids

Class ids are the dataset's original (global) ids throughout; ``texts`` is a
:class:`ClassTexts` bank indexed by those ids.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError


@dataclass
class ClassTexts:
    """Text embeddings of every class of a dataset, row i = class id i.

    Attributes:
        sentence: (C, D) sentence-level embeddings (one per class, prompts averaged or chosen).
        tokens: optional (C, L, D_tok) token-level embeddings (Flora-style banks).
        names: optional class names, for reports.
        model: name of the text model that produced them.
    """

    sentence: np.ndarray
    tokens: np.ndarray | None = None
    names: list[str] | None = None
    model: str = ""

    def __post_init__(self) -> None:
        self.sentence = np.asarray(self.sentence, dtype=np.float32)
        if self.sentence.ndim != 2:
            raise DataError(f"class texts: 'sentence' must be (C, D), got {self.sentence.shape}")
        if self.tokens is not None:
            self.tokens = np.asarray(self.tokens, dtype=np.float32)
            if self.tokens.ndim != 3 or len(self.tokens) != len(self.sentence):
                raise DataError(f"class texts: 'tokens' must be (C={len(self.sentence)}, L, D), "
                                f"got {self.tokens.shape}")

    @property
    def num_classes(self) -> int:
        return len(self.sentence)


def check_features(feats: np.ndarray, where: str, dim: int | None = None) -> np.ndarray:
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2:
        raise DataError(f"{where}: features must be (N, D), got shape {feats.shape}")
    if dim is not None and feats.shape[1] != dim:
        raise DataError(f"{where}: feature dimension {feats.shape[1]} does not match the model's {dim}")
    if not np.isfinite(feats).all():
        raise DataError(f"{where}: features contain NaN or inf")
    return feats


def check_classes(classes, num_classes: int, where: str) -> np.ndarray:
    classes = np.asarray(list(classes), dtype=np.int64)
    if classes.size == 0:
        raise ConfigError(f"{where}: empty class list")
    bad = classes[(classes < 0) | (classes >= num_classes)]
    if bad.size:
        raise ConfigError(f"{where}: class ids {bad.tolist()} outside the {num_classes} classes with text")
    if len(set(classes.tolist())) != classes.size:
        raise ConfigError(f"{where}: duplicate class ids in {classes.tolist()}")
    return classes


class ZeroShotMethod(ABC):
    """Base class; subclasses implement ``_fit`` and ``score``."""

    name: str = "method"
    feature_dim: int | None = None

    def fit(self, feats: np.ndarray, labels: np.ndarray, texts: ClassTexts, seen_classes) -> "ZeroShotMethod":
        feats = check_features(feats, f"{self.name}.fit")
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (len(feats),):
            raise DataError(f"{self.name}.fit: labels shape {labels.shape} != ({len(feats)},)")
        seen = check_classes(seen_classes, texts.num_classes, f"{self.name}.fit seen_classes")
        outside = np.setdiff1d(np.unique(labels), seen)
        if outside.size:
            raise DataError(f"{self.name}.fit: training labels {outside.tolist()} are not seen classes")
        self.feature_dim = feats.shape[1]
        self.texts_ = texts
        self.seen_classes_ = seen
        self._fit(feats, labels, texts, seen)
        return self

    @abstractmethod
    def _fit(self, feats: np.ndarray, labels: np.ndarray, texts: ClassTexts, seen: np.ndarray) -> None: ...

    @abstractmethod
    def score(self, feats: np.ndarray, classes) -> np.ndarray:
        """(N, K) scores of ``feats`` against ``classes`` (higher = more likely)."""

    def predict(self, feats: np.ndarray, classes) -> np.ndarray:
        classes = check_classes(classes, self.texts_.num_classes, f"{self.name}.predict")
        return classes[np.argmax(self.score(feats, classes), axis=1)]
