"""The in-memory / on-disk representation every reader produces.

A :class:`SkeletonDataset` holds

* ``data``: float32 array (N, C=3, T, V, M); frames past a sample's valid length and absent
  persons are zero. It may be a read-only ``np.memmap`` (prepared caches), so NTU-120 need
  not sit in RAM.
* ``lengths``: int (N,) valid frame counts.
* ``labels``: int (N,) 0-based class ids into ``class_names``.
* ``meta``: dict of (N,) arrays: ``file`` (str) and, where the dataset has them,
  ``subject``, ``view``, ``setup``, ``replication``, ``trial``...
* ``partitions``: named train/test partitions, each a bool (N,) array "is train".
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, unknown_name
from .layouts import get_layout

FORMAT_VERSION = 1


@dataclass
class SkeletonDataset:
    name: str
    layout: str
    class_names: list[str]
    data: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    meta: dict[str, np.ndarray] = field(default_factory=dict)
    partitions: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lengths = np.asarray(self.lengths, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Check shapes and label ranges; raise :class:`DataError` naming the key."""
        n = len(self.labels)
        if self.data.ndim != 5 or self.data.shape[1] != 3:
            raise DataError(f"dataset {self.name!r}: 'data' must be (N, 3, T, V, M), got {self.data.shape}")
        if self.data.shape[0] != n or self.lengths.shape != (n,):
            raise DataError(f"dataset {self.name!r}: data/lengths/labels disagree on N "
                            f"({self.data.shape[0]}, {self.lengths.shape}, {n})")
        v = get_layout(self.layout).num_joints
        if self.data.shape[3] != v:
            raise DataError(f"dataset {self.name!r}: layout {self.layout!r} has {v} joints, data has "
                            f"{self.data.shape[3]}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            bad = self.labels[(self.labels < 0) | (self.labels >= len(self.class_names))][0]
            raise DataError(f"dataset {self.name!r}: label {bad} outside the {len(self.class_names)} "
                            "class names")
        if n and (self.lengths.min() < 1 or self.lengths.max() > self.data.shape[2]):
            raise DataError(f"dataset {self.name!r}: 'lengths' must be in [1, T={self.data.shape[2]}]")
        for key, arr in {**self.meta, **self.partitions}.items():
            if len(arr) != n:
                raise DataError(f"dataset {self.name!r}: meta/partition {key!r} has {len(arr)} "
                                f"entries for {n} samples")

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, index) -> "SkeletonDataset":
        """A new dataset with the samples selected by a bool mask or an index array.

        Data is gathered into memory (fancy indexing of a memmap copies). A source
        ``info['fingerprint']`` (the prepared-cache key) becomes a fingerprint of this
        selection, so :func:`~zeroskel.data.cache.prepare` never mistakes the subset for the
        whole dataset (or one subset for another); ``cache_path`` and ``content`` are dropped,
        since the subset is not what that folder holds.
        """
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise DataError(f"dataset {self.name!r}: subset mask has shape {index.shape}, "
                                f"expected ({len(self)},)")
            index = np.flatnonzero(index)
        info = dict(self.info)
        info.pop("cache_path", None)
        info.pop("content", None)  # the prepared whole's content record (data.cache), not the subset's
        if info.get("fingerprint") is not None:
            h = hashlib.sha256(f"{info['fingerprint']}|subset|".encode())
            h.update(np.ascontiguousarray(index, dtype=np.int64).tobytes())
            info["fingerprint"] = h.hexdigest()[:16]
        return SkeletonDataset(
            name=self.name, layout=self.layout, class_names=list(self.class_names),
            data=np.asarray(self.data[index]) if len(index) else self.data[:0],
            lengths=self.lengths[index], labels=self.labels[index],
            meta={k: v[index] for k, v in self.meta.items()},
            partitions={k: v[index] for k, v in self.partitions.items()},
            info=info,
        )

    def partition(self, name: str, part: str) -> np.ndarray:
        """Indices of ``part`` ('train' or 'test') of the named partition."""
        if name not in self.partitions:
            raise unknown_name(f"partition of dataset {self.name!r}", name, self.partitions)
        if part not in ("train", "test"):
            raise unknown_name("partition part", part, ["train", "test"])
        is_train = self.partitions[name]
        return np.flatnonzero(is_train if part == "train" else ~is_train)

    def class_counts(self, index=None) -> np.ndarray:
        labels = self.labels if index is None else self.labels[index]
        return np.bincount(labels, minlength=self.num_classes)

    # ------------------------------------------------------------------ disk
    def save(self, folder: str | Path, data_written: bool = False) -> Path:
        """Save as a folder: ``data.npy`` (memory-mappable) + ``arrays.npz`` + ``dataset.json``.

        ``data_written=True`` writes only the small files, for readers that already streamed
        ``self.data`` into ``folder/data.npy`` (an ``open_memmap``) and must not copy it.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if not data_written:
            tmp = folder / "data.npy.tmp"
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=self.data.shape)
            step = 1024
            for s in range(0, len(self), step):
                arr[s:s + step] = self.data[s:s + step]
            arr.flush()
            del arr
            tmp.replace(folder / "data.npy")
        np.savez(folder / "arrays.npz", lengths=self.lengths, labels=self.labels,
                 **{f"meta__{k}": v for k, v in self.meta.items()},
                 **{f"part__{k}": v for k, v in self.partitions.items()})
        header = {"format_version": FORMAT_VERSION, "name": self.name, "layout": self.layout,
                  "class_names": list(self.class_names), "info": self.info}
        (folder / "dataset.json").write_text(json.dumps(header, indent=1), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path, mmap: bool = True) -> "SkeletonDataset":
        folder = Path(folder)
        head_path = folder / "dataset.json"
        try:
            header = json.loads(head_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{head_path}: not a prepared zeroskel dataset (no dataset.json)") from None
        except json.JSONDecodeError as e:
            raise DataError(f"{head_path}: corrupt dataset header ({e})") from None
        if not isinstance(header, dict):
            raise DataError(f"{head_path}: corrupt dataset header (not a JSON object)")
        if header.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{head_path}: format_version {header.get('format_version')} "
                            f"is not {FORMAT_VERSION}; re-run 'zeroskel prepare'")
        try:
            data = np.load(folder / "data.npy", mmap_mode="r" if mmap else None)
            arrays = np.load(folder / "arrays.npz", allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DataError(f"{folder}: unreadable prepared dataset ({e}); delete it and re-run "
                            "'zeroskel prepare'") from None
        missing = [k for k in ("name", "layout", "class_names") if k not in header] + \
                  [k for k in ("lengths", "labels") if k not in arrays.files]
        if missing:
            raise DataError(f"{folder}: damaged prepared dataset (missing {', '.join(missing)}); delete it "
                            "and re-run 'zeroskel prepare'")
        meta = {k[6:]: arrays[k] for k in arrays.files if k.startswith("meta__")}
        parts = {k[6:]: arrays[k] for k in arrays.files if k.startswith("part__")}
        return cls(name=header["name"], layout=header["layout"], class_names=header["class_names"],
                   data=data, lengths=arrays["lengths"], labels=arrays["labels"], meta=meta,
                   partitions=parts, info=header.get("info", {}))


def stack_sequences(seqs: list[np.ndarray], max_persons: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Pad variable-length sequences into one (N, 3, T_max, V, M) float32 array.

    Args:
        seqs: each (T_i, V, 3) for one person or (M_i, T_i, V, 3).
    Returns:
        data (N, 3, T_max, V, max_persons), lengths (N,).
    """
    seqs = [s[None] if s.ndim == 3 else s for s in seqs]
    t_max = max(s.shape[1] for s in seqs)
    v = seqs[0].shape[2]
    out = np.zeros((len(seqs), 3, t_max, v, max_persons), dtype=np.float32)
    lengths = np.zeros(len(seqs), dtype=np.int64)
    for i, s in enumerate(seqs):
        m = min(s.shape[0], max_persons)
        out[i, :, : s.shape[1], :, :m] = np.transpose(s[:m], (3, 1, 2, 0))
        lengths[i] = s.shape[1]
    return out, lengths


