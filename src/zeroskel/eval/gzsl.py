"""ZSL / GZSL evaluation on score matrices, with calibration chosen on held-out data.

Everything here works on a score matrix ``scores`` (N, K) whose columns are the class ids
``classes`` (K,), higher = more likely, so feature methods and end-to-end models (PGFA)
share one evaluator.

Two ways to trade seen against unseen accuracy in GZSL:

* **calibrated stacking** (Chao et al. 2016): subtract ``gamma`` from every seen-class
  score, then take the argmax. A sample goes to a seen class iff
  ``max_seen - max_unseen > gamma``.
* **ratio gate** (Flora): for methods whose score is a negated non-negative error
  ``e = -score``, ``r = min_seen e / min_unseen e``; the sample goes to the unseen classes
  iff ``r > gamma`` (Flora's ``calibration_factor``), else to the seen classes.

Both thresholds are chosen by :func:`choose_threshold` on *held-out* data (a pseudo-unseen
split of the seen training data, see :func:`zeroskel.data.features.holdout_seen`), never on
the test set. The search is exact: H only changes where the threshold crosses a sample's
routing statistic, so every midpoint between sorted statistics is tried in O(N log N).

Ties, deterministic: among the seen (or the unseen, or in ZSL all scored) columns the argmax
takes the first column in the order of ``classes``; a stacking margin equal to gamma goes to
the unseen classes (equal best seen and unseen scores are a margin of 0, infinite ones too),
a gate ratio equal to gamma to the seen classes.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError
from .metrics import _ids, gzsl_scores, harmonic_mean, top1


def _check(scores: np.ndarray, classes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        scores = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise DataError(f"{where}: scores must be a numeric (N, K) array ({e})") from None
    # whole-number ids: np.asarray(classes, int64) truncated 10.5 to 10 and scored a column as
    # a class the caller did not name
    classes = _ids(classes, f"{where}: classes")
    if scores.ndim != 2 or scores.shape[1] != len(classes):
        raise DataError(f"{where}: scores must be (N, K={len(classes)}) for the given classes, "
                        f"got {scores.shape}")
    if len(np.unique(classes)) != len(classes):
        raise DataError(f"{where}: duplicate class ids in classes")
    if np.isnan(scores).any():
        raise DataError(f"{where}: scores contain NaN")
    return scores, classes


def _masks(classes: np.ndarray, seen, unseen, where: str) -> tuple[np.ndarray, np.ndarray]:
    seen = _ids(seen, f"{where}: seen"); unseen = _ids(unseen, f"{where}: unseen")
    if np.intersect1d(seen, unseen).size:
        raise ConfigError(f"{where}: classes {np.intersect1d(seen, unseen).tolist()} are both seen and unseen")
    s = np.isin(classes, seen); u = np.isin(classes, unseen)
    if not s.any() or not u.any():
        raise ConfigError(f"{where}: the score columns need both seen and unseen classes")
    if not (s | u).all():
        raise ConfigError(f"{where}: score columns {classes[~(s | u)].tolist()} are neither seen nor unseen")
    return s, u


def _gamma(gamma, where: str) -> float:
    """``gamma`` as a float: a real number or +-inf (every sample to unseen / to seen); NaN
    routed every sample to unseen silently, and a string failed inside numpy."""
    if (isinstance(gamma, (bool, np.bool_)) or not isinstance(gamma, (int, float, np.integer, np.floating))
            or np.isnan(gamma)):
        raise ConfigError(f"{where}: gamma must be a number (or +-inf), got {gamma!r}")
    return float(gamma)


def _labels(labels, n: int, where: str, classes: np.ndarray | None = None) -> np.ndarray:
    """(N,) int64 labels of the N score rows; DataError naming ``where`` otherwise, or when a
    label is not among ``classes`` (the score columns; such a sample can never be right)."""
    labels = _ids(labels, f"{where}: labels")
    if len(labels) != n:
        raise DataError(f"{where}: {len(labels)} labels for {n} score rows")
    if classes is not None:
        outside = np.setdiff1d(labels, classes)
        if outside.size:
            raise DataError(f"{where}: labels {outside.tolist()[:10]} are not among the scored classes "
                            f"(no score column, so never right)")
    return labels


def zsl_accuracy(scores: np.ndarray, labels: np.ndarray, classes) -> float:
    """Top-1 (%) of ``argmax`` over ``classes`` (normally the unseen classes only).

    ``scores``: (N, K) with columns ``classes`` (K,); ``labels``: (N,) class ids, each in
    ``classes``. Raises :class:`DataError` for mismatched shapes, non-integer ids or NaN.
    """
    scores, classes = _check(scores, classes, "zsl_accuracy")
    labels = _labels(labels, len(scores), "zsl_accuracy")
    outside = np.setdiff1d(labels, classes)
    if outside.size:  # such a sample can never be right: it would lower the accuracy silently
        raise DataError(f"zsl_accuracy: labels {outside.tolist()[:10]} are not among the scored classes")
    return top1(classes[scores.argmax(1)], labels)


# ---------------------------------------------------------------------------- routing
def _branch_predictions(scores, classes, s_mask, u_mask):
    """Best seen class, best unseen class and the two best scores of every row (ties within
    a branch go to its first column, as ``np.argmax``)."""
    s_sc = scores[:, s_mask]; u_sc = scores[:, u_mask]
    s_cls = classes[s_mask][s_sc.argmax(1)]; u_cls = classes[u_mask][u_sc.argmax(1)]
    return s_cls, u_cls, s_sc.max(1), u_sc.max(1)


def _margin(s_best: np.ndarray, u_best: np.ndarray) -> np.ndarray:
    """``s_best - u_best``, 0 where the two are equal: a row whose best seen and best unseen
    scores are the same infinity (e.g. all -inf) is a tie, not ``inf - inf = NaN`` (which
    the prediction routed to unseen and the threshold search counted as seen)."""
    with np.errstate(invalid="ignore"):
        return np.where(s_best == u_best, 0.0, s_best - u_best)


def stacking_margin(scores, classes, seen, unseen) -> np.ndarray:
    """(N,) ``max_seen - max_unseen`` (0 for equal bests, infinite ones too); calibrated
    stacking routes to seen iff margin > gamma, so a tie goes to unseen."""
    scores, classes = _check(scores, classes, "stacking_margin")
    s, u = _masks(classes, seen, unseen, "stacking_margin")
    return _margin(scores[:, s].max(1), scores[:, u].max(1))


def gate_ratio(scores, classes, seen, unseen) -> np.ndarray:
    """(N,) Flora's ``r = min_seen e / min_unseen e`` with ``e = -scores`` (must be >= 0);
    ``r = 1`` where the two minima are equal and 0 or infinite (0/0, inf/inf)."""
    scores, classes = _check(scores, classes, "gate_ratio")
    s, u = _masks(classes, seen, unseen, "gate_ratio")
    if (scores > 0).any():
        raise ConfigError("ratio gate: scores must be negated non-negative errors (all <= 0); "
                          "use calibrated stacking for this method")
    e_s = -scores[:, s].max(1); e_u = -scores[:, u].max(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(e_u > 0, e_s / np.where(e_u > 0, e_u, 1.0), np.where(e_s > 0, np.inf, 1.0))
    return np.where(np.isinf(e_s) & (e_s == e_u), 1.0, r)  # inf/inf was NaN: routed by accident


def calibrated_stacking_predict(scores, classes, seen, unseen, gamma: float) -> np.ndarray:
    """(N,) predicted class ids with ``gamma`` subtracted from seen-class scores."""
    scores, classes = _check(scores, classes, "calibrated_stacking")
    gamma = _gamma(gamma, "calibrated_stacking")
    s, u = _masks(classes, seen, unseen, "calibrated_stacking")
    s_cls, u_cls, s_best, u_best = _branch_predictions(scores, classes, s, u)
    return np.where(_margin(s_best, u_best) > gamma, s_cls, u_cls)


def gate_predict(scores, classes, seen, unseen, gamma: float) -> np.ndarray:
    """(N,) predictions of Flora's ratio gate: unseen iff ``r > gamma``."""
    scores, classes = _check(scores, classes, "gate_predict")
    gamma = _gamma(gamma, "gate_predict")
    s, u = _masks(classes, seen, unseen, "gate_predict")
    s_cls, u_cls, _, _ = _branch_predictions(scores, classes, s, u)
    return np.where(gate_ratio(scores, classes, seen, unseen) > gamma, u_cls, s_cls)


