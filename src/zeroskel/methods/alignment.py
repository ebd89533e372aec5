"""Test-time prototype-guided text-feature alignment (PGFA, Zhou et al., TIP 2025).

Transductive: it needs the whole (unseen-class) test set at once. Each class's text anchor
is replaced by (or mixed with) the mean of the normalised test features that are
confidently pseudo-labelled as that class, and the test set is re-classified against the
new anchors.

The reference takes pseudo-labels as the argmax over classes. When a model's unseen-class
predictions collapse onto one or two classes (common with a few hundred training
sequences), those prototypes inherit the collapse. ``pseudo_labels="balanced"`` instead
takes them from a Sinkhorn-Knopp transport plan with equal class marginals (as in SwAV's
equipartition), i.e. it assumes that the test classes are roughly equally frequent.

``center=True`` first removes the mean of the evaluated set's normalised features (then
re-normalises). Every sample of a small-data model shares a large common component, which
pulls all of them toward the same one or two anchors; removing it is the transductive
counterpart of feature centring, and it only uses the set being classified.

``groups`` (one label per sample, e.g. the subject of each recording) centres each group on
its own mean instead: a test set of several people carries one offset per person, which a
single mean leaves in. It uses the grouping of the set, never its labels.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError, unknown_name


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def _entropy_of_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return -(p * np.log(np.maximum(p, 1e-30))).sum(axis=1)


def balanced_assignment(scores: np.ndarray, epsilon: float = 0.1, iterations: int = 3) -> np.ndarray:
    """Soft assignment of N samples to K classes with equal class marginals (Sinkhorn-Knopp).

    Args:
        scores: (N, K) similarities (e.g. cosines).
        epsilon: entropic regularisation (> 0); smaller is closer to a hard equipartition.
        iterations: Sinkhorn iterations (>= 1); each rescales columns then rows.

    Returns:
        (N, K) float64, each row a distribution over the K classes; column sums approach N/K.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or 0 in scores.shape:
        raise DataError(f"balanced_assignment: scores must be a non-empty (N, K) array, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise DataError("balanced_assignment: scores contain NaN or inf")
    if not epsilon > 0:
        raise ConfigError(f"alignment.epsilon must be > 0, got {epsilon}")
    if not (isinstance(iterations, (int, np.integer)) and iterations >= 1):
        raise ConfigError(f"Sinkhorn iterations must be an integer >= 1, got {iterations}")
    # imported here: scipy.special takes ~0.2 s to import, and `zeroskel predict` loads this
    # module but balances only with --align
    from scipy.special import logsumexp

    n, k = scores.shape
    # log domain: small epsilons would under/overflow exp()
    logq = scores / epsilon
    for _ in range(int(iterations)):
        logq = logq - logsumexp(logq, axis=0, keepdims=True) - np.log(k)
        logq = logq - logsumexp(logq, axis=1, keepdims=True) - np.log(n)
    q = np.exp(logq)
    return q / q.sum(axis=1, keepdims=True)


PSEUDO_LABELS = ("argmax", "balanced")

# keyword arguments of prototype_alignment that an ``alignment`` config section may set,
# with their defaults (the reference procedure)
ALIGN_DEFAULTS = {"alpha": 0.9, "temperature": 1.0, "iterations": 1, "beta": 1.0, "min_samples": 1,
                  "pseudo_labels": "argmax", "epsilon": 0.1, "center": False}


def align_kwargs(align: dict) -> dict:
    """Keyword arguments for :func:`prototype_alignment` from an ``alignment`` config dict
    (missing keys take the reference defaults; ``enabled``, checked to be a boolean, is not one
    of them)."""
    if not isinstance(align.get("enabled", True), (bool, np.bool_)):
        raise ConfigError(f"alignment.enabled must be true or false, got {align['enabled']!r}")
    out = {}
    for key, default in ALIGN_DEFAULTS.items():
        v = align.get(key, default)
        if isinstance(default, bool):
            if not isinstance(v, (bool, np.bool_)):
                raise ConfigError(f"alignment.{key} must be true or false, got {v!r}")
            out[key] = bool(v)
            continue
        if isinstance(v, (bool, np.bool_)):  # float(True) / int(True) would pass as 1 silently
            raise ConfigError(f"alignment.{key} must be a {type(default).__name__}, got {v!r}")
        if isinstance(default, int) and not (isinstance(v, (int, np.integer)) or
                                             (isinstance(v, float) and v.is_integer())):
            raise ConfigError(f"alignment.{key} must be an integer, got {v!r}")
        try:
            out[key] = v if isinstance(default, str) else type(default)(v)
        except (TypeError, ValueError):
            raise ConfigError(f"alignment.{key} must be a {type(default).__name__}, got {v!r}") from None
    _check_params(**out)
    return out


def _check_params(alpha, temperature, iterations, beta, min_samples, pseudo_labels, epsilon,
                  center=False) -> None:
    for key, v in (("alpha", alpha), ("temperature", temperature), ("beta", beta), ("epsilon", epsilon)):
        if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, (bool, np.bool_)):
            raise ConfigError(f"alignment.{key} must be a number, got {v!r}")
        if not np.isfinite(v):
            # inf passed the range checks: epsilon=inf gave every sample pseudo-label 0 (uniform
            # Sinkhorn plan), temperature=inf equal entropies (the kept samples by index order)
            raise ConfigError(f"alignment.{key} must be a finite number, got {v!r}")
    if not isinstance(min_samples, (int, np.integer)) or isinstance(min_samples, (bool, np.bool_)):
        raise ConfigError(f"alignment.min_samples must be an integer, got {min_samples!r}")
    if not 0 < alpha <= 1:
        raise ConfigError(f"alignment.alpha must be in (0, 1], got {alpha}")
    if not temperature > 0:
        raise ConfigError(f"alignment.temperature must be > 0, got {temperature}")
    if not (isinstance(iterations, (int, np.integer)) and iterations >= 1):
        raise ConfigError(f"alignment.iterations must be an integer >= 1, got {iterations}")
    if not 0 <= beta <= 1:
        raise ConfigError(f"alignment.beta must be in [0, 1], got {beta}")
    if min_samples < 1:
        raise ConfigError(f"alignment.min_samples must be >= 1, got {min_samples}")
    if pseudo_labels not in PSEUDO_LABELS:
        raise unknown_name("alignment.pseudo_labels", str(pseudo_labels), PSEUDO_LABELS)
    if not epsilon > 0:
        raise ConfigError(f"alignment.epsilon must be > 0, got {epsilon}")
    if not isinstance(center, (bool, np.bool_)):
        raise ConfigError(f"alignment.center must be true or false, got {center!r}")


