"""Skeleton preprocessing transforms: small composable objects in the style of PySKL.

Every transform works on one sample or on a batch of samples:

* one sample: ``data`` float32 (C=3, T, V, M) and its valid length ``length`` (int);
  ``t(data, length, rng=None) -> (data, length)``;
* a batch: ``data`` (N, 3, T, V, M) and ``lengths`` (N,);
  ``t.apply_batch(data, lengths, rng=None) -> (data, lengths)``, vectorised with numpy.

Frames ``[length:T)`` and absent persons are zero on input and stay zero on output. A
person is *absent* in a frame when all its joint coordinates are exactly zero (the readers'
padding). Inputs are never modified in place.

Transforms are deterministic unless they say they are random (``t.random``); random ones
draw from the ``numpy.random.Generator`` passed as ``rng`` (and refuse to run without one).
``t.to_config()`` returns the JSON-able dict that :func:`build_pipeline` turns back into an
equal transform; the prepared-dataset cache hashes it.

Joint arguments take a joint name of the layout (``spine_shoulder``), a joint id, or one of
the layout-independent aliases in :data:`JOINT_ALIASES` (``torso_top``, ``torso_mid``), so
one YAML config works on NTU-25 and Kinect-v1 data.

Pipelines (a list of dicts or names; a string is a preset of :data:`PRESETS`)::

    [{name: center, joint: spine_shoulder, mode: per_frame}, {name: resize, frames: 50},
     {name: rotate_y}]
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Iterable, Mapping

import numpy as np

from .._checks import whole_numbers
from ..errors import ConfigError, DataError, unknown_name
from .layouts import JointLayout, get_layout

__all__ = [
    "Transform", "Center", "Resize", "RotateY", "RandomCrop", "MotionMask", "Persons", "MapLayout", "Compose",
    "TRANSFORMS", "PRESETS", "JOINT_ALIASES", "build_pipeline", "resolve_joint",
    "interp_indices", "apply_pipeline",
]

# Layout-independent joint names -> the joint standing in for them in each layout.
JOINT_ALIASES: dict[str, dict[str, str]] = {
    # top of the torso, between the shoulders (AimCLR/PGFA centre: NTU joint 21)
    "torso_top": {"ntu25": "spine_shoulder", "kinect_v1": "shoulder_center", "utd_mhad": "shoulder_center"},
    # middle of the spine (CTR-GCN/Flora first-frame origin: NTU joint 2)
    "torso_mid": {"ntu25": "spine_mid", "kinect_v1": "spine", "utd_mhad": "spine"},
    # base of the spine, between the hips
    "torso_base": {"ntu25": "spine_base", "kinect_v1": "hip_center", "utd_mhad": "hip_center"},
}


def resolve_joint(layout: JointLayout, joint: str | int) -> int:
    """Joint id of ``joint`` (a name of ``layout``, an alias of :data:`JOINT_ALIASES` or an id)."""
    if isinstance(joint, str) and joint not in layout.joints and joint in JOINT_ALIASES:
        alias = JOINT_ALIASES[joint]
        if layout.name not in alias:
            raise ConfigError(f"joint alias {joint!r} has no joint in layout {layout.name!r}")
        joint = alias[layout.name]
    if isinstance(joint, str) and joint not in layout.joints:
        raise unknown_name(f"joint of layout {layout.name!r} (or alias)", joint,
                           list(layout.joints) + list(JOINT_ALIASES))
    if isinstance(joint, bool) or not isinstance(joint, (str, int, np.integer)):
        raise ConfigError(f"joint must be a name or an id, got {joint!r}")
    try:
        return layout.index(joint)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _as_layout(layout: JointLayout | str | None, who: str) -> JointLayout:
    if layout is None:
        raise ConfigError(f"transform {who!r} needs the joint layout (pass layout=...)")
    return get_layout(layout) if isinstance(layout, str) else layout


def _check_batch(data: np.ndarray, lengths: np.ndarray, who: str,
                 layout: JointLayout | None = None) -> tuple[np.ndarray, np.ndarray]:
    data = np.asarray(data)
    lengths = np.asarray(lengths)
    if data.ndim != 5 or data.shape[1] != 3:
        raise DataError(f"transform {who!r}: data must be (N, 3, T, V, M), got shape {data.shape}")
    if not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
        raise DataError(f"transform {who!r}: data must be numeric coordinates, got dtype {data.dtype}")
    if lengths.size and not whole_numbers(lengths):
        raise DataError(f"transform {who!r}: lengths must be whole frame counts, got {lengths[:5].tolist()}")
    if layout is not None and data.shape[3] != layout.num_joints:
        raise DataError(f"transform {who!r}: built for layout {layout.name!r} with {layout.num_joints} "
                        f"joints, data has V={data.shape[3]}")
    if lengths.shape != (data.shape[0],):
        raise DataError(f"transform {who!r}: lengths must be ({data.shape[0]},), got {lengths.shape}")
    if len(lengths) and (lengths.min() < 1 or lengths.max() > data.shape[2]):
        raise DataError(f"transform {who!r}: lengths must be in [1, T={data.shape[2]}], got "
                        f"{int(lengths.min())}..{int(lengths.max())}")
    return data, lengths.astype(np.int64)


def interp_indices(lengths: np.ndarray, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear-interpolation taps for resizing each sample's ``lengths[n]`` frames to ``frames``.

    Half-pixel centres with edge clamping, as ``cv2.resize(..., INTER_LINEAR)`` and
    ``torch.nn.functional.interpolate(mode='linear', align_corners=False)``: output frame j
    reads source position ``s = (j + 0.5) * L / frames - 0.5`` clamped to ``[0, L - 1]``,
    ``out[j] = (1 - w) * x[floor(s)] + w * x[min(floor(s) + 1, L - 1)]``, ``w = s - floor(s)``.

    Returns:
        i0, i1: int (N, frames) source frame indices; w: float32 (N, frames) weights of i1.
    """
    lengths = np.asarray(lengths, dtype=np.float64)[:, None]
    src = (np.arange(frames, dtype=np.float64)[None] + 0.5) * (lengths / frames) - 0.5
    src = np.clip(src, 0.0, lengths - 1)
    i0 = np.floor(src).astype(np.int64)
    w = (src - i0).astype(np.float32)
    i1 = np.minimum(i0 + 1, lengths.astype(np.int64) - 1)
    return i0, i1, w


