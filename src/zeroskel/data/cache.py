"""The on-disk cache of prepared (preprocessed) datasets.

:func:`prepare` reads a dataset, applies a preprocessing pipeline to every sample and saves
the result under ``<cache_root>/prepared/<name>-<key>/`` (a :meth:`SkeletonDataset.save`
folder plus ``prepared.json``). ``key`` hashes

* the source fingerprint: the dataset name, layout, the relative names, sizes and
  modification times of every file in the source folder (or the custom file), and the
  reader module's ``READER_VERSION`` constant (0 when it has none);
* the pipeline's ``to_config()``;
* the zeroskel dataset format version and :data:`CACHE_VERSION`,

so a changed source file or parameter gives a new folder, and an unchanged one is reused
without reading the source. ``prepared.json`` and ``info['content']`` also hold a *content
record* (:func:`content_record`): digests of what was prepared, part by part, computed in the
same pass that transforms the data, and independent of where the source lies and of its
files' times, so a training run can tell, when it resumes, whether the prepared data are
still those it started with (a copy of the dataset in another folder or on another machine
is the same; re-prepared files, labels or preprocessing are not). The folder is built in a temporary sibling and renamed into
place, so an interrupted run never leaves a half-written cache and concurrent runs of the
same preparation do not corrupt each other (the first rename wins; the others reuse it).
Samples are processed in chunks into an ``open_memmap``, so the result need not fit in RAM.
"""
from __future__ import annotations

import errno
import hashlib
import json
import numbers
import os
import shutil
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..paths import cache_root
from .dataset import FORMAT_VERSION, SkeletonDataset
from .layouts import LAYOUTS
from .transforms import Compose, Transform, apply_pipeline, build_pipeline

__all__ = ["CACHE_VERSION", "CONTENT_PARTS", "prepare", "prepared_path", "source_fingerprint", "cache_key",
           "content_record", "list_prepared", "clear_prepared"]

# Bump when prepare's output changes for the same source and pipeline configs (e.g. a
# transform's arithmetic is fixed), so old caches are not reused.
CACHE_VERSION = 1
MARKER = "prepared.json"
_TMP_PREFIX = ".tmp-"


def _prepared_dir(cache_dir: str | os.PathLike | None) -> Path:
    return cache_root(cache_dir) / "prepared"


def _walk_files(root: Path) -> list[list]:
    """[relative path, size, mtime_ns] of every file under ``root`` (or of ``root`` itself)."""
    if root.is_file():
        st = root.stat()
        return [[root.name, st.st_size, st.st_mtime_ns]]
    out = []
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as it:
            for e in it:
                if e.is_dir(follow_symlinks=True):
                    stack.append(Path(e.path))
                elif e.is_file(follow_symlinks=True):
                    st = e.stat(follow_symlinks=True)
                    out.append([os.path.relpath(e.path, root), st.st_size, st.st_mtime_ns])
    out.sort()
    return out


def _outside_files(folder: Path) -> list[list]:
    """[path as listed, size, mtime_ns] of the samples a custom folder's ``labels.csv`` lists
    outside the folder (``../pool/x.npy``), which :func:`_walk_files` does not see."""
    csv_path = folder / "labels.csv"
    if not folder.is_dir() or not csv_path.is_file():
        return []
    import csv
    out = []
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f, skipinitialspace=True))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []  # the reader reports a broken labels.csv when prepare reads it
    for row in rows:
        rel = next((v for k, v in row.items() if k is not None and k.strip() == "file"), None)
        if not isinstance(rel, str) or not rel.strip():
            continue
        p = (folder / rel.strip()).resolve()
        if not p.is_relative_to(folder) and p.is_file():
            st = p.stat()
            out.append(["outside:" + rel.strip(), st.st_size, st.st_mtime_ns])
    return out


def _reader_version(module_name: str) -> Any:
    import importlib
    return getattr(importlib.import_module(module_name), "READER_VERSION", 0)


