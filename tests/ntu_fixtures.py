"""Writers of NTU RGB+D ``.skeleton`` files in the exact published text format, for tests.

NTU cannot be shipped, so the tests build small files here: synthetic people (a standing
Kinect-v2 pose, arms swinging, optionally walking), noise objects (wide, flat "tables"),
empty frames, and real NTU sequences written back out. Numbers are written like the Kinect
SDK's C# output: 7 significant digits, ``E`` exponents, CRLF line ends by default.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# Standing person, 25 Kinect-v2 joints in NTU order, metres, relative to the spine base.
STANDING_POSE = np.array([
    [0.00, 0.00, 0.00],    # 0 spine base
    [0.00, 0.28, 0.00],    # 1 spine mid
    [0.00, 0.55, 0.00],    # 2 neck
    [0.00, 0.70, 0.02],    # 3 head
    [-0.18, 0.47, 0.00],   # 4 left shoulder
    [-0.22, 0.21, 0.02],   # 5 left elbow
    [-0.24, -0.03, 0.04],  # 6 left wrist
    [-0.25, -0.09, 0.05],  # 7 left hand
    [0.18, 0.47, 0.00],    # 8 right shoulder
    [0.22, 0.21, 0.02],    # 9 right elbow
    [0.24, -0.03, 0.04],   # 10 right wrist
    [0.25, -0.09, 0.05],   # 11 right hand
    [-0.08, -0.02, 0.00],  # 12 left hip
    [-0.09, -0.42, 0.02],  # 13 left knee
    [-0.09, -0.80, 0.03],  # 14 left ankle
    [-0.09, -0.85, -0.07], # 15 left foot
    [0.08, -0.02, 0.00],   # 16 right hip
    [0.09, -0.42, 0.02],   # 17 right knee
    [0.09, -0.80, 0.03],   # 18 right ankle
    [0.09, -0.85, -0.07],  # 19 right foot
    [0.00, 0.48, 0.00],    # 20 spine shoulder
    [-0.25, -0.15, 0.05],  # 21 left hand tip
    [-0.22, -0.11, 0.02],  # 22 left thumb
    [0.25, -0.15, 0.05],   # 23 right hand tip
    [0.22, -0.11, 0.02],   # 24 right thumb
], dtype=np.float64)

_ARM = {"left": (5, 6, 7, 21, 22), "right": (9, 10, 11, 23, 24)}

BODY_ID_BASE = 72057594037927936  # real NTU bodyIDs are around 7.2e16 (> 2**53)


def person(num_frames: int, origin=(0.0, 0.0, 3.0), swing: float = 0.15, walk=(0.0, 0.0, 0.0),
           phase: float = 0.0, seed: int = 0) -> np.ndarray:
    """(T, 25, 3) standing person at ``origin`` (spine base, camera space) swinging both
    arms by ``swing`` metres and moving by ``walk`` metres per frame, with 2 mm jitter."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames)
    x = np.repeat(STANDING_POSE[None], num_frames, axis=0)
    s = swing * np.sin(2 * np.pi * t / 30.0 + phase)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        idx = list(_ARM[side])
        x[:, idx, 1] += (sign * s)[:, None] * np.linspace(0.5, 1.0, len(idx))[None]
        x[:, idx, 2] -= np.abs(s)[:, None] * 0.5
    x += np.asarray(origin)[None, None] + t[:, None, None] * np.asarray(walk)[None, None]
    x += rng.normal(scale=0.002, size=x.shape)
    return x


def table(num_frames: int, origin=(0.5, -0.4, 2.5), seed: int = 1) -> np.ndarray:
    """(T, 25, 3) noise "body" as Kinect reports for furniture: 1.4 m wide, 0.15 m tall."""
    rng = np.random.default_rng(seed)
    base = np.stack([np.linspace(-0.7, 0.7, 25), rng.uniform(-0.075, 0.075, 25),
                     rng.uniform(-0.1, 0.1, 25)], axis=1)
    return base[None] + np.asarray(origin) + rng.normal(scale=0.003, size=(num_frames, 25, 3))