def _resample(data: np.ndarray, start: np.ndarray, count: np.ndarray, frames: int) -> np.ndarray:
    """Linearly resize frames ``[start[n], start[n] + count[n])`` of each sample to ``frames``."""
    i0, i1, w = interp_indices(count, frames)
    start = np.asarray(start, dtype=np.int64)[:, None]
    n = np.arange(len(count))[:, None]
    # gather whole (C, V, M) blocks per (sample, frame) through a (N, T, C, V, M) view: much
    # faster than take_along_axis with broadcast index arrays
    xt = data.transpose(0, 2, 1, 3, 4)
    a = xt[n, i0 + start].astype(np.float32, copy=False)  # (N, frames, C, V, M), new arrays
    b = xt[n, i1 + start].astype(np.float32, copy=False)
    b -= a
    b *= w[:, :, None, None, None]
    b += a
    return np.ascontiguousarray(b.transpose(0, 2, 1, 3, 4))


class Transform:
    """Base class. Subclasses set ``name`` and implement :meth:`apply_batch` and
    :meth:`to_config`; ``random = True`` if they draw from ``rng``."""

    name: ClassVar[str] = ""
    random: ClassVar[bool] = False

    def apply_batch(self, data: np.ndarray, lengths: np.ndarray,
                    rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """data (N, 3, T, V, M), lengths (N,) -> (N, 3, T', V, M'), (N,)."""
        raise NotImplementedError

    def __call__(self, data: np.ndarray, length: int,
                 rng: np.random.Generator | None = None) -> tuple[np.ndarray, int]:
        """One sample: data (3, T, V, M), length -> (3, T', V, M'), length'."""
        data = np.asarray(data)
        if data.ndim != 4:
            raise DataError(f"transform {self.name!r}: one sample must be (3, T, V, M), got "
                            f"shape {data.shape} (use apply_batch for (N, 3, T, V, M))")
        out, lengths = self.apply_batch(data[None], np.array([length]), rng)  # 7.5 refused, not cut to 7
        return out[0], int(lengths[0])

    def to_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def output_layout(self, layout: str) -> str:
        """Joint layout of the output for input ``layout`` (changed only by ``map_layout``)."""
        return layout

    def _need_rng(self, rng):
        if not isinstance(rng, np.random.Generator):
            raise ConfigError(f"transform {self.name!r} is random: pass rng=np.random.default_rng(seed)"
                              + ("" if rng is None else f", got {type(rng).__name__}"))
        return rng

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_config().items() if k != "name")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.to_config() == other.to_config()

    def __hash__(self) -> int:
        return hash(repr(self))


