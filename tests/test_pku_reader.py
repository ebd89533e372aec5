"""PKU-MMD readers on fixture trees written in the published text formats."""
from __future__ import annotations

import difflib
import logging
from pathlib import Path

import numpy as np
import pytest

from zeroskel.data.dataset import SkeletonDataset
from zeroskel.data.registry import read_dataset
from zeroskel.data.readers.pku import (
    PKU_MMD1_CLASSES, PKU_MMD2_CLASSES, PKU_MMD2_IDS, read_pku_labels, read_pku_mmd1,
    read_pku_mmd2, read_pku_skeleton_file, read_pku_split,
)
from zeroskel.errors import DataError

from conftest import need


def _video(n_frames: int, seed: int, two_persons: bool = False) -> np.ndarray:
    """(T, 2, 25, 3) with a distinct, non-zero first person; second person zero unless asked."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n_frames, 2, 25, 3)).astype(np.float32)
    x[:, 0, :, 2] += 3.0  # depth in front of the camera, never exactly 0
    if not two_persons:
        x[:, 1] = 0
    return x


def _write_skeleton(path: Path, x: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # the release writes space-separated values with a trailing space on each line
    lines = [" ".join(f"{v:.6f}" for v in frame.reshape(-1)) + " " for frame in x]
    path.write_text("\n".join(lines) + "\n")


def _write_labels(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{a},{s},{e},{c}\n" for a, s, e, c in rows))


def _write_split(path: Path, train, test) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("Training videos: \n" + ", ".join(train) + ", \n"
                    "Validataion videos: \n" + ", ".join(test) + "\n")


VIDEOS1 = {  # video -> (frames, label rows (1-based id, start, end exclusive, confidence))
    "0002-L": (40, [(1, 0, 10, 2), (13, 12, 30, 1)]),
    "0002-M": (35, [(51, 5, 35, 2)]),
    "0003-R": (30, [(12, 2, 20, 2)]),
}


def make_part1(root: Path, with_split: bool = True, videos=VIDEOS1) -> dict:
    raw = {}
    for i, (vid, (t, rows)) in enumerate(videos.items()):
        x = _video(t, seed=i, two_persons=(vid == "0003-R"))
        raw[vid] = x
        _write_skeleton(root / "Data/PKU_Skeleton_Renew" / f"{vid}.txt", x)
        _write_labels(root / "Label/Train_Label_PKU_final" / f"{vid}.txt", rows)
    if with_split:
        _write_split(root / "Split/cross-subject.txt", ["0002-L", "0002-M"], ["0003-R"])
        _write_split(root / "Split/cross-view.txt", ["0002-M", "0003-R"], ["0002-L"])
    return raw


def test_file_readers_parse_published_formats(tmp_path):
    x = _video(7, seed=3, two_persons=True)
    _write_skeleton(tmp_path / "a.txt", x)
    got = read_pku_skeleton_file(tmp_path / "a.txt")
    assert got.shape == (7, 2, 25, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, x, atol=1e-6)

    (tmp_path / "l.txt").write_text("3,10,40,1\n\n17, 41, 90, 2\n")
    np.testing.assert_array_equal(read_pku_labels(tmp_path / "l.txt"),
                                  [[3, 10, 40, 1], [17, 41, 90, 2]])

    _write_split(tmp_path / "s.txt", ["0002-L", "0002-M"], ["0291-L"])
    assert read_pku_split(tmp_path / "s.txt") == (["0002-L", "0002-M"], ["0291-L"])


def test_part1_cuts_segments_centres_and_partitions(tmp_path):
    raw = make_part1(tmp_path)
    ds = read_pku_mmd1(tmp_path, progress=False)
    assert ds.name == "pku_mmd1" and ds.layout == "ntu25" and ds.num_classes == 51
    assert ds.data.shape == (4, 3, 300, 25, 2) and ds.data.dtype == np.float32
    # files are read in sorted order, segments in label-file order
    assert list(ds.meta["video"]) == ["0002-L", "0002-L", "0002-M", "0003-R"]
    assert list(ds.meta["view"]) == ["L", "L", "M", "R"]
    assert list(ds.labels) == [0, 12, 50, 11]
    assert list(ds.lengths) == [10, 18, 30, 18]
    assert list(ds.meta["start"]) == [0, 12, 5, 2] and list(ds.meta["end"]) == [10, 30, 35, 20]
    assert list(ds.meta["confidence"]) == [2, 1, 2, 2]
    assert list(ds.meta["file"]) == ["0002-L.txt", "0002-L.txt", "0002-M.txt", "0003-R.txt"]

    # sample 1 = frames 12..29 of 0002-L, centred on person 0's spine-mid at frame 12
    seg = raw["0002-L"][12:30]
    want = seg[:, 0] - seg[0, 0, 1]
    np.testing.assert_allclose(ds.data[1, :, :18, :, 0].transpose(1, 2, 0), want, atol=1e-5)
    assert not ds.data[1, :, :, :, 1].any()          # absent second person stays zero
    assert not ds.data[1, :, 18:].any()              # padding past the length is zero
    np.testing.assert_allclose(ds.data[:, :, 0, 1, 0], 0, atol=1e-6)  # origin at t=0
    # two-person segment: both persons shifted by the same origin
    seg = raw["0003-R"][2:20]
    np.testing.assert_allclose(ds.data[3, :, :18, :, 1].transpose(1, 2, 0),
                               seg[:, 1] - seg[0, 0, 1], atol=1e-5)

    np.testing.assert_array_equal(ds.partitions["xsub"], [True, True, True, False])
    np.testing.assert_array_equal(ds.partitions["xview"], [False, False, True, True])
    assert ds.info["partition_sources"]["xsub"].endswith("cross-subject.txt")
    back = SkeletonDataset.load(ds.save(tmp_path / "prepared"))  # info is JSON-able
    np.testing.assert_array_equal(back.data, ds.data)
    assert back.info == ds.info and list(back.meta["view"]) == list(ds.meta["view"])


def test_part1_registry_and_split_fallback(tmp_path, caplog):
    make_part1(tmp_path / "pku_mmd1", with_split=False)
    with caplog.at_level(logging.WARNING):
        ds = read_dataset("pku_mmd1", data_root=tmp_path, progress=False)
    assert "xsub" not in ds.partitions  # part I video ids carry no subject
    np.testing.assert_array_equal(ds.partitions["xview"], ds.meta["view"] != "L")
    assert "fallback" in ds.info["partition_sources"]["xview"]
    assert "cross-subject" in caplog.text and "fallback" in caplog.text


def test_long_segments_are_shortened_with_a_warning(tmp_path, caplog):
    raw = make_part1(tmp_path)
    with caplog.at_level(logging.WARNING):
        ds = read_pku_mmd1(tmp_path, progress=False, max_frames=12, long_mode="resample")
    assert ds.data.shape[2] == 12 and list(ds.lengths) == [10, 12, 12, 12]
    assert ds.info["shortened"] == 3 and "longer than 12 frames" in caplog.text
    # resampling keeps the first and the last frame of the segment
    seg = raw["0002-M"][5:35, 0]
    np.testing.assert_allclose(ds.data[2, :, -1, :, 0].T, seg[-1] - seg[0, 1], atol=1e-5)
    tr = read_pku_mmd1(tmp_path, progress=False, max_frames=12)  # NTU rule: first frames
    np.testing.assert_allclose(tr.data[2, :, -1, :, 0].T, seg[11] - seg[0, 1], atol=1e-5)


def test_empty_segment_is_skipped_and_logged(tmp_path, caplog):
    make_part1(tmp_path)
    x = read_pku_skeleton_file(tmp_path / "Data/PKU_Skeleton_Renew/0002-M.txt")
    x[:20] = 0  # no body detected in the first 20 frames
    _write_skeleton(tmp_path / "Data/PKU_Skeleton_Renew/0002-M.txt", x)
    _write_labels(tmp_path / "Label/Train_Label_PKU_final/0002-M.txt",
                  [(4, 0, 20, 1), (5, 20, 35, 2)])
    with caplog.at_level(logging.WARNING):
        ds = read_pku_mmd1(tmp_path, progress=False)
    assert ds.info["skipped"] == ["0002-M#0"] and "0002-M#0" in caplog.text
    assert 3 not in ds.labels and 4 in ds.labels


def test_a_label_past_the_last_frame_is_cut_to_the_video_with_a_warning(tmp_path, caplog):
    """A label row that ends after the skeleton's last frame keeps the frames there are (the
    whole dataset read used to stop with an error), with a warning naming the file and line."""
    raw = make_part1(tmp_path)
    _write_labels(tmp_path / "Label/Train_Label_PKU_final/0002-M.txt", [(51, 5, 30, 2), (2, 30, 38, 1)])
    with caplog.at_level(logging.WARNING):
        ds = read_pku_mmd1(tmp_path, progress=False)
    assert "1 label(s) end after the last skeleton frame" in caplog.text and "0002-M.txt line 2 (end 38 -> 35)" in caplog.text
    k = int(np.flatnonzero((ds.meta["video"] == "0002-M") & (ds.meta["start"] == 30))[0])
    assert ds.lengths[k] == 5 and ds.meta["end"][k] == 35
    seg = raw["0002-M"][30:35, 0]
    np.testing.assert_allclose(ds.data[k, :, 4, :, 0].T, seg[4] - seg[0, 1], atol=1e-5)


@pytest.mark.parametrize("case, match", [
    ("range", r"0002-M.txt, line 2: frame range 36..40 starts after the video \(35 frames"),
    ("count", r"0002-L.txt, line 3: 149 values, expected 150"),
    ("nan", r"0002-L.txt, line 5: non-finite value 'nan'"),
    ("text", r"0002-L.txt, line 2: 'abc' is not a number"),
    ("labelcols", r"0003-R.txt, line 1: 3 values, expected 4"),
    ("action", r"0003-R.txt, line 1: action id 52"),
    ("split", r"cross-view.txt: video\(s\) \['0003-R'\] are in neither"),
])
def test_bad_input_names_file_and_line(tmp_path, case, match):
    make_part1(tmp_path)
    skel = tmp_path / "Data/PKU_Skeleton_Renew/0002-L.txt"
    lines = skel.read_text().splitlines()
    if case == "range":
        _write_labels(tmp_path / "Label/Train_Label_PKU_final/0002-M.txt",
                      [(51, 5, 30, 2), (2, 36, 40, 1)])
    elif case == "count":
        lines[2] = " ".join(lines[2].split()[:-1])
        skel.write_text("\n".join(lines) + "\n")
    elif case == "nan":
        lines[4] = "nan " + " ".join(lines[4].split()[1:])
        skel.write_text("\n".join(lines) + "\n")
    elif case == "text":
        lines[1] = "abc " + " ".join(lines[1].split()[1:])
        skel.write_text("\n".join(lines) + "\n")
    elif case == "labelcols":
        (tmp_path / "Label/Train_Label_PKU_final/0003-R.txt").write_text("12,2,20\n")
    elif case == "action":
        _write_labels(tmp_path / "Label/Train_Label_PKU_final/0003-R.txt", [(52, 2, 20, 2)])
    elif case == "split":
        _write_split(tmp_path / "Split/cross-view.txt", ["0002-M"], ["0002-L"])
    with pytest.raises(DataError, match=match):
        read_pku_mmd1(tmp_path, progress=False)


def test_missing_folders_and_bad_names(tmp_path):
    with pytest.raises(DataError, match="no skeleton folder"):
        read_pku_mmd1(tmp_path, progress=False)
    make_part1(tmp_path)
    (tmp_path / "Label/Train_Label_PKU_final/0003-R.txt").unlink()
    with pytest.raises(DataError, match="0003-R.txt: no label file"):
        read_pku_mmd1(tmp_path, progress=False)
    _write_skeleton(tmp_path / "Data/PKU_Skeleton_Renew/video1.txt", _video(3, 0))
    with pytest.raises(DataError, match="'video1.txt' is not XXXX-V.txt"):
        read_pku_mmd1(tmp_path, progress=False)


def test_part2_maps_ids_subjects_and_splits(tmp_path):
    videos = {"A01N01-L": (30, [(13, 0, 12, 2), (51, 12, 30, 1)]),
              "A01N02-M": (25, [(1, 3, 20, 2)]),
              "A02N03-R": (20, [(11, 0, 20, 2)])}
    for i, (vid, (t, rows)) in enumerate(videos.items()):
        _write_skeleton(tmp_path / "Data/skeleton" / f"{vid}.txt", _video(t, seed=10 + i))
        _write_labels(tmp_path / "Label" / f"{vid}.txt", rows)
    ds = read_pku_mmd2(tmp_path, progress=False)
    assert ds.name == "pku_mmd2" and ds.num_classes == 41
    assert [ds.class_names[l] for l in ds.labels] == [
        "hand waving", "writing", "bow", "falling"]
    assert list(ds.meta["action_id"]) == [13, 51, 1, 11]
    assert list(ds.meta["subject"]) == [1, 1, 2, 3]
    # fallback rules: subjects N02, N03, N07 and view L held out
    np.testing.assert_array_equal(ds.partitions["xsub"], [True, True, False, False])
    np.testing.assert_array_equal(ds.partitions["xview"], [False, False, True, True])

    _write_split(tmp_path / "Split/cross_subject_v2.txt", ["A01N01-L", "A02N03-R"], ["A01N02-M"])
    _write_split(tmp_path / "Split/cross_view_v2.txt", ["A01N02-M"], ["A01N01-L", "A02N03-R"])
    ds = read_pku_mmd2(tmp_path, progress=False)
    np.testing.assert_array_equal(ds.partitions["xsub"], [True, True, False, True])
    np.testing.assert_array_equal(ds.partitions["xview"], [False, False, True, False])

    _write_labels(tmp_path / "Label/A02N03-R.txt", [(12, 0, 20, 2)])  # an interaction id
    with pytest.raises(DataError, match=r"A02N03-R.txt, line 1: action id 12 is not one of the 41"):
        read_pku_mmd2(tmp_path, progress=False)


def test_class_lists():
    assert len(PKU_MMD1_CLASSES) == 51 == len(set(PKU_MMD1_CLASSES))
    assert len(PKU_MMD2_CLASSES) == 41 and len(PKU_MMD2_IDS) == 41
    assert all(PKU_MMD1_CLASSES[i - 1] == n for i, n in zip(PKU_MMD2_IDS, PKU_MMD2_CLASSES))
    # the official list is in alphabetical order; part II drops the two-person actions
    assert sorted(PKU_MMD1_CLASSES) == PKU_MMD1_CLASSES
    dropped = set(PKU_MMD1_CLASSES) - set(PKU_MMD2_CLASSES)
    assert all("other person" in n or "pocket" in n or n == "handshaking" for n in dropped)


def test_class_order_matches_pgfa_label_map(data_root):
    """PGFA's PKU-MMD label map (real file) names the same 51 classes in the same order."""
    theirs = need(data_root, "text/pgfa/pku_labelmap.txt").read_text().strip().splitlines()
    assert len(theirs) == 51
    theirs = [t.strip().lower() for t in theirs]
    for i, ours in enumerate(PKU_MMD1_CLASSES):
        scores = [difflib.SequenceMatcher(None, ours, t).ratio() for t in theirs]
        assert int(np.argmax(scores)) == i, (ours, theirs[int(np.argmax(scores))])


