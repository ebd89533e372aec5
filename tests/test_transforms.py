"""Preprocessing transforms: exact values on small arrays, configs, and real skeletons."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from conftest import need
from zeroskel.data.layouts import KINECT_V1, NTU25
from zeroskel.data.transforms import (
    MotionMask,
    PRESETS, Center, MapLayout, Persons, RandomCrop, Resize, RotateY, apply_pipeline,
    build_pipeline, interp_indices, resolve_joint,
)
from zeroskel.errors import ConfigError, DataError


def _batch(n=3, t=12, v=20, m=2, lengths=(12, 7, 3), seed=0):
    """Random skeletons with zero padding past each length and person 1 absent in sample 1."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3, t, v, m)).astype(np.float32)
    lengths = np.array(lengths)
    for i, L in enumerate(lengths):
        x[i, :, L:] = 0
    x[1, ..., 1] = 0
    return x, lengths


def _cv2_linear(seq: np.ndarray, frames: int) -> np.ndarray:
    """Direct transcription of cv2.resize INTER_LINEAR along axis 0 (half-pixel centres,
    source index clamped at both ends), one output row at a time."""
    L = seq.shape[0]
    out = np.empty((frames,) + seq.shape[1:], dtype=np.float64)
    for j in range(frames):
        fy = (j + 0.5) * L / frames - 0.5
        sy = int(np.floor(fy))
        fy -= sy
        if sy < 0:
            sy, fy = 0, 0.0
        if sy >= L - 1:
            sy, fy = L - 1, 0.0
        nxt = min(sy + 1, L - 1)
        out[j] = (1 - fy) * seq[sy] + fy * seq[nxt]
    return out


# ------------------------------------------------------------------ centre
def test_center_per_frame_zeroes_joint_and_keeps_padding():
    x, lengths = _batch()
    j = KINECT_V1.index("shoulder_center")
    out, lens = Center("shoulder_center", "per_frame", layout="kinect_v1").apply_batch(x, lengths)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(lens, lengths)
    np.testing.assert_array_equal(out[:, :, :, j], 0)
    np.testing.assert_allclose(out, x - x[:, :, :, j:j + 1], rtol=0, atol=0)
    assert not out[1, ..., 1].any()  # absent person
    assert not out[2, :, 3:].any()  # padded frames
    np.testing.assert_array_equal(x, _batch()[0])  # input untouched


def test_center_first_frame_subtracts_frame0_person0_only_where_present():
    x, lengths = _batch()
    j = KINECT_V1.index("spine")
    out, _ = Center("torso_mid", "first_frame", layout=KINECT_V1).apply_batch(x, lengths)
    for i, L in enumerate(lengths):
        origin = x[i, :, 0, j, 0][:, None, None]
        np.testing.assert_allclose(out[i, :, :L, :, 0], x[i, :, :L, :, 0] - origin, atol=1e-6)
        assert not out[i, :, L:].any()
    np.testing.assert_array_equal(out[:, :, 0, j, 0], 0)
    assert not out[1, ..., 1].any()  # absent person stays zero, not -origin
    np.testing.assert_allclose(out[0, :, :, :, 1], x[0, :, :, :, 1] - x[0, :, 0, j, 0][:, None, None], atol=1e-6)


def test_center_first_frame_skips_leading_empty_frames():
    x = np.zeros((2, 3, 6, 20, 2), np.float32)
    x[0, :, 2:5, :, 0] = 1.0 + np.arange(20, dtype=np.float32)[None, None, :]  # person 0 from frame 2
    x[0, :, 2, 1, 0] = [4, 5, 6]
    x[1, :, 1:3, :, 1] = 7.0  # only person 1, from frame 1
    out, _ = Center("spine", "first_frame", layout="kinect_v1").apply_batch(x, np.array([5, 3]))
    np.testing.assert_array_equal(out[0, :, 2, 1, 0], 0)
    np.testing.assert_allclose(out[0, :, 3, 0, 0], 1.0 - np.array([4, 5, 6]))
    assert not out[0, :, :2].any() and not out[0, :, 5].any()
    np.testing.assert_array_equal(out[1, :, 1:3, :, 1], 0)
    assert not out[1, :, :1].any() and not out[1, :, 3:].any()


