"""Read one recording from any supported file, for inference on new data.

:func:`load_recording` returns a :class:`Recording`: the skeleton as the training readers
would have produced it (same reader, same centring and actor selection), in the
``(3, T, V, M)`` float32 convention of :class:`~zeroskel.data.dataset.SkeletonDataset`.

Supported files (by suffix):

* ``.skeleton``: NTU RGB+D 60/120 raw file. Actor selection, denoising and first-frame
  centring of :func:`zeroskel.data.readers.ntu.load_ntu_sample` (as ``read_ntu60``);
  layout ``ntu25``, up to 2 persons, at most 300 frames (the dataset reader's default).
* ``.mat``: UTD-MHAD ``*_skeleton.mat`` (key ``d_skel``), re-ordered to ``kinect_v1``.
* ``.json``: NW-UCLA sample (key ``skeletons``), layout ``kinect_v1``.
* ``.npy``: an array ``(T, V, 3)`` (one person), ``(M, T, V, 3)``, ``(3, T, V, M)``, or a
  batch ``(N, 3, T, V, M)`` (:func:`load_recordings` only). The layout comes from the
  ``layout`` argument, else from V: 20 joints -> ``kinect_v1``, 25 -> ``ntu25``; any other
  V is an error. Coordinates are used as given (no centring).
* ``.npz``: the custom format (:mod:`zeroskel.data.readers.custom`; one recording per
  sample), or an unlabelled ``.npz`` holding only ``joints`` in the custom format's shapes
  and optionally ``layout`` and ``lengths``.

Array inputs follow the package's padding convention: a frame in which every joint of
every person is exactly zero is padding, so trailing all-zero frames are not part of the
recording (``Recording.info['trimmed_frames']`` counts them). A recording with no frame
left, NaN/inf coordinates or an unknown layout is a :class:`~zeroskel.errors.DataError`
naming the file.
"""
from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import ConfigError, DataError
from ..dataset import check_finite
from ..layouts import LAYOUTS, get_layout
from ..npio import load_failure

__all__ = ["Recording", "load_recording", "load_recordings", "infer_layout", "as_recording",
           "SUFFIXES", "LAYOUT_BY_JOINTS"]

SUFFIXES = (".skeleton", ".mat", ".json", ".npy", ".npz")
# joint count -> layout, for arrays that do not say their layout
LAYOUT_BY_JOINTS = {20: "kinect_v1", 25: "ntu25"}
NTU_MAX_FRAMES = 300  # as read_ntu60 / read_ntu120 by default
_UTD_NAME = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_skeleton$")


@dataclass
class Recording:
    """One skeleton recording.

    Attributes:
        data: float32 (3, T, V, M): xyz, frames, joints, persons; absent persons are zero.
        length: valid frames (``data.shape[1]``: recordings are not padded).
        layout: joint layout name (``"ntu25"``, ``"kinect_v1"``).
        source: where it came from (file path, ``file[i]`` for a sample of a multi-sample
            file, or ``"array"``).
        label: the ground-truth class name when the file carries one (NW-UCLA ``label``,
            UTD-MHAD file name, custom-format labels), else None.
        info: reader notes (``trimmed_frames``, NTU ``actors`` / ``truncated_from``...).
    """

    data: np.ndarray
    length: int
    layout: str
    source: str = "array"
    label: str | None = None
    info: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.length)

    @property
    def num_persons(self) -> int:
        return int(self.data.shape[3])

    @property
    def num_joints(self) -> int:
        return int(self.data.shape[2])


def infer_layout(num_joints: int, layout: str | None = None, where: str = "array") -> str:
    """The layout of data with ``num_joints`` joints: ``layout`` if given (checked), else
    20 -> ``kinect_v1``, 25 -> ``ntu25``; :class:`DataError` for any other joint count."""
    if layout is not None:
        lay = get_layout(layout)  # ConfigError listing the valid names
        if lay.num_joints != num_joints:
            raise DataError(f"{where}: {num_joints} joints, but layout {layout!r} (--layout) has "
                            f"{lay.num_joints}")
        return lay.name
    if num_joints not in LAYOUT_BY_JOINTS:
        known = ", ".join(f"{v} joints -> {k}" for v, k in sorted(LAYOUT_BY_JOINTS.items()))
        raise DataError(f"{where}: cannot tell the joint layout of {num_joints} joints ({known}); "
                        f"pass the layout (--layout, one of {', '.join(LAYOUTS)}) or map the "
                        "joints to one of these layouts first")
    return LAYOUT_BY_JOINTS[num_joints]


def _trim_padding(data: np.ndarray, length: int | None, where: str) -> tuple[np.ndarray, int, int]:
    """Cut (3, T, V, M) to ``length`` (or drop trailing all-zero frames); check it."""
    t = data.shape[1]
    if length is not None:
        length = int(length)
        if not 1 <= length <= t:
            raise DataError(f"{where}: length {length} outside 1..{t} (the array's frame count)")
        trimmed = 0
    else:
        present = np.flatnonzero(np.any(data != 0, axis=(0, 2, 3)))
        if len(present) == 0:
            raise DataError(f"{where}: no frames (all {t} frames are empty: every joint is zero)"
                            if t else f"{where}: no frames (T = 0)")
        length = int(present[-1]) + 1
        trimmed = t - length
    return np.ascontiguousarray(data[:, :length], dtype=np.float32), length, trimmed