def test_max_frames_none_keeps_every_frame(tmp_path):
    make_part1(tmp_path)
    ds = read_pku_mmd1(tmp_path, progress=False, max_frames=None)
    assert ds.data.shape[2] == 30 and ds.info["shortened"] == 0
    assert list(ds.lengths) == [10, 18, 30, 18]


def test_worker_processes_give_the_same_dataset(tmp_path):
    make_part1(tmp_path)
    one = read_pku_mmd1(tmp_path, progress=False)
    two = read_pku_mmd1(tmp_path, progress=False, workers=2)
    np.testing.assert_array_equal(one.data, two.data)
    np.testing.assert_array_equal(one.labels, two.labels)
    assert list(one.meta["video"]) == list(two.meta["video"])


def test_pku_mmd1_paper_preset_end_to_end(data_root, tmp_path):
    """The ``pku_mmd1`` PGFA preset (paper setting) from PKU-MMD files in the published formats
    through the reader, training and evaluation: two videos whose 51 labelled segments cover
    every action once, one video in each half of the cross-subject split."""
    import json

    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import train

    need(data_root, "text/pgfa/pku_des.txt")
    root = tmp_path / "data"
    videos = {vid: (51 * 12, [(c + 1, 12 * c, 12 * c + 12, 1) for c in range(51)]) for vid in ("0002-M", "0003-R")}
    make_part1(root / "pku_mmd1", videos=videos)
    (root / "text").symlink_to(data_root / "text")
    cfg = build_config("pgfa", config="pku_mmd1", dataset="pku_mmd1", split="smie-1", seed=1,
                       overrides=["train.epochs=1", "train.warmup_epochs=0", "text.model=all-MiniLM-L6-v2",
                                  f"data.cache_dir={tmp_path / 'cache'}", "device=cpu", "train.threads=1"])
    assert cfg["preset"] == "pku_mmd1" and cfg["alignment"]["alpha"] == 1.0
    run = train(cfg, tmp_path / "runs", data_root=root)
    m = json.loads((run / "metrics.json").read_text())
    assert m["test_samples"] == 5 and sorted(m["unseen_classes"]) == [1, 9, 20, 34, 50]
    assert len(m["zsl_confusion"]) == 5 and "zsl_top1_aligned" in m