def test_center_rejects_bad_mode_joint_and_layout_mismatch():
    with pytest.raises(ConfigError, match="center mode"):
        Center("spine", "per_person", layout="kinect_v1")
    with pytest.raises(ConfigError, match="spine_shoulder"):  # NTU name on a Kinect v1 layout
        Center("spine_shoulder", layout="kinect_v1")
    with pytest.raises(ConfigError, match="needs the joint layout"):
        Center("spine")
    x, lengths = _batch()
    with pytest.raises(DataError, match="25 joints, data has V=20"):
        Center("spine_shoulder", layout="ntu25").apply_batch(x, lengths)


def test_joint_aliases_resolve_per_layout():
    assert resolve_joint(NTU25, "torso_top") == 20 == NTU25.index("spine_shoulder")
    assert resolve_joint(KINECT_V1, "torso_top") == 2
    assert resolve_joint(NTU25, "torso_mid") == 1 and resolve_joint(KINECT_V1, "torso_mid") == 1
    assert resolve_joint(KINECT_V1, 7) == 7
    with pytest.raises(ConfigError):
        resolve_joint(KINECT_V1, 20)


# ------------------------------------------------------------------ resize
def test_interp_indices_match_cv2_formula_and_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    for L, T in [(41, 50), (125, 50), (7, 50), (50, 50), (1, 5), (2, 3), (300, 64)]:
        seq = rng.normal(size=(L, 4)).astype(np.float32)
        x = np.zeros((1, 3, max(L, 1) + 5, 4, 1), np.float32)
        x[0, 0, :L, :, 0] = seq
        out, lens = Resize(T).apply_batch(x, np.array([L]))
        assert out.shape == (1, 3, T, 4, 1) and lens.tolist() == [T]
        np.testing.assert_allclose(out[0, 0, :, :, 0], _cv2_linear(seq, T), rtol=0, atol=2e-6)
        ref = torch.nn.functional.interpolate(torch.from_numpy(seq.T[None]), size=T, mode="linear",
                                              align_corners=False)[0].numpy().T
        np.testing.assert_allclose(out[0, 0, :, :, 0], ref, rtol=0, atol=2e-5)  # torch: float32 coords
    i0, i1, w = interp_indices(np.array([10]), 10)  # same size: identity taps
    np.testing.assert_array_equal(i0[0], np.arange(10))
    np.testing.assert_array_equal(w, 0)


def test_resize_of_linear_ramp_is_linear_and_ignores_padding():
    L, T = 20, 50
    x = np.zeros((2, 3, 30, 5, 2), np.float32)
    ramp = 2.0 + 0.5 * np.arange(L)
    x[:, :, :L, :, 0] = ramp[None, None, :, None]
    x[1, :, :L, :, 1] = 1.0  # a constant second person
    out, lens = Resize(T).apply_batch(x, np.array([L, L]))
    src = np.clip((np.arange(T) + 0.5) * L / T - 0.5, 0, L - 1)
    np.testing.assert_allclose(out[0, 1, :, 3, 0], 2.0 + 0.5 * src, atol=1e-5)
    inner = (src > 0) & (src < L - 1)
    steps = np.diff(out[0, 0, inner, 0, 0])
    np.testing.assert_allclose(steps, 0.5 * L / T, atol=1e-5)  # evenly spaced: linear in j
    assert not out[0, ..., 1].any()  # absent person stays zero
    np.testing.assert_allclose(out[1, ..., 1], 1.0)
    assert lens.tolist() == [T, T]


def test_resize_uses_each_samples_own_length():
    x, lengths = _batch(t=12, lengths=(12, 7, 1))
    out, lens = Resize(9).apply_batch(x, lengths)
    for i, L in enumerate(lengths):
        single, ln = Resize(9)(x[i], int(L))
        np.testing.assert_array_equal(out[i], single)
        np.testing.assert_allclose(out[i, 0, :, 2, 0], _cv2_linear(x[i, 0, :L, 2, 0], 9), atol=1e-6)
        assert ln == 9
    np.testing.assert_allclose(out[2], np.repeat(x[2, :, :1], 9, axis=1))  # one frame -> repeated


