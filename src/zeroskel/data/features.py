"""Pre-extracted skeleton feature files (the layouts of Flora / STAR and SynSE / SA-DVAE).

A feature file holds one pooled feature vector per sample, already split for zero-shot
learning, with the dataset's **original** class ids as labels:

=============  ==========  =====================================================
key            shape       content
=============  ==========  =====================================================
train_data     (N_tr, D)   training samples of the *seen* classes only
train_label    (N_tr,)     original class ids
zsl_data       (N_z, D)    test samples of the *unseen* classes only
zsl_label      (N_z,)
gzsl_data      (N_g, D)    all test samples, seen and unseen classes
gzsl_label     (N_g,)
=============  ==========  =====================================================

Optional key (zeroskel's own extraction, ``extract --masked``): ``train_masked_data``
(N_tr, D), the features of each training sample's temporally masked sequence (row i =
row i of ``train_data``; :class:`~zeroskel.data.transforms.MotionMask`), for SMIE's
temporal term.

:func:`load_features` reads that ``.npz`` layout (Flora / STAR) and SynSE's released
layout, which SA-DVAE's loader reads as well: a folder (or ``.npz``) with ``train.npy``,
``train_label.npy``, ``ztest.npy``, ``z_label.npy``, ``gtest.npy``, ``g_label.npy``. :func:`save_features`
always writes the Flora layout.

Seen classes are the train labels, unseen classes the ZSL labels; every GZSL label must be
one or the other. :func:`holdout_seen` builds a *pseudo-unseen* validation problem from
the seen training data alone (for calibration and model selection without touching the
test set) and :func:`low_shot` sub-samples the training set per class.
"""
from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._checks import check_seed, whole, whole_numbers
from ..errors import ConfigError, DataError
from .npio import load_failure

#: canonical key -> accepted aliases, first match wins (Flora/SA-DVAE/STAR, SynSE, common variants)
KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "train_data": ("train_data", "train", "train_x", "x_train"),
    "train_label": ("train_label", "train_labels", "train_y", "y_train"),
    "zsl_data": ("zsl_data", "ztest", "ztest_x", "zsl_x"),
    "zsl_label": ("zsl_label", "zsl_labels", "z_label", "ztest_label", "ztest_y", "zsl_y"),
    "gzsl_data": ("gzsl_data", "gtest", "gtest_x", "gzsl_x"),
    "gzsl_label": ("gzsl_label", "gzsl_labels", "g_label", "gtest_label", "gtest_y", "gzsl_y"),
}
_PAIRS = (("train_data", "train_label"), ("zsl_data", "zsl_label"), ("gzsl_data", "gzsl_label"))
_FILE_KEYS = {"train_x": "train_data", "train_y": "train_label", "zsl_x": "zsl_data", "zsl_y": "zsl_label",
              "gzsl_x": "gzsl_data", "gzsl_y": "gzsl_label"}  # FeatureSet attribute -> canonical file key
MASKED_KEY = "train_masked_data"  # optional: features of temporally masked training sequences