def center_features(feats: np.ndarray, groups: "np.ndarray | None" = None) -> np.ndarray:
    """(N, D) -> (N, D) float64: unit rows minus their mean, re-normalised to unit rows.

    ``groups`` (N,): subtract each group's own mean instead of the set's (every group needs
    at least 2 samples: one sample minus its own mean is zero).
    """
    fn = _normalize(np.asarray(feats, dtype=np.float64))
    if groups is None:
        return _normalize(fn - fn.mean(axis=0, keepdims=True))
    groups = np.asarray(groups)
    if groups.shape != (len(fn),):
        raise DataError(f"alignment groups: need one per sample ({len(fn)}), got shape {groups.shape}")
    out = np.empty_like(fn)
    for g in np.unique(groups):
        m = groups == g
        if m.sum() < 2:
            raise DataError(f"alignment group {g.tolist()!r} has 1 sample: centring per group needs at least 2 in "
                            "each (one sample minus its own mean is zero)")
        out[m] = fn[m] - fn[m].mean(axis=0, keepdims=True)
    return _normalize(out)


def aligned_scores(feats: np.ndarray, anchors: np.ndarray, groups: "np.ndarray | None" = None,
                   **kwargs) -> np.ndarray:
    """(N, K) cosines between the features and the anchors after :func:`prototype_alignment`
    (``kwargs``, ``groups``); with ``center=True`` the features are centred as the alignment
    saw them."""
    protos, _ = prototype_alignment(feats, anchors, groups=groups, **kwargs)
    fn = (center_features(feats, groups) if kwargs.get("center")
          else _normalize(np.asarray(feats, np.float64)))
    return fn @ _normalize(protos.astype(np.float64)).T