# ------------------------------------------------------------------ rotation
def test_rotate_y_exact_quarter_turn():
    x = np.zeros((1, 3, 2, 20, 1), np.float32)
    l_sh, r_sh = KINECT_V1.shoulders
    x[0, :, 0, r_sh, 0] = [0, 0, 1]  # shoulder vector along +z
    x[0, :, 0, 5, 0] = [1, 2, 0]
    x[0, :, 1, r_sh, 0] = [3, 5, 0]  # already along +x: unchanged
    x[0, :, 1, 5, 0] = [1, 2, 3]
    out, _ = RotateY(layout="kinect_v1").apply_batch(x, np.array([2]))
    np.testing.assert_allclose(out[0, :, 0, r_sh, 0], [1, 0, 0], atol=1e-7)
    np.testing.assert_allclose(out[0, :, 0, 5, 0], [0, 2, -1], atol=1e-7)
    np.testing.assert_allclose(out[0, :, 1], x[0, :, 1], atol=1e-7)


def test_rotate_y_makes_shoulders_parallel_to_x_and_is_rigid():
    x, lengths = _batch(v=25)
    x[0, :, 4, 8, 0] = x[0, :, 4, 4, 0] + np.array([0, 0.3, 0], np.float32)  # vertical shoulders
    out, lens = RotateY(layout="ntu25").apply_batch(x, lengths)
    np.testing.assert_array_equal(lens, lengths)
    vec = out[:, :, :, 8] - out[:, :, :, 4]  # (N, 3, T, M)
    np.testing.assert_allclose(vec[:, 2], 0, atol=1e-5)
    assert (vec[:, 0] >= 0).all()
    d = x[:, :, :, 8] - x[:, :, :, 4]
    h_in = np.hypot(d[:, 0], d[:, 2])
    np.testing.assert_allclose(vec[:, 0], h_in, atol=1e-5)
    np.testing.assert_array_equal(out[:, 1], x[:, 1])  # y untouched
    # rigid per frame: pairwise joint distances preserved
    d_in = np.linalg.norm(x[..., 3, :] - x[..., 17, :], axis=1)
    d_out = np.linalg.norm(out[..., 3, :] - out[..., 17, :], axis=1)
    np.testing.assert_allclose(d_out, d_in, atol=1e-5)
    np.testing.assert_array_equal(out[0, :, 4, :, 0], x[0, :, 4, :, 0])  # no horizontal shoulders: kept
    assert not out[1, ..., 1].any() and not out[2, :, 3:].any()


def test_rotate_y_first_frame_keeps_turning():
    # the body turns by 90 degrees between frames 0 and 1; frame 0 faces along +z
    x = np.zeros((1, 3, 2, 20, 2), np.float32)
    l_sh, r_sh = KINECT_V1.shoulders
    x[0, :, 0, r_sh, 0] = [0, 0, 1]
    x[0, :, 1, r_sh, 0] = [1, 0, 0]
    x[0, :, 0, 5, 0] = [1, 2, 0]
    x[0, :, 1, 5, 1] = [0, 1, 2]  # a second person is rotated by the same angle
    out, _ = RotateY(mode="first_frame", layout="kinect_v1").apply_batch(x, np.array([2]))
    np.testing.assert_allclose(out[0, :, 0, r_sh, 0], [1, 0, 0], atol=1e-7)
    np.testing.assert_allclose(out[0, :, 1, r_sh, 0], [0, 0, -1], atol=1e-7)  # still turned
    np.testing.assert_allclose(out[0, :, 0, 5, 0], [0, 2, -1], atol=1e-7)
    np.testing.assert_allclose(out[0, :, 1, 5, 1], [2, 1, 0], atol=1e-7)
    assert RotateY(mode="first_frame", layout="kinect_v1").to_config()["mode"] == "first_frame"
    assert "mode" not in RotateY(layout="kinect_v1").to_config()  # old cache keys unchanged
    with pytest.raises(ConfigError, match="rotate_y mode"):
        RotateY(mode="sometimes", layout="kinect_v1")
    with pytest.raises(ConfigError, match="first_frame"):
        RotateY(mode="first_frame", reference=True, layout="kinect_v1")


