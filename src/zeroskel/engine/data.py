"""Data plumbing shared by the training methods (PGFA, encoder pretraining)."""
from __future__ import annotations

import numpy as np

from ..errors import DataError, unknown_name


def load_prepared(cfg: dict, data_root=None, progress: bool = True):
    """The preprocessed dataset of a run config (from the prepared cache) and its partition.

    Uses ``cfg["dataset"]``, ``cfg["data"]["pipeline"]``, ``cfg["data"]["cache_dir"]`` and
    ``cfg["data"]["partition"]`` (default: the dataset's first partition).
    Returns ``(SkeletonDataset, partition name)``.
    """
    from ..data import cache

    ds = cache.prepare(cfg["dataset"], cfg["data"]["pipeline"], data_root=data_root,
                       cache_dir=cfg["data"].get("cache_dir"), progress=progress)
    part = cfg["data"].get("partition")
    if part is None:
        if not ds.partitions:
            raise DataError(f"dataset {ds.name!r} has no train/test partition; set data.partition")
        part = next(iter(ds.partitions))
    elif part not in ds.partitions:
        raise unknown_name(f"partition of dataset {ds.name!r} (data.partition)", part, ds.partitions)
    return ds, part


def augment_batch(x: np.ndarray, lengths: np.ndarray, aug: dict, rng: np.random.Generator) -> np.ndarray:
    """Training augmentation of a (B, 3, T, V, M) batch; returns a new float32 array.

    ``aug`` is a run config's ``data.augment``: ``random_crop: [low, high]`` (temporal crop of
    that share of the valid frames, resized back to T), ``rotate_deg`` (random rotation about
    the vertical y axis within +-deg), ``scale`` (random isotropic scale within 1 +- scale).
    """
    if aug.get("random_crop"):
        from ..data.transforms import RandomCrop

        lo, hi = aug["random_crop"]
        lengths = np.minimum(lengths, x.shape[2])
        x, _ = RandomCrop(frames=x.shape[2], ratio=(float(lo), float(hi))).apply_batch(x, lengths, rng)
    deg = float(aug.get("rotate_deg") or 0.0)
    if deg > 0:
        th = np.deg2rad(rng.uniform(-deg, deg, size=len(x)))
        c, s = np.cos(th)[:, None, None, None], np.sin(th)[:, None, None, None]
        x0, z0 = x[:, 0].copy(), x[:, 2].copy()
        x = x.copy()
        x[:, 0] = c * x0 + s * z0
        x[:, 2] = -s * x0 + c * z0
    sc = float(aug.get("scale") or 0.0)
    if sc > 0:
        x = x * rng.uniform(1 - sc, 1 + sc, size=(len(x), 1, 1, 1, 1)).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)
