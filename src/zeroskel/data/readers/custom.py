"""The custom format: how a user brings any skeleton data to zeroskel.

Two equivalent containers (full description with an example: ``docs/custom_format.md``):

* one ``.npz`` file with keys ``joints``, ``labels``, ``class_names``, ``layout`` and
  optionally ``lengths``, ``subjects``, ``views``, ``files``, ``name``, ``partition`` and
  ``partition_<name>``;
* a folder with ``meta.json`` (``class_names``, ``layout``, optional ``name``), one ``.npy``
  per sample and ``labels.csv`` (columns ``file,label`` then optional ``subject``, ``view``,
  ``partition``, ``partition_<name>``).

Everything is validated here, at the boundary: every error is a :class:`DataError` naming
the file and the key / column / line. :func:`write_custom` writes either container and runs
the same checks first, so what it writes always reads back.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import re
import zipfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ...errors import ConfigError, DataError
from ..dataset import SkeletonDataset, check_finite, head_below_hips, stack_sequences
from ..layouts import LAYOUTS
from ..npio import load_failure

log = logging.getLogger(__name__)

NPZ_REQUIRED = ("joints", "labels", "class_names", "layout")
NPZ_OPTIONAL = ("lengths", "subjects", "views", "files", "name", "partition")
META_REQUIRED = ("class_names", "layout")
META_OPTIONAL = ("name",)
CSV_REQUIRED = ("file", "label")
CSV_OPTIONAL = ("subject", "view", "partition")
DEFAULT_PARTITION = "custom"  # the name of the partition given by ``partition``
_PART_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


# ---------------------------------------------------------------------------- reading
def read_custom(path: str | Path, progress: bool = False) -> SkeletonDataset:
    """Read a custom-format ``.npz`` file or folder into a :class:`SkeletonDataset`.

    Data are used as given (no centring or resampling): data (N, 3, T_max, V, M_max)
    float32, zero-padded past each sample's length and for absent persons.
    """
    path = _existing(path)
    return _read_folder(path, progress) if path.is_dir() else _read_npz(path)


def read_custom_class_names(path: str | Path) -> list[str]:
    """Only the class names of a custom-format dataset, checked as :func:`read_custom` checks
    them, without reading any sequence (an ``.npz`` member is decompressed on access only)."""
    path = _existing(path)
    if path.is_dir():
        meta_path = _folder_file(path, "meta.json")
        header = _read_meta(meta_path, required=("class_names",))
        return _check_class_names(header["class_names"], f"{meta_path}: key 'class_names'")
    npz, keys = _open_npz(path)
    with npz:
        _require_npz_keys(path, keys, ("class_names",))
        return _check_class_names(_load_key(npz, path, "class_names"), f"{path}: key 'class_names'")


def _existing(path: str | Path) -> Path:
    path = Path(path).expanduser()
    if not (path.is_dir() or path.is_file()):
        raise DataError(f"{path}: custom dataset not found (expected a .npz file or a folder "
                        "with meta.json and labels.csv; see docs/custom_format.md)")
    return path


def _folder_file(folder: Path, name: str) -> Path:
    p = folder / name
    if not p.is_file():
        raise DataError(f"{folder}: missing {name} (a custom dataset folder holds "
                        "meta.json, labels.csv and one .npy per sample)")
    return p


def _require_npz_keys(path: Path, keys: set, required) -> None:
    for key in required:
        if key not in keys:
            raise DataError(f"{path}: missing key {key!r} (keys present: "
                            f"{', '.join(sorted(keys)) or 'none'})")


def _open_npz(path: Path):
    """The lazily read archive and its member names (members decompress on access)."""
    try:
        npz = np.load(path, allow_pickle=False)
        return npz, set(npz.files)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz file ({load_failure(path, e)})") from None


def _read_npz(path: Path) -> SkeletonDataset:
    npz, keys = _open_npz(path)
    with npz:
        _require_npz_keys(path, keys, NPZ_REQUIRED)
        part_keys = sorted(k for k in keys if k.startswith("partition_"))
        extra = keys - set(NPZ_REQUIRED) - set(NPZ_OPTIONAL) - set(part_keys)
        if extra:
            log.warning("%s: ignoring unknown key(s) %s", path, ", ".join(sorted(extra)))
        joints = _load_key(npz, path, "joints")
        arrays = {k: _load_key(npz, path, k) for k in keys - {"joints"} - extra}

    layout = _scalar_str(arrays["layout"], path, "layout")
    name = _scalar_str(arrays["name"], path, "name") if "name" in arrays else path.stem
    seqs, lengths = _split_joints(joints, arrays.get("lengths"), path)
    n = len(seqs)
    meta = {}
    for key, meta_key in (("subjects", "subject"), ("views", "view"), ("files", "file")):
        if key in arrays:
            meta[meta_key] = _per_sample(arrays[key], n, path, key)
    if "file" not in meta:
        meta["file"] = np.array([f"{path.name}[{i}]" for i in range(n)])
    partitions = {}
    if "partition" in arrays:
        partitions[DEFAULT_PARTITION] = _is_train(arrays["partition"], n, path, "partition")
    for key in part_keys:
        pname = key[len("partition_"):]
        if not _PART_NAME.match(pname):
            raise DataError(f"{path}: key {key!r}: partition name {pname!r} must be letters, "
                            "digits, '_' or '-'")
        if pname in partitions:
            raise DataError(f"{path}: key {key!r} repeats the partition given by 'partition'")
        partitions[pname] = _is_train(arrays[key], n, path, key)
    return _build(path, name, layout, arrays["class_names"], arrays["labels"], seqs, lengths,
                  meta, partitions, where_labels=f"{path}: key 'labels'",
                  where_classes=f"{path}: key 'class_names'")


def _load_key(npz, path: Path, key: str) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as e:
        if key == "joints" and "allow_pickle" in str(e):
            # variable-length sequences stored as an object array: needs pickle, which can
            # run code from the file, so only here and only for 'joints'
            log.info("%s: key 'joints' is an object array; loading it with pickle", path)
            with np.load(path, allow_pickle=True) as npz2:
                return npz2[key]
        raise DataError(f"{path}: key {key!r} unreadable ({e}); store plain numeric or "
                        "string arrays") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: key {key!r} unreadable ({e})") from None


def _read_folder(folder: Path, progress: bool) -> SkeletonDataset:
    meta_path, csv_path = _folder_file(folder, "meta.json"), _folder_file(folder, "labels.csv")
    header = _read_meta(meta_path, required=META_REQUIRED)
    extra = set(header) - set(META_REQUIRED) - set(META_OPTIONAL)
    if extra:
        log.warning("%s: ignoring unknown key(s) %s", meta_path, ", ".join(sorted(extra)))
    layout = _scalar_str(np.asarray(header["layout"]), meta_path, "layout")
    name = (_scalar_str(np.asarray(header["name"]), meta_path, "name")
            if "name" in header else folder.name)

    rows, columns = _read_csv(csv_path)
    n = len(rows)
    seqs, labels, files = [], [], []
    if progress:
        from ..._progress import progress as bar
        it = bar(rows, desc=f"read {name}", total=n)
    else:
        it = rows
    seen: dict[Path, tuple[int, str]] = {}
    for line_no, row in it:
        rel = row["file"].strip()
        where = f"{csv_path}, line {line_no}"
        if not rel:
            raise DataError(f"{where}: empty 'file'")
        npy = folder / rel
        if not npy.is_file():
            raise DataError(f"{where}: file {rel!r} not found ({npy})")
        key = npy.resolve()  # 'a.npy' and './a.npy' are one file: two samples read the same array
        if key in seen:
            same = "" if seen[key][1] == rel else f" as {seen[key][1]!r}"
            raise DataError(f"{where}: file {rel!r} already listed on line {seen[key][0]}{same}")
        seen[key] = (line_no, rel)
        try:
            arr = np.load(npy, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"{npy}: unreadable .npy ({e})") from None
        seqs.append(_check_seq(arr, f"{npy}", None))
        try:
            labels.append(int(row["label"]))
        except ValueError:
            raise DataError(f"{where}: label {row['label']!r} is not an integer (0-based "
                            "index into meta.json 'class_names')") from None
        files.append(rel)
    meta = {"file": np.array(files)}
    for col, meta_key in (("subject", "subject"), ("view", "view")):
        if col in columns:
            meta[meta_key] = _csv_column([r for _, r in rows], col)
    partitions = {}
    for col in columns:
        if col == "partition" or col.startswith("partition_"):
            pname = DEFAULT_PARTITION if col == "partition" else col[len("partition_"):]
            if pname in partitions:
                raise DataError(f"{csv_path}: column {col!r} repeats the partition given by "
                                "'partition'")
            partitions[pname] = _is_train(np.array([r[col].strip() for _, r in rows]), n,
                                          csv_path, f"column {col!r}")
    lengths = np.array([s.shape[1] for s in seqs])
    return _build(folder, name, layout, np.asarray(header["class_names"]), np.array(labels),
                  seqs, lengths, meta, partitions, where_labels=f"{csv_path}: column 'label'",
                  where_classes=f"{meta_path}: key 'class_names'")


def _read_meta(meta_path: Path, required) -> dict:
    """meta.json as a dict holding the ``required`` keys, its ``class_names`` a list."""
    try:
        header = json.loads(meta_path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{meta_path}: unreadable JSON ({e})") from None
    if not isinstance(header, dict):
        raise DataError(f"{meta_path}: must hold a JSON object")
    for key in required:
        if key not in header:
            raise DataError(f"{meta_path}: missing key {key!r}")
    if "class_names" in header and not isinstance(header["class_names"], list):
        raise DataError(f"{meta_path}: key 'class_names' must be a list of strings")
    return header


def _read_csv(path: Path):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            reader.fieldnames = columns
            rows = [(reader.line_num, row) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: unreadable CSV ({e})") from None
    for col in CSV_REQUIRED:
        if col not in columns:
            raise DataError(f"{path}: missing column {col!r} in the header line (found: "
                            f"{', '.join(columns) or 'nothing'})")
    if len(set(columns)) != len(columns):
        raise DataError(f"{path}: repeated column names in the header line")
    extra = [c for c in columns if c not in CSV_REQUIRED + CSV_OPTIONAL
             and not c.startswith("partition_")]
    if extra:
        log.warning("%s: ignoring unknown column(s) %s", path, ", ".join(extra))
    for line_no, row in rows:
        if None in row or any(row[c] is None for c in columns):
            raise DataError(f"{path}, line {line_no}: expected {len(columns)} fields "
                            f"({', '.join(columns)})")
    if not rows:
        raise DataError(f"{path}: no samples listed")
    return rows, columns


def _csv_column(rows, col: str) -> np.ndarray:
    vals = [r[col].strip() for r in rows]
    if all(re.fullmatch(r"-?\d+", v) for v in vals):
        return np.array([int(v) for v in vals])
    return np.array(vals)


# ---------------------------------------------------------------------------- checks
def _scalar_str(arr: np.ndarray, path, key: str) -> str:
    arr = np.asarray(arr)
    if arr.size != 1 or arr.dtype.kind not in "US":
        raise DataError(f"{path}: key {key!r} must be a single string, got "
                        f"{arr.dtype} array of shape {arr.shape}")
    val = str(arr.reshape(-1)[0])
    if not val:
        raise DataError(f"{path}: key {key!r} is empty")
    return val


def _per_sample(arr: np.ndarray, n: int, path, key: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.shape != (n,) or arr.dtype.kind not in "iuUSb":
        raise DataError(f"{path}: key {key!r} must be ({n},) ints or strings (one per sample), "
                        f"got {arr.dtype} array of shape {arr.shape}")
    return arr.astype(str) if arr.dtype.kind == "S" else arr


def _is_train(arr: np.ndarray, n: int, path, key: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.shape != (n,):
        raise DataError(f"{path}: {_k(key)} must have one entry per sample ({n},), got shape "
                        f"{arr.shape}")
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind in "US":
        vals = np.char.lower(arr.astype(str))
        bad = ~np.isin(vals, ["train", "test"])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: {_k(key)} entry {i} is {str(arr[i])!r}; use 'train' or "
                            "'test'")
        return vals == "train"
    raise DataError(f"{path}: {_k(key)} must hold 'train'/'test' strings (or booleans, "
                    f"True = train), got {arr.dtype}")


def _k(key: str) -> str:
    return key if key.startswith("column") else f"key {key!r}"


def _check_seq(arr, where: str, num_joints: int | None) -> np.ndarray:
    """One sample -> (M, T, V, 3) float32, checked; ``where`` names file/key/sample."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiu":
        raise DataError(f"{where}: joints must be numeric, got dtype {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise DataError(f"{where}: joints must be (T, V, 3) or (M, T, V, 3), got shape "
                        f"{arr.shape} (ndim {arr.ndim})")
    if arr.shape[-1] != 3:
        raise DataError(f"{where}: last axis must be the 3 coordinates (x, y, z), got shape "
                        f"{arr.shape}")
    if arr.shape[0] < 1:
        raise DataError(f"{where}: no person (M = 0), shape {arr.shape}")
    if arr.shape[1] < 1:
        raise DataError(f"{where}: zero-length sequence (T = 0), shape {arr.shape}")
    if num_joints is not None and arr.shape[2] != num_joints:
        raise DataError(f"{where}: {arr.shape[2]} joints, layout has {num_joints}")
    check_finite(arr, where)
    return arr.astype(np.float32, copy=False)