@dataclass
class FeatureSet:
    """A zero-shot split of pooled skeleton features.

    Attributes:
        train_x: (N_tr, D) float32, seen-class training features.
        train_y: (N_tr,) int64 original class ids.
        zsl_x, zsl_y: (N_z, D), (N_z,) unseen-class test samples.
        gzsl_x, gzsl_y: (N_g, D), (N_g,) all test samples.
        seen_classes, unseen_classes: sorted int64 arrays of class ids (disjoint).
        num_classes: size of the class-id space (ids are in ``[0, num_classes)``).
        source: file the set was read from ("" if built in memory).
        meta: free-form JSON-able metadata (e.g. how a derived set was made).
        train_masked_x: optional (N_tr, D) features of the training samples' temporally
            masked sequences (row i masks row i of ``train_x``), or None.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    zsl_x: np.ndarray
    zsl_y: np.ndarray
    gzsl_x: np.ndarray
    gzsl_y: np.ndarray
    seen_classes: np.ndarray
    unseen_classes: np.ndarray
    num_classes: int
    source: str = ""
    meta: dict = field(default_factory=dict)
    train_masked_x: np.ndarray | None = None

    def __post_init__(self) -> None:
        for k in ("train_x", "zsl_x", "gzsl_x"):
            setattr(self, k, np.asarray(getattr(self, k), dtype=np.float32))
        if self.train_masked_x is not None:
            self.train_masked_x = np.asarray(self.train_masked_x, dtype=np.float32)
        for k in ("train_y", "zsl_y", "gzsl_y", "seen_classes", "unseen_classes"):
            ids = np.asarray(getattr(self, k))
            if ids.size and not whole_numbers(ids):  # astype(int64) turned label 1.9 into class 1
                where = f"feature file {self.source}" if self.source else "feature set"
                raise DataError(f"{where}: {k} must hold whole-number class ids, got dtype {ids.dtype}")
            setattr(self, k, ids.astype(np.int64))
        self.num_classes = int(self.num_classes)
        validate_featureset(self)

    @property
    def feature_dim(self) -> int:
        """D: width of every feature array."""
        return int(self.train_x.shape[1])

    @property
    def all_classes(self) -> np.ndarray:
        """Seen and unseen class ids, sorted."""
        return np.union1d(self.seen_classes, self.unseen_classes)

    def summary(self) -> dict:
        """JSON-able sizes, for logs and result files."""
        return {"source": self.source, "feature_dim": self.feature_dim, "num_classes": self.num_classes,
                "n_train": len(self.train_y), "n_zsl": len(self.zsl_y), "n_gzsl": len(self.gzsl_y),
                "seen": self.seen_classes.tolist(), "unseen": self.unseen_classes.tolist(),
                "train_masked": self.train_masked_x is not None}


def validate_featureset(fs: FeatureSet) -> None:
    """Check shapes, label ranges, finiteness and the seen/unseen split; :class:`DataError`."""
    where = f"feature file {fs.source}" if fs.source else "feature set"
    d = d_key = None
    for xa, ya in (("train_x", "train_y"), ("zsl_x", "zsl_y"), ("gzsl_x", "gzsl_y")):
        x, y = getattr(fs, xa), getattr(fs, ya)
        # errors about a file name its keys; about an in-memory set, its attributes
        xk, yk = (_FILE_KEYS[xa], _FILE_KEYS[ya]) if fs.source else (xa, ya)
        if x.ndim != 2:
            raise DataError(f"{where}: {xk} must be (N, D), got shape {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{where}: {yk} has shape {y.shape} but {xk} has {len(x)} rows")
        if d is None:
            d, d_key = x.shape[1], xk
        elif x.shape[1] != d:
            raise DataError(f"{where}: {xk} has feature dimension {x.shape[1]}, {d_key} has {d}")
        if len(x) == 0:
            what = " (no unseen test samples)" if xa == "zsl_x" else ""
            raise DataError(f"{where}: {xk} is empty{what}")
        if not np.isfinite(x).all():
            bad = int(np.argwhere(~np.isfinite(x))[0, 0])
            raise DataError(f"{where}: {xk} contains NaN or inf (first at row {bad})")
        if y.min() < 0 or y.max() >= fs.num_classes:
            out = np.unique(y[(y < 0) | (y >= fs.num_classes)])
            raise DataError(f"{where}: {yk} has class ids {out.tolist()} outside [0, {fs.num_classes})")
    mx = fs.train_masked_x
    if mx is not None:
        if mx.shape != fs.train_x.shape:
            raise DataError(f"{where}: train_masked_data has shape {mx.shape}, train_data has {fs.train_x.shape}")
        if not np.isfinite(mx).all():
            raise DataError(f"{where}: train_masked_data contains NaN or inf")
    seen, unseen = fs.seen_classes, fs.unseen_classes
    if unseen.size == 0:
        raise DataError(f"{where}: no unseen classes (zsl labels are empty)")
    if seen.size == 0:
        raise DataError(f"{where}: no seen classes (train labels are empty)")
    both = np.intersect1d(seen, unseen)
    if both.size:
        raise DataError(f"{where}: classes {both.tolist()} are both seen (in train labels) and unseen "
                        "(in zsl labels)")
    if not np.isin(fs.train_y, seen).all() or not np.isin(fs.zsl_y, unseen).all():
        raise DataError(f"{where}: train/zsl labels disagree with seen_classes/unseen_classes")
    stray = np.setdiff1d(np.unique(fs.gzsl_y), np.union1d(seen, unseen))
    if stray.size:
        raise DataError(f"{where}: gzsl labels {stray.tolist()} are neither seen (train) nor unseen (zsl) "
                        "classes")


# ---------------------------------------------------------------------------- reading
def _find_key(keys, canonical: str) -> str | None:
    for alias in KEY_ALIASES[canonical]:
        if alias in keys:
            return alias
    return None


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Canonical key -> array from an .npz file or a SynSE-style folder of .npy files."""
    if path.is_dir():
        present = sorted(p.stem for p in path.glob("*.npy"))
        def get(name):
            return np.load(path / f"{name}.npy", allow_pickle=False)
    else:
        try:
            z = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise DataError(f"feature file {path}: cannot read as .npz ({load_failure(path, e)})") from None
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise DataError(f"feature file {path}: expected an .npz archive of arrays, got a single array")
        present = sorted(z.files)
        def get(name):
            return z[name]
    out = {}
    if MASKED_KEY in present:
        try:
            out[MASKED_KEY] = get(MASKED_KEY)
        except (OSError, ValueError) as e:
            raise DataError(f"feature file {path}: cannot read key {MASKED_KEY!r} ({e})") from None
    for canon in KEY_ALIASES:
        k = _find_key(present, canon)
        if k is None:
            alias = ", ".join(repr(a) for a in KEY_ALIASES[canon])
            raise DataError(f"feature file {path}: missing key {canon!r} (accepted names: {alias}); "
                            f"keys present: {', '.join(present) or 'none'}")
        try:
            out[canon] = get(k)
        except (OSError, ValueError) as e:
            raise DataError(f"feature file {path}: cannot read key {k!r} ({e})") from None
    return out