def as_recording(array, layout: str | None = None, length: int | None = None,
                 source: str = "array", label: str | None = None) -> Recording:
    """A :class:`Recording` from an in-memory array.

    Args:
        array: (3, T, V, M) (the package convention), (T, V, 3) (one person) or
            (M, T, V, 3). A 4-D array with 3 on the first axis is read as (3, T, V, M).
        layout: joint layout; default inferred from V (20 -> kinect_v1, 25 -> ntu25).
        length: valid frames; default: the frames up to the last non-zero one.
        source: name used in error messages and results.
    """
    where = source
    arr = np.asarray(array)
    if arr.dtype.kind not in "fiu":
        raise DataError(f"{where}: skeleton must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 3:
        if arr.shape[-1] != 3:
            raise DataError(f"{where}: a 3-D skeleton must be (T, V, 3), got shape {arr.shape}")
        arr = arr.transpose(2, 0, 1)[..., None]
    elif arr.ndim == 4:
        if arr.shape[0] == 3:
            pass  # (3, T, V, M)
        elif arr.shape[-1] == 3:
            arr = arr.transpose(3, 1, 2, 0)  # (M, T, V, 3) -> (3, T, V, M)
        else:
            raise DataError(f"{where}: a 4-D skeleton must be (3, T, V, M) or (M, T, V, 3), got "
                            f"shape {arr.shape}")
    else:
        raise DataError(f"{where}: skeleton must be (T, V, 3), (M, T, V, 3) or (3, T, V, M), got "
                        f"shape {arr.shape} (ndim {arr.ndim})")
    if arr.shape[1] == 0:
        raise DataError(f"{where}: no frames (T = 0), shape {arr.shape}")
    if arr.shape[3] == 0:
        raise DataError(f"{where}: no person (M = 0), shape {arr.shape}")
    check_finite(arr, where)
    lay = infer_layout(arr.shape[2], layout, where)
    data, n, trimmed = _trim_padding(arr, length, where)
    info = {"trimmed_frames": trimmed} if trimmed else {}
    return Recording(data=data, length=n, layout=lay, source=source, label=label, info=info)


def _check_known_layout(path: Path, native: str, layout: str | None) -> None:
    if layout is not None and get_layout(layout).name != native:
        raise ConfigError(f"{path}: this file format is always in layout {native!r}; --layout "
                          f"{layout!r} does not apply (the model maps layouts itself when it can)")


def _from_seq(seq: np.ndarray, path: Path, layout: str, label=None, info=None) -> Recording:
    """(T, V, 3) or (M, T, V, 3) reader output -> Recording (no trimming: readers give T)."""
    seq = seq[None] if seq.ndim == 3 else seq
    data = np.ascontiguousarray(seq.transpose(3, 1, 2, 0), dtype=np.float32)
    if data.shape[1] < 1:
        raise DataError(f"{path}: no frames")
    return Recording(data=data, length=int(data.shape[1]), layout=layout, source=str(path),
                     label=label, info=dict(info or {}))


def _read_ntu(path: Path, layout: str | None) -> list[Recording]:
    from .ntu import load_ntu_sample, parse_ntu_name
    from ..classnames import NTU120_CLASSES

    _check_known_layout(path, "ntu25", layout)
    seq, report = load_ntu_sample(path, max_frames=NTU_MAX_FRAMES)  # (T, 2, 25, 3)
    parsed = parse_ntu_name(path.name.split(".")[0])
    label = NTU120_CLASSES[parsed[4] - 1] if parsed and 1 <= parsed[4] <= len(NTU120_CLASSES) else None
    info = {k: report[k] for k in ("actors", "dropped_frames", "truncated_from") if k in report}
    info["actors"] = [[int(b) for b in slot] for slot in info.get("actors", [])]
    return [_from_seq(np.ascontiguousarray(seq.transpose(1, 0, 2, 3)), path, "ntu25", label, info)]


def _read_utd(path: Path, layout: str | None) -> list[Recording]:
    from .small import UTD_MHAD_CLASSES, read_utd_mhad_file

    _check_known_layout(path, "kinect_v1", layout)
    m = _UTD_NAME.match(path.stem)
    label = None
    if m and 1 <= int(m.group(1)) <= len(UTD_MHAD_CLASSES):
        label = UTD_MHAD_CLASSES[int(m.group(1)) - 1]
    return [_from_seq(read_utd_mhad_file(path), path, "kinect_v1", label)]


def _read_ucla(path: Path, layout: str | None) -> list[Recording]:
    from .small import NW_UCLA_CLASSES, read_nw_ucla_file

    _check_known_layout(path, "kinect_v1", layout)
    skel, label, _ = read_nw_ucla_file(path)
    return [_from_seq(skel, path, "kinect_v1", NW_UCLA_CLASSES[label])]


def _read_npy(path: Path, layout: str | None) -> list[Recording]:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: unreadable .npy ({load_failure(path, e)})") from None
    if arr.ndim == 5:
        if arr.shape[1] != 3:
            raise DataError(f"{path}: a 5-D array must be (N, 3, T, V, M), got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise DataError(f"{path}: no recordings (N = 0)")
        return [as_recording(a, layout, source=f"{path}[{i}]") for i, a in enumerate(arr)]
    return [as_recording(arr, layout, source=str(path))]


def _read_npz(path: Path, layout: str | None) -> list[Recording]:
    from . import custom

    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz file ({load_failure(path, e)})") from None
    if set(custom.NPZ_REQUIRED) <= keys:  # a full custom-format dataset
        ds = custom.read_custom(path)
        if layout is not None and get_layout(layout).name != ds.layout:
            raise ConfigError(f"{path}: key 'layout' says {ds.layout!r}, --layout says {layout!r}")
        files = ds.meta.get("file")
        out = []
        for i in range(len(ds)):
            n = int(ds.lengths[i])
            src = f"{path}[{i}]" if files is None else f"{path}[{files[i]}]"
            out.append(Recording(data=np.ascontiguousarray(ds.data[i, :, :n], dtype=np.float32),
                                 length=n, layout=ds.layout, source=src,
                                 label=ds.class_names[int(ds.labels[i])]))
        return out
    if "joints" not in keys:
        raise DataError(f"{path}: missing key 'joints' (keys present: {', '.join(sorted(keys)) or 'none'}); "
                        "see docs/custom_format.md")
    # unlabelled recordings: 'joints' in the custom format's shapes, optional layout/lengths
    with np.load(path, allow_pickle=False) as npz:
        joints = custom._load_key(npz, path, "joints")
        lengths = custom._load_key(npz, path, "lengths") if "lengths" in keys else None
        file_layout = (custom._scalar_str(custom._load_key(npz, path, "layout"), path, "layout")
                       if "layout" in keys else None)
    if file_layout is not None and layout is not None and get_layout(layout).name != file_layout:
        raise ConfigError(f"{path}: key 'layout' says {file_layout!r}, --layout says {layout!r}")
    seqs, lens = custom._split_joints(joints, lengths, path)
    out = []
    for i, (s, n) in enumerate(zip(seqs, lens)):
        src = f"{path}[{i}]"
        lay = infer_layout(s.shape[2], file_layout or layout, src)
        out.append(_from_seq(np.ascontiguousarray(s[:, :int(n)]), Path(src), lay))
    return out


_READERS = {".skeleton": _read_ntu, ".mat": _read_utd, ".json": _read_ucla, ".npy": _read_npy,
            ".npz": _read_npz}


def load_recordings(path: str | os.PathLike, layout: str | None = None) -> list[Recording]:
    """Every recording in ``path`` (one for most formats; N for a batch ``.npy`` or ``.npz``).

    Args:
        path: a ``.skeleton``, ``.mat``, ``.json``, ``.npy`` or ``.npz`` file.
        layout: joint layout of array files (``.npy``, unlabelled ``.npz``); default
            inferred from the joint count. For formats with a fixed layout it must agree.
    Raises:
        DataError: missing/unreadable file, no frames, NaN joints, unknown joint count.
        ConfigError: unsupported suffix, unknown or contradictory ``layout``.
    """
    path = Path(path).expanduser()
    if layout is not None:
        get_layout(layout)  # unknown names fail first, naming the valid ones
    suffix = path.suffix.lower()
    if suffix not in _READERS:
        raise ConfigError(f"{path}: unsupported file type {path.suffix or '(no suffix)'!r}; "
                          f"supported: {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    recs = _READERS[suffix](path, layout)
    for r in recs:
        if r.length < 1 or r.data.shape[1] < 1:
            raise DataError(f"{r.source}: no frames")
        check_finite(r.data, r.source)
    return recs


def load_recording(path: str | os.PathLike, layout: str | None = None,
                   index: int | None = None) -> Recording:
    """One recording from ``path`` (see :func:`load_recordings` for the formats).

    Args:
        index: which sample of a multi-sample file (``.npz`` dataset, batch ``.npy``);
            required when the file holds more than one.
    Returns:
        :class:`Recording` with ``data`` (3, T, V, M) float32.
    """
    recs = load_recordings(path, layout)
    if index is None:
        if len(recs) != 1:
            raise ConfigError(f"{path}: holds {len(recs)} recordings; pass index=0..{len(recs) - 1} "
                              "(or use load_recordings)")
        return recs[0]
    if not -len(recs) <= int(index) < len(recs):
        raise ConfigError(f"{path}: index {index} outside 0..{len(recs) - 1}")
    return recs[int(index)]