def check_finite(arr: np.ndarray, where: str) -> None:
    """Raise DataError naming ``where`` if ``arr`` holds NaN or inf."""
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise DataError(f"{where}: non-finite coordinate (NaN/inf) at index {tuple(int(i) for i in bad)}")


def _head_and_hips(layout: str) -> tuple[int, int] | None:
    """Joint indices of the head and the base of the spine in ``layout`` (None without either)."""
    lay = get_layout(layout)
    base = next((n for n in ("hip_center", "spine_base") if n in lay.joints), None)
    if "head" not in lay.joints or base is None:
        return None
    return lay.index("head"), lay.index(base)


def head_to_hips(data: np.ndarray, layout: str) -> float | None:
    """Median distance from the head to the base of the spine over the present frames of one
    (3, T, V, M) recording, in the data's units (None if the layout lacks either joint or
    nobody is present). Kinect data in metres: 0.48-0.68 on every UTD-MHAD recording,
    0.23-0.78 on every NW-UCLA one (medians per recording)."""
    joints = _head_and_hips(layout)
    x = np.asarray(data)
    present = (x != 0).any(axis=(0, 2))  # (T, M)
    if joints is None or not present.any():
        return None
    head, hip = joints
    d = np.linalg.norm(x[:, :, head] - x[:, :, hip], axis=0)  # (T, M)
    return float(np.median(d[present]))


def head_below_hips(data: np.ndarray, layout: str) -> np.ndarray | float:
    """Share of the present (frame, person) pairs whose head is lower (smaller y) than the
    base of the spine, for one (3, T, V, M) recording (a float) or an (N, 3, T, V, M) batch
    ((N,) floats; all-zero padding frames and absent persons are not counted).

    Near 0 for upright people with y up; near 1 when the joint order or the vertical axis
    does not match ``layout``. UTD-MHAD's .mat file order read as ``kinect_v1`` gives 0.99 on
    every one of its 861 recordings; correctly ordered UTD-MHAD, NW-UCLA and NTU recordings
    give at most 0.08.
    """
    joints = _head_and_hips(layout)
    x = np.asarray(data)
    single = x.ndim == 4
    if single:
        x = x[None]
    out = np.zeros(len(x))
    if joints is not None:
        head, hip = joints
        for s in range(0, len(x), 256):  # blocks: the presence mask of a whole dataset is large
            b = x[s:s + 256]
            present = (b != 0).any(axis=(1, 3))  # (n, T, M)
            low = (b[:, 1, :, head] < b[:, 1, :, hip]) & present
            out[s:s + len(b)] = low.sum(axis=(1, 2)) / np.maximum(present.sum(axis=(1, 2)), 1)
    return float(out[0]) if single else out