class Center(Transform):
    """Translate coordinates so that a joint becomes the origin.

    Args:
        joint: joint name, alias (``torso_top``, ...) or id.
        mode: ``per_frame``: subtract the joint of the same frame and person from every
            joint (AimCLR ``data_type='relative'``, the PGFA/SMIE input). ``first_frame``:
            subtract the joint's position in the first frame of person 0 (the first frame
            in which person 0 is present, i.e. frame 0 for the built-in readers) from
            every present person and frame (CTR-GCN/Flora ``seq_translation``); absent
            persons and padded frames stay zero.
        layout: the data's joint layout (name or :class:`JointLayout`).

    Shapes: (N, 3, T, V, M) -> (N, 3, T, V, M); lengths unchanged.
    """

    name = "center"
    MODES = ("per_frame", "first_frame")

    def __init__(self, joint: str | int = "torso_top", mode: str = "per_frame",
                 layout: JointLayout | str | None = None) -> None:
        if mode not in self.MODES:
            raise unknown_name("center mode", mode, self.MODES)
        self.layout = _as_layout(layout, self.name)
        self.joint, self.mode = joint, mode
        self.index = resolve_joint(self.layout, joint)

    def apply_batch(self, data, lengths, rng=None):
        data, lengths = _check_batch(data, lengths, self.name, self.layout)
        if self.mode == "per_frame":
            # absent persons and padded frames are zero, so zero minus zero keeps them zero
            out = np.subtract(data, data[:, :, :, self.index:self.index + 1, :], dtype=np.float32)
            return out, lengths
        nonzero = (data[:, 0] != 0) | (data[:, 1] != 0) | (data[:, 2] != 0)  # (N, T, V, M)
        present = nonzero.any(axis=2)  # (N, T, M)
        # origin frame: the first in which person 0 is present (frame 0 unless the sequence
        # starts empty, as CTR-GCN's seq_translation); else the first of any person
        n = len(data)
        t_first = present[:, :, 0].argmax(axis=1)
        m_first = np.zeros(n, dtype=np.int64)
        none0 = ~present[:, :, 0].any(axis=1)
        if none0.any():
            flat = present[none0].reshape(int(none0.sum()), -1).argmax(axis=1)
            t_first[none0], m_first[none0] = np.divmod(flat, data.shape[-1])
        origin = data[np.arange(n), :, t_first, self.index, m_first][:, :, None, None, None]
        out = np.subtract(data, origin, dtype=np.float32)
        out *= present[:, None, :, None, :]  # absent persons and padded frames back to zero
        return out, lengths

    def to_config(self):
        return {"name": self.name, "joint": self.joint, "mode": self.mode}


class Resize(Transform):
    """Linearly resize the valid frames ``[0:length)`` of each sample to ``frames`` frames.

    Same sampling as ``cv2.resize(x[:length], (V, frames), interpolation=INTER_LINEAR)``
    used by AimCLR's ``real_resize`` (see :func:`interp_indices`); every person uses the
    sample's length, so absent persons stay zero. The output length is ``frames``.

    Shapes: (N, 3, T, V, M) -> (N, 3, frames, V, M); lengths -> all ``frames``.
    """

    name = "resize"

    def __init__(self, frames: int = 50, layout: JointLayout | str | None = None) -> None:
        if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
            raise ConfigError(f"resize: 'frames' must be a positive integer, got {frames!r}")
        self.frames = int(frames)

    def apply_batch(self, data, lengths, rng=None):
        data, lengths = _check_batch(data, lengths, self.name)
        out = _resample(data, np.zeros(len(lengths), np.int64), lengths, self.frames)
        return out, np.full(len(lengths), self.frames, dtype=np.int64)

    def to_config(self):
        return {"name": self.name, "frames": self.frames}


