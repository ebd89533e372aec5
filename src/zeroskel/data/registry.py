"""Built-in datasets: where they live under the data root, their layout and partitions.

A user's own data comes in through the custom format (:mod:`zeroskel.data.readers.custom`):
anywhere a dataset name is accepted, a path to a ``.npz`` file or folder works too.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DataError, unknown_name
from ..paths import data_root as resolve_root, looks_like_path
from .dataset import SkeletonDataset


@dataclass(frozen=True)
class DatasetSpec:
    """How to find and read one built-in dataset.

    ``reader`` is ``"module:function"``; the function takes ``(folder, progress=bool)`` and
    returns a :class:`SkeletonDataset`.
    """

    name: str
    title: str
    subdir: str
    layout: str
    num_classes: int
    partitions: tuple[str, ...]
    reader: str
    expected: str  # files the reader looks for, relative to the folder
    download: str  # where a user gets the raw files
    samples: int | None = None  # size of the full official release, when known

    def folder(self, root: Path) -> Path:
        return Path(root) / self.subdir

    def read_fn(self):
        mod, fn = self.reader.split(":")
        return getattr(importlib.import_module(mod), fn)


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in [
    DatasetSpec(
        "utd_mhad", "UTD-MHAD (Kinect v1)", "utd_mhad", "kinect_v1", 27, ("xsub",),
        "zeroskel.data.readers.small:read_utd_mhad", "aA_sS_tT_skeleton.mat (key d_skel, 20x3xT)",
        "https://personal.utdallas.edu/~kehtar/UTD-MHAD.html (Skeleton.zip)", 861),
    DatasetSpec(
        "nw_ucla", "Northwestern-UCLA Multiview Action3D", "nw_ucla", "kinect_v1", 10, ("xview",),
        "zeroskel.data.readers.small:read_nw_ucla",
        "all_sqe/aAA_sSS_eEE_vVV.json (+ optional val_label.pkl)",
        "the preprocessed json release used by CTR-GCN (all_sqe.zip); original: "
        "https://wangjiangb.github.io/my_data.html", 1484),
    DatasetSpec(
        "ntu60", "NTU RGB+D 60", "ntu60", "ntu25", 60, ("xsub", "xview"),
        "zeroskel.data.readers.ntu:read_ntu60",
        "nturgb+d_skeletons/SsssCcccPpppRrrrAaaa.skeleton (+ optional NTU_RGBD_samples_with_missing_skeletons.txt)",
        "https://rose1.ntu.edu.sg/dataset/actionRecognition/ (request access; 'skeletons' archives)",
        56880),
    DatasetSpec(
        "ntu120", "NTU RGB+D 120", "ntu120", "ntu25", 120, ("xsub", "xset"),
        "zeroskel.data.readers.ntu:read_ntu120",
        "nturgb+d_skeletons/*.skeleton (S001-S032; + optional NTU_RGBD120_samples_with_missing_skeletons.txt)",
        "https://rose1.ntu.edu.sg/dataset/actionRecognition/ (request access; 'skeletons' archives)",
        114480),
    DatasetSpec(
        "pku_mmd1", "PKU-MMD part I", "pku_mmd1", "ntu25", 51, ("xsub", "xview"),
        "zeroskel.data.readers.pku:read_pku_mmd1",
        "Data/PKU_Skeleton_Renew/*.txt, Label/Train_Label_PKU_final/*.txt, Split/cross-subject.txt, Split/cross-view.txt",
        "https://www.icst.pku.edu.cn/struct/Projects/PKUMMD.html", None),
    DatasetSpec(
        "pku_mmd2", "PKU-MMD part II", "pku_mmd2", "ntu25", 41, ("xsub", "xview"),
        "zeroskel.data.readers.pku:read_pku_mmd2",
        "Data/skeleton/*.txt, Label/*.txt, Split/cross_subject_v2.txt, Split/cross_view_v2.txt",
        "https://www.icst.pku.edu.cn/struct/Projects/PKUMMD.html", None),
]}


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of built-in dataset ``name``; :class:`ConfigError` listing the
    valid names if unknown (a custom dataset path has no spec: see :func:`is_custom`)."""
    if name not in DATASETS:
        raise unknown_name("dataset", name, list(DATASETS) + ["<path to a custom .npz or folder>"])
    return DATASETS[name]


def is_custom(name: str) -> bool:
    """A dataset argument that is a path (custom format) rather than a registry name."""
    return name not in DATASETS and (name.endswith(".npz") or looks_like_path(name) or Path(name).exists())


def read_dataset(name: str, data_root: str | Path | None = None, progress: bool = True,
                 **reader_kwargs) -> SkeletonDataset:
    """Read a built-in dataset from the data root, or a custom-format file/folder.

    Readers apply only the format's standard clean-up (NTU/PKU-MMD: actor selection,
    first-frame centring, padding to two persons); the model-specific preprocessing is
    :func:`zeroskel.data.cache.prepare`'s job. ``reader_kwargs`` go to the reader (e.g.
    ``workers``, ``max_frames`` for NTU and PKU-MMD).
    """
    if not isinstance(name, (str, Path)):
        raise ConfigError(f"dataset must be a registered name or a path to a custom dataset, got {name!r}")
    name = str(name)
    if is_custom(name):
        if reader_kwargs:  # a custom dataset is read as written: these would be ignored silently
            raise ConfigError(f"{name}: reader options {sorted(reader_kwargs)} apply to the built-in readers "
                              "(NTU, PKU-MMD), not to a custom-format dataset, which is read as written")
        from .readers.custom import read_custom
        return read_custom(name)
    spec = get_spec(name)
    folder = spec.folder(resolve_root(data_root))
    if not folder.is_dir():
        raise DataError(f"dataset {name!r}: folder {folder} not found; expected {spec.expected} "
                        f"(download: {spec.download})")
    fn = spec.read_fn()
    import inspect
    accepted = list(inspect.signature(fn).parameters)[2:]  # after (folder, progress)
    unknown = sorted(set(reader_kwargs) - set(accepted))
    if unknown:
        raise ConfigError(f"dataset {name!r}: its reader takes no option {', '.join(map(repr, unknown))}; "
                          f"valid: {', '.join(accepted) or 'none'}")
    return fn(folder, progress=progress, **reader_kwargs)