def _split_joints(joints, lengths, path) -> tuple[list[np.ndarray], np.ndarray]:
    """'joints' in any accepted form -> list of (M, T_i, V, 3) and (N,) lengths."""
    where = f"{path}: key 'joints'"
    joints = np.asarray(joints) if not isinstance(joints, list) else joints
    if isinstance(joints, list) or joints.dtype == object:
        items = list(joints)
        if isinstance(joints, np.ndarray) and joints.ndim != 1:
            raise DataError(f"{where}: an object array must be 1-D (N,), got shape "
                            f"{joints.shape}")
        if not items:
            raise DataError(f"{where}: no samples (N = 0)")
        seqs = [_check_seq(s, f"{where}, sample {i}", None) for i, s in enumerate(items)]
        own = np.array([s.shape[1] for s in seqs])
        if lengths is not None:
            lengths = _lengths(lengths, len(seqs), path, own)
            if not np.array_equal(lengths, own):
                i = int(np.flatnonzero(lengths != own)[0])
                raise DataError(f"{path}: key 'lengths' entry {i} = {lengths[i]} but sample {i} "
                                f"of 'joints' has {own[i]} frames")
        return seqs, own
    if joints.dtype.kind not in "fiu":
        raise DataError(f"{where}: must be a numeric array (N, T, V, 3) or (N, M, T, V, 3), or "
                        f"an object array of per-sample arrays; got dtype {joints.dtype}")
    if joints.ndim == 4:
        joints = joints[:, None]
    if joints.ndim != 5:
        raise DataError(f"{where}: must be (N, T, V, 3) or (N, M, T, V, 3), got shape "
                        f"{joints.shape} (ndim {joints.ndim})")
    n, _, t = joints.shape[:3]
    if n == 0:
        raise DataError(f"{where}: no samples (N = 0)")
    if t == 0:
        raise DataError(f"{where}: zero-length sequences (T = 0), shape {joints.shape}")
    if joints.shape[-1] != 3:
        raise DataError(f"{where}: last axis must be the 3 coordinates (x, y, z), got shape "
                        f"{joints.shape}")
    lengths = (np.full(n, t, dtype=np.int64) if lengths is None
               else _lengths(lengths, n, path, np.full(n, t)))
    # frames past a sample's length are ignored, so padding may be anything (NaN included)
    bad = ~np.isfinite(joints)
    bad &= (np.arange(t)[None, None, :, None, None] < lengths[:, None, None, None, None])
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{where}: non-finite coordinate (NaN/inf) at index {idx}, within "
                        f"sample {idx[0]}'s {int(lengths[idx[0]])} valid frames")
    return [joints[i, :, :lengths[i]].astype(np.float32) for i in range(n)], lengths