def _labels(y: np.ndarray, path: Path, key: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot labels (some SynSE-style dumps)
        if not (np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()):
            raise DataError(f"feature file {path}: {key} is 2-D {y.shape} but not one-hot (each row one 1, "
                            "the rest 0); expected (N,) class ids or one-hot rows")
        y = y.argmax(1)
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1:
        raise DataError(f"feature file {path}: {key} must be (N,) class ids, got shape {y.shape}")
    if y.dtype.kind == "f":
        if not whole_numbers(y):
            raise DataError(f"feature file {path}: {key} holds non-integer values")
    elif y.dtype.kind not in "iu":
        raise DataError(f"feature file {path}: {key} has dtype {y.dtype}, expected integers")
    return y.astype(np.int64)


def load_features(path: str | os.PathLike, num_classes: int | None = None) -> FeatureSet:
    """Read a zero-shot feature split.

    Args:
        path: Flora-layout ``.npz`` (keys in :data:`KEY_ALIASES`) or a SynSE folder of
            ``.npy`` files.
        num_classes: size of the class-id space; default ``max label + 1``. Give it when
            the highest class id may be absent from the file, and to check the labels.

    Raises:
        DataError: missing file/key (the message lists the keys present), mismatched
            dimensions, labels outside ``[0, num_classes)``, a class both seen and unseen,
            no unseen class, NaN/inf features.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"feature file {path} does not exist")
    arr = _read_arrays(path)
    feats = {}
    for xk, yk in _PAIRS:
        x = np.asarray(arr[xk])
        if x.ndim != 2:
            raise DataError(f"feature file {path}: {xk} must be (N, D), got shape {x.shape}")
        if x.dtype.kind not in "fiu":
            raise DataError(f"feature file {path}: {xk} has non-numeric dtype {x.dtype}")
        y = _labels(arr[yk], path, yk)
        if len(y) != len(x):
            raise DataError(f"feature file {path}: {yk} has {len(y)} labels but {xk} has {len(x)} rows")
        if xk != "train_data" and x.shape[1] != feats["train_data"].shape[1]:
            raise DataError(f"feature file {path}: {xk} has feature dimension {x.shape[1]}, train_data has "
                            f"{feats['train_data'].shape[1]}")
        feats[xk], feats[yk] = x.astype(np.float32), y
    max_id = int(max(feats[k].max(initial=-1) for k in ("train_label", "zsl_label", "gzsl_label")))
    if num_classes is None:
        num_classes = max_id + 1
    elif not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or num_classes < 1:
        raise ConfigError(f"load_features: num_classes must be a positive integer, got {num_classes!r}")
    elif max_id >= num_classes:
        raise DataError(f"feature file {path}: class id {max_id} is outside the {num_classes} classes "
                        "given by num_classes")
    seen = np.unique(feats["train_label"])
    unseen = np.unique(feats["zsl_label"])
    masked = arr.get(MASKED_KEY)
    if masked is not None:
        masked = np.asarray(masked)
        if masked.dtype.kind not in "fiu" or masked.shape != feats["train_data"].shape:
            raise DataError(f"feature file {path}: {MASKED_KEY} must be a numeric array shaped like "
                            f"train_data {feats['train_data'].shape}, got {masked.dtype} {masked.shape}")
    return FeatureSet(feats["train_data"], feats["train_label"], feats["zsl_data"], feats["zsl_label"],
                      feats["gzsl_data"], feats["gzsl_label"], seen, unseen, num_classes,
                      source=str(path), meta={"format": "synse-dir" if path.is_dir() else "npz"},
                      train_masked_x=masked)


def check_gzsl_coverage(fs: FeatureSet) -> None:
    """:class:`DataError` unless the GZSL test set has samples of seen *and* of unseen classes.

    GZSL S is the accuracy over the seen-class test samples and U over the unseen-class ones;
    without either the evaluation is undefined. Called by ``zeroskel features check`` and
    before any fit by :func:`zeroskel.eval.protocol.evaluate_method`; not by
    :func:`load_features` (a ZSL-only use of such a file stays possible) nor by
    :func:`validate_featureset` (a held-out problem may have no held-out seen sample).
    """
    where = f"feature file {fs.source}" if fs.source else "feature set"
    key = "gzsl_label" if fs.source else "gzsl_y"
    for what, classes, src in (("seen", fs.seen_classes, "train"), ("unseen", fs.unseen_classes, "zsl")):
        if not np.isin(fs.gzsl_y, classes).any():
            raise DataError(f"{where}: {key} has no sample of the {what} classes ({src} labels "
                            f"{classes.tolist()[:10]}{' ...' if len(classes) > 10 else ''}); GZSL needs test "
                            "samples of both seen and unseen classes (gzsl_data is the whole test set)")


def save_features(path: str | os.PathLike, fs: FeatureSet) -> Path:
    """Write ``fs`` in the Flora ``.npz`` layout (six keys, original class ids; plus
    ``train_masked_data`` when the set has masked-sequence features).

    The file is written beside ``path`` under a temporary name and renamed onto it, so an
    interrupted write leaves no truncated ``path`` (nor replaces an existing one)."""
    import threading

    validate_featureset(fs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {} if fs.train_masked_x is None else {MASKED_KEY: fs.train_masked_x}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as f:  # a file object stops numpy appending ".npz" to odd suffixes
            np.savez(f, train_data=fs.train_x, train_label=fs.train_y, zsl_data=fs.zsl_x,
                     zsl_label=fs.zsl_y, gzsl_data=fs.gzsl_x, gzsl_label=fs.gzsl_y, **extra)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# ---------------------------------------------------------------------------- derived sets
def holdout_seen(fs: FeatureSet, fraction: float | None = None, seed: int = 0, *,
                 sample_fraction: float = 0.2, num_pseudo_unseen: int | None = None) -> FeatureSet:
    """Pseudo-unseen validation problem built from the seen training data only.

    A random ``fraction`` of the seen classes (default: the real split's unseen fraction
    ``|U| / (|S| + |U|)``) becomes *pseudo-unseen*; of every remaining seen class a random
    ``sample_fraction`` of training samples is held out. The result is a :class:`FeatureSet`
    whose ``train`` is the rest, ``zsl`` the pseudo-unseen samples and ``gzsl`` the
    pseudo-unseen plus held-out seen samples. No test sample and no real unseen class
    appear in it, so anything chosen on it (calibration, iterations) is honest.

    Args:
        fraction: share of seen classes made pseudo-unseen (rounded, at least 1, and at
            least 2 classes stay seen).
        seed: RNG seed.
        sample_fraction: share of each remaining seen class held out for the GZSL part
            (at least one sample per class when the class has two or more).
        num_pseudo_unseen: exact number of pseudo-unseen classes (overrides ``fraction``).
    """
    seen = fs.seen_classes
    if len(seen) < 3:
        raise ConfigError(f"holdout_seen: need at least 3 seen classes to hold some out, "
                          f"{fs.source or 'feature set'} has {len(seen)}")
    if not 0.0 < sample_fraction < 1.0:
        raise ConfigError(f"holdout_seen: sample_fraction must be in (0, 1), got {sample_fraction}")
    if num_pseudo_unseen is None:
        if fraction is None:
            fraction = len(fs.unseen_classes) / (len(seen) + len(fs.unseen_classes))
        if not 0.0 < fraction < 1.0:
            raise ConfigError(f"holdout_seen: fraction must be in (0, 1), got {fraction}")
        num_pseudo_unseen = int(round(fraction * len(seen)))
    k = int(min(max(1, num_pseudo_unseen), len(seen) - 2))
    rng = np.random.default_rng(check_seed(seed, "holdout_seen: seed"))
    pseudo = np.sort(rng.choice(seen, size=k, replace=False))
    keep = np.setdiff1d(seen, pseudo)
    tr_idx, ho_idx = [], []
    for c in keep:
        idx = np.flatnonzero(fs.train_y == c)
        idx = idx[rng.permutation(len(idx))]
        n_ho = int(round(sample_fraction * len(idx))) if len(idx) > 1 else 0
        n_ho = min(max(n_ho, 1 if len(idx) > 1 else 0), len(idx) - 1)
        ho_idx.append(idx[:n_ho]); tr_idx.append(idx[n_ho:])
    tr_idx = np.sort(np.concatenate(tr_idx)); ho_idx = np.sort(np.concatenate(ho_idx))
    z_idx = np.flatnonzero(np.isin(fs.train_y, pseudo))
    g_idx = np.concatenate([ho_idx, z_idx])
    meta = dict(fs.meta, derived="holdout_seen", parent=fs.source, seed=int(seed),
                pseudo_unseen=pseudo.tolist(), sample_fraction=float(sample_fraction))
    masked = None if fs.train_masked_x is None else fs.train_masked_x[tr_idx]
    return FeatureSet(fs.train_x[tr_idx], fs.train_y[tr_idx], fs.train_x[z_idx], fs.train_y[z_idx],
                      fs.train_x[g_idx], fs.train_y[g_idx], keep, pseudo, fs.num_classes,
                      source=fs.source, meta=meta, train_masked_x=masked)


def low_shot(fs: FeatureSet, fraction: float | None = None, per_class: int | None = None,
             seed: int = 0) -> FeatureSet:
    """Keep a few training samples per seen class; the test sets are unchanged.

    Exactly one of ``fraction`` (keep ``max(1, int(fraction * n_c))`` samples of class c,
    Flora's rule) or ``per_class`` (keep ``min(per_class, n_c)``) must be given.
    """
    if (fraction is None) == (per_class is None):
        raise ConfigError("low_shot: give exactly one of fraction or per_class")
    if fraction is not None and (not isinstance(fraction, (int, float, np.integer, np.floating))
                                 or isinstance(fraction, (bool, np.bool_))):
        raise ConfigError(f"low_shot: fraction must be a number, got {fraction!r}")
    if fraction is not None:  # numpy scalars (np.float32(0.3), from an array of fractions) as well
        fraction = float(fraction)
    if fraction is not None and not 0.0 < fraction <= 1.0:
        raise ConfigError(f"low_shot: fraction must be in (0, 1], got {fraction}")
    if per_class is not None:
        per_class = whole("low_shot: per_class", per_class, 1)
    rng = np.random.default_rng(check_seed(seed, "low_shot: seed (--seed)"))
    keep = []
    for c in fs.seen_classes:
        idx = np.flatnonzero(fs.train_y == c)
        n = max(1, int(fraction * len(idx))) if fraction is not None else min(per_class, len(idx))
        keep.append(rng.choice(idx, size=n, replace=False))
    keep = np.sort(np.concatenate(keep))
    meta = dict(fs.meta, derived="low_shot", fraction=fraction, per_class=per_class, seed=int(seed))
    masked = None if fs.train_masked_x is None else fs.train_masked_x[keep]
    return dataclasses.replace(fs, train_x=fs.train_x[keep], train_y=fs.train_y[keep], meta=meta,
                               train_masked_x=masked)


# ---------------------------------------------------------------------------- text banks
def load_token_bank(path: str | os.PathLike, names_json: str | os.PathLike | None = None):
    """Class-text bank file -> :class:`ClassTexts`.

    Accepted files:

    * ``(C, L, D)`` token embeddings saved as ``.npy`` (Flora's banks and the shared
      ``*_text_mpnet_L5.npy``): the sentence-level embedding is the last token (the pooled
      token in those banks);
    * the ``.npz`` that ``zeroskel text embed --out`` writes: ``sentence`` (C, D) and,
      with ``--max-length``, ``tokens`` (C, L, D'), the same texts ``eval-features
      --text-source`` embeds;
    * ``(C, D)`` sentence embeddings as ``.npy`` (one vector per class; token-level
      methods then see one token per class).

    ``names_json`` optionally gives class names (a JSON file with ``class_names_packed``
    or ``class_names``).
    """
    from ..methods.base import ClassTexts

    path = Path(path)
    if not path.is_file():
        raise DataError(f"text bank {path} does not exist")
    try:
        tok = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"text bank {path}: cannot read ({load_failure(path, e)})") from None
    sentence = None
    if isinstance(tok, np.lib.npyio.NpzFile):  # `zeroskel text embed --out` writes sentence (+ tokens)
        keys = sorted(tok.files)
        if "sentence" not in keys:
            raise DataError(f"text bank {path}: an .npz bank needs a 'sentence' (C, D) array (as written by "
                            f"`zeroskel text embed --out`), keys present: {', '.join(keys) or 'none'}; or give "
                            "a .npy of (C, L, D) token embeddings")
        try:
            sentence = tok["sentence"]
            tok = tok["tokens"] if "tokens" in keys else None
        except (OSError, ValueError) as e:
            raise DataError(f"text bank {path}: cannot read ({e})") from None
        if sentence.ndim != 2:
            raise DataError(f"text bank {path}: 'sentence' must be (C, D), got shape {sentence.shape}")
        if tok is not None and (tok.ndim != 3 or len(tok) != len(sentence)):
            raise DataError(f"text bank {path}: 'tokens' must be (C={len(sentence)}, L, D), got shape {tok.shape}")
    elif tok.ndim == 2:  # one sentence embedding per class
        sentence, tok = tok, None
    elif tok.ndim != 3:
        raise DataError(f"text bank {path}: expected (C, L, D) token or (C, D) sentence embeddings, got shape "
                        f"{tok.shape}")
    for name, arr in (("sentence", sentence), ("tokens", tok)):
        if arr is None:
            continue
        if arr.dtype.kind not in "fiu":
            raise DataError(f"text bank {path}: {name} has non-numeric dtype {arr.dtype}")
        if not np.isfinite(arr).all():
            raise DataError(f"text bank {path}: {name} contains NaN or inf")
    if sentence is None:
        sentence = tok[:, -1]
    n_cls = len(sentence)
    names = None
    if names_json is not None:
        try:
            info = json.loads(Path(names_json).read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as e:
            raise DataError(f"class names {names_json}: cannot read ({e})") from None
        names = info.get("class_names_packed") or info.get("class_names")
        if names is None or len(names) != n_cls:
            raise DataError(f"class names {names_json}: need 'class_names_packed' or 'class_names' with "
                            f"{n_cls} entries")
    return ClassTexts(sentence=sentence, tokens=tok, names=names, model=path.stem)
