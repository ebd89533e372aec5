"""NTU RGB+D .skeleton reader: exact text format, actor selection, centring, datasets.

Fixture files are written in the published format by tests/ntu_fixtures.py; the 25-joint
layout is checked on the 4 real NTU sequences of the data root (skipped without it).
"""
import logging

import numpy as np
import pytest

from conftest import need
from ntu_fixtures import (BODY_ID_BASE, person, sample_name, single_person_frames, skeleton_text,
                          table, tracks_to_frames, two_person_frames, write_missing_list,
                          write_skeleton)
from zeroskel.data.classnames import NTU60_CLASSES, NTU120_CLASSES
from zeroskel.data.dataset import SkeletonDataset
from zeroskel.data.layouts import NTU25
from zeroskel.data.readers.ntu import (NTU120_XSUB_TRAIN, NoSkeletonError, center_sequence,
                                       denoise_bodies, load_ntu_sample, read_missing_lists,
                                       read_ntu60, read_ntu120, read_ntu_skeleton_file,
                                       select_actors)
from zeroskel.data.registry import read_dataset
from zeroskel.errors import DataError

LOGGER = "zeroskel.data.readers.ntu"


def _line_of(text: str, needle: str) -> int:
    """1-based number of the first line of ``text`` that starts with ``needle``."""
    for i, line in enumerate(text.splitlines()):
        if line.startswith(needle):
            return i + 1
    raise AssertionError(needle)