def _content_hash(ds: SkeletonDataset, chunk: int = 1024) -> str:
    """Hash of an in-memory dataset's arrays (used when it carries no fingerprint)."""
    h = hashlib.sha256()
    h.update(json.dumps([ds.name, ds.layout, list(ds.class_names), list(ds.data.shape)]).encode())
    for s in range(0, len(ds), chunk):
        h.update(np.ascontiguousarray(ds.data[s:s + chunk], dtype=np.float32).tobytes())
    for arr in [ds.lengths, ds.labels] + [ds.meta[k] for k in sorted(ds.meta)] \
            + [ds.partitions[k] for k in sorted(ds.partitions)]:
        h.update(np.ascontiguousarray(arr).tobytes() if arr.dtype != object else repr(arr.tolist()).encode())
    h.update(json.dumps(sorted(ds.meta) + sorted(ds.partitions)).encode())
    return h.hexdigest()


# the parts of a content record, with what each covers (the words a resume error uses)
CONTENT_PARTS = {
    "samples": "the number of samples",
    "skeletons": "the skeleton sequences (joint coordinates and lengths, as read from the source)",
    "labels": "the class names and the samples' labels",
    "partitions": "the train/test partitions",
    "meta": "the per-sample metadata (subjects, views...)",
    "preprocessing": "the preprocessing pipeline",
}


def _hash_array(h, arr) -> None:
    arr = np.asarray(arr)
    h.update(f"{arr.dtype.str}{arr.shape}|".encode())
    h.update(repr(arr.tolist()).encode() if arr.dtype == object else np.ascontiguousarray(arr).tobytes())


def _content(src: SkeletonDataset, pipe: Compose, skeletons) -> dict[str, Any]:
    """The content record of the dataset prepared from ``src`` by ``pipe``; ``skeletons`` is a
    sha256 object that has seen the source's float32 samples in order (see :func:`prepare`).

    Digests of the *source* arrays (as the reader gives them: parsed numbers, exact on any
    machine) and of the pipeline's config, rather than of the transformed floats, whose last bits
    may differ between machines or numpy builds: a dataset copied to another machine and prepared
    there again has the same record. The sample files' names (``meta['file']``) and the dataset's
    name are left out: they change no number of a run."""
    _hash_array(skeletons, src.lengths)
    labels = hashlib.sha256(json.dumps(list(src.class_names)).encode())
    _hash_array(labels, src.labels)
    parts = hashlib.sha256(json.dumps(sorted(src.partitions)).encode())
    for k in sorted(src.partitions):
        _hash_array(parts, src.partitions[k])
    keys = sorted(k for k in src.meta if k != "file")
    meta = hashlib.sha256(json.dumps(keys).encode())
    for k in keys:
        _hash_array(meta, src.meta[k])
    prep = hashlib.sha256(json.dumps({"pipeline": pipe.to_config(), "cache_version": CACHE_VERSION},
                                     sort_keys=True, default=str).encode())
    return {"samples": int(len(src)), "skeletons": skeletons.hexdigest()[:16], "labels": labels.hexdigest()[:16],
            "partitions": parts.hexdigest()[:16], "meta": meta.hexdigest()[:16],
            "preprocessing": prep.hexdigest()[:16]}


def content_record(ds: SkeletonDataset) -> dict[str, Any] | None:
    """The content record of a prepared dataset (:func:`prepare` stores it in ``info``), or None
    for one prepared before the record existed (or not prepared at all)."""
    rec = ds.info.get("content")
    return dict(rec) if isinstance(rec, dict) else None


