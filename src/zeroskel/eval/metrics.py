"""Classification metrics over integer class ids.

All accuracies are sample-level (not means of per-batch accuracies) and in percent.
"""
from __future__ import annotations

import numpy as np


def top1(pred: np.ndarray, target: np.ndarray) -> float:
    """Sample-level top-1 accuracy in %. ``pred``, ``target``: (N,) class ids."""
    pred = np.asarray(pred); target = np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ in shape")
    if target.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float((pred == target).mean() * 100.0)


def per_class_accuracy(pred: np.ndarray, target: np.ndarray, classes) -> dict[int, float]:
    """Accuracy (%) of each class in ``classes`` over its own samples (NaN if it has none)."""
    out = {}
    for c in classes:
        m = target == c
        out[int(c)] = float((pred[m] == c).mean() * 100.0) if m.any() else float("nan")
    return out


def mean_class_accuracy(pred, target, classes) -> float:
    vals = [v for v in per_class_accuracy(pred, target, classes).values() if v == v]
    return float(np.mean(vals)) if vals else float("nan")


def confusion_matrix(pred: np.ndarray, target: np.ndarray, classes) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted, in the order of ``classes``.

    Predictions outside ``classes`` are not counted (they can only occur in GZSL).
    """
    classes = list(classes)
    pos = {c: i for i, c in enumerate(classes)}
    cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for p, t in zip(np.asarray(pred).tolist(), np.asarray(target).tolist()):
        if t in pos and p in pos:
            cm[pos[t], pos[p]] += 1
    return cm


def harmonic_mean(seen: float, unseen: float) -> float:
    return 0.0 if seen + unseen == 0 else 2 * seen * unseen / (seen + unseen)


def gzsl_scores(pred: np.ndarray, target: np.ndarray, seen, unseen) -> dict[str, float]:
    """GZSL accuracies: S on seen-class samples, U on unseen-class samples, H their harmonic
    mean. Each of S and U is sample-level top-1 over its own samples (the convention of
    SynSE, SA-DVAE, STAR and Flora), predictions taken over all classes."""
    pred = np.asarray(pred); target = np.asarray(target)
    s_mask = np.isin(target, list(seen)); u_mask = np.isin(target, list(unseen))
    if not s_mask.any() or not u_mask.any():
        raise ValueError("GZSL needs test samples of both seen and unseen classes")
    s = top1(pred[s_mask], target[s_mask]); u = top1(pred[u_mask], target[u_mask])
    return {"S": s, "U": u, "H": harmonic_mean(s, u)}
