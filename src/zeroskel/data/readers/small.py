"""Readers for the small public Kinect-v1 datasets: UTD-MHAD (.mat) and NW-UCLA (.json)."""
from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..dataset import SkeletonDataset, check_finite, stack_sequences
from ..layouts import UTD_TO_KINECT_V1

UTD_MHAD_CLASSES = [
    "swipe left", "swipe right", "wave", "clap", "throw", "arm cross", "basketball shoot",
    "draw x", "draw circle (clockwise)", "draw circle (counter clockwise)", "draw triangle",
    "bowling", "boxing", "baseball swing", "tennis swing", "arm curl", "tennis serve", "push",
    "knock", "catch", "pickup and throw", "jog", "walk", "sit to stand", "stand to sit",
    "lunge", "squat",
]

NW_UCLA_CLASSES = [
    "pick up with one hand", "pick up with two hands", "drop trash", "walk around",
    "sit down", "stand up", "donning", "doffing", "throw", "carry",
]
# NW-UCLA file action ids (a01..a12, with 7 and 10 unused) -> 0-based labels.
_NW_UCLA_ACTIONS = [1, 2, 3, 4, 5, 6, 8, 9, 11, 12]

_UTD_NAME = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_skeleton\.mat$")
_UCLA_NAME = re.compile(r"^a(\d+)_s(\d+)_e(\d+)_v(\d+)$")


def _progress(it, desc: str, total: int):
    from ..._progress import progress
    return progress(it, desc=desc, total=total)


def read_utd_mhad_file(path: str | Path) -> np.ndarray:
    """One UTD-MHAD ``*_skeleton.mat`` -> (T, 20, 3) float32 in Kinect-v1 joint order."""
    from scipy.io import loadmat

    path = Path(path)
    try:
        mat = loadmat(path)
    except Exception as e:  # scipy raises several types for truncated/garbage files
        raise DataError(f"{path}: unreadable MATLAB file ({type(e).__name__}: {e})") from None
    if "d_skel" not in mat:
        raise DataError(f"{path}: missing key 'd_skel' (keys: {[k for k in mat if not k.startswith('__')]})")
    try:
        skel = np.asarray(mat["d_skel"], dtype=np.float32)
    except (ValueError, TypeError) as e:
        raise DataError(f"{path}: 'd_skel' is not a numeric (20, 3, T) array ({e})") from None
    if skel.ndim != 3 or skel.shape[:2] != (20, 3) or skel.shape[2] < 1:
        raise DataError(f"{path}: 'd_skel' must be (20, 3, T) with T >= 1, got {skel.shape}")
    check_finite(skel, f"{path}: 'd_skel'")
    return np.ascontiguousarray(skel.transpose(2, 0, 1)[:, list(UTD_TO_KINECT_V1)])


def read_utd_mhad(root: str | Path, progress: bool = True) -> SkeletonDataset:
    """Read every ``aA_sS_tT_skeleton.mat`` of a UTD-MHAD folder.

    Partition ``xsub``: subjects 1, 3, 5, 7 train; 2, 4, 6, 8 test.
    """
    root = Path(root)
    files = sorted(p for p in root.glob("*.mat") if _UTD_NAME.match(p.name))
    if not files:
        raise DataError(f"{root}: no UTD-MHAD files named aA_sS_tT_skeleton.mat")
    seqs, labels, subj, trial, names = [], [], [], [], []
    it = _progress(files, "read utd_mhad", len(files)) if progress else files
    for p in it:
        a, s, t = map(int, _UTD_NAME.match(p.name).groups())
        if not 1 <= a <= len(UTD_MHAD_CLASSES):
            raise DataError(f"{p}: action id {a} outside 1..{len(UTD_MHAD_CLASSES)}")
        seqs.append(read_utd_mhad_file(p))
        labels.append(a - 1); subj.append(s); trial.append(t); names.append(p.name)
    data, lengths = stack_sequences(seqs, max_persons=1)
    subj = np.array(subj)
    return SkeletonDataset(
        name="utd_mhad", layout="kinect_v1", class_names=list(UTD_MHAD_CLASSES), data=data,
        lengths=lengths, labels=np.array(labels),
        meta={"file": np.array(names), "subject": subj, "trial": np.array(trial)},
        partitions={"xsub": subj % 2 == 1},
        info={"source": str(root), "units": "metres, camera space"},
    )


