"""Skeleton-encoder pretraining for the two-stage methods (Flora, SMIE, DeViSE, CADA-VAE).

The feature-based zero-shot methods work on one pooled feature per sample made by a
skeleton encoder trained beforehand **on the seen classes only**. This module trains that
encoder: a Shift-GCN or ST-GCN (:mod:`zeroskel.models`) plus a linear classifier over the
seen classes, cross-entropy, on the seen classes of the train partition. The epoch is
chosen on a stratified hold-out of the seen *training* samples
(:meth:`zeroskel.data.splits.ZeroShotSplit.holdout_seen`); no test-partition sample and no
unseen class enters training or selection (the reference feature extractors of the field
select checkpoints on seen-class *test* samples; we do not).

A run directory (``<runs_dir>/pretrain-<dataset>-<split>-seed<k>[-N]``, never reused) holds

* ``config.yaml``, ``train.log``;
* ``stage1_last.pt`` (rolling trainer checkpoint, for exact resume), ``stage1_best.pt``;
* ``selection.json``: hold-out sizes, the per-epoch curve and the chosen epoch;
* ``encoder.pt``: the final encoder + classifier with its
  :class:`zeroskel.models.registry.EncoderCard` (``extra["pretrain"]``: a :class:`PretrainRecord`);
* ``metrics.json``: hold-out accuracy and, as a diagnostic only, seen-class accuracy on the
  test partition.

Features are extracted from ``encoder.pt`` by :func:`zeroskel.engine.extract.extract_features`.

Library entry points: :func:`pretrain_encoder` (new run), :func:`train_pretrain` (run or
resume in a given folder; what :func:`zeroskel.engine.runs.train` calls),
:func:`evaluate_pretrain`, :func:`load_encoder`, :func:`build_encoder`,
:class:`SeenClassifier`, :class:`PretrainRecord`, :class:`LoadedEncoder`.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._json import write_json
from ..errors import CheckpointError, ConfigError, DataError, unknown_name
from ..models.registry import list_encoders
from .data import check_augment, epoch_batches, load_prepared, take_rows, training_share
from .distributed import current_world, gather_rows
from .trainer import PRECISIONS, autocast

METHOD = "pretrain"
CHECKPOINT_KIND = "zeroskel.encoder"
CHECKPOINT_VERSION = 1
ENCODERS = tuple(list_encoders())  # the registry decides which encoders exist


# =========================================================================== model
def build_encoder(name: str, layout: str, num_persons: int, preset: str | None = None,
                  args: dict | None = None, in_channels: int = 3) -> nn.Module:
    """A skeleton encoder (N, C, T, V, M) -> (N, F) from :mod:`zeroskel.models.registry`.

    ``preset`` and ``args`` (``model.preset`` / ``model.args``: extra constructor keyword
    arguments such as ``channels`` and ``strides``) are passed to the encoder's constructor.
    """
    from ..models.registry import build_encoder as registry_build

    if args is not None and not isinstance(args, dict):
        raise ConfigError(f"model.args must be a mapping of encoder arguments, got {args!r}")
    if name not in ENCODERS:
        raise unknown_name("encoder (model.encoder)", str(name), ENCODERS)
    kw = dict(args or {})
    for k in ("layout", "num_persons", "in_channels", "preset"):
        if k in kw:
            raise ConfigError(f"model.args must not set {k!r} (it comes from the data / model.preset)")
    if preset is not None:
        kw["preset"] = preset
    try:
        return registry_build(name, layout=layout, in_channels=int(in_channels),
                              num_persons=int(num_persons), **kw)
    except (ConfigError, TypeError, ValueError) as e:
        raise ConfigError(f"model.args {args!r} / model.preset {preset!r} do not fit encoder "
                          f"{name!r}: {e}") from None


class SeenClassifier(nn.Module):
    """Encoder + (dropout) + linear classifier over the seen classes.

    Args:
        encoder: module (N, C, T, V, M) -> (N, F) exposing ``feature_dim``.
        num_classes: number of seen classes K (logit ``k`` = ``k``-th seen class id, sorted).
        dropout: dropout on the pooled feature during training.
    """

    def __init__(self, encoder: nn.Module, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {dropout}")
        self.encoder = encoder
        self.feature_dim = int(encoder.feature_dim)
        self.drop = nn.Dropout(float(dropout))
        self.head = nn.Linear(self.feature_dim, int(num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> (N, F): the encoder's pooled feature (mean over T, V, then M)."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T, V, M) -> (N, K) seen-class logits."""
        return self.head(self.drop(self.features(x)))


