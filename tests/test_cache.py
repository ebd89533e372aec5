"""The prepared-dataset cache: reuse, rebuild on source/parameter change, atomic writes."""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import need
from zeroskel.data.cache import (
    MARKER, cache_key, clear_prepared, list_prepared, prepare, prepared_path, source_fingerprint,
)
from zeroskel.data.dataset import SkeletonDataset
from zeroskel.data.transforms import Compose, Transform, apply_pipeline, build_pipeline
from zeroskel.errors import ConfigError, DataError


def tiny(n: int = 10, t: int = 16, seed: int = 0, fingerprint: str | None = None) -> SkeletonDataset:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, t + 1, size=n)
    data = rng.normal(size=(n, 3, t, 20, 2)).astype(np.float32)
    for i, L in enumerate(lengths):
        data[i, :, L:] = 0
    data[::2, ..., 1] = 0
    info = {"fingerprint": fingerprint} if fingerprint else {}
    return SkeletonDataset(
        name="tiny", layout="kinect_v1", class_names=["a", "b", "c"], data=data, lengths=lengths,
        labels=np.arange(n) % 3, meta={"file": np.array([f"s{i}" for i in range(n)]),
                                        "subject": np.arange(n) % 4},
        partitions={"xsub": np.arange(n) % 4 < 2}, info=info)


def _stamp(ds: SkeletonDataset) -> tuple:
    folder = Path(ds.info["cache_path"])
    return (folder, (folder / "data.npy").stat().st_mtime_ns,
            json.loads((folder / MARKER).read_text())["created"])


def test_prepare_in_memory_matches_pipeline_and_is_reused(tmp_path):
    src = tiny()
    ds = prepare(src, "pgfa50", cache_dir=tmp_path, progress=False)
    assert isinstance(ds.data, np.memmap) and not ds.data.flags.writeable
    expect, lengths = apply_pipeline(src.data, src.lengths, build_pipeline("pgfa50", "kinect_v1"))
    np.testing.assert_array_equal(ds.data, expect)
    np.testing.assert_array_equal(ds.lengths, lengths)
    np.testing.assert_array_equal(ds.labels, src.labels)
    np.testing.assert_array_equal(ds.meta["file"], src.meta["file"])
    np.testing.assert_array_equal(ds.partitions["xsub"], src.partitions["xsub"])
    assert ds.info["pipeline"][1] == {"name": "resize", "frames": 50}
    folder = Path(ds.info["cache_path"])
    assert folder.parent == tmp_path / "prepared" and folder.name.startswith("tiny-")
    assert folder == prepared_path(src, "pgfa50", cache_dir=tmp_path)

    before = _stamp(ds)
    time.sleep(0.01)
    again = prepare(tiny(), "pgfa50", cache_dir=tmp_path, progress=False)  # same content
    assert _stamp(again) == before  # reused, not rewritten
    assert len(list_prepared(tmp_path)) == 1

    # a parameter change or a content change gives a new folder; the old one stays
    other = prepare(src, [{"name": "resize", "frames": 20}], cache_dir=tmp_path, progress=False)
    assert other.data.shape == (10, 3, 20, 20, 2) and Path(other.info["cache_path"]) != folder
    changed = tiny()
    changed.data[3, 0, 0, 0, 0] += 1
    assert prepared_path(changed, "pgfa50", cache_dir=tmp_path) != folder
    assert len(list_prepared(tmp_path)) == 2

    rebuilt = prepare(src, "pgfa50", cache_dir=tmp_path, progress=False, rebuild=True)
    assert _stamp(rebuilt)[1:] != before[1:]
    np.testing.assert_array_equal(rebuilt.data, expect)