def test_rotate_y_reference_mode_matches_aimclr_quirk():
    x = np.zeros((1, 3, 3, 25, 1), np.float32)
    x[0, :, :, 8, 0] = [[1, 1, 1], [0, 0, 0], [1, 1, -0.2]]  # right shoulder per frame: z=1,1,-0.2
    x[0, :, :, 3, 0] = [[0.5, 0, 0], [1, 1, 1], [0, 2, 0]]
    ours, _ = RotateY(layout="ntu25").apply_batch(x, np.array([3]))
    ref, _ = RotateY(reference=True, layout="ntu25").apply_batch(x, np.array([3]))
    # frames whose z sign agrees with the sequence sum (positive): same up to the 1e-4 epsilon
    np.testing.assert_allclose(ref[0, :, :2], ours[0, :, :2], atol=2e-4)
    # frame 2 has z < 0: AimCLR rotates it the wrong way, leaving a z component 2*angle off
    v = ref[0, :, 2, 8, 0] - ref[0, :, 2, 4, 0]
    angle = np.arctan2(0.2, 1.0)
    np.testing.assert_allclose(v[[0, 2]], np.hypot(1, 0.2) * np.array([np.cos(2 * angle), -np.sin(2 * angle)]),
                               atol=1e-3)  # the 1e-4 in AimCLR's norm shifts the angle slightly
    assert RotateY(reference=True, layout="ntu25").to_config() == {"name": "rotate_y", "reference": True}


