"""The ZSL / GZSL protocol for feature-based methods, with honest selection.

:func:`evaluate_method` runs one method on one :class:`~zeroskel.data.features.FeatureSet`:

1. **Held-out selection.** A pseudo-unseen problem is cut from the seen training data
   (:func:`~zeroskel.data.features.holdout_seen`: some seen classes play "unseen", some
   seen samples are held out; ``heldout_draws`` such problems, with different pseudo-unseen
   classes, when one is too noisy a judge). The method is fitted on each; if it exposes a training budget
   (``budget_param`` + ``callback``, as :class:`~zeroskel.methods.flora.Flora` does), the
   budget with the best (mean) held-out ZSL accuracy is chosen. The calibrated-stacking
   gamma and, for error-based methods, the ratio-gate gamma are chosen on the (pooled)
   held-out GZSL scores of that checkpoint. The test set is not touched.
2. **Final fit** on all seen training data with the chosen budget; ZSL top-1 over the
   unseen classes and GZSL S/U/H over all classes (uncalibrated, calibrated stacking,
   ratio gate with the held-out gamma and with the method's fixed gamma).
3. Optionally (``ref_style=True``) the reference code's optimistic protocol as a clearly
   labelled extra: the final model is evaluated on the test set every ``eval_every``
   budget steps and the max ZSL / best-H GZSL (fixed gate gamma) over those evaluations
   are reported under ``"ref_style_best_of_test"``.

End-to-end models (PGFA) that produce score matrices directly use :func:`calibrate` on
their held-out scores and :func:`evaluate_scores` on their test scores.
"""
from __future__ import annotations

import inspect
import logging
import platform
import time
from typing import Callable

import numpy as np

from ..data.features import FeatureSet, check_gzsl_coverage, holdout_seen
from .._checks import check_seed
from ..errors import ConfigError
from ..methods.base import ClassTexts, ZeroShotMethod
from .gzsl import choose_threshold_pooled, gzsl_report, zsl_accuracy
from .metrics import one_class_note

MethodFactory = Callable[..., ZeroShotMethod]


def calibrate(val_scores: np.ndarray, val_labels: np.ndarray, classes, seen, unseen, *,
              gate: bool = False) -> dict:
    """Choose GZSL thresholds on held-out scores (N, K over ``classes``).

    Returns ``{"stacking": {"gamma", "S", "U", "H"}, "gate": {...} or None}`` where S/U/H
    are the held-out accuracies at the chosen gamma. When the held-out samples do not cover
    both seen and unseen classes (e.g. low-shot training with one sample per class leaves no
    seen sample to hold out), nothing can be calibrated: both entries are ``None`` and
    ``"unavailable"`` says why; the test set is never used instead.
    """
    return calibrate_pooled([(val_scores, val_labels, classes, seen, unseen)], gate=gate)


def calibrate_pooled(problems, *, gate: bool = False) -> dict:
    """:func:`calibrate` over several held-out problems ``[(scores, labels, classes, seen,
    unseen), ...]`` at once (one threshold for their pooled samples); problems without both
    seen and unseen held-out samples are left out."""
    usable = [p for p in problems
              if np.isin(np.asarray(p[1]), list(p[3])).any() and np.isin(np.asarray(p[1]), list(p[4])).any()]
    if not usable:
        return {"stacking": None, "gate": None,
                "unavailable": "held-out data has no samples of seen (or of unseen) classes, "
                               "so no GZSL threshold can be chosen without the test set"}
    out = {"stacking": choose_threshold_pooled(usable, rule="stacking"), "gate": None}
    if gate:
        out["gate"] = choose_threshold_pooled(usable, rule="gate")
    return out