def prototype_alignment(feats: np.ndarray, anchors: np.ndarray, alpha: float = 0.9,
                        temperature: float = 1.0, iterations: int = 1, beta: float = 1.0,
                        min_samples: int = 1, pseudo_labels: str = "argmax", epsilon: float = 0.1,
                        center: bool = False, groups: "np.ndarray | None" = None,
                        return_info: bool = False):
    """Entropy-filtered pseudo-label prototypes and re-classification.

    One iteration:

    1. ``c = cos(feats, anchors)`` (N, K); pseudo-label ``y_n = argmax_k c_nk``;
       confidence = entropy of ``softmax(c_n / temperature)`` (lower = more confident).
       With ``pseudo_labels="balanced"`` both come from the rows of
       :func:`balanced_assignment` ``(c, epsilon)`` instead (``temperature`` is unused).
    2. For class k with members ``S_k = {n: y_n = k}`` keep the ``m = floor(alpha*|S_k|)``
       lowest-entropy members; if ``m < min_samples`` the anchor is kept, else the
       prototype is the (un-normalised) mean of their L2-normalised features.
    3. New anchor = ``beta * prototype + (1 - beta) * anchor`` (``beta = 1`` replaces the
       anchor, as the reference; mixing normalises both terms first); predictions =
       argmax of the cosine to the new anchors.

    Further iterations start from the previous iteration's anchors. With the defaults
    (``temperature=1``, one iteration, ``beta=1``) this is the reference procedure.
    With ``center=True`` the normalised features are replaced by :func:`center_features`
    before step 1 (transductive: the mean is that of ``feats``).

    Args:
        feats: (N, D) test features (projected skeleton features).
        anchors: (K, D) class text features, in the order of the candidate classes.
        alpha: fraction of each pseudo-class kept, in (0, 1].
        temperature: entropy temperature (> 0).
        iterations: number of refinement passes (>= 1).
        beta: weight of the prototype in the new anchor, in [0, 1].
        min_samples: a class needs at least this many kept samples to get a prototype.
        pseudo_labels: ``"argmax"`` (reference) or ``"balanced"`` (equal class marginals).
        epsilon: Sinkhorn regularisation of the balanced pseudo-labels (> 0).
        center: remove the mean normalised feature of ``feats`` first.
        groups: (N,) group of each sample (e.g. its subject): with ``center``, each group is
            centred on its own mean (:func:`center_features`); ignored without ``center``.
        return_info: also return a dict with the initial predictions and per-class counts.

    Returns:
        prototypes (K, D) float32 (the final anchors), predictions (N,) int64 indices into
        the K anchors; plus ``info`` if ``return_info``.
    """
    feats = np.asarray(feats, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64)
    if feats.ndim != 2 or anchors.ndim != 2:
        raise DataError(f"prototype_alignment: feats must be (N, D) and anchors (K, D), got "
                        f"{feats.shape} and {anchors.shape}")
    if feats.shape[1] != anchors.shape[1]:
        raise DataError(f"prototype_alignment: feature dim {feats.shape[1]} != anchor dim {anchors.shape[1]}")
    if len(feats) == 0 or len(anchors) == 0:
        raise DataError("prototype_alignment: needs at least one feature and one anchor")
    if not (np.isfinite(feats).all() and np.isfinite(anchors).all()):
        raise DataError("prototype_alignment: features or anchors contain NaN/inf")
    _check_params(alpha, temperature, iterations, beta, min_samples, pseudo_labels, epsilon, center)
    if center and len(feats) < 2:
        raise DataError(f"alignment.center needs at least 2 samples to centre on, got {len(feats)} "
                        "(one sample minus its own mean is zero); set alignment.center=false (center=false) for single "
                        "recordings")

    fn = center_features(feats, groups) if center else _normalize(feats)
    cur = anchors.copy()
    k = len(anchors)
    first_pred = None
    counts = []
    for _ in range(int(iterations)):
        cos = fn @ _normalize(cur).T
        if pseudo_labels == "balanced":
            q = balanced_assignment(cos, epsilon)
            pred = q.argmax(axis=1)
            ent = -(q * np.log(np.maximum(q, 1e-300))).sum(axis=1)
        else:
            pred = cos.argmax(axis=1)
            ent = _entropy_of_softmax(cos / temperature)
        if first_pred is None:
            first_pred = pred
        new = cur.copy()
        kept = np.zeros(k, dtype=np.int64)
        for c in range(k):
            members = np.flatnonzero(pred == c)
            m = int(np.floor(alpha * len(members)))
            if m < min_samples:
                continue
            # stable sort: ties keep sample order, so results are reproducible
            chosen = members[np.argsort(ent[members], kind="stable")[:m]]
            proto = fn[chosen].mean(axis=0)
            kept[c] = m
            if beta >= 1.0:
                new[c] = proto
            else:
                new[c] = beta * _normalize(proto[None])[0] + (1 - beta) * _normalize(cur[c][None])[0]
        counts.append(kept)
        cur = new
    final = (fn @ _normalize(cur).T).argmax(axis=1)
    out = (cur.astype(np.float32), final.astype(np.int64))
    if return_info:
        return out + ({"initial_predictions": first_pred.astype(np.int64),
                       "kept_per_class": [c.tolist() for c in counts]},)
    return out