# =========================================================================== card
@dataclass
class PretrainRecord:
    """How a pretrained encoder was trained, for zero-shot use (JSON-able).

    Stored as ``extra["pretrain"]`` of the checkpoint's
    :class:`zeroskel.models.registry.EncoderCard` (which holds the architecture, input
    layout, frames and feature width).

    Attributes:
        pipeline: the resolved preprocessing (transform configs) the encoder expects.
        dataset: dataset name; dataset_source: what ``prepare`` was given (name or path).
        class_names: every class of the dataset (id order).
        partition: the train/test partition used.
        split: the split record (:meth:`ZeroShotSplit.to_dict`); seen / unseen: class ids;
            the classifier's logit ``k`` is ``seen[k]``.
        selected_epoch, epochs_run: chosen epoch (1-based) and epochs trained in stage 1.
        n_fit, n_val: seen training samples fitted on / held out for selection.
        val_seen_acc: hold-out top-1 % at the selected epoch.
        refit: whether the final weights were retrained on all seen training samples.
        seed: run seed; data_fingerprint: prepared-cache key of the data.
        versions: zeroskel / torch / numpy versions.
        data_content: the content record of the prepared data it was trained on
            (:func:`zeroskel.data.cache.content_record`: digests of the recordings, labels,
            partitions...), which :func:`zeroskel.engine.extract.extract_features` compares with
            the data it extracts from; empty in encoders saved before it was recorded.
    """

    pipeline: list
    dataset: str
    dataset_source: str
    class_names: list
    partition: str
    split: dict
    seen: list
    unseen: list
    selected_epoch: int
    epochs_run: int
    n_fit: int
    n_val: int
    val_seen_acc: float
    refit: bool = False
    seed: int = 0
    data_fingerprint: str = ""
    versions: dict = field(default_factory=dict)
    data_content: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "pretraining record") -> "PretrainRecord":
        if not isinstance(d, dict):
            raise CheckpointError(f"{where}: no pretraining record (card extra['pretrain'])")
        names = [f.name for f in dataclasses.fields(cls)]
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        missing = [k for k in required if k not in d]
        if missing:
            raise CheckpointError(f"{where}: missing pretraining key(s) {', '.join(missing)}")
        return cls(**{k: d[k] for k in names if k in d})