def test_fingerprint_in_info_is_the_source_key_and_prepared_datasets_chain(tmp_path):
    a = prepared_path(tiny(fingerprint="v1"), "none", cache_dir=tmp_path)
    assert prepared_path(tiny(seed=5, fingerprint="v1"), "none", cache_dir=tmp_path) == a
    assert prepared_path(tiny(fingerprint="v2"), "none", cache_dir=tmp_path) != a
    first = prepare(tiny(), "none", cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(first.data, tiny().data)  # 'none' caches the raw arrays
    second = prepare(first, "pgfa50", cache_dir=tmp_path, progress=False)
    assert second.info["prepared_from"]["fingerprint"] == first.info["fingerprint"]
    assert second.data.shape == (10, 3, 50, 20, 2)


def test_subset_of_a_prepared_dataset_is_not_served_the_whole_datasets_cache(tmp_path):
    # a subset inherited the prepared dataset's fingerprint, so preparing it and then the
    # whole dataset (or another subset) with the same pipeline returned the first one's arrays
    first = prepare(tiny(), "none", cache_dir=tmp_path, progress=False)
    sub = first.subset(first.labels == 0)
    assert "cache_path" not in sub.info
    assert sub.info["fingerprint"] != first.info["fingerprint"]
    assert sub.info["fingerprint"] == first.subset(first.labels == 0).info["fingerprint"]
    assert first.subset(first.labels == 1).info["fingerprint"] != sub.info["fingerprint"]
    part = prepare(sub, "pgfa50", cache_dir=tmp_path, progress=False)
    whole = prepare(first, "pgfa50", cache_dir=tmp_path, progress=False)
    other = prepare(first.subset(first.labels == 1), "pgfa50", cache_dir=tmp_path, progress=False)
    assert (len(part), len(whole), len(other)) == (4, 10, 3)
    np.testing.assert_array_equal(whole.labels, tiny().labels)
    np.testing.assert_array_equal(other.labels, [1, 1, 1])
    with pytest.raises(DataError, match=r"subset mask has shape \(9,\), expected \(10,\)"):
        first.subset(np.ones(9, bool))


def test_prepare_with_map_layout_changes_the_dataset_layout(tmp_path):
    spec = [{"name": "map_layout", "target": "ntu25"}, {"name": "center", "joint": "spine_shoulder"}]
    ds = prepare(tiny(), spec, cache_dir=tmp_path, progress=False)
    assert ds.layout == "ntu25" and ds.data.shape == (10, 3, 16, 25, 2)
    assert list_prepared(tmp_path)[0]["layout"] == "ntu25"
    np.testing.assert_allclose(ds.data[:, :, :, 20], 0, atol=1e-6)


def test_prepare_rejects_random_and_mismatched_pipelines(tmp_path):
    with pytest.raises(ConfigError, match="random transforms"):
        prepare(tiny(), [{"name": "random_crop", "frames": 8}], cache_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="unknown preprocessing preset"):
        prepare(tiny(), "pgfa5", cache_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="built for layout 'ntu25'"):
        prepare(tiny(), build_pipeline("pgfa50", "ntu25"), cache_dir=tmp_path, progress=False)
    assert list_prepared(tmp_path) == [] and not list(tmp_path.glob("prepared/*"))


class _FailOnSecondChunk(Transform):
    """Simulates a crash part-way through a dataset: raises ``error`` (a RuntimeError, or e.g.
    KeyboardInterrupt for Ctrl-C) on the second chunk."""

    name = "fail_second_chunk"

    def __init__(self, error: BaseException | None = None):
        self.calls = 0
        self.error = error if error is not None else RuntimeError("interrupted")

    def apply_batch(self, data, lengths, rng=None):
        self.calls += 1
        if self.calls == 3:  # 1: shape probe, 2: first chunk, 3: second chunk
            raise self.error
        return data, lengths

    def to_config(self):
        return {"name": self.name}


def test_interrupted_prepare_leaves_no_cache_and_next_run_builds(tmp_path):
    pipe = Compose([_FailOnSecondChunk()])
    with pytest.raises(RuntimeError, match="interrupted"):
        prepare(tiny(), pipe, cache_dir=tmp_path, progress=False, chunk_size=4)
    assert list((tmp_path / "prepared").iterdir()) == []  # no final folder, temp removed
    assert list_prepared(tmp_path) == []
    ds = prepare(tiny(), pipe, cache_dir=tmp_path, progress=False, chunk_size=4)
    np.testing.assert_array_equal(ds.data, tiny().data)


def test_damaged_cache_is_rebuilt_and_stale_temps_cleared(tmp_path):
    src = tiny()
    folder = prepared_path(src, "pgfa50", cache_dir=tmp_path)
    folder.mkdir(parents=True)
    (folder / "data.npy").write_bytes(b"half written")  # a folder without marker: not a cache
    ds = prepare(src, "pgfa50", cache_dir=tmp_path, progress=False)
    assert ds.data.shape == (10, 3, 50, 20, 2) and (folder / MARKER).is_file()

    stale = tmp_path / "prepared" / ".tmp-tiny-dead-1234-abcd"
    stale.mkdir()
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = tmp_path / "prepared" / ".tmp-tiny-running-1-ef"
    fresh.mkdir()
    assert list_prepared(tmp_path)[0]["path"] == str(folder)
    assert clear_prepared(tmp_path, dry_run=True) == sorted([stale, folder])
    assert folder.exists()
    assert clear_prepared(tmp_path) == sorted([stale, folder])
    assert not stale.exists() and not folder.exists() and fresh.exists()  # running one kept


def test_damaged_header_is_rebuilt_and_workers_are_checked(tmp_path):
    """A prepared folder whose dataset.json lost a key is rebuilt (it used to end in a
    KeyError from SkeletonDataset.load); a worker count below 1 is a ConfigError."""
    src = tiny()
    ds = prepare(src, "pgfa50", cache_dir=tmp_path, progress=False)
    head = Path(ds.info["cache_path"]) / "dataset.json"
    header = json.loads(head.read_text())
    del header["layout"]
    head.write_text(json.dumps(header))
    with pytest.raises(DataError, match="damaged prepared dataset \\(missing layout\\)"):
        SkeletonDataset.load(head.parent)
    again = prepare(src, "pgfa50", cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again.data, ds.data)
    assert SkeletonDataset.load(head.parent).layout == src.layout
    for bad in (0, -3, 1.5, True):
        with pytest.raises(ConfigError, match="workers \\(--workers\\) must be a whole number >= 1"):
            prepare(src, "pgfa50", cache_dir=tmp_path, progress=False, workers=bad)


def test_clear_prepared_by_name_and_key(tmp_path):
    a = prepare(tiny(), "pgfa50", cache_dir=tmp_path, progress=False)
    b = prepare(tiny(), "flora50", cache_dir=tmp_path, progress=False)
    entries = {e["key"]: e for e in list_prepared(tmp_path)}
    assert set(entries) == {a.info["fingerprint"], b.info["fingerprint"]}
    assert entries[b.info["fingerprint"]]["samples"] == 10 and entries[b.info["fingerprint"]]["bytes"] > 0
    assert clear_prepared(tmp_path, name="other") == []
    assert clear_prepared(tmp_path, key=b.info["fingerprint"][:6]) == [Path(b.info["cache_path"])]
    assert [e["key"] for e in list_prepared(tmp_path)] == [a.info["fingerprint"]]
    assert clear_prepared(tmp_path, name="tiny") == [Path(a.info["cache_path"])]
    assert list_prepared(tmp_path) == []


def test_clear_by_the_custom_path_that_prepared_it(tmp_path, capsys):
    # 'cache clear --dataset my.npz' (the argument prepare was given) matched nothing and
    # printed nothing, so the user believed the cache was cleared
    from zeroskel.cli import main
    from zeroskel.data.readers.custom import write_custom
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(int(L), 20, 3)).astype(np.float32) for L in (9, 12, 7)]
    path = write_custom(tmp_path / "mine.npz", seqs, [0, 1, 0], ["x", "y"], "kinect_v1")
    folder = write_custom(tmp_path / "mine_dir", seqs, [0, 1, 0], ["x", "y"], "kinect_v1")
    cache = tmp_path / "cache"
    a = prepare(str(path), "none", cache_dir=cache, progress=False)
    b = prepare(str(folder), "none", cache_dir=cache, progress=False)
    assert clear_prepared(cache, name=str(path), dry_run=True) == [Path(a.info["cache_path"])]
    assert clear_prepared(cache, name=str(folder) + "/", dry_run=True) == [Path(b.info["cache_path"])]
    assert main(["cache", "clear", "--dataset", "nosuch", "--cache-dir", str(cache)]) == 0
    assert "nothing to remove: no prepared dataset with dataset 'nosuch'" in capsys.readouterr().out
    assert main(["cache", "clear", "--dataset", str(path), "--cache-dir", str(cache)]) == 0
    assert capsys.readouterr().out.startswith("removed ")
    assert [e["path"] for e in list_prepared(cache)] == [b.info["cache_path"]]