def gzsl_eval(scores, labels, classes, seen, unseen, *, gamma: float = 0.0,
              rule: str = "stacking") -> dict[str, float]:
    """GZSL S/U/H (%) over all ``classes`` with ``rule`` in {'stacking', 'gate'}.

    ``scores``: (N, K) with columns ``classes`` (K,), which are ``seen`` plus ``unseen``;
    ``labels``: (N,) class ids, with samples of both seen and unseen classes. Returns
    ``{"S", "U", "H", "gamma"}``. Raises :class:`DataError` (shapes, ids) or
    :class:`ConfigError` (overlapping seen/unseen, unknown ``rule``).
    """
    checked, ids = _check(scores, classes, "gzsl_eval")
    labels = _labels(labels, len(checked), "gzsl_eval", ids)
    gamma = _gamma(gamma, f"gzsl_eval ({rule})")
    if rule == "stacking":
        pred = calibrated_stacking_predict(scores, classes, seen, unseen, gamma)
    elif rule == "gate":
        pred = gate_predict(scores, classes, seen, unseen, gamma)
    else:
        raise ConfigError(f"unknown GZSL rule {rule!r}; valid rules: gate, stacking")
    out = gzsl_scores(pred, labels, seen, unseen)
    out["gamma"] = float(gamma)
    return out