class LoadedEncoder(NamedTuple):
    """What :func:`load_encoder` returns."""

    model: "SeenClassifier"   # encoder + seen-class head, eval mode
    card: Any                 # zeroskel.models.registry.EncoderCard
    record: PretrainRecord
    config: dict              # the run configuration


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> LoadedEncoder:
    """Load ``encoder.pt`` (or a run directory holding one).

    Returns:
        :class:`LoadedEncoder` ``(model, card, record, config)``: the
        :class:`SeenClassifier` in eval mode on ``device``, its registry ``EncoderCard``,
        the :class:`PretrainRecord` and the run configuration.
    """
    from ..models.registry import EncoderCard
    from .trainer import load_checkpoint, resolve_device

    path = Path(path)
    if path.is_dir():
        if not (path / "encoder.pt").is_file():
            from .runs import unfinished_hint
            raise CheckpointError(f"{path}: no encoder.pt; {unfinished_hint(path)}")
        path = path / "encoder.pt"
    st = load_checkpoint(path)
    if st.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"{path}: not an encoder checkpoint (kind {st.get('kind')!r}, expected "
                              f"{CHECKPOINT_KIND!r})")
    if int(st.get("version", 0)) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {st.get('version')} is newer than this "
                              f"zeroskel understands ({CHECKPOINT_VERSION})")
    for key in ("card", "encoder", "head", "config"):
        if key not in st:
            raise CheckpointError(f"{path}: missing key {key!r}")
    try:
        card = EncoderCard.from_dict(st["card"], f"{path}: card")
        enc = card.build()
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    record = PretrainRecord.from_dict(card.extra.get("pretrain"), str(path))
    model = SeenClassifier(enc, len(record.seen), float(st["config"]["model"].get("dropout") or 0.0))
    try:
        model.encoder.load_state_dict(st["encoder"])
        model.head.load_state_dict(st["head"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match the encoder described by its card "
                              f"({str(e).strip().splitlines()[0][:200]})") from None
    return LoadedEncoder(model.to(resolve_device(device)).eval(), card, record, st["config"])


# =========================================================================== data
@torch.no_grad()
def encode(model: SeenClassifier, data: np.ndarray, idx: np.ndarray, device: torch.device,
           batch_size: int = 256, logits: bool = False) -> np.ndarray:
    """Pooled features (N, F) of samples ``idx`` of ``data`` (eval mode, no augmentation);
    with ``logits=True`` the (N, K) seen-class logits instead."""
    was = model.training
    model.eval()
    out = []
    for s in range(0, len(idx), batch_size):
        xb = torch.from_numpy(take_rows(data, idx[s:s + batch_size])).to(device)
        y = model(xb) if logits else model.features(xb)
        out.append(y.float().cpu().numpy())
    model.train(was)
    width = model.head.out_features if logits else model.feature_dim
    return np.concatenate(out) if out else np.zeros((0, width), np.float32)


# =========================================================================== config / selection
def optim_config(cfg: dict, epochs: int | None = None):
    """:class:`zeroskel.engine.trainer.OptimConfig` of ``cfg['train']``."""
    from .trainer import OptimConfig

    t = cfg["train"]
    return OptimConfig(optimizer=t["optimizer"], lr=t["lr"], momentum=t["momentum"],
                       nesterov=t["nesterov"], weight_decay=t["weight_decay"],
                       schedule=t["schedule"], milestones=t["milestones"], gamma=t["gamma"],
                       min_lr=t["min_lr"], warmup_epochs=t["warmup_epochs"],
                       epochs=int(t["epochs"] if epochs is None else epochs))


def check_config(cfg: dict) -> None:
    """Value checks beyond the schema, naming the offending key."""
    from .config import check_bool, check_fraction, check_int, validate_config

    validate_config(cfg, METHOD)
    for key in ("dataset", "split"):
        if not cfg.get(key):
            raise ConfigError(f"config key {key!r} is not set (--{key})")
    if cfg["model"]["encoder"] not in ENCODERS:
        raise unknown_name("encoder (model.encoder)", str(cfg["model"]["encoder"]), ENCODERS)
    check_int(cfg, "train.epochs", 1)
    check_int(cfg, "train.batch_size", 2)
    check_int(cfg, "train.warmup_epochs", 0)
    check_int(cfg, "train.patience", 1, allow_none=True)
    check_int(cfg, "validation.min_epoch", 1)
    check_int(cfg, "extract.batch_size", 1)
    check_int(cfg, "data.limit_per_class", 1, allow_none=True)
    check_int(cfg, "train.threads", 1, allow_none=True)  # 'x' was a ValueError, 0 ignored, 1.5 ran 1
    check_bool(cfg, "train.nesterov", "train.deterministic", "train.drop_last", "validation.refit")
    check_fraction(cfg, "validation.fraction")
    ls = cfg["train"]["label_smoothing"]
    if not isinstance(ls, (int, float)) or not 0.0 <= ls < 1.0:
        raise ConfigError(f"train.label_smoothing must be in [0, 1), got {ls!r}")
    if cfg["validation"]["min_epoch"] > cfg["train"]["epochs"]:  # else found after a whole stage 1, for good
        raise ConfigError(f"validation.min_epoch={cfg['validation']['min_epoch']} is after the last epoch "
                          f"(train.epochs={cfg['train']['epochs']}): no epoch could be selected")
    check_int(cfg, "validation.heldout_count", 1)
    dr = cfg["model"]["dropout"]
    if dr is not None and (not isinstance(dr, (int, float)) or isinstance(dr, bool) or not 0.0 <= dr < 1.0):
        raise ConfigError(f"model.dropout must be a number in [0, 1), got {dr!r}")
    check_augment(cfg["data"]["augment"])
    if cfg["train"].get("precision", "fp32") not in PRECISIONS:
        raise unknown_name("train.precision", str(cfg["train"]["precision"]), PRECISIONS)
    optim_config(cfg)  # optimiser names and ranges


def select_epoch(history: list[dict], min_epoch: int = 1) -> int | None:
    """1-based epoch with the best hold-out top-1 (ties: lower hold-out loss, then earlier).

    Epochs before ``min_epoch`` are never chosen; None if no epoch is eligible yet. The
    criterion of an epoch does not depend on later epochs, so "best so far" is final.
    """
    best, key = None, None
    for i, h in enumerate(history):
        if i + 1 < min_epoch:
            continue
        k = (float(h["val_top1"]), -float(h["val_loss"]))
        if key is None or k > key:
            best, key = i + 1, k
    return best


# =========================================================================== training
def _set_threads(cfg: dict) -> None:
    th = cfg["train"].get("threads")
    if th:
        torch.set_num_threads(int(th))


def pretrain_encoder(config: dict, runs_dir: str | Path = "runs", data_root=None,
                     max_epochs: int | None = None) -> Path:
    """Pretrain an encoder in a new run directory ``runs_dir/pretrain-...``; return its path.

    ``config`` is a resolved pretraining config, e.g.
    ``build_config("pretrain", dataset="utd_mhad", split="purls-22/5", seed=1)``. The folder is
    created exclusively (a second run of the same name gets ``-1``, ``-2``...), the config is
    written before training, and an interrupted run continues with
    :func:`zeroskel.engine.runs.resume_run` (or :func:`train_pretrain` on the folder).
    ``max_epochs`` stops after that many epochs of the current stage (an interruption hook).
    """
    from .runs import train

    config = dict(config)
    if config.get("method", METHOD) != METHOD:
        raise ConfigError(f"config is for method {config.get('method')!r}, not {METHOD!r}")
    config["method"] = METHOD
    return train(config, runs_dir, data_root=data_root, max_epochs=max_epochs)


def train_pretrain(cfg: dict, run_dir: str | Path, data_root=None, logger=None,
                   max_epochs: int | None = None, device: str | None = None) -> dict | None:
    """Train (or resume) the encoder of ``cfg`` in ``run_dir``; write ``encoder.pt``.

    Stage 1 trains on the seen training samples minus a stratified hold-out
    (``validation.fraction``), evaluates the hold-out after every epoch and keeps the best
    epoch's weights (:func:`select_epoch`), stopping early after ``train.patience`` epochs
    without improvement. With ``validation.refit`` stage 2 retrains from the same
    initialisation on every seen training sample for the selected number of epochs.

    Every epoch is checkpointed; calling again on the same folder resumes with identical
    results. Returns the metrics (also in ``metrics.json``), or None when stopped by
    ``max_epochs``. ``device`` runs it on another device than the config's (``zeroskel resume
    --device``); the config is left as it is.
    """
    from .trainer import close_logger, run_logger

    log = logger or run_logger(Path(run_dir) / "train.log")
    try:
        return _train(cfg, Path(run_dir), data_root, log, max_epochs, device)
    finally:
        if logger is None:
            close_logger(log)




class _Fit:
    """Batches and loss of one training stage."""

    def __init__(self, cfg: dict, data: np.ndarray, lengths: np.ndarray, idx: np.ndarray,
                 targets: np.ndarray, device: torch.device) -> None:
        self.cfg, self.data, self.lengths, self.idx, self.targets = cfg, data, lengths, idx, targets
        self.device = device
        self.precision = cfg["train"].get("precision", "fp32")
        # data-parallel (torchrun): every process draws the global batch and encodes its share
        self.world = current_world()

    def batches(self, epoch: int, rng: np.random.Generator):
        t = self.cfg["train"]
        for p in epoch_batches(len(self.idx), int(t["batch_size"]), bool(t["drop_last"]), rng, self.world):
            idx = self.idx[p]
            x = training_share(self.data, idx, self.lengths, self.cfg["data"]["augment"], rng, self.world)
            yield torch.from_numpy(x), torch.from_numpy(self.targets[p])

    def step(self, model: SeenClassifier, batch):
        x, y = batch
        x, y = x.to(self.device), y.to(self.device)
        with autocast(self.device, self.precision):
            logits = model(x)
        loss = F.cross_entropy(gather_rows(logits.float(), len(y), self.world), y,
                               label_smoothing=float(self.cfg["train"]["label_smoothing"]))
        return loss, len(y)


def _train(cfg: dict, run_dir: Path, data_root, log, max_epochs: int | None,
           device_arg: str | None = None) -> dict | None:
    from ..data.splits import get_split, holdout_group
    from .runs import check_data_unchanged, data_state
    from .trainer import (Trainer, check_precision, load_checkpoint, resolve_device, save_checkpoint,
                          seed_everything, versions)

    if (run_dir / "metrics.json").is_file() and (run_dir / "encoder.pt").is_file():
        log.info("run already finished; nothing to do")
        return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    check_config(cfg)
    _set_threads(cfg)
    device = current_world().device(resolve_device(device_arg or cfg.get("device") or "auto"))
    check_precision(cfg["train"].get("precision", "fp32"), device)
    seed = int(cfg["seed"])
    seed_everything(seed, bool(cfg["train"]["deterministic"]))
    data_root = data_root if data_root is not None else cfg.get("data_root")
    t0 = time.perf_counter()
    resumed = any(run_dir.glob("stage*.pt"))  # then total_wall covers this process only

    ds, part = load_prepared(cfg, data_root, progress=False)
    # a resumed run continues on the data it started on, or not at all; every checkpoint records them
    check_data_unchanged(run_dir, ds, cfg)
    data = data_state(ds)
    split = get_split(str(cfg["dataset"]), str(cfg["split"]), class_names=ds.class_names)
    split.check(ds, part)
    labels = ds.labels
    seen, unseen = split.seen_array, split.unseen_array
    train_part, test_part = ds.partition(part, "train"), ds.partition(part, "test")
    train_idx = train_part[np.isin(labels[train_part], seen)]
    lim = cfg["data"]["limit_per_class"]
    if lim is not None:
        train_idx = np.sort(np.concatenate([train_idx[labels[train_idx] == c][:lim] for c in seen]))
    vcfg = cfg["validation"]
    vseed = seed if vcfg["seed"] is None else int(vcfg["seed"])
    group_key, held = vcfg.get("heldout_group"), None
    if group_key:
        # every seen training sample of the held-out subjects / views is hold-out data
        fit_idx, val_idx, held = holdout_group(ds, train_idx, str(group_key), vseed,
                                               vcfg.get("heldout_count", 1))
        log.info(f"hold-out: {group_key} {held!r} (never trained on in stage 1)")
    else:
        fit_idx, val_idx = split.holdout_seen(labels, fraction=float(vcfg["fraction"]), seed=vseed,
                                              index=train_idx)
    # by construction: only seen classes of the train partition are fitted or used for selection
    if np.isin(np.concatenate([fit_idx, val_idx]), test_part).any() or \
            not np.isin(labels[np.concatenate([fit_idx, val_idx])], seen).all():
        raise AssertionError("selection data leaked outside the seen training samples")  # pragma: no cover
    if len(val_idx) == 0 or len(fit_idx) < 2:
        what = (f"validation.heldout_group={group_key} ({held})" if group_key
                else f"validation.fraction={vcfg['fraction']}")
        raise DataError(f"{what} leaves {len(fit_idx)} training and "
                        f"{len(val_idx)} hold-out samples of the seen classes; need >= 2 and >= 1")
    pos = np.full(ds.num_classes, -1, dtype=np.int64)
    pos[seen] = np.arange(len(seen))
    num_persons, frames = int(ds.data.shape[-1]), int(ds.data.shape[2])
    m = cfg["model"]
    epochs = int(cfg["train"]["epochs"])
    patience = cfg["train"]["patience"]
    min_epoch = int(vcfg["min_epoch"])
    log.info(f"pretrain {m['encoder']} on {ds.name} {split.name} seed {seed} device {device}: "
             f"{len(seen)} seen classes, {len(fit_idx)} fit / {len(val_idx)} hold-out samples "
             f"of partition {part!r}")

    def make_model():
        torch.manual_seed(seed)  # the same initial weights in every stage and on resume
        enc = build_encoder(m["encoder"], ds.layout, num_persons, m["preset"], m["args"], int(ds.data.shape[1]))
        return SeenClassifier(enc, len(seen), float(m["dropout"] or 0.0))

    ebs = int(cfg["extract"]["batch_size"])
    vlab = pos[labels[val_idx]]

    def val_fn(model, epoch):
        lg = encode(model, ds.data, val_idx, device, ebs, logits=True)
        loss = float(F.cross_entropy(torch.from_numpy(lg), torch.from_numpy(vlab)))
        return {"val_top1": float((lg.argmax(1) == vlab).mean() * 100.0), "val_loss": loss}

    sel_path = run_dir / "selection.json"
    if not sel_path.is_file():
        fit = _Fit(cfg, ds.data, ds.lengths, fit_idx, pos[labels[fit_idx]], device)

        def keep_best(trainer, res):
            if select_epoch(trainer.history, min_epoch) == trainer.epoch:
                save_checkpoint({"model": trainer.model.state_dict(), "epoch": trainer.epoch},
                                run_dir / "stage1_best.pt")

        tr = Trainer(make_model(), fit.step, fit.batches, optim_config(cfg), seed=seed, device=device,
                     checkpoint=run_dir / "stage1_last.pt", eval_fn=val_fn, on_epoch_end=keep_best,
                     logger=log, grad_clip=cfg["train"]["grad_clip"], extra_state={"stage": 1, "config": cfg, **data})
        tr.resume()

        def stopped() -> bool:
            best = select_epoch(tr.history, min_epoch)
            return patience is not None and best is not None and tr.epoch - best >= int(patience)

        # one epoch per fit() call so that early stopping can look at every epoch
        while tr.epoch < epochs and not stopped():
            if max_epochs is not None and tr.epoch >= max_epochs:
                log.info(f"stopped after epoch {tr.epoch} of stage 1 (max_epochs={max_epochs})")
                return None
            tr.fit(epochs, max_epochs=tr.epoch + 1, resume=False)
        best = select_epoch(tr.history, min_epoch)
        if best is None:
            raise ConfigError(f"validation.min_epoch={min_epoch} is after the last epoch ({tr.epoch})")
        h = tr.history[best - 1]
        selection = {"selected_epoch": best, "epochs_run": tr.epoch, "val_top1": h["val_top1"],
                     "val_loss": h["val_loss"], "n_fit": int(len(fit_idx)), "n_val": int(len(val_idx)),
                     "fraction": None if group_key else float(vcfg["fraction"]), "seed": vseed,
                     "heldout_group": {"key": str(group_key), "value": held} if group_key else None,
                     "early_stopped": tr.epoch < epochs,
                     "test_samples_used": 0,
                     # 1-based epochs, like selected_epoch (the trainer's history is 0-based)
                     "curve": [{"epoch": int(e["epoch"]) + 1,
                                **{k: e[k] for k in ("loss", "val_top1", "val_loss", "lr")}}
                               for e in tr.history],
                     "seconds": float(sum(e["seconds"] for e in tr.history))}
        log.info(f"selected epoch {best} of {tr.epoch} (hold-out top-1 {h['val_top1']:.2f}, "
                 f"loss {h['val_loss']:.4f})")
        write_json(selection, sel_path)
    selection = json.loads(sel_path.read_text(encoding="utf-8"))
    best = int(selection["selected_epoch"])

    if vcfg["refit"]:
        fit2 = _Fit(cfg, ds.data, ds.lengths, train_idx, pos[labels[train_idx]], device)
        tr2 = Trainer(make_model(), fit2.step, fit2.batches, optim_config(cfg), seed=seed, device=device,
                      checkpoint=run_dir / "stage2_last.pt", logger=log, grad_clip=cfg["train"]["grad_clip"],
                      extra_state={"stage": 2, "config": cfg, **data})
        log.info(f"stage 2 (refit): {len(train_idx)} samples, {best} epochs")
        if not tr2.fit_stage(best, max_epochs, "stage 2"):
            return None
        model = tr2.model
        refit_seconds = float(sum(e["seconds"] for e in tr2.history))
    else:
        model = make_model()
        model.load_state_dict(load_checkpoint(run_dir / "stage1_best.pt")["model"])
        model.to(device)
        refit_seconds = 0.0
    model.eval()

    from ..models.registry import make_card

    pipeline = ds.info.get("pipeline")
    record = PretrainRecord(
        pipeline=list(pipeline) if pipeline is not None else [], dataset=ds.name,
        dataset_source=str(cfg["dataset"]), class_names=list(ds.class_names), partition=part,
        split=split.to_dict(), seen=seen.tolist(), unseen=unseen.tolist(), selected_epoch=best,
        epochs_run=int(selection["epochs_run"]), n_fit=int(selection["n_fit"]), n_val=int(selection["n_val"]),
        val_seen_acc=float(selection["val_top1"]), refit=bool(vcfg["refit"]), seed=seed,
        data_fingerprint=str(ds.info.get("fingerprint", "")), versions=versions(),
        data_content=dict(data.get("data") or {}))
    card = make_card(m["encoder"], model.encoder, frames=frames, dataset=ds.name, split=split.name,
                     extra={"pretrain": record.to_dict()})
    save_checkpoint({"kind": CHECKPOINT_KIND, "version": CHECKPOINT_VERSION, "card": card.to_dict(),
                     "config": cfg, "encoder": model.encoder.state_dict(), "head": model.head.state_dict()},
                    run_dir / "encoder.pt")
    metrics = _metrics(model, record, ds, part, device, ebs)
    metrics.update(train_seconds={"stage1": float(selection["seconds"]), "refit": refit_seconds,
                                  "total_wall": time.perf_counter() - t0,
                                  **({"total_wall_covers": "the last process only (resumed run); stage1 and "
                                                           "refit count every process"} if resumed else {})},
                   device=str(device), torch_threads=torch.get_num_threads())
    write_json(metrics, run_dir / "metrics.json")
    log.info(f"encoder.pt written: hold-out top-1 {record.val_seen_acc:.2f} at epoch {best}; "
             f"seen-class test top-1 (diagnostic) {metrics['test_seen_acc_diag']:.2f}")
    return metrics


def seen_test_accuracy(model: SeenClassifier, record: PretrainRecord, ds, partition: str,
                       device: torch.device, batch_size: int = 256) -> tuple[float, int]:
    """Top-1 % of the seen-class classifier on the seen-class samples of the test partition.

    A diagnostic of encoder quality only: it is never used to choose anything.
    Returns ``(accuracy, number of samples)``.
    """
    seen = np.asarray(record.seen, dtype=np.int64)
    test = ds.partition(partition, "test")
    idx = test[np.isin(ds.labels[test], seen)]
    if len(idx) == 0:
        return float("nan"), 0
    lg = encode(model, ds.data, idx, device, batch_size, logits=True)
    return float((seen[lg.argmax(1)] == ds.labels[idx]).mean() * 100.0), int(len(idx))


def _metrics(model: SeenClassifier, record: PretrainRecord, ds, part: str, device, batch_size: int) -> dict:
    acc, n = seen_test_accuracy(model, record, ds, part, device, batch_size)
    return {"val_seen_acc": record.val_seen_acc, "selected_epoch": record.selected_epoch,
            "epochs_run": record.epochs_run, "n_fit": record.n_fit, "n_val": record.n_val,
            "test_seen_acc_diag": acc, "n_test_seen": n,
            "note": "test_seen_acc_diag: seen-class accuracy on the test partition, a diagnostic "
                    "only (selection used the seen hold-out of the train partition)"}


def evaluate_pretrain(run_dir: str | Path, data_root=None, device: str | None = None) -> dict:
    """Re-compute the metrics of a finished pretraining run from its ``encoder.pt``."""
    from .trainer import resolve_device

    dev = resolve_device(device or "auto")
    model, _, record, cfg = load_encoder(run_dir, dev)
    data_root = data_root if data_root is not None else cfg.get("data_root")
    ds, part = load_prepared(cfg, data_root, progress=False)
    if list(ds.class_names) != list(record.class_names):
        raise CheckpointError(f"{run_dir}: class names of the encoder differ from dataset {ds.name!r}")
    return _metrics(model, record, ds, part, dev, int(cfg["extract"]["batch_size"]))