def test_custom_folder_samples_outside_the_folder_invalidate_the_cache(tmp_path):
    # labels.csv may list '../pool/x.npy'; a change there kept serving the old arrays
    rng = np.random.default_rng(0)
    folder, pool = tmp_path / "mine", tmp_path / "pool"
    folder.mkdir()
    pool.mkdir()
    (folder / "meta.json").write_text(json.dumps({"layout": "kinect_v1", "class_names": ["x", "y"]}))
    (folder / "labels.csv").write_text("file,label\n../pool/a.npy,0\nb.npy,1\n")
    np.save(pool / "a.npy", rng.normal(size=(9, 20, 3)).astype(np.float32))
    np.save(folder / "b.npy", rng.normal(size=(12, 20, 3)).astype(np.float32))
    cache = tmp_path / "cache"
    first = prepare(str(folder), "none", cache_dir=cache, progress=False)
    np.save(tmp_path / "pool" / "a.npy", np.full((9, 20, 3), 7.0, np.float32) + 0)
    time.sleep(0.01)
    os.utime(tmp_path / "pool" / "a.npy")
    second = prepare(str(folder), "none", cache_dir=cache, progress=False)
    assert second.info["cache_path"] != first.info["cache_path"]
    assert (np.asarray(second.data[0, :, :9, :, 0]) == 7.0).all()