class RotateY(Transform):
    """Rotate each frame of each person about the y (vertical) axis so that its shoulder
    vector (right minus left shoulder of ``layout.shoulders``, y component dropped) points
    along +x: the AimCLR ``y_rotation`` step of PGFA's frame50 input.

    For NTU-25 that is joint id 8 minus joint id 4, as in AimCLR's ``parallel_skeleton``.
    Frames whose horizontal shoulder vector is shorter than ``min_norm`` (absent persons,
    padding, degenerate skeletons) are left unrotated.

    Args:
        mode: ``per_frame`` (AimCLR): every frame and person gets its own angle, which also
            removes any turning of the body. ``first_frame``: the angle of person 0 in the
            first frame where its shoulder vector is valid rotates the whole sample, a view
            normalisation that keeps turning motion.
        reference: reproduce AimCLR's arithmetic exactly instead (``per_frame`` only): the angle is
            ``arccos(v_x / (|v| + 1e-4))`` and its *direction* is chosen once per sequence
            from the sign of the summed z component, so frames whose shoulder z has the
            other sign are rotated the wrong way (by twice their angle); zero shoulder
            vectors are rotated by 90 degrees.
        min_norm: threshold (in data units) below which a frame is not rotated.
        layout: the data's joint layout.

    Shapes: (N, 3, T, V, M) -> (N, 3, T, V, M); lengths unchanged.
    """

    name = "rotate_y"

    MODES = ("per_frame", "first_frame")

    def __init__(self, reference: bool = False, min_norm: float = 1e-6, mode: str = "per_frame",
                 layout: JointLayout | str | None = None) -> None:
        if mode not in self.MODES:
            raise unknown_name("rotate_y mode", mode, self.MODES)
        if not isinstance(reference, (bool, np.bool_)):
            # a quoted "false" must not turn the reference arithmetic on
            raise ConfigError(f"rotate_y: 'reference' must be true or false, got {reference!r}")
        if reference and mode != "per_frame":
            raise ConfigError("rotate_y: reference=True reproduces AimCLR's per-frame rotation; "
                              "it cannot be combined with mode first_frame")
        if (isinstance(min_norm, bool) or not isinstance(min_norm, (int, float, np.integer, np.floating))
                or not 0 < float(min_norm) < math.inf):
            # 0 or less divides absent persons' zero shoulder vectors by zero (NaN); NaN
            # would silently rotate no frame at all
            raise ConfigError(f"rotate_y: 'min_norm' must be a positive number, got {min_norm!r}")
        self.layout = _as_layout(layout, self.name)
        self.mode = mode
        self.reference = bool(reference)
        self.min_norm = float(min_norm)
        self.left, self.right = self.layout.shoulders

    def apply_batch(self, data, lengths, rng=None):
        data, lengths = _check_batch(data, lengths, self.name, self.layout)
        # angles in float64 from the (N, 3, T, M) shoulder vectors; the rotation in float32
        vec = (data[:, :, :, self.right, :].astype(np.float64)
               - data[:, :, :, self.left, :].astype(np.float64))
        vx, vz = vec[:, 0], vec[:, 2]
        norm = np.hypot(vx, vz)
        if self.reference:
            theta = np.arccos(vx / (norm + 1e-4))
            # AimCLR: one direction per sequence (and person), from the summed z component
            flip = vz.sum(axis=1, keepdims=True) >= 0
            theta = np.where(flip, -theta, theta)
            # their matrix is [[c, 0, -s], [0, 1, 0], [s, 0, c]]: x' = c x - s z
            c, s = np.cos(theta), -np.sin(theta)
        else:
            ok = norm >= self.min_norm
            safe = np.where(ok, norm, 1.0)
            c = np.where(ok, vx / safe, 1.0)
            s = np.where(ok, vz / safe, 0.0)
            if self.mode == "first_frame":
                # (N, T, M) -> one angle per sample: person 0's first valid frame
                first = ok[:, :, 0].argmax(axis=1)
                rows = np.arange(len(data))
                has = ok[rows, first, 0]
                c0 = np.where(has, c[rows, first, 0], 1.0)
                s0 = np.where(has, s[rows, first, 0], 0.0)
                c = np.broadcast_to(c0[:, None, None], c.shape)
                s = np.broadcast_to(s0[:, None, None], s.shape)
        # (N, T, 1, M) against the (N, T, V, M) coordinate planes
        c = c.astype(np.float32)[:, :, None, :]
        s = s.astype(np.float32)[:, :, None, :]
        px, pz = data[:, 0], data[:, 2]
        out = np.empty(data.shape, dtype=np.float32)
        out[:, 0] = c * px + s * pz
        out[:, 1] = data[:, 1]
        out[:, 2] = c * pz - s * px
        return out, lengths

    def to_config(self):
        cfg = {"name": self.name, "reference": self.reference}
        if self.mode != "per_frame":  # keeps the cache keys of existing pipelines
            cfg["mode"] = self.mode
        if self.min_norm != 1e-6:
            cfg["min_norm"] = self.min_norm
        return cfg