def tracks_to_frames(num_frames: int, tracks: dict[int, tuple[int, np.ndarray]] | dict,
                     empty: tuple[int, ...] = ()) -> list[list[tuple[int, np.ndarray]]]:
    """Per-body tracks -> per-frame body lists.

    Args:
        tracks: ``{bodyID: (first_frame, joints (K, 25, 3))}`` or
            ``{bodyID: (frame_indices, joints)}``; bodies listed in dict order in each frame.
        empty: frames forced to hold zero bodies.
    """
    frames: list[list] = [[] for _ in range(num_frames)]
    for bid, (where, joints) in tracks.items():
        idx = range(where, where + len(joints)) if np.isscalar(where) else where
        for f, j in zip(idx, joints):
            if f not in empty:
                frames[f].append((bid, j))
    return frames


def _num(v: float) -> str:
    s = f"{v:.7g}"
    return s.replace("e", "E")


def _body_line(bid: int, rng) -> str:
    # clippedEdges handLeftConfidence handLeftState handRightConfidence handRightState
    # isResticted leanX leanY trackingState
    vals = [0, 1, int(rng.integers(0, 4)), 1, int(rng.integers(0, 4)), 0,
            float(rng.normal(0, 0.05)), float(rng.normal(0, 0.05)), 2]
    return " ".join([str(bid)] + [_num(v) if isinstance(v, float) else str(v) for v in vals])


def _joint_line(p: np.ndarray, rng) -> str:
    x, y, z = (float(v) for v in p)
    zz = z if abs(z) > 1e-6 else 1e-6
    depth = (256.0 + 365.0 * x / zz, 212.0 - 365.0 * y / zz)  # Kinect v2 depth camera
    color = (960.0 + 1060.0 * x / zz, 540.0 - 1060.0 * y / zz)  # RGB camera
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    track = 2 if np.any(p) else 0
    return " ".join(_num(v) for v in (x, y, z, *depth, *color, *q)) + f" {track}"


def skeleton_text(frames: list[list[tuple[int, np.ndarray]]], newline: str = "\r\n",
                  seed: int = 0) -> str:
    """The ``.skeleton`` text of ``frames`` (per frame a list of ``(bodyID, (25, 3))``)."""
    rng = np.random.default_rng(seed)
    out = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for bid, joints in bodies:
            joints = np.asarray(joints, dtype=np.float64)
            assert joints.shape == (25, 3), joints.shape
            out.append(_body_line(int(bid), rng))
            out.append("25")
            out.extend(_joint_line(p, rng) for p in joints)
    return newline.join(out) + newline


def write_skeleton(path: str | Path, frames, newline: str = "\r\n", seed: int = 0) -> Path:
    """Write one ``.skeleton`` file (see :func:`skeleton_text`); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(skeleton_text(frames, newline, seed).encode())
    return path


def write_missing_list(path: str | Path, names, dataset: str = "NTU RGB+D") -> Path:
    """A missing-skeleton list in the official layout: two lines of prose, a blank line,
    then one sample name per line."""
    path = Path(path)
    path.write_text(f'{len(names)} of the captured samples in the "{dataset}" dataset have '
                    "missing or incomplete skeleton data.\nIf you are working on "
                    "skeleton-based analysis, please ignore these files in your training and "
                    "testing procedures.\n\n" + "".join(f"{n}\n" for n in names))
    return path


def sample_name(setup=1, camera=1, subject=1, replication=1, action=1) -> str:
    return f"S{setup:03d}C{camera:03d}P{subject:03d}R{replication:03d}A{action:03d}"


def single_person_frames(num_frames: int = 100, seed: int = 0, **kw):
    """One person (see :func:`person`) tracked in every frame."""
    body = person(num_frames, seed=seed, **kw)
    return tracks_to_frames(num_frames, {BODY_ID_BASE + 1 + seed: (0, body)})


def two_person_frames(num_frames: int = 100, seed: int = 0):
    """Realistic interaction (A050+): a strongly moving and a calmer person, 1 m apart."""
    a = person(num_frames, origin=(-0.5, 0.0, 3.0), swing=0.3, walk=(0.004, 0, 0), seed=seed)
    b = person(num_frames, origin=(0.5, 0.0, 3.2), swing=0.05, seed=seed + 1)
    return tracks_to_frames(num_frames, {BODY_ID_BASE + 10: (0, a), BODY_ID_BASE + 11: (0, b)})