# ------------------------------------------------------------------ crop, persons
def test_random_crop_seeded_within_valid_frames():
    L = 40
    x = np.zeros((64, 3, 60, 2, 1), np.float32)
    x[:, :, :L] = np.arange(L, dtype=np.float32)[None, None, :, None, None]
    t = RandomCrop(frames=16, ratio=(0.5, 1.0))
    assert t.random
    lengths = np.full(64, L)
    a, la = t.apply_batch(x, lengths, np.random.default_rng(3))
    b, _ = t.apply_batch(x, lengths, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert la.tolist() == [16] * 64 and a.shape == (64, 3, 16, 2, 1)
    first, last = a[:, 0, 0, 0, 0], a[:, 0, -1, 0, 0]
    span = last - first
    assert (first >= 0).all() and (last <= L - 1).all()
    assert span.min() < 0.6 * L and span.max() > 0.85 * L  # window lengths vary over [0.5, 1] L
    assert len(np.unique(first)) > 10  # and so do their starts
    with pytest.raises(ConfigError, match="rng"):
        t.apply_batch(x, lengths)
    full = RandomCrop(frames=16, ratio=1.0)
    assert not full.random
    np.testing.assert_array_equal(full.apply_batch(x, lengths)[0], Resize(16).apply_batch(x, lengths)[0])
    centre, _ = RandomCrop(frames=10, ratio=0.5).apply_batch(x[:1], np.array([L]))
    np.testing.assert_allclose(centre[0, 0, :, 0, 0], 10 + _cv2_linear(np.arange(20.0), 10), atol=1e-5)
    with pytest.raises(ConfigError, match="ratio"):
        RandomCrop(ratio=(0.9, 0.5))


def test_persons_pad_and_select():
    x, lengths = _batch(m=2)
    one, _ = Persons(1).apply_batch(x, lengths)
    np.testing.assert_array_equal(one, x[..., :1])
    three, _ = Persons(3).apply_batch(x, lengths)
    assert three.shape[-1] == 3 and not three[..., 2].any()
    np.testing.assert_array_equal(three[..., :2], x)


def test_map_layout_then_ntu_joint_names():
    x, lengths = _batch(v=20)
    pipe = build_pipeline([{"name": "map_layout", "target": "ntu25"},
                           {"name": "center", "joint": "spine_shoulder"}, "rotate_y"], "kinect_v1")
    assert pipe.output_layout("kinect_v1") == "ntu25"
    assert pipe.transforms[1].index == 20 and pipe.transforms[2].layout.name == "ntu25"
    mapped, _ = MapLayout("ntu25", layout="kinect_v1").apply_batch(x, lengths)
    assert mapped.shape == (3, 3, 12, 25, 2)
    np.testing.assert_array_equal(mapped[:, :, :, 20], x[:, :, :, 2])  # spine shoulder
    np.testing.assert_allclose(mapped[:, :, :, 2], (x[:, :, :, 2] + x[:, :, :, 3]) / 2, atol=1e-6)  # neck
    np.testing.assert_array_equal(mapped[:, :, :, 23], x[:, :, :, 11])  # hand tip -> hand
    assert not mapped[1, ..., 1].any()
    out, _ = pipe.apply_batch(x, lengths)
    np.testing.assert_allclose(out[:, :, :, 20], 0, atol=1e-6)
    back, _ = MapLayout("kinect_v1", layout="ntu25").apply_batch(mapped, lengths)
    np.testing.assert_array_equal(back, x)
    with pytest.raises(ConfigError, match="unknown joint layout 'openpose18'"):
        MapLayout("openpose18", layout="ntu25")


# ------------------------------------------------------------------ pipelines
def test_build_pipeline_from_yaml_config_and_round_trip():
    spec = yaml.safe_load("""
- {name: center, joint: spine_shoulder, mode: per_frame}
- {name: resize, frames: 50}
- rotate_y
""")
    pipe = build_pipeline(spec, "ntu25")
    assert [type(t) for t in pipe] == [Center, Resize, RotateY]
    cfg = pipe.to_config()
    assert cfg[0] == {"name": "center", "joint": "spine_shoulder", "mode": "per_frame"}
    assert build_pipeline(cfg, "ntu25") == pipe
    x, lengths = _batch(v=25, t=12)
    out, lens = pipe.apply_batch(x, lengths)
    assert out.shape == (3, 3, 50, 25, 2) and lens.tolist() == [50] * 3
    np.testing.assert_allclose(out[:, :, :, 20], 0, atol=1e-6)
    one, ln = pipe(x[1], 7)
    np.testing.assert_allclose(one, out[1], atol=1e-6)
    assert ln == 50


def test_presets_per_layout():
    for layout, top in (("ntu25", 20), ("kinect_v1", 2)):
        pgfa = build_pipeline("pgfa50", layout)
        assert pgfa.transforms[0].index == top and pgfa.transforms[1].frames == 50
        assert isinstance(pgfa.transforms[2], RotateY)
        flora = build_pipeline("flora50", layout)
        assert [t.name for t in flora] == ["persons", "center", "resize"]
        assert flora.transforms[1].mode == "first_frame" and flora.transforms[1].index == 1
    none = build_pipeline("none", "ntu25")
    x, lengths = _batch()
    out, lens = none.apply_batch(x, lengths)
    np.testing.assert_array_equal(out, x)
    assert out is not x
    assert set(PRESETS) >= {"pgfa50", "flora50", "none"}


def test_pipeline_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="unknown preprocessing preset 'pgfa51'.*pgfa50"):
        build_pipeline("pgfa51", "ntu25")
    with pytest.raises(ConfigError, match=r"cfg\.yaml\[1\].*unknown transform.*'flip'.*resize"):
        build_pipeline(["resize", {"name": "flip"}], "ntu25", where="cfg.yaml")
    with pytest.raises(ConfigError, match=r"\[0\].*no option 'size'.*frames"):
        build_pipeline([{"name": "resize", "size": 50}], "ntu25")
    with pytest.raises(ConfigError, match="no key 'name'"):
        build_pipeline([{"frames": 50}], "ntu25")
    with pytest.raises(ConfigError, match="frames"):
        build_pipeline([{"name": "resize", "frames": 0}], "ntu25")
    with pytest.raises(DataError, match=r"\(3, T, V, M\)"):
        Resize(5)(np.zeros((3, 4, 20)), 4)
    with pytest.raises(DataError, match="lengths must be in"):
        Resize(5).apply_batch(np.zeros((1, 3, 4, 20, 1)), np.array([5]))
    with pytest.raises(DataError, match="whole frame counts, got \\[3.7\\]"):
        Resize(5).apply_batch(np.zeros((1, 3, 4, 20, 1)), np.array([3.7]))  # was cut to 3
    with pytest.raises(DataError, match="numeric coordinates, got dtype <U1"):
        Resize(5).apply_batch(np.full((1, 3, 4, 20, 1), "a"), np.array([4]))
    with pytest.raises(ConfigError, match="pass rng=np.random.default_rng\\(seed\\), got int"):
        build_pipeline(["random_crop"], "ntu25").apply_batch(np.ones((1, 3, 4, 25, 1)), np.array([4]), rng=3)


def test_apply_pipeline_chunks_equal_one_batch():
    x, lengths = _batch(n=3)
    pipe = build_pipeline("pgfa50", "kinect_v1")
    whole, lw = pipe.apply_batch(x, lengths)
    chunked, lc = apply_pipeline(x, lengths, pipe, chunk_size=2)
    np.testing.assert_array_equal(whole, chunked)
    np.testing.assert_array_equal(lw, lc)
    bad = x.copy()
    bad[2, 0, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="input sample 2 contains NaN/inf \\(before any transform\\)"):
        apply_pipeline(bad, lengths, pipe, chunk_size=2)