def _routing(scores, labels, classes, seen, unseen, rule: str, where: str):
    """Per-sample routing statistic (``stat > thr`` <=> routed to seen) and correctness."""
    scores, classes = _check(scores, classes, where)
    labels = _labels(labels, len(scores), where, classes)  # astype(int64) truncated 10.5 to class 10
    s, u = _masks(classes, seen, unseen, where)
    s_cls, u_cls, _, _ = _branch_predictions(scores, classes, s, u)
    is_seen = np.isin(labels, classes[s]); is_unseen = np.isin(labels, classes[u])
    if rule == "stacking":
        stat = stacking_margin(scores, classes, seen, unseen)
    elif rule == "gate":
        stat = -gate_ratio(scores, classes, seen, unseen)
    else:
        raise ConfigError(f"unknown GZSL rule {rule!r}; valid rules: gate, stacking")
    return stat, (s_cls == labels) & is_seen, (u_cls == labels) & is_unseen, is_seen, is_unseen


def choose_threshold(scores, labels, classes, seen, unseen, *, rule: str = "stacking") -> dict:
    """Threshold (gamma) maximising H on held-out data, by exact search.

    Returns ``{"gamma", "S", "U", "H"}`` (the held-out accuracies at that gamma). Ties in H
    (within 1e-9) go to the median of the tied candidates ordered by routing statistic
    (stacking: increasing gamma; gate: decreasing gamma), the second of the middle two for an
    even count: the middle of the best plateau when there is one.
    """
    return choose_threshold_pooled([(scores, labels, classes, seen, unseen)], rule=rule)


