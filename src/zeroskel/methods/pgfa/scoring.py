"""Features and nearest-anchor scoring: embedding skeletons with a trained model, cosine
similarity, and ZSL top-1 with and without prototype alignment.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...errors import DataError
from ..alignment import align_kwargs, prototype_alignment


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
    feats = np.concatenate(out) if out else np.zeros((0, getattr(model, "feature_dim", 0)), np.float32)
    bad = ~np.isfinite(feats).all(axis=1)
    if bad.any():  # else a NaN score, or prototype_alignment's "features or anchors contain NaN/inf"
        raise DataError(f"the model's features are not finite (NaN/inf) for {int(bad.sum())} of {len(feats)} "
                        f"recording{'s' if len(feats) != 1 else ''} (the first: row {int(np.argmax(bad))}): its weights are too large for them, "
                        "as after training that diverged (start a new run with a lower train.lr or with "
                        "train.grad_clip), or the recordings hold extreme coordinates")
    return feats


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero); keeps the dtype."""
    x = np.asarray(x)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _unit_rows(a) @ _unit_rows(b).T


def alignment_groups(meta: dict, idx: np.ndarray, align: dict | None, where: str) -> "np.ndarray | None":
    """The ``alignment.center_by`` metadata (e.g. subject) of samples ``idx``, or None when the
    alignment is off, does not centre, or centres the whole set. ``meta``: the dataset's
    per-sample metadata; ``where`` names the dataset in the errors (a missing key, a group of
    one sample)."""
    centres = bool(align) and align.get("enabled", True) and align.get("center")
    if centres and len(idx) < 2:  # checked here, before training, not after it
        raise DataError(f"alignment.center needs at least 2 evaluated samples to centre on; the evaluated set of "
                        f"{where} has {len(idx)} (set alignment.center=false)")
    key = (align or {}).get("center_by")
    if not key or not centres:
        return None
    if key not in meta:
        raise DataError(f"alignment.center_by {key!r}: {where} has no such per-sample metadata "
                        f"(it has: {', '.join(sorted(meta)) or 'none'})")
    groups = np.asarray(meta[key])[idx]
    values, counts = np.unique(groups, return_counts=True)
    if len(groups) and counts.min() < 2:  # checked here, before training, not at the first validation
        raise DataError(f"alignment.center_by {key!r}: {key} {values[counts.argmin()].tolist()!r} has 1 sample "
                        f"in the evaluated set of {where}; centring per group needs at least 2 per group "
                        "(set alignment.center_by null)")
    return groups


def zsl_eval(feats: np.ndarray, labels: np.ndarray, classes: np.ndarray, text: np.ndarray,
             align: dict | None = None, details: bool = False, groups: "np.ndarray | None" = None) -> dict:
    """Top-1 of nearest text anchor over ``classes`` (and with prototype alignment).

    Args:
        feats: (N, D) features; labels: (N,) global ids; classes: (K,) candidate ids;
        text: (C, D) text embeddings of all classes; align: the ``alignment`` config.
        groups: (N,) per-sample groups for ``alignment.center_by`` (:func:`alignment_groups`).
    """
    from ...eval.metrics import confusion_matrix, per_class_accuracy, top1

    anchors = text[classes]
    pred = classes[cosine(feats, anchors).argmax(1)]
    out: dict[str, Any] = {"top1": top1(pred, labels)}
    if details:
        out["per_class"] = {str(k): v for k, v in per_class_accuracy(pred, labels, classes).items()}
        out["confusion"] = confusion_matrix(pred, labels, classes).tolist()
    if align and align.get("enabled", True):
        _, ap = prototype_alignment(feats, anchors, groups=groups, **align_kwargs(align))
        apred = classes[ap]
        out["top1_aligned"] = top1(apred, labels)
        if details:
            out["per_class_aligned"] = {str(k): v for k, v in per_class_accuracy(apred, labels, classes).items()}
            out["confusion_aligned"] = confusion_matrix(apred, labels, classes).tolist()
    return out