def source_fingerprint(dataset: str | os.PathLike | SkeletonDataset,
                       data_root: str | os.PathLike | None = None) -> dict[str, Any]:
    """What the cache key depends on, on the source side, without reading the data.

    * registry name: dataset name, layout, reader, ``READER_VERSION`` of the reader module,
      and [relative path, size, mtime_ns] of every file in the dataset folder;
    * custom path: the resolved path and the same file list for it;
    * in-memory :class:`SkeletonDataset`: ``info['fingerprint']`` when set (a prepared
      dataset carries one), else a hash of its arrays.
    """
    from . import registry

    if isinstance(dataset, SkeletonDataset):
        fp = dataset.info.get("fingerprint")
        return {"kind": "memory", "name": dataset.name, "layout": dataset.layout,
                "fingerprint": fp if fp is not None else _content_hash(dataset)}
    name = os.fspath(dataset)
    if registry.is_custom(name):
        path = Path(name).expanduser().resolve()
        if not path.exists():
            raise DataError(f"custom dataset {name}: no such file or folder")
        return {"kind": "custom", "path": str(path), "files": _walk_files(path) + _outside_files(path),
                "reader_version": _reader_version("zeroskel.data.readers.custom")}
    spec = registry.get_spec(name)
    from ..paths import data_root as resolve_root
    folder = spec.folder(resolve_root(data_root))
    if not folder.is_dir():
        raise DataError(f"dataset {name!r}: folder {folder} not found; expected {spec.expected} "
                        f"(download: {spec.download})")
    files = _walk_files(folder)
    if not files:
        raise DataError(f"dataset {name!r}: folder {folder} is empty; expected {spec.expected}")
    return {"kind": "registry", "name": name, "layout": spec.layout, "reader": spec.reader,
            "reader_version": _reader_version(spec.reader.split(":")[0]), "files": files}


