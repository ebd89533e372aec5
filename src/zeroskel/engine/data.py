"""Data plumbing shared by the training methods (PGFA, encoder pretraining)."""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..errors import DataError, unknown_name
from .distributed import World, shard


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
            raise DataError(f"dataset {ds.name!r} has no train/test partition: a custom dataset needs a "
                            f"'partition' (or 'partition_<name>') key or column marking each sample train or "
                            f"test (docs/custom_format.md)")
        part = next(iter(ds.partitions))
    elif part not in ds.partitions:
        raise unknown_name(f"partition of dataset {ds.name!r} (data.partition)", part, ds.partitions)
    return ds, part


# data.augment keys with a number value: (smallest, largest) accepted value
AUGMENT_RANGES: dict[str, tuple[float, float]] = {
    "rotate_deg": (0.0, 180.0), "tilt_deg": (0.0, 90.0), "scale": (0.0, 0.99), "shear": (0.0, 0.99)}


def check_augment(aug: dict) -> None:
    """:class:`ConfigError` naming the ``data.augment`` key whose value is out of range."""
    from ..errors import ConfigError

    rc = aug.get("random_crop")
    if rc is not None and (not isinstance(rc, (list, tuple)) or len(rc) != 2
                           or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rc)
                           or not 0.0 < float(rc[0]) <= float(rc[1]) <= 1.0):
        raise ConfigError(f"data.augment.random_crop must be null or [low, high] with "
                          f"0 < low <= high <= 1, got {rc!r}")
    for key, (lo, hi) in AUGMENT_RANGES.items():
        v = aug.get(key)
        if v is None:
            continue
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= float(v) <= hi:
            raise ConfigError(f"data.augment.{key} must be a number in [{lo:g}, {hi:g}] "
                              f"(0 turns it off), got {v!r}")


def _rotate(x: np.ndarray, th: np.ndarray, a: int, b: int) -> np.ndarray:
    """Rotate coordinate pair (a, b) of a (B, 3, ...) batch by per-sample angles ``th`` (B,)."""
    shape = (len(x),) + (1,) * (x.ndim - 2)
    c, s = np.cos(th).reshape(shape), np.sin(th).reshape(shape)
    xa, xb = x[:, a].copy(), x[:, b].copy()
    x = x.copy()
    x[:, a] = c * xa + s * xb
    x[:, b] = -s * xa + c * xb
    return x


def augment_batch(x: np.ndarray, lengths: np.ndarray, aug: dict, rng: np.random.Generator) -> np.ndarray:
    """Training augmentation of a (B, 3, T, V, M) batch; returns a new float32 array.

    ``aug`` is a run config's ``data.augment``: ``random_crop: [low, high]`` (temporal crop of
    that share of the valid frames, resized back to the sample's own length), ``rotate_deg`` (random rotation about
    the vertical y axis within +-deg), ``tilt_deg`` (random rotations about the two horizontal
    axes, x then z, each within +-deg: camera elevation and roll), ``shear`` (coordinates
    times I + S, S's six off-diagonal entries uniform in +-shear: body proportions and pose),
    ``scale`` (random isotropic scale within 1 +- scale). Applied in that order; a key that is
    0 or absent draws no random numbers, so adding keys leaves older runs reproducible.
    """
    if aug.get("random_crop"):
        from ..data.transforms import RandomCrop

        lo, hi = aug["random_crop"]
        lengths = np.minimum(lengths, x.shape[2])
        # each crop is resized back to its sample's own length, so that zero-padded (unresized)
        # data keeps its padding as the test samples do; with resized data (every length = T)
        # this is the crop resized to T, as before
        x, _ = RandomCrop(frames=x.shape[2], ratio=(float(lo), float(hi))).apply_batch(
            x, lengths, rng, keep_lengths=not (lengths == x.shape[2]).all())
    deg = float(aug.get("rotate_deg") or 0.0)
    if deg > 0:
        x = _rotate(x, np.deg2rad(rng.uniform(-deg, deg, size=len(x))), 0, 2)
    tilt = float(aug.get("tilt_deg") or 0.0)
    if tilt > 0:
        x = _rotate(x, np.deg2rad(rng.uniform(-tilt, tilt, size=len(x))), 1, 2)  # about x
        x = _rotate(x, np.deg2rad(rng.uniform(-tilt, tilt, size=len(x))), 0, 1)  # about z
    sh = float(aug.get("shear") or 0.0)
    if sh > 0:
        m = np.repeat(np.eye(3)[None], len(x), axis=0)
        off = ~np.eye(3, dtype=bool)
        m[:, off] = rng.uniform(-sh, sh, size=(len(x), 6))
        x = np.einsum("bij,bj...->bi...", m.astype(np.float32), x.astype(np.float32, copy=False))
    sc = float(aug.get("scale") or 0.0)
    if sc > 0:
        x = x * rng.uniform(1 - sc, 1 + sc, size=(len(x), 1, 1, 1, 1)).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def take_rows(data: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``data[idx]`` as a new float32 array (memmap-friendly: reads in sorted order, then reorders)."""
    idx = np.asarray(idx, dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    out = np.empty((len(idx),) + data.shape[1:], dtype=np.float32)
    out[order] = data[idx[order]]
    return out


def epoch_batches(n: int, batch_size: int, drop_last: bool, rng: np.random.Generator,
                  world: World) -> Iterator[np.ndarray]:
    """Positions (into ``n`` training samples) of one epoch's global batches.

    One permutation is drawn from ``rng``; with ``drop_last`` a final short batch is dropped
    (unless there are fewer than ``batch_size`` samples in all). A batch smaller than two
    samples, or than the number of processes, is skipped: BatchNorm needs two samples and
    every process one. Every process draws the same batches from the same generator.
    """
    perm = rng.permutation(n)
    stop = (n // batch_size) * batch_size if drop_last and n >= batch_size else n
    for s in range(0, stop, batch_size):
        pos = perm[s:s + batch_size]
        if len(pos) >= max(2, world.size):
            yield pos


def draw_mix(n: int, alpha: float, rng: np.random.Generator) -> tuple[float, np.ndarray] | None:
    """Mixup draw for a batch of ``n``: ``(lam, perm)`` with ``lam ~ Beta(alpha, alpha)`` and a
    random pairing ``perm`` of the batch, or None when ``alpha`` is 0 (nothing drawn, so a run
    without mixup keeps its random stream)."""
    if not alpha:
        return None
    return float(rng.beta(alpha, alpha)), rng.permutation(n)


def training_share(data: np.ndarray, idx: np.ndarray, lengths: np.ndarray, aug: dict,
                   rng: np.random.Generator, world: World,
                   mix: tuple[float, np.ndarray] | None = None) -> np.ndarray:
    """This process's share of an augmented global batch: rows ``idx`` of ``data`` (N, 3, T, V, M)
    with valid ``lengths`` (N,), augmented as a whole (:func:`augment_batch`, so the random
    draws do not depend on the number of processes), mixed with ``mix = (lam, perm)`` (row i
    becomes ``lam * x[i] + (1 - lam) * x[perm[i]]``; see :func:`draw_mix`), then cut
    (:func:`~.distributed.shard`)."""
    x = augment_batch(take_rows(data, idx), lengths[idx], aug, rng)
    if mix is not None:
        lam, perm = mix
        x = lam * x + (1.0 - lam) * x[perm]
    return np.ascontiguousarray(x[shard(len(idx), world)], dtype=np.float32)