# ------------------------------------------------------------------ real skeletons
def test_pgfa50_on_real_utd_mhad(data_root):
    from zeroskel.data.registry import read_dataset
    need(data_root, "utd_mhad")
    ds = read_dataset("utd_mhad", data_root, progress=False)
    pipe = build_pipeline("pgfa50", ds.layout)
    out, lens = apply_pipeline(ds.data, ds.lengths, pipe)
    assert out.shape == (861, 3, 50, 20, 1) and (lens == 50).all()
    np.testing.assert_allclose(out[:, :, :, 2], 0, atol=1e-6)  # shoulder centre is the origin
    vec = out[:, :, :, 8, 0] - out[:, :, :, 4, 0]
    np.testing.assert_allclose(vec[:, 2], 0, atol=1e-5)
    assert (vec[:, 0] > 0).all()
    # bone lengths survive centring, resizing (of rigid bones, approximately) and rotation
    bone = np.linalg.norm(out[:, :, :, 5] - out[:, :, :, 4], axis=1).mean()
    raw = np.linalg.norm(ds.data[:, :, :, 5] - ds.data[:, :, :, 4], axis=1)
    raw_mean = np.mean([raw[i, :L].mean() for i, L in enumerate(ds.lengths)])
    assert abs(bone - raw_mean) < 0.01


def test_pgfa50_on_real_ntu_two_person_samples(data_root):
    path = need(data_root, "ntu_samples/NTU_preprocessed_skeleton_examples.npy")
    x = np.load(path).astype(np.float32)
    lengths = (np.abs(x[:, :, :, 0, 0]).sum(1) != 0).sum(1)  # AimCLR get_length
    out, lens = build_pipeline("pgfa50", "ntu25").apply_batch(x, lengths)
    assert out.shape == (4, 3, 50, 25, 2)
    np.testing.assert_allclose(out[:, :, :, 20], 0, atol=1e-6)
    vec = out[:, :, :, 8] - out[:, :, :, 4]
    np.testing.assert_allclose(vec[:, 2], 0, atol=1e-5)
    present = np.abs(out).sum(axis=(1, 3)) > 0  # (N, T, M)
    assert (vec[:, 0][present] > 0).all()
    flora, _ = build_pipeline("flora50", "ntu25").apply_batch(x, lengths)
    assert flora.shape == (4, 3, 50, 25, 1)


def _aimclr_frame50(sample: np.ndarray, frames: int = 50) -> np.ndarray:
    """Loop-by-loop transcription of the AimCLR frame50 steps (relative centring on joint
    20, resize of person 0's valid frames per person, per-person y rotation) for one
    (3, T, 25, M) sample, written independently of zeroskel's vectorised code."""
    length = int((np.abs(sample[:, :, 0, 0]).sum(axis=0) != 0).sum())
    x = sample.astype(np.float64) - sample[:, :, 20:21, :]
    out = np.zeros((3, frames, 25, x.shape[-1]))
    for m in range(x.shape[-1]):
        seq = x[:, :length, :, m].transpose(1, 2, 0)  # (L, V, C)
        out[:, :, :, m] = _cv2_linear(seq, frames).transpose(2, 0, 1)
    for m in range(x.shape[-1]):
        vec = out[:, :, 8, m] - out[:, :, 4, m]
        vec[1] = 0
        theta = np.degrees(np.arccos(vec[0] / (np.sqrt((vec ** 2).sum(0)) + 1e-4)))
        if vec[2].sum() >= 0:
            theta = -theta
        for t in range(frames):
            a = np.radians(theta[t])
            rot = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
            out[:, t, :, m] = rot @ out[:, t, :, m]
    return out


def test_pgfa50_ref_reproduces_aimclr_on_real_ntu(data_root):
    path = need(data_root, "ntu_samples/NTU_preprocessed_skeleton_examples.npy")
    x = np.load(path).astype(np.float32)
    lengths = (np.abs(x[:, :, :, 0, 0]).sum(1) != 0).sum(1)
    ours, _ = build_pipeline("pgfa50_ref", "ntu25").apply_batch(x, lengths)
    for i in range(len(x)):
        np.testing.assert_allclose(ours[i], _aimclr_frame50(x[i]), atol=2e-5)