def _lengths(arr, n: int, path, max_len: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.shape != (n,) or arr.dtype.kind not in "iu":
        raise DataError(f"{path}: key 'lengths' must be ({n},) integers, got {arr.dtype} "
                        f"array of shape {arr.shape}")
    bad = (arr < 1) | (arr > max_len)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "zero-length sequence" if arr[i] < 1 else f"longer than T = {max_len[i]}"
        raise DataError(f"{path}: key 'lengths' entry {i} = {arr[i]}: {what}")
    return arr.astype(np.int64)


def _check_class_names(class_names, where: str) -> list[str]:
    class_names = np.asarray(class_names)
    if class_names.ndim != 1 or class_names.size == 0 or (
            class_names.dtype.kind not in "US" and not all(isinstance(c, str) for c in class_names)):
        raise DataError(f"{where}: must be a non-empty list of strings, got "
                        f"{class_names.dtype} array of shape {class_names.shape}")
    names = [str(c) for c in class_names]
    if any(not c.strip() for c in names):
        raise DataError(f"{where}: empty class name at index "
                        f"{[i for i, c in enumerate(names) if not c.strip()][0]}")
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise DataError(f"{where}: repeated class name(s) {dup[:5]}")
    return names


def _build(source: Path | str, name: str, layout: str, class_names, labels, seqs, lengths, meta,
           partitions, where_labels: str, where_classes: str,
           warn_empty: bool = True) -> SkeletonDataset:
    if layout not in LAYOUTS:
        raise DataError(f"{source}: layout {layout!r} is unknown; valid layouts: "
                        f"{', '.join(sorted(LAYOUTS))}")
    v = LAYOUTS[layout].num_joints
    for i, s in enumerate(seqs):
        if s.shape[2] != v:
            raise DataError(f"{source}: sample {i} ({meta['file'][i]}) has {s.shape[2]} joints "
                            f"but layout {layout!r} has {v}")
    names = _check_class_names(class_names, where_classes)
    labels = np.asarray(labels)
    n = len(seqs)
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise DataError(f"{where_labels}: must be ({n},) integers, got {labels.dtype} array of "
                        f"shape {labels.shape}")
    bad = (labels < 0) | (labels >= len(names))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where_labels}: label {labels[i]} of sample {i} is outside 0..."
                        f"{len(names) - 1} (the {len(names)} class_names)")
    counts = np.bincount(labels, minlength=len(names))
    empty = [names[i] for i in np.flatnonzero(counts == 0)]
    if empty and warn_empty:
        log.warning("%s: %d class(es) listed in class_names have no samples: %s", source,
                    len(empty), ", ".join(empty[:10]) + (" ..." if len(empty) > 10 else ""))
    persons = max(s.shape[0] for s in seqs)
    data, lens = stack_sequences(seqs, max_persons=persons)
    upside = head_below_hips(data, layout) > 0.5
    if upside.mean() > 0.5:
        log.warning("%s: in %d of %d samples the head is below the hips in most frames, so the joint "
                    "order or the vertical axis does not match layout %r (y must point up; UTD-MHAD's "
                    ".mat joint order is layout 'utd_mhad')", source, int(upside.sum()), n, layout)
    return SkeletonDataset(
        name=name, layout=layout, class_names=names, data=data, lengths=lens,
        labels=labels.astype(np.int64), meta=meta, partitions=partitions,
        info={"source": str(source), "format": "custom", "empty_classes": empty},
    )