class RandomCrop(Transform):
    """Random temporal crop then linear resize (training augmentation).

    Crops a window of ``floor(p * length)`` valid frames (at least ``min_frames``, at
    most ``length``), p ~ U(ratio[0], ratio[1]), at a uniformly random start inside the
    valid frames, and resizes it to ``frames`` as :class:`Resize` does (CTR-GCN /
    PySKL-style ``valid_crop_resize``). With a single ratio ``(p,)`` the crop is the
    central ``floor(p * length)`` frames (at least ``min_frames``), starting at
    ``(length - count) // 2``, and the transform is deterministic. That is not CTR-GCN's
    test-time centre crop, which keeps ``length - 2 * int((1 - p) * length / 2)`` frames
    (106 of 110 for p = 0.95, where this keeps frames 3..106, 104 of them).

    Shapes: (N, 3, T, V, M) -> (N, 3, frames, V, M); lengths -> all ``frames``.
    """

    name = "random_crop"

    def __init__(self, frames: int = 50, ratio: float | Iterable[float] = (0.5, 1.0),
                 min_frames: int = 1, layout: JointLayout | str | None = None) -> None:
        number = (int, float, np.integer, np.floating)
        if isinstance(ratio, number) and not isinstance(ratio, bool):
            ratio = (float(ratio),)
        elif (isinstance(ratio, (list, tuple, np.ndarray)) and len(ratio)
              and all(isinstance(r, number) and not isinstance(r, (bool, np.bool_)) for r in ratio)):
            ratio = tuple(float(r) for r in ratio)
        else:
            raise ConfigError(f"random_crop: 'ratio' must be p or [low, high] with 0 < low <= high <= 1, "
                              f"got {ratio!r}")
        if len(ratio) not in (1, 2) or not all(0 < r <= 1 for r in ratio) or ratio != tuple(sorted(ratio)):
            raise ConfigError(f"random_crop: 'ratio' must be p or [low, high] with 0 < low <= high <= 1, "
                              f"got {ratio}")
        if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
            raise ConfigError(f"random_crop: 'frames' must be a positive integer, got {frames!r}")
        if isinstance(min_frames, bool) or not isinstance(min_frames, (int, np.integer)) or min_frames < 1:
            raise ConfigError(f"random_crop: 'min_frames' must be a positive integer, got {min_frames!r}")
        self.frames, self.ratio, self.min_frames = int(frames), ratio, int(min_frames)

    @property
    def random(self) -> bool:  # type: ignore[override]
        return len(self.ratio) == 2

    def apply_batch(self, data, lengths, rng=None, keep_lengths: bool = False):
        """``keep_lengths``: resize each crop back to its own sample's length (zero-padded to
        the batch's T, lengths unchanged) instead of to ``frames``: the training augmentation
        of variable-length data, whose test samples keep their lengths. The windows drawn
        are the same either way."""
        data, lengths = _check_batch(data, lengths, self.name)
        if len(self.ratio) == 1:
            count = np.maximum(np.floor(lengths * self.ratio[0]).astype(np.int64), 1)
            count = np.minimum(np.maximum(count, self.min_frames), lengths)
            start = (lengths - count) // 2
        else:
            rng = self._need_rng(rng)
            p = rng.uniform(self.ratio[0], self.ratio[1], size=len(lengths))
            count = np.floor(lengths * p).astype(np.int64)
            count = np.minimum(np.maximum(count, max(self.min_frames, 1)), lengths)
            start = np.floor(rng.random(len(lengths)) * (lengths - count + 1)).astype(np.int64)
        if not keep_lengths:
            out = _resample(data, start, count, self.frames)
            return out, np.full(len(lengths), self.frames, dtype=np.int64)
        out = np.zeros(data.shape, dtype=np.float32)
        for n in np.unique(lengths):
            idx = np.flatnonzero(lengths == n)
            out[idx, :, :n] = _resample(data[idx], start[idx], count[idx], int(n))
        return out, lengths.copy()

    def to_config(self):
        return {"name": self.name, "frames": self.frames, "ratio": list(self.ratio),
                "min_frames": self.min_frames}


