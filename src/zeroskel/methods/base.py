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

from .._checks import whole_numbers
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
        try:
            self.sentence = np.asarray(self.sentence, dtype=np.float32)
        except (TypeError, ValueError) as e:  # ragged rows, strings
            raise DataError(f"class texts: 'sentence' is not a numeric (C, D) array ({e})") from None
        if self.sentence.ndim != 2:
            raise DataError(f"class texts: 'sentence' must be (C, D), got {self.sentence.shape}")
        if not np.isfinite(self.sentence).all():
            raise DataError("class texts: 'sentence' contains NaN or inf")
        if self.names is not None and len(self.names) != len(self.sentence):
            # reports would name class i after another class's text
            raise DataError(f"class texts: {len(self.names)} names for {len(self.sentence)} classes")
        if self.tokens is not None:
            try:
                self.tokens = np.asarray(self.tokens, dtype=np.float32)
            except (TypeError, ValueError) as e:
                raise DataError(f"class texts: 'tokens' is not a numeric (C, L, D) array ({e})") from None
            if self.tokens.ndim != 3 or len(self.tokens) != len(self.sentence):
                raise DataError(f"class texts: 'tokens' must be (C={len(self.sentence)}, L, D), "
                                f"got {self.tokens.shape}")
            if not np.isfinite(self.tokens).all():
                raise DataError("class texts: 'tokens' contains NaN or inf")

    @property
    def num_classes(self) -> int:
        """C: rows of ``sentence`` (class ids are ``0 .. C-1``)."""
        return len(self.sentence)


def _listed(values):
    """``list(values)`` for any iterable (a set, a range, a generator); arrays and scalars as they
    are, so that a scalar reaches the shape check instead of a TypeError from ``list``."""
    if isinstance(values, np.ndarray):
        return values
    try:
        return list(values)
    except TypeError:
        return values


def check_features(feats: np.ndarray, where: str, dim: int | None = None) -> np.ndarray:
    """``feats`` as finite float32 (N, D) (``D == dim`` when given); :class:`DataError` naming
    ``where`` otherwise."""
    try:
        feats = np.asarray(feats, dtype=np.float32)
    except (TypeError, ValueError) as e:  # ragged rows, strings: numpy's message named no argument
        raise DataError(f"{where}: features are not a numeric (N, D) array ({e})") from None
    if feats.ndim != 2:
        raise DataError(f"{where}: features must be (N, D), got shape {feats.shape}")
    if dim is not None and feats.shape[1] != dim:
        raise DataError(f"{where}: feature dimension {feats.shape[1]} does not match the model's {dim}")
    if not np.isfinite(feats).all():
        raise DataError(f"{where}: features contain NaN or inf")
    return feats


def as_ids(values, where: str) -> np.ndarray:
    """``values`` as a 1-D int64 array of ids; :class:`DataError` naming ``where`` unless they are
    whole numbers (floats such as 3.0 pass, 3.6 or NaN do not: truncating them would score or
    train on other classes than the caller meant)."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as e:
        raise DataError(f"{where}: not an array of class ids ({e})") from None
    if arr.ndim != 1:
        raise DataError(f"{where}: must be a 1-D list of class ids, got shape {arr.shape}")
    if arr.dtype == bool:
        raise DataError(f"{where}: class ids must be integers, got booleans")
    if arr.size and not whole_numbers(arr):
        if not np.issubdtype(arr.dtype, np.floating):
            raise DataError(f"{where}: class ids must be integers, got dtype {arr.dtype}")
        bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))]
        raise DataError(f"{where}: class ids must be whole numbers, got {bad[:5].tolist()}")
    return arr.astype(np.int64)


def check_classes(classes, num_classes: int, where: str) -> np.ndarray:
    """``classes`` (K,) as distinct int64 ids in ``[0, num_classes)``; :class:`DataError` (not
    whole numbers, not 1-D: a single id must be a list ``[c]``) or :class:`ConfigError`
    (empty, out of range, duplicated) naming ``where``."""
    classes = as_ids(_listed(classes), where)
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
        """Fit on seen-class training data.

        Args:
            feats: (N, D) skeleton features of seen-class samples (N >= 1).
            labels: (N,) their class ids (whole numbers, each in ``seen_classes``).
            texts: :class:`ClassTexts` of every class id the method may be asked about.
            seen_classes: (S,) the seen class ids, in any order; each needs at least one training
                sample.
        Returns:
            self.
        """
        if not isinstance(texts, ClassTexts):
            raise ConfigError(f"{self.name}.fit: texts must be a ClassTexts (zeroskel.methods.ClassTexts or "
                              f"zeroskel.data.features.load_token_bank), got {type(texts).__name__}")
        feats = check_features(feats, f"{self.name}.fit")
        if len(feats) == 0:
            raise DataError(f"{self.name}.fit: no training samples (features of shape {feats.shape})")
        labels = as_ids(labels, f"{self.name}.fit labels")
        if labels.shape != (len(feats),):
            raise DataError(f"{self.name}.fit: labels shape {labels.shape} != ({len(feats)},)")
        # sorted: seen_classes is a set of ids, and the methods map labels to positions among them
        # (DeViSE by np.searchsorted, which an unsorted list made crash or train on wrong targets)
        seen = np.sort(check_classes(seen_classes, texts.num_classes, f"{self.name}.fit seen_classes"))
        outside = np.setdiff1d(np.unique(labels), seen)
        if outside.size:
            raise DataError(f"{self.name}.fit: training labels {outside.tolist()} are not seen classes")
        empty = np.setdiff1d(seen, labels)
        if empty.size:
            raise DataError(f"{self.name}.fit: seen classes {empty.tolist()} have no training samples "
                            "(leave them out of seen_classes)")
        self.feature_dim = feats.shape[1]
        self.texts_ = texts
        self.seen_classes_ = seen
        self._fit(feats, labels, texts, seen)
        return self

    @abstractmethod
    def _fit(self, feats: np.ndarray, labels: np.ndarray, texts: ClassTexts, seen: np.ndarray) -> None: ...

    @abstractmethod
    def score(self, feats: np.ndarray, classes) -> np.ndarray:
        """(N, K) float scores of ``feats`` (N, D) against class ids ``classes`` (K,), column k =
        ``classes[k]`` (higher = more likely; float32, or float64 for Flora's negated errors).

        Raises :class:`ConfigError` before :meth:`fit` or for empty, duplicate or unknown class
        ids, :class:`DataError` for features of another width, NaN, or non-integer ids.
        """

    def predict(self, feats: np.ndarray, classes) -> np.ndarray:
        """(N,) class ids: the best-scoring of ``classes`` (K,) for each row of ``feats`` (N, D)."""
        if not hasattr(self, "texts_"):
            raise ConfigError(f"{self.name}: call fit() before predict()")
        classes = check_classes(classes, self.texts_.num_classes, f"{self.name}.predict")
        return classes[np.argmax(self.score(feats, classes), axis=1)]