# ---------------------------------------------------------------------------- writing
def write_custom(path: str | Path, sequences, labels: Sequence[int], class_names: Sequence[str],
                 layout: str, *, name: str | None = None, lengths=None,
                 subjects: Sequence | None = None, views: Sequence | None = None,
                 partitions: Mapping[str, Sequence] | None = None,
                 files: Sequence[str] | None = None) -> Path:
    """Write a custom-format dataset: a ``.npz`` file if ``path`` ends in ``.npz``, else a
    folder (``meta.json``, ``labels.csv``, ``samples/NNNNNN.npy``).

    Args:
        sequences: a list of (T_i, V, 3) or (M_i, T_i, V, 3) arrays, or one dense array
            (N, T, V, 3) / (N, M, T, V, 3) with ``lengths`` giving the valid frames.
        labels: (N,) 0-based indices into ``class_names``.
        class_names: (C,) unique names; classes without samples are allowed.
        layout: a name from :mod:`zeroskel.data.layouts` (``ntu25``, ``kinect_v1``).
        partitions: name -> (N,) ``"train"``/``"test"`` strings or booleans (True = train);
            the name ``"custom"`` is written as the plain ``partition`` key / column.
        files: (N,) sample names; in the folder form, the .npy paths relative to ``path``.

    Everything is checked with the reader's checks before anything is written.
    """
    path = Path(path).expanduser()
    where = "write_custom: argument"
    if isinstance(sequences, np.ndarray) and sequences.dtype != object:
        seqs, lens = _split_joints(sequences, None if lengths is None else np.asarray(lengths),
                                   f"{where} 'sequences'")
    else:
        seqs = [_check_seq(s, f"{where} 'sequences', sample {i}", None)
                for i, s in enumerate(sequences)]
        if not seqs:
            raise DataError(f"{where} 'sequences': no samples")
        lens = np.array([s.shape[1] for s in seqs])
        if lengths is not None and not np.array_equal(np.asarray(lengths), lens):
            raise DataError(f"{where} 'lengths' disagrees with the sequences' frame counts")
    n = len(seqs)
    meta = {}
    if subjects is not None:
        meta["subject"] = _per_sample(np.asarray(subjects), n, where, "subjects")
    if views is not None:
        meta["view"] = _per_sample(np.asarray(views), n, where, "views")
    is_folder = path.suffix != ".npz"
    if files is None:
        files = [f"samples/{i:06d}.npy" if is_folder else f"{i:06d}" for i in range(n)]
    meta["file"] = _per_sample(np.asarray(files), n, where, "files")
    parts = {}
    for pname, arr in (partitions or {}).items():
        if not _PART_NAME.match(pname):
            raise ConfigError(f"{where} 'partitions': name {pname!r} must be letters, digits, "
                              "'_' or '-'")
        parts[pname] = _is_train(np.asarray(arr), n, where, f"partitions[{pname!r}]")
    name = name or path.stem
    # same checks as reading; raises before any file is touched
    _build("write_custom", name, layout, np.asarray(list(class_names)), np.asarray(labels),
           seqs, lens, meta, parts, where_labels=f"{where} 'labels'",
           where_classes=f"{where} 'class_names'", warn_empty=False)
    labels = np.asarray(labels).astype(np.int64)
    part_cols = {("partition" if p == DEFAULT_PARTITION else f"partition_{p}"):
                 np.where(v, "train", "test") for p, v in parts.items()}
    if is_folder:
        _write_folder(path, seqs, labels, list(class_names), layout, name, meta, part_cols)
    else:
        _write_npz(path, seqs, lens, labels, list(class_names), layout, name, meta, part_cols)
    return path


