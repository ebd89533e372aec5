"""Training a PGFA run: config checks, epoch selection on seen-class validation data, the
two stages (selection, final model), checkpoints and resume.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np
import torch
from torch import nn

from ..._checks import as_whole
from ..._json import write_json
from ...errors import ConfigError, DataError, unknown_name
from ...models.modality import check_modality
from ...engine.config import check_bool, check_fraction, check_int
from ...engine.data import check_augment, draw_mix, epoch_batches, load_prepared, take_rows, training_share
from ...engine.distributed import current_world, gather_rows
from ...engine.trainer import PRECISIONS, autocast
from ..alignment import align_kwargs
from .classifier import PGFAClassifier
from .evaluation import check_gzsl_test, evaluate_classifier
from .losses import LOSSES, block_mean_loss, class_ce_loss, contrastive_loss, mixed_cross_entropy
from .model import PGFAModel, build_model
from .scoring import alignment_groups, cosine, embed, zsl_eval
from .texts import _check_part_sources, _check_segment_sources, _source_list, load_texts, text_record


def _optim_cfg(cfg: dict, epochs: int):
    from ...engine.trainer import OptimConfig

    t = cfg["train"]
    return OptimConfig(optimizer=t["optimizer"], lr=t["lr"], momentum=t["momentum"], nesterov=t["nesterov"],
                       weight_decay=t["weight_decay"], schedule=t["schedule"], milestones=t["milestones"],
                       gamma=t["gamma"], min_lr=t["min_lr"], warmup_epochs=t["warmup_epochs"],
                       warmup_reference_bug=t["warmup_reference_bug"], epochs=int(epochs))


def check_config(cfg: dict) -> None:
    """Value checks beyond the schema (names and ranges), with the offending key named."""
    for key in ("dataset", "split"):
        if not cfg.get(key):
            raise ConfigError(f"config key {key!r} is not set (--{key})")
    v = cfg["validation"]
    if v["mode"] not in ("pseudo_unseen", "heldout_seen", "none"):
        raise unknown_name("validation.mode", str(v["mode"]), ["pseudo_unseen", "heldout_seen", "none"])
    if select_rule(v) not in SELECT_RULES:
        raise unknown_name("validation.select", str(v["select"]), SELECT_RULES)
    if v["metric"] not in ("top1", "top1_aligned"):
        raise unknown_name("validation.metric", str(v["metric"]), ["top1", "top1_aligned"])
    align_kwargs(cfg["alignment"])  # bad alignment options fail before training, not after
    if v["metric"] == "top1_aligned" and v["mode"] != "none":
        # the aligned validation accuracy exists only for pseudo-unseen validation with the
        # alignment on; otherwise stage 1 trained to the end and then failed to select / log
        if v["mode"] != "pseudo_unseen":
            raise ConfigError(f"validation.metric top1_aligned needs validation.mode pseudo_unseen: "
                              f"{v['mode']} validation scores seen classes, without alignment "
                              "(use validation.metric top1)")
        if not cfg["alignment"].get("enabled", True):
            raise ConfigError("validation.metric top1_aligned needs the alignment: alignment.enabled is false "
                              "(use validation.metric top1, or alignment.enabled true)")
    loss = cfg["model"].get("loss", "batch_kl")
    if loss not in LOSSES:
        raise unknown_name("model.loss", str(loss), LOSSES)
    train_sources = cfg["text"].get("train_sources")
    if train_sources is not None:
        _source_list(train_sources, "text.train_sources")
        if loss == "class_ce":
            raise ConfigError("model.loss class_ce uses one text per class; it cannot be combined with "
                              "text.train_sources")
    _check_segment_sources(cfg["text"])
    _check_part_sources(cfg["text"])
    if cfg["eval"].get("reference_protocol") and v["mode"] != "none" and not v["refit"]:
        # the extra is the test curve of the final model's training; without a refit the final
        # model is a stage-1 model, whose epochs are not evaluated on test: metrics.json lacked it
        raise ConfigError("eval.reference_protocol needs a final model trained on all seen classes "
                          "(validation.refit true, or validation.mode none): with validation.refit false "
                          "the final model is the stage-1 model and no test curve is recorded")
    if v.get("heldout_group") and v["mode"] == "none":
        raise ConfigError("validation.heldout_group needs validation.mode pseudo_unseen or heldout_seen, got 'none'")
    cf = v.get("calibration_fraction")
    if cf is not None and not (isinstance(cf, (int, float)) and 0.0 <= cf < 1.0):
        raise ConfigError(f"validation.calibration_fraction must be in [0, 1), got {cf!r}")
    check_int(cfg, "validation.smooth", 1)
    check_int(cfg, "validation.min_epoch", 1)
    every = as_whole(v.get("every", 1))
    if every is None or every < 1:
        raise ConfigError(f"validation.every must be a positive integer, got {v.get('every')!r}")
    if "every" in v:
        v["every"] = every  # 2.0 is 2, as for every integer key (check_int)
    if refit_from(v) not in REFIT_FROM:
        raise unknown_name("validation.refit_from", str(refit_from(v)), REFIT_FROM)
    ft = v.get("finetune_epochs")
    # refit_from / finetune_epochs say how a refit is made; with no refit (mode none, refit
    # false) or a from-scratch one they are inert, so a config that fine-tunes does not block
    # --set validation.mode=none or validation.refit_from=scratch
    if fine_tunes(v):
        if as_whole(ft) is None or as_whole(ft) < 1:
            raise ConfigError(f"validation.refit_from selected needs validation.finetune_epochs, a positive "
                              f"integer, got {ft!r}")
        v["finetune_epochs"] = as_whole(ft)
    t = cfg["train"]
    check_int(cfg, "train.epochs", 0)
    check_int(cfg, "train.threads", 1, allow_none=True)  # 0 was ignored, 1.5 ran one thread
    check_int(cfg, "model.input_frames", 1, allow_none=True)
    if v["mode"] != "none" and select_rule(v) == "best" and int(v["min_epoch"]) > int(t["epochs"]):
        raise ConfigError(f"validation.min_epoch={v['min_epoch']} is after the last epoch "
                          f"(train.epochs={t['epochs']}): no epoch could be selected")
    if t.get("precision", "fp32") not in PRECISIONS:
        raise unknown_name("train.precision", str(t["precision"]), PRECISIONS)
    check_int(cfg, "train.batch_size", 2)
    check_int(cfg, "train.warmup_epochs", 0)
    if cfg["model"]["encoder"] not in ("stgcn", "shiftgcn"):
        raise unknown_name("encoder (model.encoder)", str(cfg["model"]["encoder"]), ["stgcn", "shiftgcn"])
    check_modality(cfg["model"].get("modality") or "joint")
    cb = cfg["alignment"].get("center_by")
    if cb is not None and not (isinstance(cb, str) and cb):
        raise ConfigError(f"alignment.center_by must be a per-sample metadata key (e.g. subject) or null, got {cb!r}")
    check_augment(cfg["data"]["augment"])
    check_int(cfg, "eval.batch_size", 1)
    check_int(cfg, "data.limit_per_class", 1, allow_none=True)
    if "heldout_count" in v:
        check_int(cfg, "validation.heldout_count", 1)
    check_int(cfg, "validation.num_unseen", 1, allow_none=True)  # 'abc' was a TypeError traceback
    check_fraction(cfg, "validation.fraction")
    for key, low in (("temperature", None), ("target_sharpness", 0.0)):
        val = cfg["model"][key]  # 'abc' was a ValueError traceback after the run folder was made
        if (not isinstance(val, (int, float)) or isinstance(val, bool) or not math.isfinite(val)
                or (val <= 0 if low is None else val < low)):
            raise ConfigError(f"model.{key} must be a {'positive' if low is None else 'non-negative'} number, "
                              f"got {val!r}")
    check_bool(cfg, "train.deterministic", "train.drop_last", "validation.refit", "model.learn_temperature",
               "eval.gzsl", "eval.reference_protocol")
    _optim_cfg(cfg, max(1, int(t["epochs"])))  # optimiser names / ranges
    mixup = t.get("mixup_alpha", 0.0)
    if not isinstance(mixup, (int, float)) or isinstance(mixup, bool) or not 0.0 <= mixup <= 100.0:
        raise ConfigError(f"train.mixup_alpha must be a number in [0, 100] (0: no mixup), got {mixup!r}")
    if "ce_init_epochs" in t:
        check_int(cfg, "train.ce_init_epochs", 0)
    ce = t.get("ce_init_epochs", 0)
    if ce and fine_tunes(v):
        raise ConfigError("train.ce_init_epochs initialises a model trained from scratch; it cannot be combined "
                          "with validation.refit_from selected (the final model starts from the stage-1 model)")


def select_epoch(history: list[dict], metric: str, smooth: int = 1, min_epoch: int = 1) -> int:
    """1-based epoch maximising the (trailing-window mean of the) validation ``metric``.

    Ties go to the earliest epoch. ``history`` entries carry ``val_<metric>``; only epochs
    that were evaluated (``validation.every``) can be picked, and the window averages the
    evaluated epochs among the last ``smooth``.
    """
    key = f"val_{metric}"
    vals = np.array([h.get(key, np.nan) for h in history], dtype=np.float64)
    done = ~np.isnan(vals)
    if not done.any():
        raise ConfigError(f"no validation metric {key!r} recorded; cannot select an epoch")
    sm = np.full(len(vals), -np.inf)
    for i in np.flatnonzero(done):
        w = slice(max(0, i - smooth + 1), i + 1)
        sm[i] = vals[w][done[w]].mean()
    sm[: max(0, min_epoch - 1)] = -np.inf
    if np.isneginf(sm).all():
        raise ConfigError(f"no validated epoch at or after validation.min_epoch={min_epoch} "
                          f"(last validated: {int(np.flatnonzero(done)[-1]) + 1})")
    return int(np.argmax(sm)) + 1


SELECT_RULES = ("best", "last")
REFIT_FROM = ("scratch", "selected")


def refit_from(vcfg: dict) -> str:
    """``validation.refit_from``; ``scratch`` for run configs saved before the key existed."""
    return vcfg.get("refit_from", "scratch")


def fine_tunes(vcfg: dict) -> bool:
    """Whether the final model fine-tunes the stage-1 model: only when there is a refit
    (``refit_from`` / ``finetune_epochs`` are inert otherwise)."""
    return vcfg["mode"] != "none" and bool(vcfg["refit"]) and refit_from(vcfg) == "selected"


def unused_settings(vcfg: dict) -> list[str]:
    """Notes on validation settings that this config sets but never uses (they are accepted so a
    fine-tuning config can be switched back with ``refit_from=scratch`` or ``mode=none``, but a
    user who set ``finetune_epochs`` alone should read that nothing was fine-tuned)."""
    ft = vcfg.get("finetune_epochs")
    if ft is None or fine_tunes(vcfg):
        return []
    why = ("validation.mode is none" if vcfg["mode"] == "none" else "validation.refit is false"
           if not vcfg["refit"] else f"validation.refit_from is {refit_from(vcfg)}")
    return [f"validation.finetune_epochs={ft} is not used: {why} (the final model is not a fine-tune; "
            "validation.refit_from: selected makes it one)"]


def unused_alignment_settings(align: dict) -> list[str]:
    """Notes on an ``alignment.center_by`` that the run never applies (the alignment is off, or
    ``center`` is false): accepted, so ``--set alignment.center=false`` works on a preset that
    centres per subject, but the log says the grouping did nothing."""
    cb = align.get("center_by")
    if not cb or (align.get("enabled", True) and align.get("center")):
        return []
    why = "alignment.enabled is false" if not align.get("enabled", True) else "alignment.center is false"
    return [f"alignment.center_by={cb} is not used: {why} (center_by only groups the centring of "
            "alignment.center: true)"]


def select_rule(vcfg: dict) -> str:
    """``validation.select``; ``best`` for run configs saved before the key existed."""
    return vcfg.get("select", "best")


def chosen_epoch(history: list[dict], vcfg: dict) -> int:
    """The stage-1 epoch that ``validation`` config ``vcfg`` picks: ``select: best`` is
    :func:`select_epoch` on the validation curve; ``select: last`` is the last epoch of the
    budget (the validation stage then only supplies the GZSL calibration and the curve)."""
    if select_rule(vcfg) == "last":
        return len(history)
    return select_epoch(history, vcfg["metric"], int(vcfg["smooth"]), int(vcfg["min_epoch"]))


def training_partition(cfg: dict, ds, part: str) -> np.ndarray:
    """Indices of partition ``part``'s training samples that a run with ``cfg`` may use: all of
    them, or the first ``data.limit_per_class`` of each class."""
    train_part = ds.partition(part, "train")
    lim = cfg["data"].get("limit_per_class")
    if lim is not None:
        if not isinstance(lim, int) or isinstance(lim, bool) or lim < 1:
            raise ConfigError(f"data.limit_per_class must be null or a positive integer, got {lim!r}")
        labels = ds.labels
        train_part = np.sort(np.concatenate([train_part[labels[train_part] == c][:lim]
                                             for c in np.unique(labels[train_part])]))
    return train_part


def validation_partition(cfg: dict, ds, split, train_part: np.ndarray) -> dict:
    """The stage-1 samples of a run whose ``validation.mode`` is not ``none``: a pure function of
    the config, the dataset and the split, so a finished run's stage-1 sets can be rebuilt.

    Returns a dict with ``fit`` (stage-1 training indices), ``val`` (validation indices),
    ``calibration`` (held-out pseudo-seen indices for the GZSL gamma; may be empty),
    ``val_classes`` (the validation classes), ``pseudo_split`` (the pseudo-unseen
    :class:`ZeroShotSplit`, in ``pseudo_unseen`` mode) and ``heldout_group`` (``{"key", "value"}``,
    when ``validation.heldout_group`` is set). Indices are into ``ds``; ``train_part`` is
    :func:`training_partition`.
    """
    from ...data.splits import holdout_group, stratified_holdout

    vcfg = cfg["validation"]
    labels = ds.labels
    seen = split.seen_array
    vseed = int(cfg["seed"]) if vcfg["seed"] is None else int(vcfg["seed"])
    out: dict[str, Any] = {"calibration": np.zeros(0, np.int64)}
    fit_pool = val_pool = train_part
    group_key = vcfg.get("heldout_group")
    if group_key:
        fit_pool, val_pool, held = holdout_group(ds, train_part, str(group_key), vseed, vcfg.get("heldout_count", 1))
        out["heldout_group"] = {"key": str(group_key), "value": held}
    if vcfg["mode"] == "pseudo_unseen":
        vsplit = split.validation_split(num_unseen=vcfg["num_unseen"], seed=vseed)
        fit_idx = fit_pool[np.isin(labels[fit_pool], vsplit.seen_array)]
        val_idx = val_pool[np.isin(labels[val_pool], vsplit.unseen_array)]
        out.update(pseudo_split=vsplit, val_classes=vsplit.unseen_array)
        cfrac = float(vcfg.get("calibration_fraction") or 0.0)
        if cfrac > 0:
            # held-out pseudo-seen samples: the "seen" side of the GZSL calibration
            fit_idx, out["calibration"] = stratified_holdout(labels[fit_idx], vsplit.seen_array, cfrac, vseed,
                                                             fit_idx)
    elif group_key:  # heldout_seen by group: every seen sample of the held-out subjects/views
        fit_idx = fit_pool[np.isin(labels[fit_pool], seen)]
        val_idx = val_pool[np.isin(labels[val_pool], seen)]
        out["val_classes"] = seen
    else:
        fit_idx, val_idx = split.holdout_seen(labels, fraction=float(vcfg["fraction"]), seed=vseed, index=train_part)
        out["val_classes"] = seen
    out.update(fit=fit_idx, val=val_idx)
    return out


def class_index(classes: np.ndarray, device) -> torch.Tensor:
    """(max id + 1,) lookup from a class id to its position in the sorted ``classes`` (-1 elsewhere)."""
    index = torch.full((int(classes.max()) + 1,), -1, dtype=torch.long, device=device)
    index[torch.from_numpy(classes).to(device)] = torch.arange(len(classes), device=device)
    return index


class _Batch(NamedTuple):
    """One training batch of a PGFA stage: this process's share ``x`` (B', C, T, V, M) of the
    global batch, its (B,) labels ``y``, the (B,) text-source draws of text augmentation (or
    None) and the mixup ``(lam, (B,) pairing)`` (or None)."""
    x: torch.Tensor
    y: torch.Tensor
    draws: torch.Tensor | None
    mix: tuple[float, torch.Tensor] | None


class _Stage:
    """Data and closures for one training stage (stage 1 = selection, stage 2 = refit).

    ``text_t`` is (C, D): every sample's target is its class text; or (S, C, D) (text
    augmentation, ``text.train_sources``): each sample's target is drawn from the S texts
    of its class at every step.
    """

    def __init__(self, cfg, data, lengths, labels, text_t, device):
        self.cfg, self.data, self.lengths, self.labels = cfg, data, lengths, labels
        self.text_t, self.device = text_t, device
        # data-parallel: every process draws the same global batch and encodes its own share
        self.world = current_world()
        self.precision = cfg["train"].get("precision", "fp32")
        self.loss = cfg["model"].get("loss", "batch_kl")
        if self.loss == "class_ce":  # the stage's own classes (pseudo-seen in stage 1, seen in stage 2)
            classes = np.unique(labels)
            self.class_index = class_index(classes, device)
            self.class_text = text_t[torch.from_numpy(classes).to(device)]

    def batches(self, epoch: int, rng: np.random.Generator) -> Iterator[_Batch]:
        t = self.cfg["train"]
        alpha = float(t.get("mixup_alpha") or 0.0)
        for idx in epoch_batches(len(self.labels), int(t["batch_size"]), bool(t["drop_last"]), rng, self.world):
            # every draw comes from the epoch's generator: reproducible on resume
            mix = draw_mix(len(idx), alpha, rng)
            x = training_share(self.data, idx, self.lengths, self.cfg["data"]["augment"], rng, self.world, mix)
            y = torch.from_numpy(np.array(self.labels[idx]))
            draws = (torch.from_numpy(rng.integers(self.text_t.shape[0], size=len(idx)))
                     if self.text_t.dim() == 3 else None)
            yield _Batch(torch.from_numpy(x), y, draws,
                         None if mix is None else (mix[0], torch.from_numpy(mix[1])))

    def mix_on(self, batch: _Batch) -> tuple[float, torch.Tensor] | None:
        """The batch's mixup ``(lam, perm)`` with ``perm`` on the loss's device (None: unmixed)."""
        return None if batch.mix is None else (batch.mix[0], batch.mix[1].to(self.device))

    def step(self, model: PGFAModel, batch: _Batch):
        x, y = batch.x.to(self.device), batch.y.to(self.device)
        mix = self.mix_on(batch)
        with autocast(self.device, self.precision):
            feats = model(x)
        # the loss in fp32 under any precision, over the whole global batch
        feats = gather_rows(feats.float(), len(y), self.world)
        if self.loss == "class_ce":
            target = self.class_index[y]
            return block_mean_loss(model, feats, self.class_text,
                                   lambda f, t: class_ce_loss(f, t, target, model.logit_scale, mix)), len(y)
        target = self.text_t[batch.draws.to(self.device), y] if batch.draws is not None else self.text_t[y]
        return contrastive_loss(model, feats, target, y, float(self.cfg["model"]["target_sharpness"]), mix), len(y)


class _CEInit(nn.Module):
    """A PGFA model's encoder with a linear class head: the cross-entropy initialisation
    (``train.ce_init_epochs``). The head is discarded afterwards; the projection is untouched."""

    def __init__(self, model: PGFAModel, num_classes: int) -> None:
        super().__init__()
        self.model = model
        self.head = nn.Linear(int(model.encoder.feature_dim), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.model.encode(x))


def _ce_initialise(cfg: dict, stage: "_Stage", model: PGFAModel, checkpoint: Path, seed: int, device,
                   log, max_epochs: int | None, name: str, data: dict | None = None) -> float | None:
    """Train ``model``'s encoder with cross-entropy over ``stage``'s classes for
    ``train.ce_init_epochs`` epochs (checkpointed, resumable; a no-op once done). Returns the
    seconds its epochs took (over all sessions), or None if ``max_epochs`` stopped it."""
    from ...engine.trainer import Trainer

    epochs = int(cfg["train"]["ce_init_epochs"])
    classes = np.unique(stage.labels)
    index = class_index(classes, device)

    def step(net: _CEInit, batch: _Batch):
        x, y = batch.x.to(device), batch.y.to(device)
        with autocast(device, stage.precision):
            logits = net(x)
        logits = gather_rows(logits.float(), len(y), stage.world)
        return mixed_cross_entropy(logits, index[y], stage.mix_on(batch)), len(y)

    tr = Trainer(_CEInit(model, len(classes)), step, stage.batches, _optim_cfg(cfg, epochs), seed=seed,
                 device=device, checkpoint=checkpoint, logger=log, grad_clip=cfg["train"]["grad_clip"],
                 extra_state={"stage": f"{name} cross-entropy initialisation", "config": cfg, **(data or {})})
    log.info(f"{name}: cross-entropy initialisation of the encoder, {epochs} epochs over {len(classes)} classes")
    if not tr.fit_stage(epochs, max_epochs, f"{name} cross-entropy initialisation"):
        return None
    return float(sum(h["seconds"] for h in tr.history))


def _set_threads(cfg):
    th = cfg["train"].get("threads")
    if th is not None:
        torch.set_num_threads(th)


def train_pgfa(cfg: dict, run_dir: str | Path, data_root=None, logger=None,
               max_epochs: int | None = None, device: str | None = None) -> dict | None:
    """Train (or resume) a PGFA run in ``run_dir`` and write ``metrics.json``.

    Stages:
      1. *selection*: train on the seen classes minus the validation part, evaluate the
         validation set after every epoch (pseudo-unseen ZSL or held-out seen samples),
         pick the epoch (:func:`chosen_epoch`: the best on validation, or with
         ``validation.select: last`` the last of the budget). Skipped for ``validation.mode: none``.
         In ``pseudo_unseen`` mode, ``validation.calibration_fraction`` of each pseudo-seen
         class is also held out; the GZSL calibrated-stacking gamma of the selected epoch
         (chosen on those + the pseudo-unseen samples) is stored in ``selection.json``.
      2. *final*: with ``validation.refit`` retrain from scratch on all seen classes for the
         selected number of epochs (else keep the stage-1 model of the selected epoch); with
         ``validation.refit_from: selected``, fine-tune the stage-1 model of the selected epoch
         on all seen classes for ``validation.finetune_epochs`` instead (a fresh optimiser and
         schedule over those epochs), which costs a fraction of a second training.
    With ``train.ce_init_epochs`` > 0, each stage trained from scratch first trains its encoder
    with cross-entropy over the stage's classes (``stage1_ce.pt`` / ``stage2_ce.pt``).
    Then the final model is evaluated on the test set (ZSL over the unseen classes of the
    test partition, with and without alignment; optionally GZSL) and saved as
    ``final.pt`` (a :class:`PGFAClassifier` checkpoint).

    Every epoch is checkpointed (``stage1_last.pt`` / ``stage2_last.pt``); calling again on
    the same run directory resumes where it stopped, with identical results.
    ``max_epochs`` stops the current stage after that many completed epochs (returns None):
    a hook to simulate interruptions. ``device`` runs it on another device than the config's
    (``zeroskel resume --device``); the config is left as it is.

    Returns:
        the metrics dict (also written to ``run_dir/metrics.json``), or None if stopped.
    """
    from ...engine.trainer import close_logger, run_logger

    import os
    import sys

    echo = sys.stderr.isatty() and not os.environ.get("ZEROSKEL_QUIET")
    log = logger or run_logger(Path(run_dir) / "train.log", echo=echo)
    try:
        return _train_pgfa(cfg, Path(run_dir), data_root, log, max_epochs, device)
    finally:
        if logger is None:
            close_logger(log)


def _train_pgfa(cfg: dict, run_dir: Path, data_root, log, max_epochs: int | None,
                device_arg: str | None = None) -> dict | None:
    from ...data.splits import get_split
    from ...engine.trainer import (Trainer, check_precision, load_checkpoint, resolve_device, save_checkpoint,
                                  seed_everything, versions)

    from ...engine.runs import check_data_unchanged, data_state
    from ...eval.protocol import calibrate

    check_config(cfg)
    for note in unused_settings(cfg["validation"]) + unused_alignment_settings(cfg["alignment"]):
        log.warning(note)
    _set_threads(cfg)
    world = current_world()
    device = world.device(resolve_device(device_arg or cfg.get("device") or "auto"))
    check_precision(cfg["train"].get("precision", "fp32"), device)
    seed = int(cfg["seed"])
    seed_everything(seed, bool(cfg["train"]["deterministic"]))
    data_root = data_root if data_root is not None else cfg.get("data_root")
    t_start = time.perf_counter()
    resumed = any(run_dir.glob("stage*.pt"))  # then total_wall covers this process only

    ds, part = load_prepared(cfg, data_root)
    split = get_split(cfg["dataset"], cfg["split"], class_names=ds.class_names)
    split.check(ds, part)
    tx = load_texts(cfg, ds, data_root)
    # a resumed run continues on the data and texts it started on, or not at all; every checkpoint
    # records them
    data = {**data_state(ds), "texts": text_record(tx)}
    check_data_unchanged(run_dir, ds, cfg, data["texts"])
    text = tx["sentence"]
    # training targets: the class texts, or the augmentation bank (S, C, D) of text.train_sources
    text_t = torch.from_numpy(tx.get("train_bank", text)).to(device)
    labels = ds.labels
    train_part, test_part = training_partition(cfg, ds, part), ds.partition(part, "test")
    seen, unseen = split.seen_array, split.unseen_array
    train_idx = train_part[np.isin(labels[train_part], seen)]
    num_persons = int(ds.data.shape[-1])
    prec = cfg["train"].get("precision", "fp32")
    log.info(f"pgfa {cfg['dataset']} {split.name} seed {seed} device {device}"
             f"{f' (process {world.rank} of {world.size}, data-parallel)' if world.active else ''}"
             f"{'' if prec == 'fp32' else f' ({prec} autocast)'}: {len(train_idx)} training "
             f"samples of {len(seen)} seen classes, partition {part!r}, text {tx['model']} ({text.shape[1]}-d)")

    def make_model():
        torch.manual_seed(seed)  # identical initial weights in every stage and on resume
        return build_model(cfg, ds.layout, num_persons, tx["dim"])

    card = {"config": cfg, "dataset": ds.name, "class_names": list(ds.class_names), "layout": ds.layout,
            "num_persons": num_persons, "frames": int(ds.data.shape[2]), "partition": part,
            "split": split.to_dict(), "seen": seen.tolist(), "unseen": unseen.tolist(),
            "text_model": tx["model"], "text_checksum": tx["checksum"], "text_source": cfg["text"]["source"],
            "text_train_sources": cfg["text"].get("train_sources"),
            "text_segment_sources": cfg["text"].get("segment_sources"),
            "text_part_sources": cfg["text"].get("part_sources"), "versions": versions()}

    epochs = int(cfg["train"]["epochs"])
    ce_epochs = int(cfg["train"].get("ce_init_epochs") or 0)  # 0 in run configs saved before the key
    ce_seconds = 0.0
    vcfg = cfg["validation"]
    align = cfg["alignment"]
    test_idx = test_part[np.isin(labels[test_part], unseen)]
    if len(unseen) == 1:
        from ...eval.metrics import one_class_note
        log.warning(f"split {split.name!r}: {one_class_note(unseen)}")
    if cfg["eval"]["gzsl"]:  # now, not after training (the run could not be evaluated at all)
        check_gzsl_test(labels, test_part, seen, part, ds.name)
    test_groups = alignment_groups(ds.meta, test_idx, align, f"dataset {ds.name!r}")  # bad grouping fails now
    eval_bs = int(cfg["eval"]["batch_size"])
    selection: dict[str, Any] = {"mode": vcfg["mode"]}
    sel_path = run_dir / "selection.json"

    # ------------------------------------------------------------------ stage 1
    warm = fine_tunes(vcfg)
    cal_idx = np.zeros(0, np.int64)
    calib_reason = {"none": "validation.mode is none: no held-out seen data to choose gamma on",
                    "heldout_seen": "validation.mode heldout_seen: the held-out data has no (pseudo-)unseen "
                                    "classes, so the seen/unseen trade-off cannot be measured"}.get(vcfg["mode"])
    if vcfg["mode"] != "none":
        vp = validation_partition(cfg, ds, split, train_part)
        fit_idx, val_idx, cal_idx, val_classes = vp["fit"], vp["val"], vp["calibration"], vp["val_classes"]
        if "heldout_group" in vp:
            selection.update(heldout_group=vp["heldout_group"])
            g = vp["heldout_group"]
            log.info(f"validation: samples of {g['key']} {g['value']!r} only; stage 1 never sees that {g['key']}")
        if vcfg["mode"] == "pseudo_unseen":
            vsplit = vp["pseudo_split"]
            selection.update(pseudo_seen=vsplit.seen_array.tolist(), pseudo_unseen=val_classes.tolist())
            if len(cal_idx) == 0:
                cfrac = float(vcfg.get("calibration_fraction") or 0.0)
                calib_reason = ("validation.calibration_fraction is 0: no held-out pseudo-seen samples"
                                if cfrac <= 0 else "no pseudo-seen class has 2 samples to hold one out")
        if len(val_idx) == 0 or len(fit_idx) < 2:
            raise DataError(f"validation mode {vcfg['mode']!r} leaves {len(fit_idx)} training and "
                            f"{len(val_idx)} validation samples; use validation.mode none")
        selection.update(fit_samples=int(len(fit_idx)), val_samples=int(len(val_idx)))
        vdata, vlab = take_rows(ds.data, val_idx), labels[val_idx]
        stage_align = align if vcfg["mode"] == "pseudo_unseen" else None
        val_groups = alignment_groups(ds.meta, val_idx, stage_align, f"dataset {ds.name!r}")
        if len(cal_idx):
            selection["calibration_samples"] = int(len(cal_idx))
            cdata, clab = take_rows(ds.data, cal_idx), np.concatenate([labels[cal_idx], vlab])
            cal_classes = np.concatenate([vsplit.seen_array, val_classes])

        def val_fn(model, epoch):
            f = embed(model, vdata, device, eval_bs)
            r = zsl_eval(f, vlab, val_classes, text, stage_align, groups=val_groups)
            out = {f"val_{k}": v for k, v in r.items()}
            if len(cal_idx):
                # GZSL over pseudo-seen + pseudo-unseen of held-out samples only (never test)
                sc = cosine(np.concatenate([embed(model, cdata, device, eval_bs), f]), text[cal_classes])
                c = calibrate(sc, clab, cal_classes, vsplit.seen_array, val_classes)["stacking"]
                out.update({f"val_calib_{k}": v for k, v in c.items()})
            return out

        if not sel_path.is_file():
            st1 = _Stage(cfg, take_rows(ds.data, fit_idx), ds.lengths[fit_idx], labels[fit_idx], text_t, device)

            def keep_best(trainer, res):
                # the trailing-window criterion of an epoch never depends on later epochs,
                # so "best so far" is final: keep that model (the final one for refit: false,
                # the start of the fine-tune for refit_from: selected)
                if ((not vcfg["refit"] or warm) and res.metrics and trainer.epoch >= int(vcfg["min_epoch"])
                        and chosen_epoch(trainer.history, vcfg) == trainer.epoch):
                    save_checkpoint({"model": trainer.model.state_dict(), "epoch": trainer.epoch},
                                    run_dir / "stage1_best.pt")

            model1 = make_model()
            if ce_epochs:
                ce1 = _ce_initialise(cfg, st1, model1, run_dir / "stage1_ce.pt", seed, device, log, max_epochs,
                                     "stage 1", data)
                if ce1 is None:
                    return None
                selection["ce_init_seconds"] = ce1
            tr = Trainer(model1, st1.step, st1.batches, _optim_cfg(cfg, epochs), seed=seed, device=device,
                         checkpoint=run_dir / "stage1_last.pt", eval_fn=val_fn, on_epoch_end=keep_best,
                         logger=log, grad_clip=cfg["train"]["grad_clip"], eval_every=int(vcfg.get("every", 1)),
                         extra_state={"stage": 1, "config": cfg, **data})
            log.info(f"stage 1 (selection, {vcfg['mode']}): {len(fit_idx)} fit / {len(val_idx)} validation samples")
            if not tr.fit_stage(epochs, max_epochs, "stage 1"):
                return None
            best = chosen_epoch(tr.history, vcfg)
            selection.update(best_epoch=best, metric=vcfg["metric"], rule=select_rule(vcfg),
                             # 1-based epochs, like best_epoch and train.log (the trainer's history is 0-based)
                             val_curve=[{"epoch": int(h["epoch"]) + 1,
                                         **{k: h[k] for k in h if k.startswith("val_") or k == "loss"}}
                                        for h in tr.history],
                             best_val=tr.history[best - 1].get(f"val_{vcfg['metric']}"),
                             seconds=float(sum(h["seconds"] for h in tr.history)))
            h = tr.history[best - 1]
            selection["calibration"] = {"available": False, "reason": calib_reason} if not len(cal_idx) else {
                "available": True, "rule": "stacking", "gamma": float(h["val_calib_gamma"]),
                "heldout": {k: float(h[f"val_calib_{k}"]) for k in ("S", "U", "H")}, "epoch": best,
                "source": f"stage-1 model at the selected epoch; cosine scores over the pseudo-seen + "
                          f"pseudo-unseen classes of {len(cal_idx)} held-out pseudo-seen and {len(val_idx)} "
                          f"pseudo-unseen training samples (zeroskel.eval.protocol.calibrate); no test data"}
            log.info(f"selected epoch {best} ({'the last of the budget; ' if selection['rule'] == 'last' else ''}"
                     f"validation {vcfg['metric']} {selection['best_val']:.2f})")
            write_json(selection, sel_path)
        selection = json.loads(sel_path.read_text(encoding="utf-8"))
        final_epochs = int(vcfg["finetune_epochs"]) if warm else int(selection["best_epoch"])
    else:
        final_epochs = epochs
        selection["best_epoch"] = epochs
    # runs started before calibration existed have no record: say so rather than guess
    selection.setdefault("calibration", {"available": False, "reason": calib_reason or
                                         "selection.json predates GZSL calibration"})

    # ------------------------------------------------------------------ stage 2
    test_data = take_rows(ds.data, test_idx)
    def test_curve(model, epoch):
        f = embed(model, test_data, device, eval_bs)
        r = zsl_eval(f, labels[test_idx], unseen, text, align, groups=test_groups)
        return {f"test_{k}": v for k, v in r.items()}

    # the reference's per-epoch test curve, only for its labelled best-of-test extra field
    ref_fn = test_curve if cfg["eval"]["reference_protocol"] else None

    if vcfg["mode"] != "none" and not vcfg["refit"]:
        model = make_model()
        model.load_state_dict(load_checkpoint(run_dir / "stage1_best.pt")["model"])
        model.to(device)
        history2: list[dict] = []
        stage2_seconds = 0.0
    else:
        st2 = _Stage(cfg, take_rows(ds.data, train_idx), ds.lengths[train_idx], labels[train_idx], text_t, device)
        model2 = make_model()
        if warm:
            # the fine-tune starts from the selected stage-1 model, with a fresh optimiser and a
            # schedule (warm-up, decay) over its own finetune_epochs
            model2.load_state_dict(load_checkpoint(run_dir / "stage1_best.pt")["model"])
            n2, horizon = final_epochs, final_epochs
        else:
            # the reference protocol needs every epoch of a full-length run; the same schedule
            # horizon as stage 1, so the refit model at epoch e saw the same lrs
            n2, horizon = (epochs if ref_fn is not None else final_epochs), epochs
            if ce_epochs:
                ce2 = _ce_initialise(cfg, st2, model2, run_dir / "stage2_ce.pt", seed, device, log, max_epochs,
                                     "stage 2", data)
                if ce2 is None:
                    return None
                ce_seconds += ce2
        tr = Trainer(model2, st2.step, st2.batches, _optim_cfg(cfg, horizon), seed=seed,
                     device=device, checkpoint=run_dir / "stage2_last.pt", eval_fn=ref_fn, logger=log,
                     grad_clip=cfg["train"]["grad_clip"], extra_state={"stage": 2, "config": cfg, **data})
        if ref_fn is None or n2 == final_epochs:
            log.info(f"stage 2 (final model): {len(train_idx)} samples, {final_epochs} epochs"
                     + (f", fine-tuning the stage-1 model of epoch {selection['best_epoch']}" if warm else ""))
            if not tr.fit_stage(final_epochs, max_epochs, "stage 2"):
                return None
        else:
            # keep the weights at the selected epoch while the run continues to the end
            def keep(trainer, res):
                if trainer.epoch == final_epochs:
                    save_checkpoint({"model": trainer.model.state_dict(), "epoch": final_epochs},
                                    run_dir / "stage2_selected.pt")
            tr.on_epoch_end = keep
            log.info(f"stage 2 (final model at epoch {final_epochs}; running all {n2} epochs for "
                     "the reference protocol)")
            if not tr.fit_stage(n2, max_epochs, "stage 2"):
                return None
            tr.model.load_state_dict(load_checkpoint(run_dir / "stage2_selected.pt")["model"])
        model = tr.model
        history2 = tr.history
        stage2_seconds = float(sum(h["seconds"] for h in tr.history))

    # ------------------------------------------------------------------ final model + test
    from ...models.registry import make_card
    enc_card = make_card(cfg["model"]["encoder"], model.encoder, frames=card["frames"], dataset=ds.name,
                         split=split.name, text_model=tx["model"]).to_dict()
    clf = PGFAClassifier(model, text, {**card, "encoder_card": enc_card,
                                       "selection": {k: v for k, v in selection.items() if k != "val_curve"}},
                         device)
    save_checkpoint(clf.state(), run_dir / "final.pt")
    metrics = evaluate_classifier(clf, ds, part, align, gzsl=bool(cfg["eval"]["gzsl"]), batch_size=eval_bs,
                                  calibration=selection["calibration"])
    metrics["selection"] = selection
    if ref_fn is not None and history2:
        curve = [h.get("test_top1_aligned", h.get("test_top1")) for h in history2]
        plain = [h.get("test_top1") for h in history2]
        metrics["reference_protocol_best_epoch_on_test"] = {
            "note": "max over epochs of the TEST accuracy (the reference code's protocol); "
                    "test-selected, NOT a valid zero-shot estimate; for comparison only",
            "top1": max(plain), "top1_epoch": int(np.argmax(plain)) + 1,
            "top1_aligned": max(curve) if align.get("enabled", True) else None,
            "top1_aligned_epoch": int(np.argmax(curve)) + 1}
    if ce_epochs:  # the cross-entropy initialisations of both stages (in stage1 / stage2: the contrastive epochs)
        ce_seconds += float(selection.get("ce_init_seconds", 0.0))
    metrics["train_seconds"] = {"stage1": float(selection.get("seconds", 0.0)), "stage2": stage2_seconds,
                                **({"ce_init": ce_seconds} if ce_epochs else {}),
                                "total_wall": time.perf_counter() - t_start,
                                **({"total_wall_covers": "the last process only (resumed run); stage1 and stage2 "
                                                         "count every process"} if resumed else {})}
    metrics["final_epochs"] = final_epochs
    metrics["final_model"] = ("the stage-1 model of the selected epoch" if vcfg["mode"] != "none" and not vcfg["refit"]
                              else f"the stage-1 model of epoch {selection['best_epoch']}, fine-tuned on all seen "
                                   f"classes for {final_epochs} epochs" if warm
                              else f"trained from scratch on all seen classes for {final_epochs} epochs")
    metrics["device"] = str(device)
    if world.active:
        metrics["processes"] = world.size  # data-parallel (torchrun); global batch train.batch_size
    metrics["precision"] = cfg["train"].get("precision", "fp32")
    metrics["torch_threads"] = torch.get_num_threads()
    write_json(metrics, run_dir / "metrics.json")
    log.info(f"test ZSL top1 {metrics['zsl_top1']:.2f}"
             + (f", with alignment {metrics['zsl_top1_aligned']:.2f}" if "zsl_top1_aligned" in metrics else ""))
    return metrics


