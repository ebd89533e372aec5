"""Real UTD-MHAD and NW-UCLA files: counts, partitions, layout order, bad files."""
import json
import pickle

import numpy as np
import pytest
from scipy.io import savemat

from conftest import need
from zeroskel.data.layouts import KINECT_V1
from zeroskel.data.readers.small import read_nw_ucla, read_nw_ucla_file, read_utd_mhad, read_utd_mhad_file
from zeroskel.errors import DataError


@pytest.fixture(scope="module")
def utd(data_root):
    return read_utd_mhad(need(data_root, "utd_mhad"), progress=False)


@pytest.fixture(scope="module")
def ucla(data_root):
    return read_nw_ucla(need(data_root, "nw_ucla"), progress=False)


def test_utd_counts(utd):
    assert len(utd) == 861 and utd.num_classes == 27
    assert utd.data.shape[1:] == (3, 125, 20, 1) and utd.data.dtype == np.float32
    counts = utd.class_counts()
    assert counts.sum() == 861 and set(counts.tolist()) == {31, 32}
    train = utd.partition("xsub", "train")
    assert set(np.unique(utd.meta["subject"][train])) == {1, 3, 5, 7}
    assert len(train) == 431 and len(utd.partition("xsub", "test")) == 430
    # zero padding beyond each valid length
    i = int(np.argmin(utd.lengths))
    assert not utd.data[i, :, utd.lengths[i]:].any()


def test_reader_options_a_reader_does_not_take_are_named(data_root):
    from zeroskel.data.registry import read_dataset
    from zeroskel.errors import ConfigError
    need(data_root, "utd_mhad")
    with pytest.raises(ConfigError, match="'utd_mhad': its reader takes no option 'max_frames'; valid: none"):
        read_dataset("utd_mhad", data_root, max_frames=5)


def test_utd_reordered_to_kinect_v1(utd):
    # After re-ordering, the head is the highest joint and the hip centre sits below the spine.
    y = utd.data[:, 1, :20]  # frames 0..19 are valid for every sample
    mean_y = y.mean(axis=(0, 1, 3))
    head, hip, spine = (KINECT_V1.index(j) for j in ("head", "hip_center", "spine"))
    assert mean_y[head] == mean_y.max()
    assert mean_y[hip] < mean_y[spine]


def test_ucla_counts(ucla):
    assert len(ucla) == 1484 and ucla.num_classes == 10
    assert ucla.class_counts().tolist() == [150, 152, 141, 173, 148, 149, 142, 142, 145, 142]
    test = ucla.partition("xview", "test")
    assert len(test) == 464 and set(ucla.meta["view"][test]) == {3}
    mean_y = ucla.data[:, 1, :5].mean(axis=(0, 1, 3))
    assert mean_y[KINECT_V1.index("head")] == mean_y.max()


def test_truncated_mat(tmp_path, data_root):
    src = need(data_root, "utd_mhad/a1_s1_t1_skeleton.mat").read_bytes()
    bad = tmp_path / "a1_s1_t1_skeleton.mat"
    bad.write_bytes(src[: len(src) // 3])
    with pytest.raises(DataError, match="a1_s1_t1_skeleton.mat"):
        read_utd_mhad_file(bad)


def test_mat_wrong_shape_and_nan(tmp_path):
    p = tmp_path / "a1_s1_t1_skeleton.mat"
    savemat(p, {"d_skel": np.zeros((25, 3, 10))})
    with pytest.raises(DataError, match=r"\(20, 3, T\)"):
        read_utd_mhad_file(p)
    x = np.zeros((20, 3, 10)); x[3, 1, 4] = np.nan
    savemat(p, {"d_skel": x})
    with pytest.raises(DataError, match="NaN"):
        read_utd_mhad_file(p)
    savemat(p, {"other": x})
    with pytest.raises(DataError, match="d_skel"):
        read_utd_mhad_file(p)


def test_ucla_bad_json(tmp_path):
    p = tmp_path / "a01_s01_e00_v01.json"
    p.write_text('{"file_name": "a01_s01_e00_v01", "skeletons": [[[0, 0')
    with pytest.raises(DataError, match="a01_s01_e00_v01.json"):
        read_nw_ucla_file(p)
    p.write_text(json.dumps({"file_name": "x", "label": 1}))
    with pytest.raises(DataError, match="'skeletons'"):
        read_nw_ucla_file(p)
    p.write_text(json.dumps({"skeletons": np.zeros((4, 20, 3)).tolist(), "label": 11}))
    with pytest.raises(DataError, match="'label'"):
        read_nw_ucla_file(p)


@pytest.mark.parametrize("label", ["x", None, [1], 1.5, True])
def test_ucla_label_that_is_not_an_integer_names_file_and_key(tmp_path, label):
    # a non-integer label raised a bare ValueError/TypeError without the file, and 1.5 or
    # true were silently read as class 1
    p = tmp_path / "a01_s01_e00_v01.json"
    p.write_text(json.dumps({"skeletons": np.zeros((4, 20, 3)).tolist(), "label": label}))
    with pytest.raises(DataError, match=r"a01_s01_e00_v01\.json: key 'label' = .* is not an integer"):
        read_nw_ucla_file(p)
    p.write_text(json.dumps({"skeletons": np.zeros((4, 20, 3)).tolist(), "label": 2.0}))
    assert read_nw_ucla_file(p)[1] == 1


def test_mat_with_non_numeric_d_skel_names_file_and_key(tmp_path):
    p = tmp_path / "a1_s1_t1_skeleton.mat"
    savemat(p, {"d_skel": "abc"})
    with pytest.raises(DataError, match=r"a1_s1_t1_skeleton\.mat: 'd_skel' is not a numeric"):
        read_utd_mhad_file(p)


@pytest.mark.parametrize("content", [b"garbage", pickle.dumps([{"x": 1}]), pickle.dumps(5)])
def test_ucla_damaged_val_label_pkl_names_the_file(tmp_path, content):
    # a truncated or foreign val_label.pkl ended in UnpicklingError / KeyError / TypeError
    (tmp_path / "all_sqe").mkdir()
    p = tmp_path / "all_sqe" / "a01_s01_e00_v03.json"
    p.write_text(json.dumps({"file_name": "a01_s01_e00_v03", "label": 1,
                             "skeletons": np.ones((4, 20, 3)).tolist()}))
    (tmp_path / "val_label.pkl").write_bytes(content)
    with pytest.raises(DataError, match=r"val_label\.pkl: unreadable; expected a pickled list"):
        read_nw_ucla(tmp_path, progress=False)
    (tmp_path / "val_label.pkl").write_bytes(pickle.dumps([{"file_name": "a01_s01_e00_v03"}]))
    assert len(read_nw_ucla(tmp_path, progress=False)) == 1
