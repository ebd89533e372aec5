"""Classification metrics over integer class ids.

All accuracies are sample-level (not means of per-batch accuracies) and in percent. Class ids
are whole numbers (any int dtype, or floats like 3.0); bad input raises
:class:`~zeroskel.errors.DataError` naming the argument.
"""
from __future__ import annotations

import numpy as np

from .._checks import whole_numbers
from ..errors import DataError


def _ids(x, name: str) -> np.ndarray:
    """``x`` as a 1-D int64 array; DataError naming ``name`` unless it holds whole numbers
    (a float or 2-D array would otherwise compare element-wise into a wrong accuracy)."""
    if isinstance(x, (set, frozenset)) or (hasattr(x, "__iter__") and not hasattr(x, "__len__")):
        x = list(x)  # sets, generators (np.asarray would make a 0-d object array of them)
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise DataError(f"{name}: not an array of class ids ({e})") from None
    if arr.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of class ids, got shape {arr.shape}")
    if arr.size and not whole_numbers(arr):
        raise DataError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _pair(pred, target) -> tuple[np.ndarray, np.ndarray]:
    pred, target = _ids(pred, "pred"), _ids(target, "target")
    if pred.shape != target.shape:
        raise DataError(f"pred {pred.shape} and target {target.shape} differ in shape")
    return pred, target


def _class_list(classes, name: str = "classes") -> np.ndarray:
    classes = _ids(classes, name)
    if len(np.unique(classes)) != len(classes):
        raise DataError(f"{name}: duplicate class ids in {classes.tolist()}")
    return classes


def one_class_note(classes) -> str | None:
    """The note a result carries when ZSL scores a single unseen class (None otherwise): the
    argmax over one class is always that class, so ZSL top-1 is 100 % whatever the model."""
    if len(classes) != 1:
        return None
    return (f"one unseen class ({int(np.asarray(classes).ravel()[0])}): ZSL top-1 is 100 % by construction "
            "(the argmax over one class); only the GZSL numbers measure the model")


def top1(pred: np.ndarray, target: np.ndarray) -> float:
    """Sample-level top-1 accuracy in %. ``pred``, ``target``: (N,) class ids."""
    pred, target = _pair(pred, target)
    if target.size == 0:
        raise DataError("accuracy of an empty set is undefined")
    return float((pred == target).mean() * 100.0)


def per_class_accuracy(pred: np.ndarray, target: np.ndarray, classes) -> dict[int, float]:
    """Accuracy (%) of each class in ``classes`` (K,) over its own samples (NaN if it has none);
    ``pred``, ``target``: (N,) class ids."""
    pred, target = _pair(pred, target)
    out = {}
    for c in _class_list(classes):
        m = target == c
        out[int(c)] = float((pred[m] == c).mean() * 100.0) if m.any() else float("nan")
    return out


def mean_class_accuracy(pred, target, classes) -> float:
    """Mean of :func:`per_class_accuracy` (%) over the classes of ``classes`` that have samples
    in ``target``; DataError if none has (a mean over nothing is undefined)."""
    vals = [v for v in per_class_accuracy(pred, target, classes).values() if v == v]
    if not vals:
        raise DataError("mean_class_accuracy: no class of 'classes' has a sample in 'target'")
    return float(np.mean(vals))


def confusion_matrix(pred: np.ndarray, target: np.ndarray, classes) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted, in the order of ``classes`` (K,);
    ``pred``, ``target``: (N,) class ids.

    A sample whose prediction or target is outside ``classes`` is not counted (a prediction
    outside can only occur in GZSL), so the matrix sums to the samples of ``classes`` that were
    predicted as one of them.
    """
    pred, target = _pair(pred, target)
    classes = _class_list(classes).tolist()
    pos = {c: i for i, c in enumerate(classes)}
    cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for p, t in zip(pred.tolist(), target.tolist()):
        if t in pos and p in pos:
            cm[pos[t], pos[p]] += 1
    return cm


def harmonic_mean(seen: float, unseen: float) -> float:
    """Harmonic mean of two accuracies in % (0 when both are 0)."""
    if not (0 <= seen <= 100 and 0 <= unseen <= 100):
        raise DataError(f"harmonic_mean takes accuracies in [0, 100], got {seen!r} and {unseen!r}")
    return 0.0 if seen + unseen == 0 else 2 * seen * unseen / (seen + unseen)


def gzsl_scores(pred: np.ndarray, target: np.ndarray, seen, unseen) -> dict[str, float]:
    """GZSL accuracies: S on seen-class samples, U on unseen-class samples, H their harmonic
    mean. Each of S and U is sample-level top-1 over its own samples (the convention of
    SynSE, SA-DVAE, STAR and Flora), predictions taken over all classes.

    ``pred``, ``target``: (N,) class ids; every target must be in ``seen`` or ``unseen``,
    which must not overlap."""
    pred, target = _pair(pred, target)
    seen, unseen = _class_list(seen, "seen"), _class_list(unseen, "unseen")
    both = np.intersect1d(seen, unseen)
    if both.size:
        raise DataError(f"classes {both.tolist()} are both seen and unseen")
    s_mask = np.isin(target, seen); u_mask = np.isin(target, unseen)
    if not (s_mask | u_mask).all():
        raise DataError(f"targets {np.unique(target[~(s_mask | u_mask)]).tolist()} are neither seen nor unseen")
    if not s_mask.any() or not u_mask.any():
        raise DataError("GZSL needs test samples of both seen and unseen classes")
    s = top1(pred[s_mask], target[s_mask]); u = top1(pred[u_mask], target[u_mask])
    return {"S": s, "U": u, "H": harmonic_mean(s, u)}