def evaluate_scores(*, zsl_scores: np.ndarray, zsl_labels: np.ndarray, unseen,
                    gzsl_scores: np.ndarray, gzsl_labels: np.ndarray, classes, seen,
                    stacking_gamma: float | None, gate_gamma: float | None = None,
                    gate_fixed_gamma: float | None = None) -> dict:
    """ZSL top-1 and GZSL S/U/H of test score matrices with thresholds fixed beforehand.

    zsl_scores (N_z, |unseen|) over ``unseen`` (in that order); gzsl_scores (N_g, K) over
    ``classes`` (seen and unseen).
    """
    return {"zsl": zsl_accuracy(zsl_scores, zsl_labels, unseen),
            "gzsl": gzsl_report(gzsl_scores, gzsl_labels, classes, seen, unseen,
                                stacking_gamma=stacking_gamma, gate_gamma=gate_gamma,
                                gate_fixed_gamma=gate_fixed_gamma)}


def _scores(method: ZeroShotMethod, fs: FeatureSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    classes = fs.all_classes
    return method.score(fs.zsl_x, fs.unseen_classes), method.score(fs.gzsl_x, classes), classes


def track_heldout(method: ZeroShotMethod, val: FeatureSet) -> tuple[list[dict], dict[int, np.ndarray]]:
    """Score the held-out problem ``val`` at every checkpoint of ``method``'s training.

    Sets ``method.callback``; during ``fit`` the returned ``curve`` fills with
    ``{"step", "val_zsl"}`` (held-out ZSL top-1 %) and ``snaps[step]`` with the (N, K)
    scores of ``val.gzsl_x`` over ``val.all_classes`` (for calibration at the chosen step).
    """
    curve: list[dict] = []
    snaps: dict[int, np.ndarray] = {}
    classes = val.all_classes

    def on_val(step: int) -> None:
        zs = method.score(val.zsl_x, val.unseen_classes)
        snaps[step] = method.score(val.gzsl_x, classes)
        curve.append({"step": step, "val_zsl": zsl_accuracy(zs, val.zsl_y, val.unseen_classes)})

    method.callback = on_val
    return curve, snaps


def _mean_curve(curves: list[list[dict]]) -> list[dict]:
    """Mean held-out ZSL per step over draws (all draws checkpoint at the same steps)."""
    steps = [r["step"] for r in curves[0]]
    for c in curves[1:]:
        if [r["step"] for r in c] != steps:
            raise ConfigError("held-out draws checkpointed at different steps; cannot average their curves")
    return [{"step": st, "val_zsl": float(np.mean([c[i]["val_zsl"] for c in curves]))}
            for i, st in enumerate(steps)]


def choose_budget(curve: list[dict]) -> tuple[dict, bool]:
    """The budget to train the final model with, from a held-out curve.

    Args:
        curve: ``[{"step": int, "val_zsl": float}, ...]`` (held-out ZSL % per budget).

    Returns:
        ``(row, flat)``: the row with the highest held-out ZSL (ties, to 1e-6, go to the
        longer training) and whether every row has the same score. A flat curve (e.g. a
        model that predicts one pseudo-unseen class throughout) carries no information, and
        the tie rule then gives the full budget; callers report ``flat`` so a reader knows
        the choice was a default, not a selection.
    """
    if not curve:
        raise ValueError("choose_budget needs a non-empty held-out curve")
    scores = [round(float(r["val_zsl"]), 6) for r in curve]
    best = max(curve, key=lambda r: (round(float(r["val_zsl"]), 6), r["step"]))
    return best, len(curve) > 1 and min(scores) == max(scores)


def _extra_fit_args(method, fs: FeatureSet) -> dict:
    """Optional training inputs a method's ``fit`` accepts: SMIE's ``masked_feats`` when the
    feature set carries masked-sequence features (``train_masked_data``)."""
    if fs.train_masked_x is not None and "masked_feats" in inspect.signature(method.fit).parameters:
        return {"masked_feats": fs.train_masked_x}
    return {}


def heldout_seeds(seed: int, draws: int) -> list[int]:
    """Seeds of the pseudo-unseen draws of one run: the first is ``seed`` itself (so one
    draw reproduces the single-split protocol), the others are derived from it."""
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 1:
        raise ConfigError(f"heldout_draws (eval.heldout_draws / --heldout-draws) must be an integer >= 1, "
                          f"got {draws!r}")
    seed = check_seed(seed, "seed (--seed)")
    return [int(seed)] + [int(s) for s in
                          np.random.SeedSequence([int(seed), 7919]).generate_state(int(draws) - 1)]


def protocol_kwargs(ev: dict | None) -> dict:
    """:func:`evaluate_method` keyword arguments from a config's ``eval`` section."""
    ev = ev or {}
    unknown = sorted(set(ev) - {"val_fraction", "val_sample_fraction", "select_budget", "ref_style",
                                "heldout_draws"})
    if unknown:
        raise ConfigError(f"unknown eval key(s) {unknown}; valid: heldout_draws, ref_style, "
                          "select_budget, val_fraction, val_sample_fraction")
    out = {"val_fraction": ev.get("val_fraction"), "val_sample_fraction": ev.get("val_sample_fraction", 0.2),
           "select_budget": ev.get("select_budget", True), "heldout_draws": ev.get("heldout_draws", 1)}
    # checked here, by key: these reach numpy comparisons (a TypeError) or bool() ('maybe' is true)
    for key in ("val_fraction", "val_sample_fraction"):
        v = out[key]
        if v is None and key == "val_fraction":
            continue
        if (isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating))
                or not 0.0 < v < 1.0):
            raise ConfigError(f"eval.{key} must be a number in (0, 1)"
                              f"{' or null' if key == 'val_fraction' else ''}, got {v!r}")
    for key in ("select_budget", "ref_style"):
        v = out.get(key, ev.get(key, False))
        if not isinstance(v, (bool, np.bool_)):
            raise ConfigError(f"eval.{key} must be true or false, got {v!r}")
    heldout_seeds(0, out["heldout_draws"])  # the same check as --heldout-draws
    return out


