"""The custom format: .npz and folder containers, writer round trips, boundary checks."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from zeroskel.data.dataset import SkeletonDataset
from zeroskel.data.readers.custom import read_custom, read_custom_class_names, write_custom, write_custom_dataset
from zeroskel.data.registry import read_dataset
from zeroskel.errors import DataError

from conftest import need

CLASSES = ["wave", "clap", "jump"]


def _seqs(v=25, lengths=(5, 3, 7, 4), persons=(1, 2, 1, 1), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(m, t, v, 3)).astype(np.float32) if m > 1
            else rng.normal(size=(t, v, 3)).astype(np.float32)
            for t, m in zip(lengths, persons)]


def _check_same(ds: SkeletonDataset, seqs, labels):
    assert ds.data.shape[0] == len(seqs) and ds.data.dtype == np.float32
    assert list(ds.lengths) == [s.shape[-3] for s in seqs]
    assert list(ds.labels) == list(labels)
    for i, s in enumerate(seqs):
        s = s if s.ndim == 4 else s[None]
        got = ds.data[i, :, :s.shape[1], :, :s.shape[0]].transpose(3, 1, 2, 0)
        np.testing.assert_array_equal(got, s)
        assert not ds.data[i, :, s.shape[1]:].any()      # zero past the length
        assert not ds.data[i, ..., s.shape[0]:].any()    # zero for absent persons


@pytest.mark.parametrize("suffix", [".npz", ""])
def test_writer_round_trip(tmp_path, suffix):
    seqs, labels = _seqs(), [0, 2, 1, 2]
    path = write_custom(tmp_path / f"mine{suffix}", seqs, labels, CLASSES, "ntu25",
                        subjects=[1, 1, 2, 2], views=["a", "b", "a", "b"],
                        partitions={"custom": ["train", "train", "test", "test"],
                                    "byview": [True, False, True, False]})
    ds = read_custom(path)
    assert ds.name == "mine" and ds.layout == "ntu25" and ds.class_names == CLASSES
    assert ds.data.shape == (4, 3, 7, 25, 2)
    _check_same(ds, seqs, labels)
    assert list(ds.meta["subject"]) == [1, 1, 2, 2] and list(ds.meta["view"]) == list("abab")
    np.testing.assert_array_equal(ds.partitions["custom"], [True, True, False, False])
    np.testing.assert_array_equal(ds.partitions["byview"], [True, False, True, False])
    assert len(set(ds.meta["file"])) == 4
    back = SkeletonDataset.load(ds.save(tmp_path / "prepared"))
    assert back.info == ds.info and back.name == "mine"
    _check_same(back, seqs, labels)


def test_hand_made_npz_dense_and_object_forms(tmp_path):
    rng = np.random.default_rng(1)
    dense = rng.normal(size=(3, 6, 20, 3)).astype(np.float32)
    dense[1, 4:] = 0
    np.savez(tmp_path / "d.npz", joints=dense, labels=np.array([1, 0, 1]),
             class_names=np.array(["a", "b"]), layout="kinect_v1", lengths=np.array([6, 4, 6]),
             partition=np.array(["train", "test", "TRAIN"]), partition_other=np.array(
                 ["test", "train", "train"]))
    ds = read_custom(tmp_path / "d.npz")
    assert ds.name == "d" and ds.layout == "kinect_v1" and ds.data.shape == (3, 3, 6, 20, 1)
    _check_same(ds, [dense[0], dense[1, :4], dense[2]], [1, 0, 1])
    np.testing.assert_array_equal(ds.partitions["custom"], [True, False, True])
    np.testing.assert_array_equal(ds.partitions["other"], [False, True, True])

    # variable-length sequences as an object array (people with (M, T, V, 3) arrays)
    seqs = _seqs(v=20)
    obj = np.empty(len(seqs), dtype=object)
    obj[:] = seqs
    np.savez(tmp_path / "o.npz", joints=obj, labels=np.array([0, 1, 1, 0]),
             class_names=np.array(["a", "b"]), layout=np.array("kinect_v1"),
             name=np.array("my data"))
    ds = read_custom(tmp_path / "o.npz")
    assert ds.name == "my data" and ds.data.shape == (4, 3, 7, 20, 2)
    _check_same(ds, seqs, [0, 1, 1, 0])


def test_registry_dispatches_paths(tmp_path):
    seqs = _seqs(v=20)
    write_custom(tmp_path / "x.npz", seqs, [0, 1, 2, 0], CLASSES, "kinect_v1")
    write_custom(tmp_path / "folder", seqs, [0, 1, 2, 0], CLASSES, "kinect_v1")
    for p in (tmp_path / "x.npz", tmp_path / "folder"):
        ds = read_dataset(str(p))
        _check_same(ds, seqs, [0, 1, 2, 0])
    _check_same(read_dataset(tmp_path / "x.npz"), seqs, [0, 1, 2, 0])  # a Path works as well
    from zeroskel.errors import ConfigError
    with pytest.raises(ConfigError, match="reader options \\['max_frames'\\] apply to the built-in readers"):
        read_dataset(str(tmp_path / "x.npz"), max_frames=5)  # ignored silently before
    with pytest.raises(ConfigError, match="got None"):
        read_dataset(None)



def test_training_without_a_partition_says_which_key_is_missing(tmp_path, capsys):
    from zeroskel.cli import main

    data = write_custom(tmp_path / "x.npz", _seqs(v=20), [0, 1, 2, 0], CLASSES, "kinect_v1")
    split = tmp_path / "s.yaml"
    split.write_text(f"unseen: [{CLASSES[2]}]\n")
    assert main(["train", "--dataset", str(data), "--split", str(split), "--set", "data.pipeline=none",
                 "--set", "text.source=name", "--set", "text.segment_sources=null",
                 "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "no train/test partition" in err and "'partition'" in err and not (tmp_path / "runs").exists()

def test_empty_class_is_allowed_and_logged(tmp_path, caplog):
    p = write_custom(tmp_path / "e.npz", _seqs(), [0, 0, 1, 1], CLASSES, "ntu25")
    with caplog.at_level(logging.WARNING):
        ds = read_custom(p)
    assert ds.num_classes == 3 and ds.info["empty_classes"] == ["jump"]
    assert "jump" in caplog.text


def test_export_of_a_reader_dataset_round_trips(tmp_path, data_root):
    from zeroskel.data.dataset import stack_sequences
    from zeroskel.data.readers.small import UTD_MHAD_CLASSES, read_utd_mhad_file
    files = sorted(need(data_root, "utd_mhad").glob("a*_s*_t*_skeleton.mat"))[::100]
    data, lengths = stack_sequences([read_utd_mhad_file(f) for f in files], max_persons=1)
    labels = [int(f.name.split("_")[0][1:]) - 1 for f in files]
    ds = SkeletonDataset("utd", "kinect_v1", list(UTD_MHAD_CLASSES), data, lengths, labels,
                         meta={"file": np.array([f.name for f in files])},
                         partitions={"xsub": np.arange(len(files)) % 2 == 0})
    back = read_custom(write_custom_dataset(tmp_path / "utd.npz", ds))
    assert back.class_names == ds.class_names and back.layout == "kinect_v1"
    np.testing.assert_array_equal(back.labels, ds.labels)
    np.testing.assert_array_equal(back.lengths, ds.lengths)
    np.testing.assert_array_equal(back.data, ds.data)
    np.testing.assert_array_equal(back.partitions["xsub"], ds.partitions["xsub"])


def test_upside_down_layout_is_logged(tmp_path, data_root, caplog):
    """UTD-MHAD recordings saved in the .mat joint order: declared kinect_v1 they are upside
    down (a warning naming the file and the layout); declared utd_mhad, nothing is logged."""
    from scipy.io import loadmat

    from zeroskel.data.layouts import UTD_TO_KINECT_V1
    from zeroskel.data.readers.small import read_utd_mhad_file
    files = sorted(need(data_root, "utd_mhad").glob("a*_s*_t*_skeleton.mat"))[::80]
    raw = [loadmat(f)["d_skel"].transpose(2, 0, 1) for f in files]  # (T, 20, 3), file order
    labels = [0] * len(files)
    for layout, seqs, warned in (("kinect_v1", raw, True), ("utd_mhad", raw, False),
                                 ("kinect_v1", [read_utd_mhad_file(f) for f in files], False)):
        p = write_custom(tmp_path / f"{layout}{warned}.npz", seqs, labels, ["act"], layout)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            ds = read_custom(p)
        assert ("head is below the hips" in caplog.text) == warned, (layout, caplog.text)
        if warned:
            assert f"{p}: in {len(files)} of {len(files)} samples" in caplog.text and "'kinect_v1'" in caplog.text
        if layout == "utd_mhad":
            t = len(raw[0])
            np.testing.assert_allclose(ds.data[0, :, :t][:, :, list(UTD_TO_KINECT_V1), 0].transpose(1, 2, 0),
                                       read_utd_mhad_file(files[0]), atol=1e-6)


# ------------------------------------------------------------------ bad input
def _npz(tmp_path, drop=(), **over):
    arrays = dict(joints=np.zeros((2, 4, 25, 3), np.float32) + 0.5, labels=np.array([0, 1]),
                  class_names=np.array(["a", "b"]), layout=np.array("ntu25"))
    arrays.update(over)
    for k in drop:
        arrays.pop(k)
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    return p


@pytest.mark.parametrize("drop, over, match", [
    (("labels",), {}, r"bad.npz: missing key 'labels'"),
    (("layout",), {}, r"bad.npz: missing key 'layout'"),
    ((), {"joints": np.zeros((2, 4, 25), np.float32)}, r"key 'joints': must be .*\(ndim 3\)"),
    ((), {"joints": np.ones((2, 4, 20, 3), np.float32)},
     r"sample 0 \(bad.npz\[0\]\) has 20 joints but layout 'ntu25' has 25"),
    ((), {"joints": np.ones((2, 4, 25, 2), np.float32)}, r"last axis must be the 3 coord"),
    ((), {"joints": np.ones((2, 0, 25, 3), np.float32)}, r"zero-length"),
    ((), {"lengths": np.array([4, 0])}, r"key 'lengths' entry 1 = 0: zero-length"),
    ((), {"lengths": np.array([4, 5])}, r"key 'lengths' entry 1 = 5: longer than T = 4"),
    ((), {"labels": np.array([0, 2])}, r"key 'labels': label 2 of sample 1 is outside"),
    ((), {"labels": np.array([0.0, 1.0])}, r"key 'labels': must be \(2,\) integers"),
    ((), {"layout": np.array("openpose")}, r"layout 'openpose' is unknown; valid"),
    ((), {"class_names": np.array(["a", "a"])}, r"key 'class_names': repeated"),
    ((), {"partition": np.array(["train", "val"])}, r"key 'partition' entry 1 is 'val'"),
    ((), {"subjects": np.array([1, 2, 3])}, r"key 'subjects' must be \(2,\)"),
])
def test_npz_errors_name_file_and_key(tmp_path, drop, over, match):
    p = _npz(tmp_path, drop, **over)
    with pytest.raises(DataError, match=match):
        read_custom(p)


@pytest.mark.parametrize("suffix", [".npz", ""])
def test_class_names_alone(tmp_path, suffix):
    """The names-only reader (what `zeroskel texts` / `splits` need) gives read_custom's names
    and its errors, without touching a sequence."""
    path = write_custom(tmp_path / f"mine{suffix}", _seqs(), [0, 2, 1, 2], CLASSES, "ntu25")
    assert read_custom_class_names(path) == CLASSES == read_custom(path).class_names
    if suffix == "":
        for npy in path.glob("*.npy"):
            npy.write_bytes(b"not a numpy file")  # sequences are not read
        assert read_custom_class_names(path) == CLASSES
        (path / "meta.json").write_text('{"layout": "ntu25", "class_names": ["a", " "]}')
        with pytest.raises(DataError, match=r"meta.json: key 'class_names': empty class name at index 1"):
            read_custom_class_names(path)
    else:
        # a broken joints member is not read either
        np.savez(path, joints=np.array([object()], dtype=object), class_names=np.array(CLASSES))
        assert read_custom_class_names(path) == CLASSES
        with pytest.raises(DataError, match=r"bad.npz: key 'class_names': repeated class name"):
            read_custom_class_names(_npz(tmp_path, class_names=np.array(["a", "a"])))
        with pytest.raises(DataError, match=r"bad.npz: missing key 'class_names' \(keys present: joints, "):
            read_custom_class_names(_npz(tmp_path, drop=("class_names",)))
    with pytest.raises(DataError, match=r"nothere: custom dataset not found"):
        read_custom_class_names(tmp_path / "nothere")


def test_non_finite_values_are_located(tmp_path):
    j = np.zeros((2, 4, 25, 3), np.float32)
    j[1, 2, 3, 0] = np.nan
    with pytest.raises(DataError, match=r"bad.npz: key 'joints': non-finite .* \(1, 0, 2, 3, 0\)"):
        read_custom(_npz(tmp_path, joints=j))
    seqs = _seqs()
    seqs[2][0, 0, 0] = np.inf
    with pytest.raises(DataError, match=r"write_custom: argument 'sequences', sample 2: non-fin"):
        write_custom(tmp_path / "w.npz", seqs, [0, 1, 2, 0], CLASSES, "ntu25")
    assert not (tmp_path / "w.npz").exists()


def test_dense_padding_past_lengths_is_ignored_even_when_nan(tmp_path):
    # the docs say frames past 'lengths' are ignored; NaN padding (a common convention) was
    # rejected as a non-finite coordinate of the sample
    j = np.full((2, 10, 25, 3), np.nan, np.float32)
    j[0, :6] = 0.5
    j[1, :] = 1.0
    lengths = np.array([6, 10])
    ds = read_custom(_npz(tmp_path, joints=j, lengths=lengths, labels=np.array([0, 1])))
    np.testing.assert_array_equal(ds.lengths, [6, 10])
    assert np.isfinite(ds.data).all() and (ds.data[0, :, 6:] == 0).all()
    j[0, 5, 3, 1] = np.inf  # inside the valid frames: still an error, located
    with pytest.raises(DataError, match=r"key 'joints': non-finite .* \(0, 0, 5, 3, 1\), within sample 0's 6"):
        read_custom(_npz(tmp_path, joints=j, lengths=lengths, labels=np.array([0, 1])))


def test_folder_errors_name_file_line_and_column(tmp_path):
    folder = write_custom(tmp_path / "f", _seqs(v=20), [0, 1, 2, 0], CLASSES, "kinect_v1",
                          partitions={"custom": ["train", "test", "train", "test"]})
    csv_path = folder / "labels.csv"
    good = csv_path.read_text()
    assert good.splitlines()[0] == "file,label,partition"

    csv_path.write_text(good.replace("samples/000002.npy,2", "samples/000002.npy,7"))
    with pytest.raises(DataError, match=r"labels.csv: column 'label': label 7 of sample 2"):
        read_custom(folder)
    csv_path.write_text(good.replace("samples/000001.npy,1", "samples/000001.npy,one"))
    with pytest.raises(DataError, match=r"labels.csv, line 3: label 'one' is not an integer"):
        read_custom(folder)
    csv_path.write_text(good.replace("000003.npy", "000009.npy"))
    with pytest.raises(DataError, match=r"labels.csv, line 5: file 'samples/000009.npy' not"):
        read_custom(folder)
    csv_path.write_text(good.replace("file,label", "path,label"))
    with pytest.raises(DataError, match=r"labels.csv: missing column 'file'"):
        read_custom(folder)
    csv_path.write_text(good)

    np.save(folder / "samples/000001.npy", np.zeros((0, 20, 3), np.float32))
    with pytest.raises(DataError, match=r"000001.npy: zero-length sequence"):
        read_custom(folder)
    np.save(folder / "samples/000001.npy", np.zeros((3, 25, 3), np.float32))
    with pytest.raises(DataError, match=r"sample 1 \(samples/000001.npy\) has 25 joints"):
        read_custom(folder)

    meta = json.loads((folder / "meta.json").read_text())
    del meta["layout"]
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"meta.json: missing key 'layout'"):
        read_custom(folder)
    with pytest.raises(DataError, match=r"nope: custom dataset not found"):
        read_custom(tmp_path / "nope")


def test_docs_example_runs(tmp_path, monkeypatch):
    """The example in docs/custom_format.md runs and its three forms read back the same."""
    import re
    from pathlib import Path
    doc = (Path(__file__).parents[1] / "docs" / "custom_format.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc.split("## Example", 1)[1], re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    env: dict = {}
    exec(blocks[0], env)
    first = env["ds"]
    assert first.data.shape == (4, 3, 61, 25, 2)
    assert list(first.partition("custom", "test")) == [2, 3]
    exec(blocks[1], env)  # the hand-written dense form overwrites the file
    dense = read_custom("my_actions.npz")
    np.testing.assert_array_equal(dense.data, first.data)
    write_custom("my_actions", env["sequences"], [0, 2, 1, 2], ["wave hand", "clap", "jump up"],
                 "ntu25", subjects=[1, 1, 2, 2],
                 partitions={"custom": ["train", "train", "test", "test"]})
    listing = re.search(r"my_actions/labels.csv\n((?:    .*\n)+)", doc).group(1)
    assert (tmp_path / "my_actions/labels.csv").read_text().split() == listing.split()
    np.testing.assert_array_equal(read_custom("my_actions").data, first.data)

    # the documented training command, on the documented split file (one epoch, a tiny encoder)
    import shlex
    import yaml
    from zeroskel.cli import main
    training = doc.split("## Training on it", 1)[1]
    Path("my_split.yaml").write_text(re.search(r"`my_split.yaml`: `(\{.*?\})`", training, re.S).group(1))
    assert yaml.safe_load(Path("my_split.yaml").read_text())["unseen"] == ["clap"]
    command = re.search(r"```\n(zeroskel train .*?)\n```", training, re.S).group(1).replace("\\\n", " ")
    args = shlex.split(command)[1:] + ["--set", "train.epochs=1", "--set", "train.threads=1", "--set",
                                       "model.args={channels: [8, 8, 16], strides: [1, 2, 2]}"]
    assert main(args) == 0
    (run,) = Path("runs").iterdir()
    assert (run / "metrics.json").is_file()
    # centring the one test sample cannot work: said before training, with the key, and no run folder left
    assert main(args + ["--set", "alignment.center=true"]) == 2
    assert list(Path("runs").iterdir()) == [run]


def test_sample_paths_outside_the_folder_read_and_write_rules(tmp_path):
    """labels.csv may list files outside its folder (documented, fingerprinted by the cache), which
    write_custom refuses to create; the writer now checks every name before writing (a refused
    '../x.npy' left sample 0 behind), and a file listed twice under two spellings ('a.npy',
    './a.npy') is refused by both: the writer saved sample 1 over sample 0, and the reader read
    sample 1's array for both samples."""
    seqs = [np.full((5, 25, 3), i, np.float32) for i in range(3)]
    pool, folder = tmp_path / "pool", tmp_path / "mine"
    pool.mkdir()
    folder.mkdir()
    np.save(pool / "p.npy", seqs[0])
    np.save(folder / "a.npy", seqs[1])
    np.save(tmp_path / "abs.npy", seqs[2])
    (folder / "meta.json").write_text(json.dumps({"layout": "ntu25", "class_names": ["x", "y"]}), encoding="utf-8")
    (folder / "labels.csv").write_text(f"file,label\n../pool/p.npy,0\na.npy,1\n{tmp_path / 'abs.npy'},0\n",
                                       encoding="utf-8")
    ds = read_custom(folder)
    assert [float(ds.data[i].max()) for i in range(3)] == [0.0, 1.0, 2.0]
    (folder / "labels.csv").write_text("file,label\na.npy,0\n./a.npy,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"labels.csv, line 3: file './a.npy' already listed on line 2 as 'a.npy'"):
        read_custom(folder)
    out = tmp_path / "out"
    for files, msg in ((["a.npy", "../x.npy", "b.npy"], r"sample 1: '\.\./x\.npy' must be a relative path ending "
                        r"in \.npy inside the folder \(write_custom writes every sample into its folder; a "
                        r"labels.csv written by hand may list files elsewhere"),
                       (["a.npy", "b.npy", str(tmp_path / "c.npy")], "sample 2: .* must be a relative path"),
                       (["a.npy", "b.npy", "./a.npy"], r"sample 2: '\./a\.npy' is the file of sample 0 \('a\.npy'\)")):
        with pytest.raises(DataError, match=msg):
            write_custom(out, seqs, [0, 1, 0], ["x", "y"], "ntu25", files=files)
        assert not out.exists()   # nothing written
    write_custom(out, seqs, [0, 1, 0], ["x", "y"], "ntu25", files=["a.npy", "sub/b.npy", "c.npy"])
    assert [float(read_custom(out).data[i].max()) for i in range(3)] == [0.0, 1.0, 2.0]