# ----------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_parse_exact_format(tmp_path, newline):
    a, b = person(22, seed=1), table(15)
    frames = tracks_to_frames(22, {BODY_ID_BASE + 7: (0, a), BODY_ID_BASE + 9: (5, b)}, empty=(3,))
    p = write_skeleton(tmp_path / "S001C001P001R001A001.skeleton", frames, newline=newline)
    text = p.read_text()
    lines = text.splitlines()
    assert lines[0] == "22" and lines[1] == "1" and lines[3] == "25"
    assert len(lines[2].split()) == 10 and len(lines[4].split()) == 12

    raw = read_ntu_skeleton_file(p)
    assert raw["num_frames"] == 22 and raw["name"] == "S001C001P001R001A001"
    assert raw["body_counts"].tolist() == [1, 1, 1, 0, 1] + [2] * 15 + [1, 1]
    assert list(raw["bodies"]) == [BODY_ID_BASE + 7, BODY_ID_BASE + 9]  # exact 64-bit ids
    ba, bb = raw["bodies"][BODY_ID_BASE + 7], raw["bodies"][BODY_ID_BASE + 9]
    assert ba["frames"].tolist() == [0, 1, 2] + list(range(4, 22))
    assert bb["frames"].tolist() == list(range(5, 20))
    np.testing.assert_allclose(ba["joints"], np.delete(a, 3, axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(bb["joints"], b, rtol=1e-6, atol=1e-6)
    assert ba["depth_xy"].shape == ba["color_xy"].shape == (21, 25, 2)
    assert ba["orientation"].shape == (21, 25, 4) and ba["body_info"].shape == (21, 9)
    np.testing.assert_allclose(np.linalg.norm(ba["orientation"], axis=-1), 1, atol=1e-5)
    assert (ba["joint_tracking"] == 2).all()
    # the cheap path gives the same coordinates
    fast = read_ntu_skeleton_file(p, fields="xyz")
    for k in raw["bodies"]:
        np.testing.assert_array_equal(fast["bodies"][k]["joints"], raw["bodies"][k]["joints"])
        assert "color_xy" not in fast["bodies"][k]


def _one_body_file(tmp_path, num_frames=3):
    frames = tracks_to_frames(num_frames, {BODY_ID_BASE + 1: (0, person(num_frames))})
    return skeleton_text(frames, newline="\n")


@pytest.mark.parametrize("fields", ["all", "xyz"])
def test_truncated_file_names_file_and_line(tmp_path, fields):
    text = _one_body_file(tmp_path)
    lines = text.splitlines()
    p = tmp_path / "S001C001P001R001A001.skeleton"

    # cut in the middle of the last joint line
    p.write_text("\n".join(lines[:-1] + [lines[-1][:20]]) + "\n")
    with pytest.raises(DataError, match=rf"S001C001P001R001A001\.skeleton, line {len(lines)}"):
        read_ntu_skeleton_file(p, fields=fields)
    # cut right after a frame's body count
    cut = 2 + 27 + 1  # frame count, frame 1 (count + body + 25 + 25 joints), frame 2's count
    p.write_text("\n".join(lines[:cut]) + "\n")
    with pytest.raises(DataError, match=rf"A001\.skeleton: file ends after line {cut}.*truncated"):
        read_ntu_skeleton_file(p, fields=fields)
    # cut inside frame 3's joints (whole lines)
    p.write_text("\n".join(lines[:-5]) + "\n")
    with pytest.raises(DataError, match="inside the joints of frame 3"):
        read_ntu_skeleton_file(p, fields=fields)
    # a garbled coordinate
    bad = list(lines)
    bad[10] = "0.1x" + bad[10][bad[10].index(" "):]
    p.write_text("\n".join(bad))
    with pytest.raises(DataError, match=r"line 11: joint value '0.1x' is not a number"):
        read_ntu_skeleton_file(p, fields=fields)
    # a value missing from a joint line inside the file: "xyz" must not shift y, z, depthX
    # into x, y, z (it checked only the last line's length)
    bad = list(lines)
    bad[10] = bad[10].split(" ", 1)[1]
    p.write_text("\n".join(bad))
    with pytest.raises(DataError, match=r"line 11: joint line must hold 12 values, got 11"):
        read_ntu_skeleton_file(p, fields=fields)
    # trailing blanks and tabs are only whitespace
    p.write_text("\n".join(line + " \t" for line in lines))
    np.testing.assert_allclose(read_ntu_skeleton_file(p, fields=fields)["bodies"][BODY_ID_BASE + 1]
                               ["joints"], person(3), rtol=1e-6, atol=1e-6)
    # a NaN coordinate
    bad = list(lines)
    bad[12] = "nan" + bad[12][bad[12].index(" "):]
    p.write_text("\n".join(bad))
    with pytest.raises(DataError, match=r"line 13: non-finite"):
        read_ntu_skeleton_file(p, fields=fields)


def test_garbled_structure(tmp_path):
    lines = _one_body_file(tmp_path).splitlines()
    p = tmp_path / "S001C001P001R001A001.skeleton"
    for i, new, msg in [
        (0, "3.5", r"line 1: expected the frame count"),
        (1, "x", r"line 2: expected the body count of frame 1"),
        (3, "24", r"line 4: joint count 24, expected 25"),
        (2, "abc 0 1 1 1 1 0 0.1 0.1 2", r"line 3: body line must start with an integer bodyID"),
        (2, f"{BODY_ID_BASE} 0 1 1 1 1 0 0.1", r"line 3: body line must hold 10 values, got 8"),
        (7, "0.1 0.2 0.3 1 2 3 4 5 6 7 8", r"line 8: joint line must hold 12 values, got 11"),
    ]:
        bad = list(lines)
        bad[i] = new
        p.write_text("\n".join(bad))
        with pytest.raises(DataError, match=msg):
            read_ntu_skeleton_file(p)
    # more lines than the frame count declares
    bad = ["2"] + lines[1:]
    p.write_text("\n".join(bad))
    with pytest.raises(DataError, match=r"line 58: unexpected content after the 2 frames"):
        read_ntu_skeleton_file(p)
    p.write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_ntu_skeleton_file(p)
    with pytest.raises(DataError, match="cannot read"):
        read_ntu_skeleton_file(tmp_path / "absent.skeleton")


# ----------------------------------------------------------------------------- selection
def test_single_person_centred_and_padded(tmp_path):
    a = person(40, origin=(0.3, -0.2, 2.8), seed=3)
    p = write_skeleton(tmp_path / "x.skeleton", tracks_to_frames(40, {5: (0, a)}))
    seq, rep = load_ntu_sample(p)
    assert seq.shape == (40, 2, 25, 3) and seq.dtype == np.float32
    np.testing.assert_allclose(seq[:, 0], a - a[0, 1], atol=2e-6)
    assert not seq[:, 1].any()  # padded second person
    np.testing.assert_array_equal(seq[0, 0, 1], 0)
    assert rep["actors"] == [[5]] and rep["dropped_frames"] == 0
    # a single short body is never dropped (the length filter needs >= 2 bodies)
    p = write_skeleton(tmp_path / "y.skeleton", tracks_to_frames(3, {5: (0, a[:3])}))
    assert load_ntu_sample(p)[0].shape == (3, 2, 25, 3)


def test_noisy_third_body_and_one_frame_ghost(tmp_path):
    n = 60
    frames = two_person_frames(n)
    calm, busy = BODY_ID_BASE + 11, BODY_ID_BASE + 10
    # a table tracked in 40 frames (wider than tall) and a ghost seen in a single frame
    frames = [fr + ([(BODY_ID_BASE + 20, tb)] if 10 <= t < 50 else []) for t, (fr, tb)
              in enumerate(zip(frames, np.concatenate([np.zeros((10, 25, 3)), table(50)])))]
    frames[30].append((BODY_ID_BASE + 21, person(1, origin=(1.5, 0, 4))[0]))
    p = write_skeleton(tmp_path / f"{sample_name(action=50)}.skeleton", frames)
    raw = read_ntu_skeleton_file(p)
    assert len(raw["bodies"]) == 4 and raw["body_counts"][30] == 4
    seq, rep = select_actors(raw)
    assert rep["actors"] == [[busy], [calm]]
    notes = " ".join(rep["notes"])
    assert f"body {BODY_ID_BASE + 21}: dropped, only 1 frame" in notes
    assert f"body {BODY_ID_BASE + 20}: dropped, 1.000 of its frames wider than tall" in notes
    j = raw["bodies"]
    np.testing.assert_allclose(seq[:, 0], j[busy]["joints"], atol=1e-6)
    np.testing.assert_allclose(seq[:, 1], j[calm]["joints"], atol=1e-6)
    centred = center_sequence(seq)
    np.testing.assert_allclose(centred[:, 1] - centred[:, 0], seq[:, 1] - seq[:, 0], atol=1e-5)
    np.testing.assert_array_equal(centred[0, 0, 1], 0)


def test_missing_frames_removed(tmp_path):
    a = person(30, seed=2)
    a[7] = 0.0  # the Kinect lost the body: all-zero joints
    frames = tracks_to_frames(30, {1: (0, a)}, empty=(0, 1, 12, 29))
    p = write_skeleton(tmp_path / "x.skeleton", frames)
    seq, rep = load_ntu_sample(p)
    keep = [t for t in range(30) if t not in (0, 1, 7, 12, 29)]
    assert seq.shape[0] == len(keep) == 25 and rep["dropped_frames"] == 5
    np.testing.assert_allclose(seq[:, 0], a[keep] - a[2, 1], atol=2e-6)
    assert any("1 all-zero frame(s) removed" in n for n in rep["notes"])


def test_zero_body_file(tmp_path):
    p = write_skeleton(tmp_path / "x.skeleton", [[] for _ in range(12)])
    raw = read_ntu_skeleton_file(p)
    assert raw["num_frames"] == 12 and raw["bodies"] == {} and not raw["body_counts"].any()
    with pytest.raises(NoSkeletonError, match=r"x\.skeleton: no skeleton in any of its 12 frames"):
        load_ntu_sample(p)
    zeros = tracks_to_frames(5, {1: (0, np.zeros((5, 25, 3)))})
    zero = write_skeleton(tmp_path / "z.skeleton", zeros)
    with pytest.raises(NoSkeletonError, match="all joints zero"):
        load_ntu_sample(zero)


def test_bodies_in_sequence_share_a_slot(tmp_path):
    """A tracking id change (one person, two ids one after the other) stays in slot 1; a
    one-frame overlap is a hand-over, the later body wins that frame."""
    a = person(40, seed=1, swing=0.3, walk=(0.02, 0, 0))  # walks: the most motion
    b = person(41, seed=2, swing=0.1, origin=(0.8, 0, 3))  # same person, new tracking id
    c = person(80, seed=3, swing=0.01, origin=(1, 0, 3.5))
    tracks = {1: (0, a), 2: (39, b), 3: (0, c)}
    p = write_skeleton(tmp_path / "x.skeleton", tracks_to_frames(80, tracks))
    seq, rep = select_actors(read_ntu_skeleton_file(p))
    assert rep["actors"] == [[1, 2], [3]]
    np.testing.assert_allclose(seq[:39, 0], a[:39], atol=1e-5)
    np.testing.assert_allclose(seq[39:, 0], b, atol=1e-5)  # frame 39: the later body wins
    np.testing.assert_allclose(seq[:, 1], c, atol=1e-5)
    # a third overlapping body has no slot left
    tracks[4] = (0, person(80, seed=4, swing=0.2, origin=(-1, 0, 3)))
    p = write_skeleton(tmp_path / "y.skeleton", tracks_to_frames(80, tracks))
    raw = read_ntu_skeleton_file(p)
    seq, rep = select_actors(raw)
    assert len(rep["actors"]) == 2 and any("overlaps all 2 actors" in n for n in rep["notes"])
    seq3, rep3 = select_actors(raw, max_persons=3)
    assert seq3.shape == (80, 3, 25, 3) and sum(map(len, rep3["actors"])) == 4


def _body(joints):
    return {"frames": np.arange(len(joints)), "joints": np.asarray(joints, dtype=np.float32)}


def test_slot2_starts_empty_unlike_reference(tmp_path):
    """Documented difference from get_raw_denoised_data: a bystander seen in frames 5-25
    (overlapping actor 1) ends before the second actor appears (frame 30): it joins slot 2
    here, where the reference's virtual [0, 0] start of slot 2 discards it."""
    a = person(60, origin=(-0.6, 0, 3), swing=0.35, walk=(0.01, 0, 0), seed=1)
    b = person(30, origin=(0.6, 0, 3), swing=0.2, seed=2)
    c = person(21, origin=(0.8, 0, 3.5), swing=0.05, seed=3)
    p = write_skeleton(tmp_path / "x.skeleton",
                       tracks_to_frames(60, {1: (0, a), 2: (30, b), 3: (5, c)}))
    seq, rep = select_actors(read_ntu_skeleton_file(p))
    assert rep["actors"] == [[1], [2, 3]] and seq.shape == (60, 2, 25, 3)
    np.testing.assert_allclose(seq[5:26, 1], c, atol=1e-5)
    np.testing.assert_allclose(seq[30:, 1], b, atol=1e-5)
    assert not seq[26:30, 1].any()


def test_denoise_rules():
    tall, wide = person(30, swing=0.3), table(30)
    # length: <= 11 frames is noise, 12 is kept
    order, notes = denoise_bodies({1: _body(tall), 2: _body(tall[:11]), 3: _body(tall[:12])})
    assert 2 not in order and 3 in order and "only 11 frame(s) <= 11" in notes[0]
    # a single body is kept whatever it looks like
    assert denoise_bodies({9: _body(wide[:2])}) == ([9], [])
    # all bodies short: the length filter is skipped instead of leaving nothing
    order, notes = denoise_bodies({1: _body(tall[:5]), 2: _body(tall[:6])})
    assert sorted(order) == [1, 2] and "length filter skipped" in notes[0]
    # spread: ratio of wide frames >= 0.69754 -> dropped; below -> kept with reduced motion
    mixed = np.concatenate([wide[:20], tall[:10]])  # 2/3 of frames wide: kept
    mostly = np.concatenate([wide[:21], tall[:9]])  # 0.7 wide: dropped
    order, notes = denoise_bodies({1: _body(tall), 2: _body(mixed), 3: _body(mostly)})
    assert sorted(order) == [1, 2] and "body 3: dropped, 0.700 of its frames" in notes[0]
    # the spread boundary: x-spread > 0.8 x y-spread is a noisy frame
    def box(ratio):
        j = np.zeros((30, 25, 3))
        j[:, :, 1] = np.linspace(0, 1.0, 25)
        j[:, :, 0] = np.linspace(0, ratio, 25)
        return _body(j + [0, 0, 3.0])
    assert denoise_bodies({1: _body(tall), 2: box(0.78)})[0] in ([1, 2], [2, 1])
    assert denoise_bodies({1: _body(tall), 2: box(0.82)})[0] == [1]
    # the motion of body 2 became its motion over the tall frames only (small), so it ranks last
    calm = person(30, swing=0.01)
    order, _ = denoise_bodies({2: _body(mixed), 5: _body(calm)})
    m_mixed_tall = np.var(mixed[20:].reshape(-1, 3), axis=0).sum()
    m_calm = np.var(calm.reshape(-1, 3), axis=0).sum()
    assert order == ([2, 5] if m_mixed_tall > m_calm else [5, 2])
    # motion ranking, largest first
    order, _ = denoise_bodies({1: _body(person(30, swing=0.02)), 2: _body(person(30, swing=0.4))})
    assert order == [2, 1]
    # optional motion filter of the reference (off by default)
    # ("motion" is the variance over joints *and* frames, so a tiny blob has almost none)
    rng = np.random.default_rng(0)
    blob = _body(rng.normal([0.2, 0.1, 3.0], [0.01, 0.05, 0.01], size=(30, 25, 3)))
    assert denoise_bodies({1: _body(tall), 2: blob})[0] == [1, 2]
    order, notes = denoise_bodies({1: _body(tall), 2: blob}, motion_range=(0.089925, 2.0))
    assert order == [1] and "outside" in notes[0]


# ----------------------------------------------------------------------------- datasets
def _ntu_folder(root, with_list=True):
    """A small NTU folder: 8 samples in nturgb+d_skeletons/, one empty, one listed as missing,
    one NTU-120-only setup and one NTU-120-only action."""
    d = root / "nturgb+d_skeletons"
    specs = [  # (setup, camera, subject, replication, action, frames)
        (1, 1, 1, 1, 1, single_person_frames(30, seed=0)),
        (1, 2, 3, 2, 8, single_person_frames(45, seed=1)),
        (2, 3, 45, 1, 50, two_person_frames(40, seed=2)),
        (3, 1, 2, 2, 60, two_person_frames(25, seed=3)),
        (3, 2, 7, 1, 23, [[] for _ in range(10)]),                   # no skeleton at all
        (4, 1, 8, 1, 5, single_person_frames(20, seed=4)),           # on the missing list
        (18, 1, 50, 1, 2, single_person_frames(33, seed=5)),         # NTU-120 setup
        (2, 2, 103, 2, 120, two_person_frames(50, seed=6)),          # NTU-120 action
    ]
    for s, c, p, r, a, fr in specs:
        write_skeleton(d / f"{sample_name(s, c, p, r, a)}.skeleton", fr, seed=s + a)
    if with_list:
        write_missing_list(root / "NTU_RGBD_samples_with_missing_skeletons.txt",
                           [sample_name(4, 1, 8, 1, 5), sample_name(9, 9, 9, 9, 9)])
    return root


def test_read_ntu60_and_ntu120(tmp_path, caplog):
    root = _ntu_folder(tmp_path / "ntu60")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds = read_ntu60(root, progress=False)
    assert len(ds) == 4 and ds.num_classes == 60 and ds.class_names == list(NTU60_CLASSES)
    assert ds.layout == "ntu25" and ds.data.dtype == np.float32
    assert ds.data.shape == (4, 3, 300, 25, 2)
    assert ds.meta["file"].tolist() == ["S001C001P001R001A001", "S001C002P003R002A008",
                                        "S002C003P045R001A050", "S003C001P002R002A060"]
    assert ds.labels.tolist() == [0, 7, 49, 59] and ds.lengths.tolist() == [30, 45, 40, 25]
    assert ds.meta["setup"].tolist() == [1, 1, 2, 3] and ds.meta["camera"].tolist() == [1, 2, 3, 1]
    assert ds.meta["subject"].tolist() == [1, 3, 45, 2]
    assert ds.meta["replication"].tolist() == [1, 2, 1, 2]
    assert ds.partitions["xsub"].tolist() == [True, False, False, True]  # 45: NTU-120 only
    assert ds.partitions["xview"].tolist() == [False, True, True, False]
    assert ds.info["skipped"] == ["S003C002P007R001A023", "S004C001P008R001A005"]
    reasons = ds.info["skipped_reasons"]
    listed = "listed in NTU_RGBD_samples_with_missing_skeletons.txt"
    assert listed in reasons["S004C001P008R001A005"]
    assert "no skeleton" in reasons["S003C002P007R001A023"]
    assert ds.info["ignored_other_release"] == 2
    msgs = " ".join(r.getMessage() for r in caplog.records)
    assert "S003C002P007R001A023" in msgs and "missing-skeleton list" in msgs
    # padding: zero beyond each length, second person zero for single-person samples
    assert not ds.data[0, :, 30:].any() and not ds.data[0, ..., 1].any()
    assert ds.data[2, ..., 1].any()
    np.testing.assert_array_equal(ds.data[:, :, 0, 1, 0], 0)  # centred on actor 1's spine mid

    ds120 = read_ntu120(root, progress=False)
    assert ds120.num_classes == 120 and ds120.class_names == list(NTU120_CLASSES)
    assert len(ds120) == 6 and ds120.info["ignored_other_release"] == 0
    files = ds120.meta["file"].tolist()
    assert "S018C001P050R001A002" in files and "S002C002P103R002A120" in files
    xsub = dict(zip(files, ds120.partitions["xsub"]))
    assert xsub["S002C003P045R001A050"] and xsub["S002C002P103R002A120"]
    assert not xsub["S001C002P003R002A008"]
    xset = dict(zip(files, ds120.partitions["xset"]))
    assert xset["S018C001P050R001A002"] and xset["S002C003P045R001A050"]
    assert not xset["S001C001P001R001A001"]
    assert ds120.labels[files.index("S002C002P103R002A120")] == 119
    # same sample, same array, whichever release reads it
    np.testing.assert_array_equal(ds120.data[files.index("S001C002P003R002A008")], ds.data[1])


def test_partition_constants():
    assert len(NTU120_XSUB_TRAIN) == 53 and len(set(NTU120_XSUB_TRAIN)) == 53


def test_out_dir_memmap_matches_memory(tmp_path):
    root = _ntu_folder(tmp_path / "ntu120")
    mem = read_ntu120(root, progress=False, max_frames=64)
    out = tmp_path / "prepared"
    mm = read_ntu120(root, progress=False, max_frames=64, out_dir=out)
    assert isinstance(mm.data, np.memmap) and mm.data.shape == (6, 3, 64, 25, 2)
    np.testing.assert_array_equal(np.asarray(mm.data), mem.data)
    back = SkeletonDataset.load(out)
    assert back.info["skipped"] == mem.info["skipped"]
    assert back.meta["file"].tolist() == mem.meta["file"].tolist()
    for k in mem.partitions:
        np.testing.assert_array_equal(back.partitions[k], mem.partitions[k])
    assert not (out / "data.npy.tmp").exists()
    # the .npy was cut from the 7 preallocated rows to the 6 kept samples
    assert (out / "data.npy").stat().st_size < 7 * 3 * 64 * 25 * 2 * 4


def test_max_frames_truncates_with_warning(tmp_path, caplog):
    root = tmp_path / "ntu60"
    write_skeleton(root / f"{sample_name(action=3)}.skeleton", single_person_frames(100))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        ds = read_ntu60(root, progress=False, max_frames=50)
    assert ds.data.shape[2] == 50 and ds.lengths.tolist() == [50]
    assert ds.info["truncated"] == {sample_name(action=3): 100}
    assert "more than max_frames=50" in caplog.text
    with pytest.raises(DataError, match="max_frames"):
        read_ntu60(root, progress=False, max_frames=0)


def test_registry_and_bad_folders(tmp_path):
    _ntu_folder(tmp_path / "ntu60", with_list=False)
    ds = read_dataset("ntu60", data_root=tmp_path, progress=False)
    assert len(ds) == 5 and ds.info["skipped"] == ["S003C002P007R001A023"]
    assert read_missing_lists(tmp_path / "ntu60") == {}
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no SsssCcccPpppRrrrAaaa.skeleton files"):
        read_ntu60(tmp_path / "empty", progress=False)
    (tmp_path / "empty" / "S001C001.skeleton").write_text("0\n")
    with pytest.raises(DataError, match=r"S001C001\.skeleton: file name is not"):
        read_ntu60(tmp_path / "empty", progress=False)
    bad = tmp_path / "bad"
    write_skeleton(bad / f"{sample_name()}.skeleton", single_person_frames(5))
    (bad / f"{sample_name()}.skeleton").write_text("5\n1\n")
    with pytest.raises(DataError, match=r"S001C001P001R001A001\.skeleton: file ends after line 2"):
        read_ntu60(bad, progress=False, out_dir=tmp_path / "out_bad")
    assert not list((tmp_path / "out_bad").iterdir())
    all_empty = tmp_path / "allempty"
    write_skeleton(all_empty / f"{sample_name()}.skeleton", [[]])
    with pytest.raises(DataError, match="none of the 1 samples"):
        read_ntu60(all_empty, progress=False, out_dir=tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())  # no half-written cache left behind
    only120 = tmp_path / "only120"
    write_skeleton(only120 / f"{sample_name(setup=20)}.skeleton", single_person_frames(5))
    with pytest.raises(DataError, match=r"\(1 files of setups/actions outside ntu60\)"):
        read_ntu60(only120, progress=False)


def test_two_archive_folders_and_list_errors(tmp_path):
    """NTU-120 unpacked as two archives: both sub-folders are read; a sample in both is an
    error, and so is a missing-skeleton list without a single sample name."""
    root = tmp_path / "ntu120"
    write_skeleton(root / "nturgb+d_skeletons" / f"{sample_name(setup=1)}.skeleton",
                   single_person_frames(20))
    write_skeleton(root / "nturgb+d_skeletons120" / f"{sample_name(setup=18)}.skeleton",
                   single_person_frames(20))
    ds = read_ntu120(root, progress=False, max_frames=20)
    assert ds.meta["setup"].tolist() == [1, 18]
    (root / "NTU_RGBD120_samples_with_missing_skeletons.txt").write_text("nothing here\n")
    with pytest.raises(DataError, match="NTU_RGBD120_samples_with_missing_skeletons.txt: no "
                                        "sample names"):
        read_ntu120(root, progress=False)
    (root / "NTU_RGBD120_samples_with_missing_skeletons.txt").unlink()
    write_skeleton(root / f"{sample_name(setup=18)}.skeleton", single_person_frames(20))
    with pytest.raises(DataError, match=f"sample {sample_name(setup=18)} found twice"):
        read_ntu120(root, progress=False)
    with pytest.raises(ValueError, match="fields must be"):
        read_ntu_skeleton_file(root / f"{sample_name(setup=18)}.skeleton", fields="xy")


def test_workers_match_serial(tmp_path, caplog):
    root = _ntu_folder(tmp_path / "ntu120")
    a = read_ntu120(root, progress=False, max_frames=35)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        b = read_ntu120(root, progress=False, max_frames=35, workers=2)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.info == b.info and len(a.info["truncated"]) == 3
    # warnings raised in worker processes are logged by the parent
    assert caplog.text.count("more than max_frames=35") == 3


def test_duplicate_body_id_in_a_frame(tmp_path, caplog):
    a = person(20)
    frames = tracks_to_frames(20, {7: (0, a)})
    frames[4].append((7, a[4] + 0.5))
    p = write_skeleton(tmp_path / "x.skeleton", frames)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        raw = read_ntu_skeleton_file(p)
    assert raw["bodies"][7]["frames"].tolist() == list(range(20))
    np.testing.assert_allclose(raw["bodies"][7]["joints"], a, atol=1e-6)
    line = 1 + 4 * 28 + 1 + 27 + 1  # frame count, 4 frames (28 lines each), count, 1st body
    assert f"line {line}: bodyID 7 listed again in frame 5" in caplog.text
    assert raw["warnings"] and "keeping the first" in raw["warnings"][0]


def test_class_names():
    assert len(NTU120_CLASSES) == 120 and NTU60_CLASSES == NTU120_CLASSES[:60]
    assert NTU120_CLASSES[:3] == ("drink water", "eat meal/snack", "brushing teeth")
    assert NTU120_CLASSES[58] == "walking towards each other"
    assert NTU120_CLASSES[119] == "finger-guessing game (playing rock-paper-scissors)"
    assert all(n.isascii() and n == n.strip() and not n.endswith(".") for n in NTU120_CLASSES)


# ----------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real(data_root):
    x = np.load(need(data_root, "ntu_samples/NTU_preprocessed_skeleton_examples.npy"))
    out = []
    for s in x:  # (3, 300, 25, 2) -> (T, 25, 3) of person 1, valid frames only
        t = int((np.abs(s).sum(axis=(0, 2, 3)) > 0).sum())
        out.append(np.ascontiguousarray(s[:, :t, :, 0].transpose(1, 2, 0)).astype(np.float64))
    return out


def test_real_sequences_round_trip(tmp_path, real):
    offset = np.array([0.21, -0.13, 3.05])  # back into camera space
    for i, seq in enumerate(real):
        p = write_skeleton(tmp_path / f"{sample_name(action=i + 1)}.skeleton",
                           tracks_to_frames(len(seq), {BODY_ID_BASE + i: (0, seq + offset)}))
        got, rep = load_ntu_sample(p)
        assert got.shape == (len(seq), 2, 25, 3) and not got[:, 1].any()
        np.testing.assert_allclose(got[:, 0], seq - seq[0, 1], atol=2e-6)
    ds = read_ntu60(tmp_path, progress=False)
    assert len(ds) == 4 and ds.lengths.tolist() == [len(s) for s in real]


def test_real_sequences_match_ntu25_layout(real):
    """Bones of the ntu25 layout join near joints of constant length; the body is upright."""
    j = {n: NTU25.index(n) for n in NTU25.joints}
    for seq in real:
        bones = np.stack([np.linalg.norm(seq[:, a] - seq[:, b], axis=-1)
                          for a, b in NTU25.bones], axis=1)
        med = np.median(bones, axis=0)
        assert med.max() < 0.55 and med.min() > 0.005  # no bone jumps across the body
        limbs = [i for i, (a, b) in enumerate(NTU25.bones)
                 if {NTU25.joints[a], NTU25.joints[b]} <= {"l_shoulder", "l_elbow", "l_wrist",
                                                             "r_shoulder", "r_elbow", "r_wrist",
                                                             "l_hip", "l_knee", "r_hip", "r_knee",
                                                             "spine_base", "spine_mid"}]
        cv = bones[:, limbs].std(0) / bones[:, limbs].mean(0)
        # rigid limbs keep their length over time (up to Kinect noise)
        assert cv.max() < 0.35 and np.median(cv) < 0.15, cv
        y = seq[..., 1].mean(0)
        chain = ["head", "neck", "spine_mid", "spine_base", "l_knee", "l_ankle"]
        assert all(y[j[hi]] > y[j[lo]] for hi, lo in zip(chain, chain[1:]))
        for l, r in (("l_elbow", "l_shoulder"), ("l_knee", "l_hip")):
            ll = np.median(np.linalg.norm(seq[:, j[l]] - seq[:, j[r]], axis=-1))
            rl = np.median(np.linalg.norm(seq[:, j["r" + l[1:]]] - seq[:, j["r" + r[1:]]], axis=-1))
            assert abs(ll - rl) / max(ll, rl) < 0.25  # left and right limbs match


def test_real_two_person_composite(tmp_path, real):
    """Two real people, a table and a ghost in one file: the real people are the actors,
    ordered by motion, and stay in place relative to each other."""
    a, b = real[3] + [0.4, 0, 3.0], real[0] + [-0.6, 0, 3.3]
    n = len(a)
    tracks = {BODY_ID_BASE + 1: (0, b), BODY_ID_BASE + 2: (0, a),
              BODY_ID_BASE + 3: (5, table(40)), BODY_ID_BASE + 4: (60, a[60:63] + 1.0)}
    p = write_skeleton(tmp_path / f"{sample_name(action=55)}.skeleton", tracks_to_frames(n, tracks))
    got, rep = load_ntu_sample(p)
    motion = lambda x: np.var(x.reshape(-1, 3), axis=0).sum()
    first, second = (a, b) if motion(a) > motion(b) else (b, a)
    assert len(rep["actors"]) == 2 and got.shape == (n, 2, 25, 3)
    want = np.zeros((n, 2, 25, 3))
    want[: len(first), 0] = first - first[0, 1]
    want[: len(second), 1] = second - first[0, 1]
    np.testing.assert_allclose(got, want, atol=5e-6)