def test_cache_path_is_where_the_cache_is_now(tmp_path, monkeypatch):
    # info['cache_path'] was the path stored at build time: relative to that run's working
    # directory for a relative cache root, and the old place after the cache was moved
    monkeypatch.chdir(tmp_path)
    built = prepare(tiny(), "none", cache_dir="rel", progress=False)
    folder = tmp_path / "rel" / "prepared" / Path(built.info["cache_path"]).name
    assert built.info["cache_path"] == str(folder)
    shutil.move(tmp_path / "rel", tmp_path / "moved")
    again = prepare(tiny(), "none", cache_dir=tmp_path / "moved", progress=False)
    assert again.info["cache_path"] == str(tmp_path / "moved" / "prepared" / folder.name)


def _worker(cache_dir, barrier, queue):
    barrier.wait()  # start the three preparations of the same key together
    ds = prepare(tiny(n=300, t=40), "pgfa50", cache_dir=cache_dir, progress=False, chunk_size=32)
    queue.put((ds.info["cache_path"], float(np.asarray(ds.data).sum())))


def test_concurrent_prepares_agree(tmp_path):
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(3), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), barrier, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    assert len(set(results)) == 1
    assert len(list_prepared(tmp_path)) == 1
    assert [p.name for p in (tmp_path / "prepared").iterdir()] == [Path(results[0][0]).name]
    ds = prepare(tiny(n=300, t=40), "pgfa50", cache_dir=tmp_path, progress=False)
    assert float(np.asarray(ds.data).sum()) == results[0][1]


def test_custom_file_fingerprint_follows_the_file(tmp_path):
    from zeroskel.data.readers.custom import write_custom
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(int(L), 20, 3)).astype(np.float32) for L in (9, 12, 7)]
    path = write_custom(tmp_path / "mine.npz", seqs, [0, 1, 0], ["x", "y"], "kinect_v1")
    ds = prepare(str(path), "pgfa50", cache_dir=tmp_path / "c", progress=False)
    assert ds.data.shape == (3, 3, 50, 20, 1) and Path(ds.info["cache_path"]).name.startswith("mine-")
    fp = source_fingerprint(str(path))
    assert fp["kind"] == "custom" and fp["files"][0][0] == "mine.npz"
    assert prepare(str(path), "pgfa50", cache_dir=tmp_path / "c", progress=False).info["cache_path"] \
        == ds.info["cache_path"]
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert source_fingerprint(str(path)) != fp
    assert prepared_path(str(path), "pgfa50", cache_dir=tmp_path / "c") != Path(ds.info["cache_path"])
    with pytest.raises(DataError, match="no such file"):
        source_fingerprint(str(tmp_path / "absent.npz"))