def choose_threshold_pooled(problems, *, rule: str = "stacking") -> dict:
    """One threshold for several held-out problems at once (exact search, as
    :func:`choose_threshold`).

    ``problems``: ``[(scores, labels, classes, seen, unseen), ...]``, e.g. the held-out
    scores of models fitted on different pseudo-unseen draws. Their samples are pooled: S is
    the accuracy over all held-out seen samples, U over all held-out unseen samples, so a
    threshold that only suits one draw is not chosen. Each problem may have its own classes.
    """
    if not problems:
        raise ConfigError("choose_threshold: no held-out problem given")
    parts = [_routing(*p, rule, "choose_threshold") for p in problems]
    stat, ok_s, ok_u, is_seen, is_unseen = (np.concatenate([p[i] for p in parts]) for i in range(5))
    if not is_seen.any() or not is_unseen.any():
        raise DataError("choose_threshold: held-out labels need both seen and unseen classes")
    finite = np.unique(stat[np.isfinite(stat)])
    if finite.size == 0:
        finite = np.array([0.0])
    # one candidate per gap between neighbouring statistics a < b, plus one beyond each end. The
    # prediction routes to seen iff margin > gamma (stacking: stat > thr) or r <= gamma (gate:
    # stat >= thr, as r > gamma is unseen), so a candidate must lie in [a, b) resp. (a, b]: the
    # midpoint of two adjacent doubles rounds onto one of them, and x +- 1 is x beyond 2**53;
    # either used to give a threshold whose reported S/U/H the gate's prediction did not reproduce
    lo, mid, hi = finite[0] - 1.0, (finite[:-1] + finite[1:]) / 2, finite[-1] + 1.0
    if rule == "stacking":
        mid = np.where(mid < finite[1:], mid, finite[:-1])
        lo = lo if lo < finite[0] else np.nextafter(finite[0], -np.inf)
        side = "right"      # samples with stat > thr are those after searchsorted(st, thr, 'right')
    else:
        mid = np.where(mid > finite[:-1], mid, finite[1:])
        hi = hi if hi > finite[-1] else np.nextafter(finite[-1], np.inf)
        side = "left"       # samples with stat >= thr are those after searchsorted(st, thr, 'left')
    cand = np.concatenate([[lo], mid, [hi]])
    order = np.argsort(stat, kind="stable")
    st = stat[order]
    pos = np.searchsorted(st, cand, side=side)
    cs = np.concatenate([[0], np.cumsum(ok_s[order])])        # seen-correct among first i
    cu = np.concatenate([[0], np.cumsum(ok_u[order])])
    S = (cs[-1] - cs[pos]) / is_seen.sum() * 100.0          # routed seen and right
    U = cu[pos] / is_unseen.sum() * 100.0                   # routed unseen and right
    H = np.where(S + U > 0, 2 * S * U / np.maximum(S + U, 1e-12), 0.0)
    best = np.flatnonzero(H >= H.max() - 1e-9)
    i = best[len(best) // 2]
    thr = float(cand[i])
    gamma = thr if rule == "stacking" else -thr
    return {"gamma": gamma, "S": float(S[i]), "U": float(U[i]), "H": float(H[i])}


def gzsl_report(scores, labels, classes, seen, unseen, *, stacking_gamma: float | None,
                gate_gamma: float | None = None, gate_fixed_gamma: float | None = None) -> dict:
    """All GZSL numbers of one score matrix: uncalibrated, calibrated stacking (when a gamma
    was chosen) and, for error-based methods, the ratio gate (held-out and/or fixed gamma)."""
    out = {"uncalibrated": gzsl_eval(scores, labels, classes, seen, unseen, gamma=0.0)}
    if stacking_gamma is not None:
        out["stacking"] = gzsl_eval(scores, labels, classes, seen, unseen, gamma=stacking_gamma)
    if gate_gamma is not None:
        out["gate"] = gzsl_eval(scores, labels, classes, seen, unseen, gamma=gate_gamma, rule="gate")
    if gate_fixed_gamma is not None:
        out["gate_fixed"] = gzsl_eval(scores, labels, classes, seen, unseen, gamma=gate_fixed_gamma,
                                      rule="gate")
    return out


__all__ = ["zsl_accuracy", "stacking_margin", "gate_ratio", "calibrated_stacking_predict",
           "gate_predict", "gzsl_eval", "choose_threshold", "choose_threshold_pooled", "gzsl_report", "harmonic_mean"]