def cache_key(fingerprint: dict[str, Any], pipeline: Transform) -> str:
    """16-hex-digit key of (source fingerprint, pipeline configs, format versions)."""
    blob = json.dumps({"source": fingerprint, "pipeline": pipeline.to_config(),
                       "format_version": FORMAT_VERSION, "cache_version": CACHE_VERSION},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _safe_name(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return keep.strip("._") or "dataset"


def _source_name(dataset) -> str:
    if isinstance(dataset, SkeletonDataset):
        return _safe_name(dataset.name)
    name = os.fspath(dataset)
    from . import registry
    if registry.is_custom(name):
        p = Path(name)
        return _safe_name(p.stem if p.suffix == ".npz" else p.name)
    return _safe_name(name)


def _layout_of(dataset) -> str | None:
    """The dataset's joint layout without reading its samples (None if it cannot be told)."""
    if isinstance(dataset, SkeletonDataset):
        return dataset.layout
    from . import registry
    name = os.fspath(dataset)
    if not registry.is_custom(name):
        return registry.get_spec(name).layout
    path = Path(name).expanduser()
    try:  # custom format: 'layout' key of the .npz, or of the folder's meta.json
        if path.is_dir():
            return str(json.loads((path / "meta.json").read_text(encoding="utf-8-sig"))["layout"])
        with np.load(path, allow_pickle=False) as npz:
            return str(npz["layout"])
    except Exception:  # malformed: the reader reports it properly when prepare reads it
        return None


def prepared_path(dataset: str | os.PathLike | SkeletonDataset, pipeline: Any = "none",
                  data_root: str | os.PathLike | None = None,
                  cache_dir: str | os.PathLike | None = None) -> Path:
    """The folder :func:`prepare` uses for this source and pipeline (it may not exist yet)."""
    return _plan(dataset, pipeline, data_root, cache_dir)[0]


def _plan(dataset, pipeline, data_root, cache_dir):
    fp = source_fingerprint(dataset, data_root)
    pipe = _build(pipeline, _layout_of(dataset))
    key = cache_key(fp, pipe)
    return _prepared_dir(cache_dir) / f"{_source_name(dataset)}-{key}", fp, pipe, key


def _build(pipeline, layout: str | None) -> Compose:
    if isinstance(pipeline, Transform):
        pipe = pipeline if isinstance(pipeline, Compose) else Compose([pipeline])
    elif layout in LAYOUTS:
        pipe = build_pipeline(pipeline, layout, where="prepare pipeline")
    else:
        # unreadable custom file: only the config is needed here (it does not depend on
        # the layout); the reader's error comes when prepare reads the file
        pipe = build_pipeline(pipeline, "ntu25", where="prepare pipeline")
    if pipe.random:
        raise ConfigError(f"prepare pipeline {pipe!r} contains random transforms; a prepared "
                          "cache holds deterministic preprocessing only (apply augmentation in "
                          "the training loader)")
    return pipe


def _load_ready(folder: Path) -> SkeletonDataset | None:
    """The prepared dataset in ``folder`` if it is complete, else None."""
    if not (folder / MARKER).is_file():
        return None
    try:
        ds = SkeletonDataset.load(folder, mmap=True)
    except DataError:
        return None
    # where it is now: the stored value is the build's path (relative to that run's working
    # directory when the cache root was given relative, and stale once the cache is moved)
    ds.info["cache_path"] = str(folder.resolve())
    return ds


def prepare(dataset: str | os.PathLike | SkeletonDataset, pipeline: Any = "pgfa50",
            data_root: str | os.PathLike | None = None,
            cache_dir: str | os.PathLike | None = None, progress: bool = True,
            chunk_size: int = 256, rebuild: bool = False, workers: int = 1) -> SkeletonDataset:
    """Preprocess a dataset once and return it memory-mapped from the cache.

    Args:
        dataset: a registry name (``"utd_mhad"``), a path to a custom-format file or
            folder, or an in-memory :class:`SkeletonDataset` (keyed by
            ``info['fingerprint']`` when set, else by a hash of its arrays).
        pipeline: a preset name (``"pgfa50"``, ``"flora50"``, ``"none"``), a list of
            transform dicts/names, or a :class:`Compose`; deterministic transforms only.
        data_root: the data root for registry names (default ``$ZEROSKEL_DATA``).
        cache_dir: cache root (default ``$ZEROSKEL_CACHE`` or ``~/.cache/zeroskel``).
        progress: show progress bars while reading and transforming.
        chunk_size: samples transformed at a time (bounds memory).
        rebuild: rebuild even if a complete cache exists.
        workers: parser processes for readers that take ``workers`` (NTU); readers that take
            ``out_dir`` stream the raw arrays to a scratch memmap inside the temporary
            folder (deleted afterwards) instead of holding them in RAM.
    Returns:
        the prepared :class:`SkeletonDataset`, ``data`` a read-only memmap (N, 3, T', V, M');
        ``info`` gains ``fingerprint`` (the cache key), ``pipeline`` (configs),
        ``prepared_from`` (source fingerprint summary), ``cache_path`` and ``content`` (the
        content record, :func:`content_record`; absent from caches built before it existed).
    """
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
        raise ConfigError(f"workers (--workers) must be a whole number >= 1, got {workers!r}")
    final, fp, pipe, key = _plan(dataset, pipeline, data_root, cache_dir)
    if not rebuild:
        ready = _load_ready(final)
        if ready is not None:
            return ready
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f"{_TMP_PREFIX}{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    t0 = time.time()
    try:
        tmp.mkdir(parents=True)
        src = _read_source(dataset, data_root, progress, tmp / "raw", workers)
        if not len(src):
            raise DataError(f"prepare: dataset {src.name!r} has no samples")
        if not isinstance(pipeline, Transform):
            pipe = build_pipeline(pipeline, src.layout, where="prepare pipeline")
        out_layout = _check_layout(pipe, src)
        # the source's samples are hashed as the transform reads them: no second pass over GBs
        skeletons = hashlib.sha256(json.dumps([src.layout, list(src.data.shape[1:])]).encode())
        out = _transform_to_memmap(src, pipe, tmp / "stage.npy", chunk_size, progress,
                                   lambda raw: skeletons.update(np.ascontiguousarray(raw)))
        lengths = out[1]
        content = _content(src, pipe, skeletons)
        info = dict(src.info)
        info.update({"fingerprint": key, "pipeline": pipe.to_config(), "cache_path": str(final), "content": content,
                     "prepared_from": {k: v for k, v in fp.items() if k != "files"}
                     | ({"files": len(fp["files"])} if "files" in fp else {})})
        result = SkeletonDataset(
            name=src.name, layout=out_layout, class_names=list(src.class_names), data=out[0],
            lengths=lengths, labels=src.labels, meta=dict(src.meta),
            partitions=dict(src.partitions), info=info)
        result.save(tmp)  # data.npy copied from the stage memmap in chunks
        marker = {"key": key, "name": src.name, "layout": out_layout, "samples": len(src),
                  "shape": list(result.data.shape), "pipeline": pipe.to_config(),
                  "source": info["prepared_from"], "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "seconds": round(time.time() - t0, 3),
                  "content": content, "cache_version": CACHE_VERSION, "format_version": FORMAT_VERSION}
        del result, out, src  # close the memmaps before deleting their files
        (tmp / "stage.npy").unlink()
        shutil.rmtree(tmp / "raw", ignore_errors=True)
        (tmp / MARKER).write_text(json.dumps(marker, indent=1, default=str), encoding="utf-8")
        _publish(tmp, final, rebuild)
    except BaseException as e:
        # an error or Ctrl-C mid-way: the traceback's frames still map the scratch arrays, and
        # Windows cannot delete a mapped file, so the temporary folder (GBs for NTU) stayed behind
        src = out = result = None  # this frame's (maybe unbound); the deeper frames' are cleared
        del src, out, result
        traceback.clear_frames(e.__traceback__)
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    for _ in range(20):  # a concurrent rebuild may be swapping the folder right now
        ready = _load_ready(final)
        if ready is not None:
            return ready
        time.sleep(0.05)
    raise DataError(f"{final}: prepared dataset is unreadable right after writing it")


def _read_source(dataset, data_root, progress: bool, scratch: Path, workers: int) -> SkeletonDataset:
    """The unprocessed dataset; memory-mapped from ``scratch`` when its reader can stream."""
    if isinstance(dataset, SkeletonDataset):
        return dataset
    from . import registry
    name = os.fspath(dataset)
    if registry.is_custom(name):
        return registry.read_dataset(name, data_root, progress=progress)
    spec = registry.get_spec(name)
    fn = spec.read_fn()
    import inspect
    params = inspect.signature(fn).parameters
    kw = {}
    if "out_dir" in params:
        kw["out_dir"] = scratch
    if "workers" in params:
        kw["workers"] = workers
    if not kw:
        return registry.read_dataset(name, data_root, progress=progress)
    from ..paths import data_root as resolve_root
    folder = spec.folder(resolve_root(data_root))
    if not folder.is_dir():
        raise DataError(f"dataset {name!r}: folder {folder} not found; expected {spec.expected} "
                        f"(download: {spec.download})")
    return fn(folder, progress=progress, **kw)


def _check_layout(pipe: Compose, src: SkeletonDataset) -> str:
    """Check every transform was built for the layout its input has; return the output layout."""
    layout = src.layout
    for t in pipe:
        lay = getattr(t, "layout", None)
        if lay is not None and lay.name != layout:
            raise ConfigError(f"prepare: transform {t!r} was built for layout {lay.name!r}, its input "
                              f"from dataset {src.name!r} has layout {layout!r}; pass the pipeline "
                              "as a config (list of dicts or preset name) so it is built for the data")
        layout = t.output_layout(layout)
    return layout


def _transform_to_memmap(src: SkeletonDataset, pipe: Compose, path: Path, chunk_size: int,
                         progress: bool, on_input=None) -> tuple[np.ndarray, np.ndarray]:
    """Run the pipeline over ``src`` chunk by chunk into a new .npy memmap at ``path``."""
    first, _ = pipe.apply_batch(np.asarray(src.data[:1], dtype=np.float32), src.lengths[:1])
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                    shape=(len(src),) + first.shape[1:])
    data, lengths = apply_pipeline(src.data, src.lengths, pipe, chunk_size=chunk_size, out=out,
                                   progress=progress, desc=f"prepare {src.name}", on_input=on_input)
    data.flush()
    return data, lengths


# Windows refuses to rename or delete a folder while a file in it is open or memory-mapped
_IN_USE = ("a file in it is open in a process (on Windows a memory-mapped prepared dataset cannot be "
           "moved or deleted while a program, or this one, still uses it); close or delete what uses it "
           "and retry")


def _publish(tmp: Path, final: Path, replace: bool) -> None:
    """Rename ``tmp`` to ``final``; if another run got there first, keep theirs."""
    if replace and final.exists():
        trash = final.parent / f"{_TMP_PREFIX}old-{final.name}-{uuid.uuid4().hex[:8]}"
        try:
            final.rename(trash)
        except FileNotFoundError:
            pass
        except PermissionError:
            raise DataError(f"{final}: cannot rebuild the prepared dataset, {_IN_USE}") from None
        else:
            shutil.rmtree(trash, ignore_errors=True)
    elif final.exists() and _load_ready(final) is None:
        # an incomplete folder from an older, non-atomic writer or a damaged cache: set aside
        trash = final.parent / f"{_TMP_PREFIX}bad-{final.name}-{uuid.uuid4().hex[:8]}"
        try:
            final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        except FileNotFoundError:
            pass
        except PermissionError:
            raise DataError(f"{final}: cannot replace the damaged prepared dataset, {_IN_USE}") from None
    try:
        tmp.rename(final)
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        # a concurrent prepare published the same key first; its content is equivalent


def list_prepared(cache_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One dict per complete prepared dataset: ``path``, ``bytes`` and the ``prepared.json``
    fields (``key``, ``name``, ``layout``, ``samples``, ``pipeline``, ``source``, ``created``,
    ...). Sorted by name then creation time. Incomplete/temporary folders are skipped."""
    root = _prepared_dir(cache_dir)
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name.startswith(_TMP_PREFIX) or not folder.is_dir():
            continue
        try:
            marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        out.append({**marker, "path": str(folder), "bytes": size})
    out.sort(key=lambda d: (d.get("name", ""), d.get("created", "")))
    return out


def clear_prepared(cache_dir: str | os.PathLike | None = None, name: str | None = None,
                   key: str | None = None, stale_seconds: float = 3600.0,
                   dry_run: bool = False) -> list[Path]:
    """Delete prepared datasets; return the folders deleted (or that would be).

    Args:
        name: only those prepared from this dataset: its name (as in :func:`list_prepared`)
            or the argument given to :func:`prepare` (a registry name or a custom
            ``.npz`` / folder path).
        key: only the one with this cache key (a prefix is enough).
        stale_seconds: temporary folders older than this (interrupted runs) are deleted
            too; younger ones may belong to a running prepare and are kept.
        dry_run: list, do not delete.
    """
    root = _prepared_dir(cache_dir)
    if not root.is_dir():
        return []
    gone = []
    now = time.time()
    stems = {_safe_name(name), _source_name(name)} if name is not None else set()
    for folder in sorted(root.iterdir()):
        if not folder.is_dir():
            continue
        if folder.name.startswith(_TMP_PREFIX):
            if name is None and key is None and now - folder.stat().st_mtime > stale_seconds:
                gone.append(folder)
            continue
        try:
            marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            marker = {}
        stem, _, fkey = folder.name.rpartition("-")
        if name is not None and marker.get("name", stem) != name and stem not in stems:
            continue
        if key is not None and not marker.get("key", fkey).startswith(key):
            continue
        gone.append(folder)
    if not dry_run:
        busy = []
        for folder in gone:
            # rename first so a reader never sees a half-deleted folder as a cache
            trash = root / f"{_TMP_PREFIX}del-{folder.name}-{uuid.uuid4().hex[:8]}"
            try:
                folder.rename(trash)
            except FileNotFoundError:
                continue
            except PermissionError:
                busy.append(folder)
                continue
            shutil.rmtree(trash, ignore_errors=True)
        if busy:
            done = [str(f) for f in gone if f not in busy]
            raise DataError(f"cache clear: {', '.join(map(str, busy))} not removed, {_IN_USE}"
                            + (f"; removed {', '.join(done)}" if done else ""))
    return gone
