"""Test metrics of a trained PGFA model: ZSL with and without alignment, GZSL uncalibrated and
with the calibrated stacking chosen on held-out training data.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import CheckpointError, ConfigError, DataError
from ...engine.data import load_prepared
from ..alignment import ALIGN_DEFAULTS, align_kwargs
from .classifier import PGFAClassifier, PGFAEnsemble
from .scoring import alignment_groups, zsl_eval


def check_gzsl_test(labels: np.ndarray, test_part: np.ndarray, seen, partition: str, dataset: str) -> None:
    """DataError unless the test part of ``partition`` has a sample of a seen class: GZSL S is
    the accuracy over them (the split check already asks a test sample of every unseen class).
    Training calls it before any epoch, so such a run does not fail after training."""
    if not np.isin(labels[test_part], seen).any():
        raise DataError(f"eval.gzsl: the test part of partition {partition!r} of dataset {dataset!r} has no "
                        f"sample of the seen classes {np.asarray(seen).tolist()[:10]}"
                        f"{' ...' if len(seen) > 10 else ''}, so GZSL (S over the seen-class test samples) is "
                        "undefined; set eval.gzsl=false to report ZSL only")


def evaluate_classifier(clf: PGFAClassifier, ds, partition: str, align: dict, gzsl: bool = True,
                        batch_size: int = 256, calibration: dict | None = None) -> dict:
    """Test metrics of a final model on ``ds`` (preprocessed as in training).

    ZSL: unseen classes of the test part, argmax over the unseen classes, with and without
    prototype alignment; sample-level top-1 %, per-class accuracy (keyed by class id), confusion
    matrices (rows: true class, columns: predicted, both in ``unseen_classes`` order, recorded
    with the class names under ``zsl_confusion_axes``).
    GZSL: every test sample, cosine scores over seen + unseen; S / U / H uncalibrated
    (``gzsl_uncalibrated``) and with calibrated stacking (``gzsl_calibrated``) at the gamma
    of ``calibration`` (``selection["calibration"]``, chosen on held-out training data).
    Flora's ratio gate is not applied: it is defined on non-negative errors (min error
    ratio), and a cosine similarity is not one.
    """
    from ...eval.gzsl import gzsl_eval
    from ...eval.metrics import gzsl_scores, one_class_note, top1

    labels = ds.labels
    test_part = ds.partition(partition, "test")
    seen, unseen = clf.seen_classes, clf.unseen_classes
    test_idx = test_part[np.isin(labels[test_part], unseen)]
    if len(test_idx) == 0:
        raise DataError(f"no test samples of the unseen classes {unseen.tolist()} in partition {partition!r}")
    if gzsl:
        check_gzsl_test(labels, test_part, seen, partition, ds.name)
    # GZSL scores every test sample, the unseen ones included: embed them all once (ZSL takes its
    # rows; both index lists keep test_part's order)
    all_idx = test_part[np.isin(labels[test_part], np.concatenate([seen, unseen]))] if gzsl else test_idx
    all_feats = clf.features(np.asarray(ds.data[all_idx], dtype=np.float32), batch_size)
    feats = all_feats[np.isin(all_idx, test_idx)]
    groups = alignment_groups(ds.meta, test_idx, align, f"dataset {ds.name!r}")
    r = zsl_eval(feats, labels[test_idx], unseen, clf.text, align, details=True, groups=groups)
    out: dict[str, Any] = {"zsl_top1": r["top1"]}
    if one_class_note(unseen):
        out["zsl_note"] = one_class_note(unseen)
    if "top1_aligned" in r:
        out["zsl_top1_aligned"] = r["top1_aligned"]
    out["test_samples"] = int(len(test_idx))
    out["unseen_classes"] = unseen.tolist()
    out["zsl_per_class"] = r["per_class"]
    out["zsl_confusion"] = r["confusion"]
    # a bare list of lists: say which axis is which and name the classes of its rows / columns
    out["zsl_confusion_axes"] = {"rows": "true class", "columns": "predicted class", "order": unseen.tolist(),
                                 "names": [str(ds.class_names[int(c)]) for c in unseen]}
    if "per_class_aligned" in r:
        out["zsl_per_class_aligned"] = r["per_class_aligned"]
        out["zsl_confusion_aligned"] = r["confusion_aligned"]
    if gzsl:
        classes = np.concatenate([seen, unseen])
        scores = clf.score(all_feats, classes)
        pred = classes[scores.argmax(1)]
        g = gzsl_scores(pred, labels[all_idx], seen, unseen)
        out["gzsl_uncalibrated"] = {**g, "top1_all": top1(pred, labels[all_idx]),
                                    "note": "argmax over seen+unseen text anchors, no calibration"}
        cal = calibration or {"available": False, "reason": "no calibration record (run predates it)"}
        if cal.get("available"):
            r = gzsl_eval(scores, labels[all_idx], classes, seen, unseen, gamma=float(cal["gamma"]))
            out["gzsl_calibrated"] = {"available": True, **r, "rule": "stacking", "gamma_source": cal["source"],
                                      "heldout": cal["heldout"]}
        else:
            out["gzsl_calibrated"] = {"available": False, "reason": cal.get("reason")}
        out["gzsl_gate"] = "not applicable: Flora's ratio gate needs non-negative error scores, PGFA gives cosines"
    return out


def _check_override_used(override: dict, align: dict, run) -> None:
    """ConfigError if an alignment ``override`` sets a key that the merged ``align`` never reads
    (alignment off; center_by without center; epsilon with argmax, temperature with balanced
    pseudo-labels): such an override was recorded in the output and ignored, so a comparison
    of options showed identical numbers with no word why."""
    def origin(key):
        return "the override sets" if key in override else f"{run} was trained with"

    if align.get("enabled") is False:
        inert = sorted(k for k in override if k != "enabled")
        if inert:
            raise ConfigError(f"alignment override {', '.join(inert)}: the alignment is off ({origin('enabled')} "
                              "alignment.enabled false), so it would change nothing; add enabled=true "
                              "(zeroskel evaluate --align enabled=true) to align")
        return
    why = {"center_by": ("center", False, "center=true"),
           "epsilon": ("pseudo_labels", "argmax", "pseudo_labels=balanced"),
           "temperature": ("pseudo_labels", "balanced", "pseudo_labels=argmax")}
    for key, (dep, off, fix) in why.items():
        if key in override and override[key] is not None and align.get(dep) == off:
            raise ConfigError(f"alignment override {key}: not used with alignment.{dep} {str(off).lower()} "
                              f"({origin(dep)} it), so it would change nothing; add {fix} "
                              f"(zeroskel evaluate --align {fix}) for it to apply")


def evaluate_pgfa(run_dir: "str | Path | list", data_root=None, device: str | None = None,
                  alignment: dict | None = None) -> dict:
    """Re-evaluate a finished PGFA run from its ``final.pt`` and ``config.yaml``.

    ``run_dir`` may be a list of run directories of the same split: they are evaluated as
    one :class:`PGFAEnsemble` (mean of the members' cosines; the first run's alignment and
    evaluation settings). GZSL calibration is per model, so an ensemble reports GZSL
    uncalibrated only.
    ``alignment`` overrides keys of the run's ``alignment`` config (e.g.
    ``{"pseudo_labels": "balanced"}``); unknown keys and bad values are errors.
    """
    from ...engine.config import merge
    from ...engine.trainer import resolve_device

    dirs = [Path(d) for d in run_dir] if isinstance(run_dir, (list, tuple)) else [Path(run_dir)]
    if not dirs:
        raise ConfigError("evaluate_pgfa: no run directory given")
    clfs = []
    for d in dirs:
        ck = d / "final.pt"
        if not ck.is_file():
            from ...engine.runs import unfinished_hint
            raise CheckpointError(f"{d}: no final.pt; {unfinished_hint(d)}")
        clfs.append(PGFAClassifier.load(ck, device=resolve_device(device or "auto")))
    clf = clfs[0] if len(clfs) == 1 else PGFAEnsemble(clfs, [str(d) for d in dirs])
    ck = dirs[0] / "final.pt"
    cfg = clf.card["config"]
    align = {**ALIGN_DEFAULTS, "enabled": True, "center_by": None, **cfg["alignment"]}  # older runs lack newer keys
    if alignment:
        align = merge(align, dict(alignment), "alignment override", prefix="alignment.")
    align_kwargs(align)  # a bad override fails before the dataset is loaded
    _check_override_used(alignment or {}, align, dirs[0])
    data_root = data_root if data_root is not None else cfg.get("data_root")
    ds, part = load_prepared(cfg, data_root)
    if list(ds.class_names) != list(clf.card["class_names"]):
        raise CheckpointError(f"{ck}: class names of the checkpoint differ from dataset {ds.name!r}")
    if int(ds.data.shape[2]) != int(clf.card["frames"]):
        raise CheckpointError(f"{ck}: trained on {clf.card['frames']} frames, data has {ds.data.shape[2]}")
    calibration = clf.card.get("selection", {}).get("calibration") if len(clfs) == 1 else {
        "available": False, "reason": "ensemble: each member's gamma was chosen for its own scores"}
    out = evaluate_classifier(clf, ds, part, align, gzsl=bool(cfg["eval"]["gzsl"]),
                              batch_size=int(cfg["eval"]["batch_size"]), calibration=calibration)
    out["alignment"] = align
    if len(clfs) > 1:
        out["ensemble"] = [str(d) for d in dirs]
    return out