def evaluate_named(name: str, fs: FeatureSet, texts: ClassTexts, seed: int = 1, *, preset: str | None = None,
                   overrides=(), device: str = "cpu", dataset: str | None = None,
                   heldout_draws: int | None = None, ref_style: bool = False,
                   log: Callable[[str], None] | None = None) -> dict:
    """:func:`evaluate_method` for the registered method ``name``, configured as ``zeroskel
    eval-features`` does: its config (base < ``preset`` < the preset's block for ``dataset`` <
    ``overrides``) builds the method and gives the protocol's ``eval`` settings;
    ``heldout_draws`` (when given) overrides the config's, and ``ref_style`` adds to its."""
    from ..methods.factory import make_factory

    factory, cfg = make_factory(name, preset, overrides, seed=seed, device=device, dataset=dataset)
    ev = (cfg or {}).get("eval") or {}
    kw = protocol_kwargs(ev)
    if heldout_draws is not None:
        kw["heldout_draws"] = heldout_draws
    return evaluate_method(factory, fs, texts, seed, **kw, ref_style=bool(ref_style or ev.get("ref_style", False)),
                           log=log)


def evaluate_method(method_factory: MethodFactory, fs: FeatureSet, texts: ClassTexts, seed: int = 1, *,
                    val_fraction: float | None = None, val_sample_fraction: float = 0.2,
                    select_budget: bool = True, heldout_draws: int = 1, ref_style: bool = False,
                    log: Callable[[str], None] | None = None) -> dict:
    """Run the protocol above; returns a JSON-able dict.

    Args:
        method_factory: ``factory(**overrides) -> ZeroShotMethod``; called with no argument
            for the held-out fit and with ``{budget_param: chosen}`` for the final fit.
        fs: the feature split. texts: class texts of all ``fs.num_classes`` classes.
        seed: seeds the pseudo-unseen split (the factory seeds the method itself).
        val_fraction: share of seen classes made pseudo-unseen (default: the real split's
            unseen share). val_sample_fraction: share of seen samples held out.
        select_budget: pick the method's ``budget_param`` on held-out ZSL accuracy.
        heldout_draws: number of pseudo-unseen problems (different pseudo-unseen classes and
            held-out samples, see :func:`heldout_seeds`), each with its own held-out fit. The
            budget maximises their mean held-out ZSL and the GZSL thresholds are chosen on
            their pooled held-out samples. With few seen classes one draw is a noisy judge
            (a handful of pseudo-unseen classes); more draws cost one fit each.
        ref_style: also report the reference's best-of-test-evaluations numbers (extra).
        log: optional progress printer.
    """
    say = log or (lambda s: None)
    if texts.num_classes < fs.num_classes:
        # name the labels the texts cannot cover: a wrong text bank and a stray label read differently
        where = fs.source or "the feature set"
        out = {k: np.unique(y[y >= texts.num_classes]).tolist()
               for k, y in (("train labels", fs.train_y), ("zsl labels", fs.zsl_y), ("gzsl labels", fs.gzsl_y))
               if (y >= texts.num_classes).any()}
        raise ConfigError(f"class texts cover {texts.num_classes} classes (ids 0-{texts.num_classes - 1}) but "
                          f"{where} has class ids beyond them: "
                          + "; ".join(f"{k} {v[:10]}{' ...' if len(v) > 10 else ''}" for k, v in out.items())
                          + " (is the text bank for another dataset?)")
    if texts.num_classes > fs.num_classes:
        # legitimate (a dataset's bank, a file without its last classes), but the extra classes are no
        # candidates and still shape the method (Flora's attunement takes neighbours from every class)
        logging.getLogger(__name__).warning(
            "class texts cover %d classes but %s has class ids up to %d: classes %d-%d are never scored, "
            "though Flora (neighbors_from: all) takes attunement neighbours among them; is the text bank "
            "for another dataset? (eval-features --dataset checks the counts)", texts.num_classes,
            fs.source or "the feature set", fs.num_classes - 1, fs.num_classes, texts.num_classes - 1)
    check_gzsl_coverage(fs)  # before any fit: the GZSL scores at the end would be undefined
    note = one_class_note(fs.unseen_classes)
    if note:
        logging.getLogger(__name__).warning("%s: %s", fs.source or "feature set", note)
    t_all = time.perf_counter()
    vals = [holdout_seen(fs, val_fraction, s, sample_fraction=val_sample_fraction)
            for s in heldout_seeds(seed, heldout_draws)]

    # ---- 1. held-out fits: budget selection + calibration
    probe = method_factory()
    budget = getattr(probe, "budget_param", None) if select_budget else None
    use_gate = bool(getattr(probe, "score_is_neg_error", False))
    draws: list[dict] = []
    t0 = time.perf_counter()
    for i, val in enumerate(vals):
        if i:
            probe = method_factory()
        curve: list[dict] = []
        snaps: dict[int, np.ndarray] = {}
        if budget is not None:
            curve, snaps = track_heldout(probe, val)
        probe.fit(val.train_x, val.train_y, texts, val.seen_classes, **_extra_fit_args(probe, val))
        if budget is None or not curve:
            snaps = {None: probe.score(val.gzsl_x, val.all_classes)}
            curve = [{"step": None, "val_zsl": zsl_accuracy(probe.score(val.zsl_x, val.unseen_classes),
                                                            val.zsl_y, val.unseen_classes)}]
        draws.append({"val": val, "curve": curve, "snaps": snaps})
    t_val_fit = time.perf_counter() - t0
    probe = None  # free the held-out models before the final fit
    curve = _mean_curve([d["curve"] for d in draws])
    flat = None
    if curve[0]["step"] is not None:
        best, flat = choose_budget(curve)
        chosen = int(best["step"])
        say(f"  held-out {budget}: " + " ".join(f"{r['step']}:{r['val_zsl']:.1f}" for r in curve)
            + f" -> {chosen}" + (f" (mean of {len(draws)} draws)" if len(draws) > 1 else ""))
        if flat:
            say(f"  held-out curve is flat at {best['val_zsl']:.2f} %: it cannot tell budgets apart, "
                f"so the full budget ({chosen}) is used; this run's selection had nothing to go on")
    else:
        chosen, best, curve = None, curve[0], []
    val_zsl = best["val_zsl"]
    cal = calibrate_pooled([(d["snaps"][chosen], d["val"].gzsl_y, d["val"].all_classes, d["val"].seen_classes,
                             d["val"].unseen_classes) for d in draws], gate=use_gate)
    draw_info = [{"pseudo_unseen": d["val"].unseen_classes.tolist(), "n_val_train": len(d["val"].train_y),
                  "val_zsl": next(r["val_zsl"] for r in d["curve"] if r["step"] == chosen),
                  "curve": d["curve"] if curve else []} for d in draws]
    draws = None

    # ---- 2. final fit on all seen data (and 3. the reference-style extra)
    overrides = {budget: chosen} if chosen is not None else {}
    ref_rows: list[dict] = []
    fixed_gate = None
    if ref_style and budget is not None:
        method = method_factory()          # full budget; the honest model is the snapshot at `chosen`
    else:
        method = method_factory(**overrides)
    fixed_gate = getattr(method, "gate_gamma", None) if use_gate else None
    honest: dict = {}

    def measure() -> dict:
        zs, gs, classes = _scores(method, fs)
        return evaluate_scores(zsl_scores=zs, zsl_labels=fs.zsl_y, unseen=fs.unseen_classes,
                               gzsl_scores=gs, gzsl_labels=fs.gzsl_y, classes=classes, seen=fs.seen_classes,
                               stacking_gamma=cal["stacking"]["gamma"] if cal["stacking"] else None,
                               gate_gamma=cal["gate"]["gamma"] if cal["gate"] else None,
                               gate_fixed_gamma=fixed_gate)

    if ref_style and budget is not None:
        def on_test(step: int) -> None:
            r = measure()
            ref_rows.append({"step": step, **r})
            if step == chosen:
                honest.update(r)
        method.callback = on_test
    t0 = time.perf_counter()
    method.fit(fs.train_x, fs.train_y, texts, fs.seen_classes, **_extra_fit_args(method, fs))
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    if not honest:
        honest = measure()
    t_score = time.perf_counter() - t0

    result = {
        "method": getattr(method, "name", type(method).__name__),
        "hparams": getattr(method, "hparams", {}),
        "data": fs.summary(),
        "fit_inputs": ["features", "labels", "texts"] + sorted(_extra_fit_args(method, fs)),
        "seed": int(seed),
        "selection": {"protocol": "pseudo-unseen split of the seen training data",
                      "pseudo_unseen": draw_info[0]["pseudo_unseen"], "n_val_train": draw_info[0]["n_val_train"],
                      "heldout_draws": len(draw_info),
                      **({"draws": draw_info} if len(draw_info) > 1 else {}),
                      "budget_param": budget, "chosen": chosen, "curve": curve, "val_zsl": val_zsl,
                      **({"curve_flat": flat} if flat is not None else {}),
                      "val_stacking": cal["stacking"], "val_gate": cal["gate"],
                      **({"calibration_unavailable": cal["unavailable"]} if "unavailable" in cal else {})},
        "zsl": honest["zsl"],
        **({"zsl_note": note} if note else {}),
        "gzsl": honest["gzsl"],
        "timings_s": {"val_fit": t_val_fit, "fit": t_fit, "score": t_score,
                      "total": time.perf_counter() - t_all},
        "host": {"machine": platform.machine(), "python": platform.python_version()},
    }
    if hasattr(method, "num_parameters"):
        result["num_parameters"] = int(method.num_parameters())
    if ref_rows:
        best_z = max(ref_rows, key=lambda r: r["zsl"])
        key = "gate_fixed" if fixed_gate is not None else ("stacking" if cal["stacking"] else "uncalibrated")
        best_h = max(ref_rows, key=lambda r: r["gzsl"][key]["H"])
        result["ref_style_best_of_test"] = {
            "note": "NOT a valid estimate: max over test-set evaluations, as the reference code reports",
            "evals": len(ref_rows), "zsl": best_z["zsl"], "zsl_step": best_z["step"],
            "gzsl": {k: best_h["gzsl"][key][k] for k in ("S", "U", "H", "gamma")}, "gzsl_rule": key,
            "gzsl_step": best_h["step"]}
    return result
