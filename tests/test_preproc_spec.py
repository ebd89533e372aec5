"""The named preprocessing presets against the rules the reference specs state, on tiny
synthetic skeletons whose expected outputs are computed by hand.

pgfa50 (pgfa-smie-spec section 1, AimCLR frame50): centre on joint index 20 in every frame
and person; resize person 0's valid frames [0, L) to 50 with cv2 INTER_LINEAR (half-pixel
centres); rotate each frame about y so the shoulder vector (idx 8 - idx 4) lies along +x.
flora50 (data/features/README.md): one person, centred on the spine joint of the first
frame, valid frames resized to 50.
"""
from __future__ import annotations

import numpy as np

from zeroskel.data.transforms import build_pipeline

# a canonical NTU-25 pose (metres, y up) whose shoulder vector r - l lies along +x
_BASE = np.zeros((25, 3), np.float32)
_BASE[:, 1] = np.linspace(-0.8, 0.6, 25)  # every joint at its own height
_BASE[:, 2] = np.linspace(-0.1, 0.1, 25)  # and its own depth
_BASE[4] = [-0.2, 0.4, 0.05]   # l_shoulder
_BASE[8] = [0.2, 0.4, 0.05]    # r_shoulder: r - l = (0.4, 0, 0)
_BASE[20] = [0.0, 0.45, 0.0]   # spine_shoulder, the pgfa50 centre
_BASE[1] = [0.01, 0.1, 0.02]   # spine_mid, the flora50 origin


def _yaw(deg: float) -> np.ndarray:
    """Rotation about the vertical y axis (x' = c x + s z, z' = -s x + c z)."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float32)


def _sequence(T: int, L: int, drift=(0.01, 0.002, -0.003), yaw: float = 0.0, m: int = 2):
    """(1, 3, T, 25, m): person 0 = the base pose turned by ``yaw``, walking by ``drift`` per
    frame, its head (joint 3) rising 0.001 per frame; frames [L, T) and person 1 all zero."""
    t = np.arange(L, dtype=np.float32)
    pose = (_BASE @ _yaw(yaw).T)[None].repeat(L, 0)  # (L, 25, 3)
    pose += t[:, None, None] * np.asarray(drift, np.float32)
    pose[:, 3, 1] += 0.001 * t
    x = np.zeros((1, 3, T, 25, m), np.float32)
    x[0, :, :L, :, 0] = pose.transpose(2, 0, 1)
    return x


def test_pgfa50_keeps_frames_6j_plus_2_5_of_300_and_centres_every_frame():
    x = _sequence(300, 300)
    out, lens = build_pipeline("pgfa50", "ntu25").apply_batch(x, np.array([300]))
    assert out.shape == (1, 3, 50, 25, 2) and lens.tolist() == [50]
    # 300 -> 50: output frame j reads source (j + 0.5) * 6 - 0.5 = 6j + 2.5, the mean of frames
    # 6j + 2 and 6j + 3; centring per frame removes the walk, so only the head's rise is left
    src = 6 * np.arange(50) + 2.5
    expected = np.repeat((_BASE - _BASE[20])[None], 50, 0)  # (50, 25, 3)
    expected[:, 3, 1] += 0.001 * src
    np.testing.assert_allclose(out[0, :, :, :, 0].transpose(1, 2, 0), expected, atol=2e-6)
    assert not out[0, ..., 1].any()  # the missing second person stays zero


def test_pgfa50_resizes_only_the_valid_frames_with_half_pixel_centres():
    x = _sequence(300, 20)
    out, _ = build_pipeline("pgfa50", "ntu25").apply_batch(x, np.array([20]))
    # 20 -> 50: source (j + 0.5) * 0.4 - 0.5, clamped to [0, 19]: j = 0 reads frame 0
    # (-0.3), j = 1 reads 0.1, j = 2 reads 0.5, j = 49 reads 19.3 -> 19; frames 20..299 unused
    src = np.clip((np.arange(50) + 0.5) * 0.4 - 0.5, 0, 19)
    assert src[0] == 0 and np.isclose(src[1], 0.1) and np.isclose(src[2], 0.5) and src[49] == 19
    head_y = _BASE[3, 1] - _BASE[20, 1] + 0.001 * src
    np.testing.assert_allclose(out[0, 1, :, 3, 0], head_y, atol=2e-6)


def test_pgfa50_rotation_undoes_any_facing_direction_about_y():
    # the same motion seen from four directions gives the same pgfa50 output: the rotation
    # is about y (up), the shoulder vector ends on +x and y is never changed
    ref, _ = build_pipeline("pgfa50", "ntu25").apply_batch(_sequence(60, 60), np.array([60]))
    for deg in (90.0, -90.0, 135.0, 180.0):
        out, _ = build_pipeline("pgfa50", "ntu25").apply_batch(_sequence(60, 60, yaw=deg), np.array([60]))
        np.testing.assert_allclose(out, ref, atol=1e-5)
    np.testing.assert_allclose(ref[0, :, :, 8, 0] - ref[0, :, :, 4, 0],
                               np.array([[0.4], [0.0], [0.0]]).repeat(50, 1), atol=1e-6)


def test_pgfa50_second_person_is_centred_and_rotated_on_its_own():
    x = _sequence(40, 40)
    x[0, :, :40, :, 1] = (_sequence(40, 40, yaw=90.0, drift=(0.5, 0, 0.5))[0, :, :, :, 0]
                          + np.float32(3.0))  # elsewhere, turned, walking fast
    out, _ = build_pipeline("pgfa50", "ntu25").apply_batch(x, np.array([40]))
    np.testing.assert_allclose(out[..., 1], out[..., 0], atol=1e-5)


def test_flora50_one_person_first_frame_origin_valid_frames_only():
    x = _sequence(300, 100)
    x[0, :, :100, :, 1] = 7.0  # a second person, dropped by flora50
    out, lens = build_pipeline("flora50", "ntu25").apply_batch(x, np.array([100]))
    assert out.shape == (1, 3, 50, 25, 1) and lens.tolist() == [50]
    # 100 -> 50: output frame j reads source 2j + 0.5; the origin is spine_mid of frame 0
    # (not of every frame), so the walk is kept
    src = 2 * np.arange(50) + 0.5
    expected = (_BASE - _BASE[1])[None] + src[:, None, None] * np.array([0.01, 0.002, -0.003], np.float32)
    expected[:, 3, 1] += 0.001 * src
    np.testing.assert_allclose(out[0, :, :, :, 0].transpose(1, 2, 0), expected, atol=2e-6)