def _write_npz(path, seqs, lens, labels, class_names, layout, name, meta, part_cols) -> None:
    persons = max(s.shape[0] for s in seqs)
    v = seqs[0].shape[2]
    dense = np.zeros((len(seqs), persons, int(lens.max()), v, 3), dtype=np.float32)
    for i, s in enumerate(seqs):
        dense[i, :s.shape[0], :s.shape[1]] = s
    if persons == 1:
        dense = dense[:, 0]  # the documented single-person form (N, T, V, 3)
    extra = {}
    for key, meta_key in (("subjects", "subject"), ("views", "view"), ("files", "file")):
        if meta_key in meta:
            extra[key] = meta[meta_key]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, joints=dense, lengths=lens.astype(np.int64), labels=labels,
                        class_names=np.array(class_names, dtype=str), layout=np.array(layout),
                        name=np.array(name), **extra, **part_cols)
    tmp.replace(path)


def _write_folder(folder, seqs, labels, class_names, layout, name, meta, part_cols) -> None:
    files = [str(f) for f in meta["file"]]
    first: dict[str, int] = {}
    for i, rel in enumerate(files):  # every name is checked before a file is written
        if Path(rel).suffix != ".npy" or ".." in Path(rel).parts or Path(rel).is_absolute():
            raise DataError(f"write_custom: argument 'files', sample {i}: {rel!r} must be a relative path "
                            "ending in .npy inside the folder (write_custom writes every sample into its "
                            "folder; a labels.csv written by hand may list files elsewhere, e.g. ../pool/x.npy)")
        key = os.path.normcase(os.path.normpath(rel))
        if key in first:  # 'a.npy' and './a.npy': the second sample overwrote the first
            raise DataError(f"write_custom: argument 'files', sample {i}: {rel!r} is the file of sample "
                            f"{first[key]} ({files[first[key]]!r}); each sample needs its own file")
        first[key] = i
    folder.mkdir(parents=True, exist_ok=True)
    for rel, s in zip(files, seqs):
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, s[0] if s.shape[0] == 1 else s)
    cols = ["file", "label"] + [c for c in ("subject", "view") if c in meta] + list(part_cols)
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for i in range(len(seqs)):
            row = [files[i], int(labels[i])]
            row += [meta[c][i] for c in ("subject", "view") if c in meta]
            row += [part_cols[c][i] for c in part_cols]
            w.writerow(row)
    (folder / "meta.json").write_text(json.dumps(
        {"name": name, "layout": layout, "class_names": class_names}, indent=1), encoding="utf-8")


def write_custom_dataset(path: str | Path, ds: SkeletonDataset) -> Path:
    """Export a :class:`SkeletonDataset` (any reader's output) in the custom format."""
    data = np.asarray(ds.data)
    seqs = [data[i, :, :ds.lengths[i]].transpose(3, 1, 2, 0) for i in range(len(ds))]
    meta = ds.meta
    return write_custom(path, seqs, ds.labels, ds.class_names, ds.layout, name=ds.name,
                        subjects=meta.get("subject"), views=meta.get("view"),
                        partitions=ds.partitions)
