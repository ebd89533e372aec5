"""Pooled skeleton features of a pretrained encoder, in the layout Flora and the field use.

:func:`extract_features` runs the encoder of a pretraining run
(:mod:`zeroskel.engine.pretrain`) over a dataset, preprocessed exactly as in training (the
pipeline recorded in the encoder card), and writes

* ``<out>.npz`` with :func:`zeroskel.data.features.save_features`: ``train_data`` /
  ``train_label`` (seen classes of the train partition), ``zsl_data`` / ``zsl_label``
  (unseen classes of the test partition), ``gzsl_data`` / ``gzsl_label`` (seen and unseen
  classes of the test partition), original class ids;
* ``<out stem>_encoder.json``, a sidecar like the shipped ``<name>_encoder.json``: split
  lists, sizes, chosen epoch, seen hold-out accuracy, seen-class test accuracy (diagnostic
  only), and how the features were made.

The feature of a sample is the encoder's output: the last unit's map averaged over time and
joints, then over persons. One deterministic pass, eval mode, no test-time augmentation.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from .._checks import check_seed
from .._json import dumps
from ..errors import CheckpointError, ConfigError, DataError
from ..paths import new_output

SIDECAR_SUFFIX = "_encoder.json"


def sidecar_path(out_path: str | os.PathLike) -> Path:
    """``feats.npz`` -> ``feats_encoder.json`` (the shipped files' naming)."""
    p = Path(out_path)
    stem = p.name[:-4] if p.name.endswith(".npz") else p.name
    return p.with_name(stem + SIDECAR_SUFFIX)


def _resolve_checkpoint(source: str | os.PathLike) -> Path:
    p = Path(source)
    if p.is_dir():
        ck = p / "encoder.pt"
        if not ck.is_file():
            raise CheckpointError(f"{p}: no encoder.pt; not a finished pretraining run (resume it "
                                  "with `zeroskel resume RUN_DIR`)")
        return ck
    if not p.is_file():
        raise CheckpointError(f"encoder checkpoint or run directory {p} not found")
    return p


def _masking(masked: dict | None):
    """``(MotionMask, seed)`` of extract_features' ``masked`` options, or ``(None, 0)``."""
    if masked is None:
        return None, 0
    from ..data.transforms import MotionMask

    bad = sorted(set(masked) - {"drop", "keep", "seed"})
    if bad:
        raise ConfigError(f"masked: unknown option {bad[0]!r}; options: drop, keep, seed")
    seed = masked.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"masked: 'seed' must be an integer, got {seed!r}")
    # a negative seed was numpy's 'expected non-negative integer' traceback, after every feature was encoded
    seed = check_seed(seed, "masked: 'seed' (--masked-seed)")
    try:
        return MotionMask(drop=masked.get("drop", 15), keep=masked.get("keep", 20)), seed
    except ConfigError as e:  # name the flag the user typed, not only the transform
        raise ConfigError(f"masked (--masked DROP KEEP): {e}") from None


# content-record parts (zeroskel.data.cache.CONTENT_PARTS) that say which recordings the encoder trained on
# and under which label and partition; meta and preprocessing (the card's pipeline is used) are not compared
_LEAK_PARTS = ("samples", "skeletons", "labels", "partitions")


def _other_data(then: dict, ds) -> list[str] | None:
    """What differs between the data an encoder was trained on (its record's content record) and the
    prepared ``ds``: a list of descriptions (empty: the same), or None when either has no record."""
    from ..data.cache import CONTENT_PARTS, content_record

    now = content_record(ds)
    if not then or not now:
        return None
    return [CONTENT_PARTS[k] for k in _LEAK_PARTS if k in then and k in now and then[k] != now[k]]