def read_nw_ucla_file(path: str | Path) -> tuple[np.ndarray, int, str]:
    """One NW-UCLA ``.json`` -> ((T, 20, 3) float32, 0-based label, file name)."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: unreadable NW-UCLA json ({e})") from None
    for key in ("skeletons", "label"):
        if key not in obj:
            raise DataError(f"{path}: missing key {key!r}")
    try:
        skel = np.asarray(obj["skeletons"], dtype=np.float32)
    except (ValueError, TypeError) as e:
        raise DataError(f"{path}: key 'skeletons' is not a numeric (T, 20, 3) array ({e})") from None
    if skel.ndim != 3 or skel.shape[1:] != (20, 3) or skel.shape[0] < 1:
        raise DataError(f"{path}: key 'skeletons' must be (T, 20, 3) with T >= 1, got {skel.shape}")
    check_finite(skel, f"{path}: 'skeletons'")
    label = obj["label"]
    if isinstance(label, float) and label.is_integer():
        label = int(label)
    if isinstance(label, bool) or not isinstance(label, int):
        raise DataError(f"{path}: key 'label' = {label!r} is not an integer class id "
                        f"1..{len(NW_UCLA_CLASSES)}")
    if not 1 <= label <= len(NW_UCLA_CLASSES):
        raise DataError(f"{path}: key 'label' = {label} outside 1..{len(NW_UCLA_CLASSES)}")
    return skel, label - 1, str(obj.get("file_name", path.stem))


def read_nw_ucla(root: str | Path, progress: bool = True) -> SkeletonDataset:
    """Read ``all_sqe/*.json`` of NW-UCLA. Partition ``xview``: views 1, 2 train; view 3 test.

    ``val_label.pkl`` (the list of view-3 samples shipped with the common preprocessed
    release) is cross-checked when present.
    """
    root = Path(root)
    folder = root / "all_sqe" if (root / "all_sqe").is_dir() else root
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DataError(f"{folder}: no NW-UCLA .json files")
    seqs, labels, subj, env, view, names = [], [], [], [], [], []
    it = _progress(files, "read nw_ucla", len(files)) if progress else files
    for p in it:
        m = _UCLA_NAME.match(p.stem)
        if not m:
            raise DataError(f"{p}: file name is not aAA_sSS_eEE_vVV.json")
        a, s, e, v = map(int, m.groups())
        skel, label, name = read_nw_ucla_file(p)
        if a not in _NW_UCLA_ACTIONS or _NW_UCLA_ACTIONS.index(a) != label:
            raise DataError(f"{p}: file action a{a:02d} disagrees with key 'label' = {label + 1}")
        seqs.append(skel); labels.append(label); subj.append(s); env.append(e); view.append(v)
        names.append(name)
    data, lengths = stack_sequences(seqs, max_persons=1)
    view = np.array(view)
    val = root / "val_label.pkl"
    if val.is_file():
        try:
            with open(val, "rb") as f:
                listed = {d["file_name"] for d in pickle.load(f)}
        except Exception as e:  # unpickling raises many types for a damaged or foreign file
            raise DataError(f"{val}: unreadable; expected a pickled list of dicts with key "
                            f"'file_name' (the view-3 samples) ({type(e).__name__}: {e})") from None
        ours = {n for n, vv in zip(names, view) if vv == 3}
        if listed != ours:
            raise DataError(f"{val}: lists {len(listed)} view-3 samples, the json files have {len(ours)}")
    return SkeletonDataset(
        name="nw_ucla", layout="kinect_v1", class_names=list(NW_UCLA_CLASSES), data=data,
        lengths=lengths, labels=np.array(labels),
        meta={"file": np.array(names), "subject": np.array(subj), "environment": np.array(env),
              "view": view},
        partitions={"xview": view != 3},
        info={"source": str(root)},
    )