def test_motion_mask_drops_the_fast_frames_and_keeps_order():
    # frame value = frame index, except frames 10-12 jump far away (high motion around them)
    x = np.zeros((2, 3, 30, 20, 1), np.float32)
    x[:, 0] = np.arange(30, dtype=np.float32)[None, :, None, None]
    x[:, 0, 10:13] += 100.0
    lengths = np.array([30, 20])
    rng = np.random.default_rng(0)
    # drop 4: the 4 highest-energy frames are 9..13's neighbourhood peaks: 10, 12 (both
    # differences large), then 9 and 13 (one large difference each); frame 11 has two zero
    # differences to its jumped neighbours and survives
    out, lens = MotionMask(drop=4, keep=26).apply_batch(x, lengths, rng)
    assert out.shape == (2, 3, 26, 20, 1) and lens.tolist() == [26, 26]
    kept = out[0, 0, :, 0, 0]
    assert kept.tolist() == [t + 100 * (t == 11) for t in range(30) if t not in (9, 10, 12, 13)]
    # a random subset of the low-motion frames, in temporal order, different per sample
    out, _ = MotionMask(drop=4, keep=8).apply_batch(np.concatenate([x[:1]] * 2), np.array([30, 30]), rng)
    a, b = out[0, 0, :, 0, 0], out[1, 0, :, 0, 0]
    assert np.all(np.diff(a) > 0) and not {9, 10, 12, 13} & set(a.tolist()) and not np.array_equal(a, b)
    # short sample: 16 low-motion frames of 20 for keep=26 are repeated, still in order
    second = MotionMask(drop=4, keep=26).apply_batch(x, lengths, rng)[0][1, 0, :, 0, 0]
    frames = second - 100 * (second >= 100)  # back to frame indices
    assert len(second) == 26 and np.all(np.diff(frames) >= 0) and set(frames.tolist()) <= set(range(20))
    assert MotionMask(drop=4, keep=8).random and MotionMask().to_config() == {"name": "motion_mask", "drop": 15,
                                                                             "keep": 20}
    with pytest.raises(ConfigError, match="motion_mask: 'keep'"):
        MotionMask(keep=0)
    with pytest.raises(ConfigError, match="rng"):
        MotionMask().apply_batch(x, lengths)



def test_option_values_that_would_misbehave_are_refused_by_name():
    # min_norm 0 divided absent persons' zero shoulder vectors by zero (NaN at apply time, an
    # error blaming the pipeline), NaN silently rotated nothing, a string gave a ValueError;
    # a quoted "false" turned the AimCLR reference arithmetic on
    for bad in (0, -1.0, float("nan"), "abc", True):
        with pytest.raises(ConfigError, match="rotate_y: 'min_norm' must be a positive number"):
            build_pipeline([{"name": "rotate_y", "min_norm": bad}], "ntu25")
    with pytest.raises(ConfigError, match="rotate_y: 'reference' must be true or false, got 'false'"):
        build_pipeline([{"name": "rotate_y", "reference": "false"}], "ntu25")
    assert build_pipeline([{"name": "rotate_y", "min_norm": 1e-3}], "ntu25").transforms[0].min_norm == 1e-3
    for bad in ("0.5", [], True, ["a", 1]):
        with pytest.raises(ConfigError, match="random_crop: 'ratio' must be p or"):
            build_pipeline([{"name": "random_crop", "ratio": bad}], "ntu25")
    assert RandomCrop(ratio=np.float64(0.5)).ratio == (0.5,)
    assert RandomCrop(ratio=np.array([0.7, 1.0])).ratio == (0.7, 1.0)  # an array from Python code


def test_random_crop_single_ratio_is_the_documented_centre_window():
    # the docstring's example: 110 valid frames, p = 0.95 -> floor(104.5) = 104 frames 3..106
    # (CTR-GCN's centre crop would keep 2..107)
    x = np.zeros((1, 3, 120, 2, 1), np.float32)
    x[0, 0, :110, 0, 0] = np.arange(110)
    out, _ = RandomCrop(frames=104, ratio=0.95).apply_batch(x, np.array([110]))
    np.testing.assert_allclose(out[0, 0, :, 0, 0], np.arange(3, 107), atol=1e-5)


def test_single_sample_call_refuses_a_fractional_length():
    # t(sample, 7.5) used to cut the length to 7 silently (apply_batch refuses 7.5)
    x = np.ones((3, 10, 2, 1), np.float32)
    assert Resize(5)(x, 7.0)[1] == 5 and Resize(5)(x, np.int64(7))[1] == 5
    with pytest.raises(DataError, match=r"lengths must be whole frame counts, got \[7.5\]"):
        Resize(5)(x, 7.5)