def extract_features(run_dir_or_checkpoint: str | os.PathLike, dataset: str | None = None,
                     split: str | None = None, out_path: str | os.PathLike | None = None,
                     data_root: str | os.PathLike | None = None, device: str = "auto", *,
                     batch_size: int | None = None, overwrite: bool = False,
                     masked: dict | None = None) -> Path:
    """Extract pooled features of every sample needed by a zero-shot split; return the .npz path.

    Args:
        run_dir_or_checkpoint: a finished pretraining run directory or its ``encoder.pt``.
        dataset: dataset name or custom-dataset path (default: the one trained on). It is
            preprocessed with the encoder card's pipeline and must have the same classes. Data
            other than those the encoder was trained on (other recordings, labels or partitions,
            by the content record it stores) are extracted with a warning and recorded as
            ``data_as_trained: false`` in the sidecar: their test partition may hold recordings
            the encoder was trained on.
        split: split name or file (default: the one trained on). Another split is allowed
            only if none of its unseen classes was a training (seen) class of the encoder.
        out_path: output ``.npz`` (default ``<run_dir>/features.npz``).
        data_root: data root (default: the run's, else ``$ZEROSKEL_DATA``).
        device: ``auto`` | ``cpu`` | ``cuda[:N]``.
        batch_size: inference batch size (default: the run's ``extract.batch_size``).
        overwrite: replace existing output files (otherwise an error).
        masked: also store ``train_masked_data``, the features of every training sample's
            temporally masked sequence, for SMIE's temporal term: ``{"drop": 15, "keep": 20,
            "seed": 0}`` (:class:`~zeroskel.data.transforms.MotionMask` on the preprocessed
            sequence; the seed draws the kept frames: one masked view per sample, which SMIE
            reuses every epoch, where the reference draws a new subset at every step).

    Returns:
        the path of the written ``.npz`` (the sidecar is :func:`sidecar_path` of it).
    """
    from ..data import cache
    from ..data.features import FeatureSet, save_features
    from ..data.splits import get_split
    from .pretrain import encode, load_encoder
    from .trainer import resolve_device, versions

    ck = _resolve_checkpoint(run_dir_or_checkpoint)
    out = Path(out_path) if out_path is not None else ck.parent / "features.npz"
    side = sidecar_path(out)
    for p in (out, side):
        new_output(p, "output", overwrite, force_flag="overwrite=True (--force)")
    mask, mask_seed = _masking(masked)  # bad options fail before any encoding
    dev = resolve_device(device)
    model, card, rec, cfg = load_encoder(ck, dev)
    bs = int(batch_size if batch_size is not None else cfg["extract"]["batch_size"])
    if bs < 1:
        raise ConfigError(f"batch_size (--batch-size, or the run's extract.batch_size) must be >= 1, got {bs}")
    source = str(dataset) if dataset is not None else rec.dataset_source
    root = data_root if data_root is not None else cfg.get("data_root")
    ds = cache.prepare(source, rec.pipeline, data_root=root, cache_dir=cfg["data"].get("cache_dir"),
                       progress=False)
    if list(ds.class_names) != list(rec.class_names):
        now, then = list(ds.class_names), list(rec.class_names)
        diff = [i for i in range(max(len(now), len(then)))
                if i >= len(now) or i >= len(then) or now[i] != then[i]]
        first = diff[0]
        raise DataError(f"dataset {source!r}: its {len(now)} class names differ from the {len(then)} classes the "
                        f"encoder {ck} was trained with: class {first} is "
                        f"{repr(now[first]) if first < len(now) else 'missing'} here, "
                        f"{repr(then[first]) if first < len(then) else 'missing'} for the encoder"
                        + (f" ({len(diff) - 1} more differ)" if len(diff) > 1 else "")
                        + f"; extract on the dataset it was trained on ({rec.dataset_source})")
    if ds.layout != card.layout or ds.data.shape[1] != card.in_channels:
        raise DataError(f"dataset {source!r}: layout {ds.layout!r} / C={ds.data.shape[1]} do not match the "
                        f"encoder's {card.layout!r} / C={card.in_channels}")
    if ds.data.shape[-1] != card.num_persons:
        raise DataError(f"dataset {source!r}: M={ds.data.shape[-1]} persons, the encoder expects "
                        f"{card.num_persons}")
    if rec.partition not in ds.partitions:
        raise DataError(f"dataset {source!r} has no partition {rec.partition!r} (the encoder's); it has "
                        f"{', '.join(ds.partitions) or 'none'}")
    other_data = _other_data(rec.data_content, ds)
    if other_data:
        logging.getLogger(__name__).warning(
            "dataset %r: its data are not those the encoder %s was trained on (differ: %s). Its test "
            "partition may hold recordings the encoder was trained on, and recordings labelled with an unseen "
            "class may have been trained on as a seen one, so GZSL seen (and zero-shot) accuracy on these "
            "features can be inflated; pretrain again on these data (zeroskel pretrain) unless you know the "
            "encoder never saw its test partition. The sidecar records this as data_as_trained: false",
            source, ck, "; ".join(other_data))
    if split is not None:
        sp = get_split(source, str(split), class_names=ds.class_names)
    elif rec.split.get("kind") == "user":  # a user split file: rebuilt from the record
        from ..data.splits import ZeroShotSplit
        sp = ZeroShotSplit(name=rec.split["name"], dataset=rec.split.get("dataset", ""),
                           num_classes=int(rec.split["num_classes"]), seen=rec.seen, unseen=rec.unseen,
                           source="user", kind="user", file=rec.split.get("file", ""))
    else:
        sp = get_split(source, rec.split["name"])
    leak = sorted(set(sp.unseen) & set(rec.seen))
    if leak:
        raise ConfigError(f"split {sp.name!r}: unseen classes {leak} were training classes of the encoder "
                          f"{ck} (its split {rec.split['name']!r}); its features would not be zero-shot")
    sp.check(ds, rec.partition)
    seen, unseen = sp.seen_array, sp.unseen_array
    labels = ds.labels
    train_part, test_part = ds.partition(rec.partition, "train"), ds.partition(rec.partition, "test")
    tr_idx = train_part[np.isin(labels[train_part], seen)]
    z_idx = test_part[np.isin(labels[test_part], unseen)]
    g_idx = test_part[np.isin(labels[test_part], np.union1d(seen, unseen))]
    cseen = np.asarray(rec.seen, dtype=np.int64)
    d_idx = test_part[np.isin(labels[test_part], cseen)]  # for the diagnostic below
    # one pass over every needed sample (zsl is a subset of gzsl)
    need = np.union1d(np.union1d(tr_idx, g_idx), d_idx)
    with torch.no_grad():
        feats = encode(model, ds.data, need, dev, bs)
    row = {int(i): k for k, i in enumerate(need)}

    def rows(idx):
        return feats[[row[int(i)] for i in idx]] if len(idx) else np.zeros((0, feats.shape[1]), np.float32)

    masked_x = None
    if mask is not None:
        x, _ = mask.apply_batch(np.asarray(ds.data[tr_idx], dtype=np.float32), ds.lengths[tr_idx],
                                np.random.default_rng(mask_seed))
        with torch.no_grad():
            masked_x = encode(model, x, np.arange(len(x)), dev, bs)
        masked = {"drop": mask.drop, "keep": mask.keep, "seed": mask_seed}  # as recorded in the sidecar
    fs = FeatureSet(rows(tr_idx), labels[tr_idx], rows(z_idx), labels[z_idx], rows(g_idx), labels[g_idx],
                    seen_classes=np.unique(labels[tr_idx]), unseen_classes=np.unique(labels[z_idx]),
                    num_classes=ds.num_classes, source=str(out), train_masked_x=masked_x)
    # diagnostic: the classifier head on the encoder's own seen classes of the test partition
    diag = float("nan")
    if len(d_idx):
        with torch.no_grad():
            lg = model.head(torch.from_numpy(rows(d_idx)).to(dev)).cpu().numpy()
        diag = float((cseen[lg.argmax(1)] == labels[d_idx]).mean() * 100.0)
    run_dir = ck.parent
    sel = {}
    if (run_dir / "selection.json").is_file():
        sel = json.loads((run_dir / "selection.json").read_text(encoding="utf-8"))
    sidecar = {
        "ds": ds.name, "split": sp.name, "unseen": unseen.tolist(), "seen": seen.tolist(),
        "n_train": int(len(tr_idx)), "n_fit": rec.n_fit, "n_val": rec.n_val,
        "n_zsl": int(len(z_idx)), "n_gzsl": int(len(g_idx)),
        "best_epoch": rec.selected_epoch, "val_seen_acc": rec.val_seen_acc,
        "test_seen_acc_diag": diag, "epochs_run": rec.epochs_run,
        "train_time_s": sel.get("seconds"),
        "feature_dim": int(feats.shape[1]), "partition": rec.partition,
        "encoder": {"name": card.name, "kwargs": card.kwargs, "layout": card.layout,
                    "num_persons": card.num_persons, "frames": card.frames, "num_params": card.num_params,
                    "refit": rec.refit, "seed": rec.seed, "trained_split": rec.split["name"],
                    "checkpoint": str(ck.resolve())},
        "pipeline": rec.pipeline, "data_fingerprint": ds.info.get("fingerprint", ""),
        # false: the data differ from the encoder's training data (warned); null: no record to compare
        "data_as_trained": None if other_data is None else not other_data,
        **({"data_differs": other_data} if other_data else {}),
        "pooling": "encoder output: mean over time and joints, then over persons",
        "test_time_augmentation": False,
        "train_masked": masked,
        "selection": "epoch with the best top-1 on a stratified hold-out of the seen training samples",
        "note": "test_seen_acc_diag is a diagnostic only; nothing was selected on test data",
        "versions": versions(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_features(out, fs)  # written under a temporary name and renamed
    tmp_side = side.with_name(f".{side.name}.tmp{os.getpid()}")
    # strict JSON, as every other result file: no seen-class test sample made the diagnostic a bare NaN
    tmp_side.write_text(dumps(sidecar), encoding="utf-8")
    os.replace(tmp_side, side)
    return out