class MotionMask(Transform):
    """SMIE's temporal mask: drop the highest-motion frames, keep a random subset of the rest.

    Per sample: the motion energy of valid frame t is the mean over C, V, M of the squared
    forward and backward differences (one-sided at the ends); the ``drop`` frames with the
    highest energy are removed (at most ``length - 1``), and ``keep`` of the remaining ones
    are drawn without replacement and kept in temporal order. When fewer than ``keep``
    remain, all of them are kept and repeated by nearest-index resampling, so the output
    always has ``keep`` frames. The reference draws one subset for the whole batch; here
    every sample draws its own.

    Shapes: (N, 3, T, V, M) -> (N, 3, keep, V, M); lengths -> all ``keep``.
    """

    name = "motion_mask"
    random = True

    def __init__(self, drop: int = 15, keep: int = 20, layout: JointLayout | str | None = None) -> None:
        for key, v, low in (("drop", drop, 0), ("keep", keep, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ConfigError(f"motion_mask: {key!r} must be an integer >= {low}, got {v!r}")
        self.drop, self.keep = int(drop), int(keep)

    def apply_batch(self, data, lengths, rng=None):
        data, lengths = _check_batch(data, lengths, self.name)
        rng = self._need_rng(rng)
        n = len(lengths)
        out = np.empty(data.shape[:2] + (self.keep,) + data.shape[3:], dtype=np.float32)
        for i in range(n):
            L = int(lengths[i])
            x = data[i, :, :L]
            d = np.diff(x, axis=1) ** 2  # (C, L-1, V, M)
            e = np.zeros(L)
            if L > 1:
                step = d.mean(axis=(0, 2, 3))
                e[1:] += step   # backward difference of frame t
                e[:-1] += step  # forward difference of frame t
            n_drop = min(self.drop, L - 1)
            # stable sort: ties keep the earlier frames
            rest = np.sort(np.argsort(-e, kind="stable")[n_drop:])
            if len(rest) > self.keep:
                rest = np.sort(rng.choice(rest, size=self.keep, replace=False))
            pick = rest[np.floor(np.arange(self.keep) * len(rest) / self.keep).astype(np.int64)]
            out[i] = x[:, pick]
        return out, np.full(n, self.keep, dtype=np.int64)

    def to_config(self):
        return {"name": self.name, "drop": self.drop, "keep": self.keep}


class Persons(Transform):
    """Keep the first ``persons`` person slots, or zero-pad up to ``persons``.

    Shapes: (N, 3, T, V, M) -> (N, 3, T, V, persons); lengths unchanged.
    """

    name = "persons"

    def __init__(self, persons: int = 2, layout: JointLayout | str | None = None) -> None:
        if isinstance(persons, bool) or not isinstance(persons, (int, np.integer)) or persons < 1:
            raise ConfigError(f"persons: 'persons' must be a positive integer, got {persons!r}")
        self.persons = int(persons)

    def apply_batch(self, data, lengths, rng=None):
        data, lengths = _check_batch(data, lengths, self.name)
        m = data.shape[-1]
        if m >= self.persons:
            return np.array(data[..., :self.persons], dtype=np.float32), lengths
        pad = np.zeros(data.shape[:-1] + (self.persons - m,), dtype=np.float32)
        return np.concatenate([data.astype(np.float32, copy=False), pad], axis=-1), lengths

    def to_config(self):
        return {"name": self.name, "persons": self.persons}


class MapLayout(Transform):
    """Convert joints to another layout with :func:`zeroskel.data.layouts.map_layout`
    (e.g. Kinect v1 -> NTU-25: each NTU joint is the mean of its stand-in Kinect joints).

    Later transforms of a pipeline resolve joint names in ``target``, and a prepared
    dataset gets layout ``target``.

    Shapes: (N, 3, T, V_source, M) -> (N, 3, T, V_target, M); lengths unchanged.
    """

    name = "map_layout"

    def __init__(self, target: str = "ntu25", layout: JointLayout | str | None = None) -> None:
        self.layout = _as_layout(layout, self.name)
        self.target = get_layout(target).name
        from .layouts import map_layout
        try:  # fail at build time, not on the first batch
            map_layout(np.zeros((self.layout.num_joints, 1)), self.layout.name, self.target, 0)
        except ConfigError as e:
            raise ConfigError(f"map_layout: {e}") from None

    def apply_batch(self, data, lengths, rng=None):
        from .layouts import map_layout
        data, lengths = _check_batch(data, lengths, self.name, self.layout)
        out = map_layout(data, self.layout.name, self.target, joint_axis=3)
        return np.array(out, dtype=np.float32), lengths

    def output_layout(self, layout: str) -> str:
        return self.target

    def to_config(self):
        return {"name": self.name, "target": self.target}


class Compose(Transform):
    """Apply transforms in order. ``Compose([])`` is the identity (it still copies)."""

    name = "compose"

    def __init__(self, transforms: Iterable[Transform] = ()) -> None:
        self.transforms = list(transforms)
        for t in self.transforms:
            if not isinstance(t, Transform):
                raise ConfigError(f"Compose takes Transform objects, got {t!r}")

    @property
    def random(self) -> bool:  # type: ignore[override]
        return any(t.random for t in self.transforms)

    def apply_batch(self, data, lengths, rng=None):
        data, lengths = _check_batch(data, lengths, self.name)
        if not self.transforms:
            return np.array(data, dtype=np.float32), lengths.copy()
        for t in self.transforms:
            data, lengths = t.apply_batch(data, lengths, rng)
        return data, lengths

    def to_config(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [t.to_config() for t in self.transforms]

    def output_layout(self, layout: str) -> str:
        for t in self.transforms:
            layout = t.output_layout(layout)
        return layout

    def __len__(self) -> int:
        return len(self.transforms)

    def __iter__(self):
        return iter(self.transforms)

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


TRANSFORMS: dict[str, type[Transform]] = {
    t.name: t for t in (Center, Resize, RotateY, RandomCrop, MotionMask, Persons, MapLayout)
}

# Named pipelines; joints are aliases so that each preset works on every layout.
PRESETS: dict[str, list[dict[str, Any]]] = {
    # AimCLR "frame50" as used by SMIE/PGFA: centre on the spine-shoulder joint in every
    # frame, resize the valid frames to 50, rotate each frame to face the shoulders to +x.
    "pgfa50": [{"name": "center", "joint": "torso_top", "mode": "per_frame"},
               {"name": "resize", "frames": 50}, {"name": "rotate_y"}],
    # the same with AimCLR's rotation arithmetic reproduced exactly (see RotateY.reference)
    "pgfa50_ref": [{"name": "center", "joint": "torso_top", "mode": "per_frame"},
                   {"name": "resize", "frames": 50}, {"name": "rotate_y", "reference": True}],
    # input of the shipped Flora-format features: one person, centred on the spine joint
    # of the first frame (CTR-GCN seq_translation), valid frames resized to 50
    "flora50": [{"name": "persons", "persons": 1},
                {"name": "center", "joint": "torso_mid", "mode": "first_frame"},
                {"name": "resize", "frames": 50}],
    # view-normalised but keeping global motion (walking, sitting down, turning): centred
    # on the first frame's spine and rotated by the first frame's shoulder angle
    "global50": [{"name": "center", "joint": "torso_mid", "mode": "first_frame"},
                 {"name": "resize", "frames": 50}, {"name": "rotate_y", "mode": "first_frame"}],
    "none": [],
}


def build_transform(spec: str | Mapping[str, Any] | Transform,
                    layout: JointLayout | str | None = None, where: str = "pipeline") -> Transform:
    """One transform from a name (``"rotate_y"``) or a dict ``{name: ..., **kwargs}``."""
    if isinstance(spec, Transform):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: a transform must be a name or a mapping with key 'name', got {spec!r}")
    if "name" not in spec:
        raise ConfigError(f"{where}: transform {dict(spec)} has no key 'name'")
    kwargs = dict(spec)
    name = kwargs.pop("name")
    if name not in TRANSFORMS:
        raise ConfigError(f"{where}: {unknown_name('transform', str(name), TRANSFORMS)}")
    cls = TRANSFORMS[name]
    import inspect
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "layout")]
    bad = [k for k in kwargs if k not in allowed]
    if bad:
        raise ConfigError(f"{where}: transform {name!r} has no option {bad[0]!r}; options: "
                          f"{', '.join(allowed) or '(none)'}")
    try:
        return cls(layout=layout, **kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def build_pipeline(spec: str | Iterable | Compose | None,
                   layout: JointLayout | str | None = None, where: str = "pipeline") -> Compose:
    """A :class:`Compose` from a preset name, a list of names/dicts, or a Compose.

    Args:
        spec: ``"pgfa50"`` (see :data:`PRESETS`), ``[{name: resize, frames: 50}, "rotate_y"]``,
            ``None`` (identity) or an existing :class:`Compose` (returned as is).
        layout: the data's joint layout; required by joint-dependent transforms.
        where: named in error messages (e.g. the config file and key).
    """
    if isinstance(spec, Compose):
        return spec
    if spec is None:
        return Compose([])
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ConfigError(f"{where}: {unknown_name('preprocessing preset', spec, PRESETS)}")
        spec = PRESETS[spec]
    if isinstance(spec, Mapping) or not isinstance(spec, Iterable):
        raise ConfigError(f"{where}: a pipeline must be a preset name or a list of transforms, got {spec!r}")
    transforms = []
    for i, s in enumerate(spec):
        t = build_transform(s, layout, f"{where}[{i}]")
        transforms.append(t)
        if layout is not None:  # joints after a map_layout are names of its target
            name = layout if isinstance(layout, str) else layout.name
            layout = t.output_layout(name)
    return Compose(transforms)


def apply_pipeline(data: np.ndarray, lengths: np.ndarray, pipeline: Transform,
                   chunk_size: int = 512, rng: np.random.Generator | None = None,
                   out: np.ndarray | None = None, progress: bool = False,
                   desc: str = "transform", on_input=None) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``pipeline`` to a whole array in chunks (memmap in, memmap out is fine).

    Args:
        data: (N, 3, T, V, M), may be a read-only memmap; only ``chunk_size`` samples are
            in memory at a time (plus ``out``).
        out: optional preallocated (N, 3, T', V, M') array (e.g. ``open_memmap``) to fill.
        on_input: called with each input chunk (float32, in order, every sample once) before it
            is transformed, e.g. to hash the input in the same pass over ``data``.
    Returns:
        (out (N, 3, T', V, M') float32, lengths (N,)).
    """
    n = len(lengths)
    new_lengths = np.empty(n, dtype=np.int64)
    if n == 0:
        raise DataError("apply_pipeline: empty dataset")
    starts = range(0, n, chunk_size)
    if progress:
        from .._progress import progress as bar
        starts = bar(starts, desc=desc, total=math.ceil(n / chunk_size))
    for s in starts:
        raw = np.asarray(data[s:s + chunk_size], dtype=np.float32)
        if not np.isfinite(raw).all():  # the input's fault, not the pipeline's
            bad = int(np.argwhere(~np.isfinite(raw))[0][0]) + s
            raise DataError(f"apply_pipeline: input sample {bad} contains NaN/inf (before any transform)")
        if on_input is not None:
            on_input(raw)
        chunk, lens = pipeline.apply_batch(raw, np.asarray(lengths[s:s + chunk_size]), rng)
        if not np.isfinite(chunk).all():
            bad = int(np.argwhere(~np.isfinite(chunk))[0][0]) + s
            raise DataError(f"transform pipeline {pipeline!r} produced NaN/inf for sample {bad}")
        if out is None:
            out = np.empty((n,) + chunk.shape[1:], dtype=np.float32)
        elif out.shape[1:] != chunk.shape[1:]:
            raise DataError(f"apply_pipeline: output array has sample shape {out.shape[1:]}, "
                            f"pipeline gives {chunk.shape[1:]}")
        out[s:s + len(lens)] = chunk
        new_lengths[s:s + len(lens)] = lens
    return out, new_lengths