def test_real_utd_mhad_reused_then_rebuilt_when_a_file_changes(data_root, tmp_path):
    utd = need(data_root, "utd_mhad")
    root = tmp_path / "root"
    (root / "utd_mhad").mkdir(parents=True)
    for f in utd.iterdir():  # a private data root of links, so a file can be changed
        (root / "utd_mhad" / f.name).symlink_to(f)
    cache = tmp_path / "cache"
    ds = prepare("utd_mhad", "pgfa50", data_root=root, cache_dir=cache, progress=False)
    assert ds.data.shape == (861, 3, 50, 20, 1) and ds.num_classes == 27
    assert ds.info["prepared_from"]["files"] == len(list(utd.iterdir()))
    np.testing.assert_allclose(ds.data[:, :, :, 2], 0, atol=1e-6)
    assert ds.partitions["xsub"].sum() == len(ds) - ds.partitions["xsub"].__invert__().sum()

    # Reuse is proven by the untouched files, not by timing (timed asserts flake under load;
    # the cache's speed is measured in benchmarks/).
    stamp = _stamp(ds)
    again = prepare("utd_mhad", "pgfa50", data_root=root, cache_dir=cache, progress=False)
    assert _stamp(again) == stamp
    np.testing.assert_array_equal(again.data, ds.data)

    victim = root / "utd_mhad" / "a1_s1_t1_skeleton.mat"
    victim.unlink()
    shutil.copy(utd / victim.name, victim)  # same bytes, new mtime
    new = prepared_path("utd_mhad", "pgfa50", data_root=root, cache_dir=cache)
    assert new != stamp[0]
    rebuilt = prepare("utd_mhad", "pgfa50", data_root=root, cache_dir=cache, progress=False)
    assert Path(rebuilt.info["cache_path"]) == new
    np.testing.assert_array_equal(rebuilt.data, ds.data)
    assert {e["key"] for e in list_prepared(cache)} == {ds.info["fingerprint"], rebuilt.info["fingerprint"]}


def test_missing_dataset_folder_names_it(tmp_path):
    with pytest.raises(DataError, match="nw_ucla.*not found"):
        prepare("nw_ucla", "pgfa50", data_root=tmp_path, cache_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="unknown dataset"):
        prepare("ntu61", "pgfa50", data_root=tmp_path, cache_dir=tmp_path, progress=False)


def test_cache_key_depends_on_every_part():
    fp = {"kind": "memory", "name": "x", "layout": "kinect_v1", "fingerprint": "abc"}
    p1, p2 = build_pipeline("pgfa50", "kinect_v1"), build_pipeline("flora50", "kinect_v1")
    assert cache_key(fp, p1) == cache_key(dict(fp), build_pipeline("pgfa50", "kinect_v1"))
    assert cache_key(fp, p1) != cache_key(fp, p2)
    assert cache_key(fp, p1) != cache_key({**fp, "fingerprint": "abd"}, p1)


def test_ntu_reader_streams_through_a_scratch_memmap(tmp_path):
    """Readers that take ``out_dir`` (NTU) never hold the raw array in RAM; the scratch
    copy inside the temporary folder is gone afterwards."""
    pytest.importorskip("zeroskel.data.readers.ntu")
    fx = pytest.importorskip("ntu_fixtures")
    folder = tmp_path / "root" / "ntu60" / "nturgb+d_skeletons"
    folder.mkdir(parents=True)
    fx.write_skeleton(folder / f"{fx.sample_name(action=1)}.skeleton", fx.single_person_frames(60))
    fx.write_skeleton(folder / f"{fx.sample_name(camera=2, subject=2, action=50)}.skeleton",
                      fx.two_person_frames(80))
    ds = prepare("ntu60", "pgfa50", data_root=tmp_path / "root", cache_dir=tmp_path / "c", progress=False)
    assert ds.data.shape == (2, 3, 50, 25, 2) and ds.labels.tolist() == [0, 49]
    np.testing.assert_allclose(ds.data[:, :, :, 20], 0, atol=1e-6)
    vec = ds.data[:, :, :, 8] - ds.data[:, :, :, 4]
    np.testing.assert_allclose(vec[:, 2], 0, atol=1e-5)
    assert (vec[1, 0] > 0.2).all() and not ds.data[0, ..., 1].any()  # both persons of A050 aligned
    assert sorted(p.name for p in Path(ds.info["cache_path"]).iterdir()) == \
        ["arrays.npz", "data.npy", "dataset.json", MARKER]
    assert [p.name for p in (tmp_path / "c" / "prepared").iterdir()] == [Path(ds.info["cache_path"]).name]
