"""Reader of the raw NTU RGB+D 60 / 120 ``.skeleton`` files.

File format (one ``SsssCcccPpppRrrrAaaa.skeleton`` text file per sample, as published)::

    F                                   # number of frames
    B                                   # frame 1: number of bodies (0, 1, 2, ...)
    bodyID clippedEdges handLeftConfidence handLeftState handRightConfidence
        handRightState isResticted leanX leanY trackingState        # 10 values, one line
    25                                  # number of joints
    x y z depthX depthY colorX colorY orientationW orientationX orientationY
        orientationZ trackingState                                  # 12 values, 25 lines
    ...                                 # next body, then the next frame's B, ...

``bodyID`` is a 64-bit Kinect tracking id (it does not fit a float64, so it is parsed as an
int). Coordinates are metres in camera space.

From a raw file to a training sample (:func:`load_ntu_sample`):

1. :func:`read_ntu_skeleton_file` parses every body of every frame.
2. :func:`drop_missing` removes body-frames whose 25 joints are all zero (missing data, not a
   pose at the camera origin) and bodies left with no frame.
3. :func:`denoise_bodies` ranks the bodies with the rules of the widely used
   ``get_raw_denoised_data`` pipeline (NTU preprocessing of SGN / CTR-GCN and followers):
   length filter, spread filter, motion ranking (see that function for each rule).
4. :func:`select_actors` fills up to ``M = 2`` person slots from the ranked bodies and
   removes frames in which no selected actor is present.
5. :func:`center_sequence` subtracts the spine-mid joint (index 1) of the first frame of
   actor 1 (the ``seq_translation`` step of that pipeline).

The second person of a one-person sample is left zero (CTR-GCN's ``align_frames`` copies
actor 1 into it; the preprocessed arrays most ST-GCN-family code loads, like the examples in
the data root's ``ntu_samples/``, use zeros).

:func:`read_ntu60` / :func:`read_ntu120` turn a folder of files into a
:class:`~zeroskel.data.dataset.SkeletonDataset` (layout ``ntu25``, data
``(N, 3, max_frames, 25, 2)`` float32). Samples without any skeleton (every frame has zero
bodies, or all joints are zero) and the samples named in the official
``*samples_with_missing_skeletons.txt`` lists are skipped with a logged warning and listed in
``info['skipped']``; nothing is dropped silently.

Speed (fixture files of realistic size, one core of the 2-core shared dev machine, CPU
time): 100-frame 2-body files (570 kB) about 155 files/s, 1-body files about 300 files/s
through :func:`load_ntu_sample`; NTU-120's 114k files take roughly 8 CPU-minutes (use
``workers``). Almost all of it is the C number conversion of ``np.loadtxt``.
"""
from __future__ import annotations

import io
import itertools
import logging
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..classnames import NTU60_CLASSES, NTU120_CLASSES
from ..dataset import SkeletonDataset

logger = logging.getLogger(__name__)

NUM_JOINTS = 25
SPINE_MID = 1  # origin joint of the first-frame centring (NTU joint 2, 1-based)

BODY_FIELDS = ("clipped_edges", "hand_left_confidence", "hand_left_state",
               "hand_right_confidence", "hand_right_state", "is_restricted", "lean_x", "lean_y",
               "tracking_state")
"""The 9 values after ``bodyID`` on a body line (``body_info`` columns)."""

JOINT_FIELDS = ("x", "y", "z", "depth_x", "depth_y", "color_x", "color_y", "orientation_w",
                "orientation_x", "orientation_y", "orientation_z", "tracking_state")
"""The 12 values of a joint line."""

# ---- thresholds of the get_raw_denoised_data pipeline -------------------------------------
NOISE_LENGTH = 11
"""A body seen in ``<= 11`` frames of a multi-body file is noise."""
NOISE_SPREAD = 0.8
"""A frame of a body is noisy when its x-spread exceeds 0.8 x its y-spread (a person is taller
than wide; tables, chairs and sensor ghosts are not)."""
NOISE_SPREAD_RATIO = 0.69754
"""A body whose fraction of noisy (spread) frames is ``>= 0.69754`` is noise."""
NOISE_MOTION_RANGE = (0.089925, 2.0)
"""Motion interval of the reference's optional motion filter (disabled there and by default
here; pass ``motion_range=NOISE_MOTION_RANGE`` to :func:`denoise_bodies` to enable it)."""

# ---- official partitions ------------------------------------------------------------------
NTU60_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
"""Training performers of NTU-60 cross-subject (Shahroudy et al., CVPR 2016)."""
NTU60_XVIEW_TRAIN = (2, 3)
"""Training cameras of NTU-60 cross-view (camera 1 is the test view)."""
NTU120_XSUB_TRAIN = NTU60_XSUB_TRAIN + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85,
    86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
"""The 53 training performers of NTU-120 cross-subject (Liu et al., TPAMI 2019)."""
# NTU-120 cross-setup: even setup ids train, odd test.

NTU_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
SKELETON_DIRS = ("nturgb+d_skeletons", "nturgb+d_skeletons120")
MISSING_LIST_GLOB = "*samples_with_missing_skeletons*.txt"


class NoSkeletonError(DataError):
    """A sample that holds no skeleton at all (every frame empty or all joints zero)."""


# =========================================================================== parsing
def _fail(path, lineno: int, msg: str) -> DataError:
    return DataError(f"{path}, line {lineno}: {msg}")


def _count(lines: list[bytes], i: int, path, what: str) -> int:
    """Integer on line ``i`` (0-based) or a DataError naming the 1-based line."""
    if i >= len(lines):
        raise DataError(f"{path}: file ends after line {len(lines)}, expected {what} on line "
                        f"{i + 1} (truncated file?)")
    try:
        v = int(lines[i])
    except ValueError:
        raise _fail(path, i + 1, f"expected {what} (an integer), got "
                                 f"{lines[i][:80].decode(errors='replace')!r}") from None
    if v < 0:
        raise _fail(path, i + 1, f"{what} is negative ({v})")
    return v


def _bulk_floats(lines: list[bytes], starts, n_per_block: int, n_values: int) -> np.ndarray | None:
    """Parse the blocks ``lines[s:s + n_per_block]`` for ``s in starts`` in one C call.

    Returns a float64 array of ``len(starts) * n_per_block * n_values`` numbers, or None when
    the count is off or a token is not a number (the caller then locates the bad line).
    """
    blob = b" ".join(itertools.chain.from_iterable(lines[s:s + n_per_block] for s in starts))
    with warnings.catch_warnings():
        # np.fromstring stops at the first bad token with a DeprecationWarning; make it loud.
        warnings.simplefilter("error")
        try:
            vals = np.fromstring(blob, dtype=np.float64, sep=" ")
        except (DeprecationWarning, ValueError):
            return None
    if vals.size != len(starts) * n_per_block * n_values:
        return None
    return vals


def _bulk_xyz(lines: list[bytes], starts) -> np.ndarray | None:
    """x, y, z (first 3 columns) of the 25-line joint blocks, via ``np.loadtxt(usecols=...)``
    which tokenises in C but converts only 3 of the 12 numbers. Returns (n*25, 3) float64, or
    None when the joint lines do not hold 12 values each in all (a value missing from a line
    would otherwise shift y, z, depthX into x, y, z), a value is not a number, or the file's
    last joint line is not complete (truncation); the caller then locates the bad line."""
    if not starts:
        return np.zeros((0, 3))
    last = lines[starts[-1] + NUM_JOINTS - 1].split()
    if len(last) != len(JOINT_FIELDS):
        return None
    try:
        float(last[-1])
    except ValueError:
        return None
    blob = b"\n".join(itertools.chain.from_iterable(lines[s:s + NUM_JOINTS] for s in starts))
    n_values = len(starts) * NUM_JOINTS * len(JOINT_FIELDS)
    # published files separate values by one space: count them (fast); otherwise count tokens
    if (blob.count(b" ") != len(starts) * NUM_JOINTS * (len(JOINT_FIELDS) - 1)
            and len(blob.split()) != n_values):
        return None
    try:
        vals = np.loadtxt(io.BytesIO(blob), dtype=np.float64, usecols=(0, 1, 2), ndmin=2,
                          comments=None)
    except ValueError:
        return None
    return vals if vals.shape == (len(starts) * NUM_JOINTS, 3) else None


def _locate_bad_line(lines, starts, n_per_block: int, n_values: int, path, what: str):
    """Slow path: raise a DataError for the first line of the blocks that does not hold
    ``n_values`` numbers."""
    for s in starts:
        for i in range(s, s + n_per_block):
            _check_line(lines[i], n_values, path, i, what)
    raise DataError(f"{path}: unparseable {what} lines")  # pragma: no cover - defensive


def read_ntu_skeleton_file(path: str | os.PathLike, fields: str = "all") -> dict:
    """Parse one raw NTU ``.skeleton`` file, keeping every body of every frame.

    Numbers are parsed in bulk (the joint lines of the whole file are joined and converted by
    one C call); only the frame/body structure is walked in Python.

    Args:
        path: the ``.skeleton`` file.
        fields: ``"all"`` parses the 12 values of every joint line; ``"xyz"`` (about 3x
            faster, what the dataset readers use) converts only x, y, z, checks that the
            joint lines hold 12 values each and that the file's last joint line is complete,
            and leaves
            out ``depth_xy``, ``color_xy``, ``orientation`` and ``joint_tracking``.

    Returns:
        dict with

        * ``file``: the path (str); ``name``: the sample name ``SsssCcccPpppRrrrAaaa``.
        * ``num_frames``: F, the frame count on line 1.
        * ``body_counts``: (F,) int64, bodies listed in each frame.
        * ``warnings``: list of str, oddities that were repaired (e.g. a bodyID listed twice
          in one frame: the first entry is kept); each is also logged.
        * ``bodies``: ``{bodyID (int): body}`` in order of first appearance; each body holds
          ``frames`` (K,) int64 frame indices (0-based, into the F frames), ``joints``
          (K, 25, 3) float32 camera-space xyz in metres, ``depth_xy`` (K, 25, 2),
          ``color_xy`` (K, 25, 2), ``orientation`` (K, 25, 4) (w, x, y, z),
          ``joint_tracking`` (K, 25) int8 and ``body_info`` (K, 9) float32 (columns
          :data:`BODY_FIELDS`).

    Raises:
        DataError: naming the file and the 1-based line of a truncated or garbled entry, a
            joint count other than 25, a non-finite coordinate, or content after the last
            declared frame.
    """
    raw = _parse(path, fields)
    for w in raw["warnings"]:
        logger.warning("%s", w)
    return raw


def _parse(path, fields: str) -> dict:
    """:func:`read_ntu_skeleton_file` without logging (also runs in worker processes)."""
    if fields not in ("all", "xyz"):
        raise ValueError(f"fields must be 'all' or 'xyz', got {fields!r}")
    path = Path(path)
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as e:
        raise DataError(f"{path}: cannot read NTU skeleton file ({e})") from None
    while lines and not lines[-1].strip():  # trailing newline(s)
        lines.pop()
    if not lines:
        raise DataError(f"{path}: empty file (expected the frame count on line 1)")

    num_frames = _count(lines, 0, path, "the frame count")
    body_counts = np.zeros(num_frames, dtype=np.int64)
    info_lines: list[int] = []  # 0-based line of each body-frame's body line
    joint_starts: list[int] = []  # 0-based line of its first joint line
    ln = 1
    for f in range(num_frames):
        nb = body_counts[f] = _count(lines, ln, path, f"the body count of frame {f + 1}")
        ln += 1
        for _ in range(nb):
            if ln >= len(lines):
                raise DataError(f"{path}: file ends after line {len(lines)}, expected a body "
                                f"line on line {ln + 1} (frame {f + 1}; truncated file?)")
            nj = _count(lines, ln + 1, path, f"the joint count of frame {f + 1}")
            if nj != NUM_JOINTS:
                raise _fail(path, ln + 2, f"joint count {nj}, expected {NUM_JOINTS} "
                                          "(Kinect v2 skeleton)")
            if ln + 2 + nj > len(lines):
                raise DataError(f"{path}: file ends after line {len(lines)} inside the joints "
                                f"of frame {f + 1} (truncated file; joint lines "
                                f"{ln + 3}-{ln + 2 + nj} expected)")
            info_lines.append(ln)
            joint_starts.append(ln + 2)
            ln += 2 + nj
    for i in range(ln, len(lines)):
        if lines[i].strip():
            raise _fail(path, i + 1, f"unexpected content after the {num_frames} frames "
                                     "declared on line 1 (wrong frame count?)")

    n_bf = len(info_lines)
    bodies: dict[int, dict] = {}
    notes: list[str] = []
    if n_bf:
        # body lines: bodyID is a uint64 (exact int), the other 9 values are floats
        heads = [lines[i].split(None, 1) for i in info_lines]
        ids = []
        for i, h in zip(info_lines, heads):
            try:
                ids.append(int(h[0]))
            except (ValueError, IndexError):
                raise _fail(path, i + 1, "body line must start with an integer bodyID, got "
                                         f"{lines[i][:80].decode(errors='replace')!r}") from None
        rest = [h[1] if len(h) > 1 else b"" for h in heads]
        info = _bulk_floats(rest, range(n_bf), 1, len(BODY_FIELDS))
        if info is None:
            for i, r in zip(info_lines, rest):
                _check_line(r, len(BODY_FIELDS), path, i, "body", extra=1)
            raise DataError(f"{path}: unparseable body lines")  # pragma: no cover - defensive
        info = info.reshape(n_bf, len(BODY_FIELDS)).astype(np.float32)

        if fields == "all":
            vals = _bulk_floats(lines, joint_starts, NUM_JOINTS, len(JOINT_FIELDS))
        else:
            vals = _bulk_xyz(lines, joint_starts)
        if vals is None:
            _locate_bad_line(lines, joint_starts, NUM_JOINTS, len(JOINT_FIELDS), path, "joint")
        vals = vals.reshape(n_bf, NUM_JOINTS, -1)
        finite = np.isfinite(vals[..., :11])
        if not finite.all():
            b, j, _ = np.argwhere(~finite)[0]
            raise _fail(path, joint_starts[b] + j + 1, "non-finite joint value (NaN/inf)")

        frame_of = np.repeat(np.arange(num_frames), body_counts)
        ids_arr = np.asarray(ids, dtype=object)
        for bid in dict.fromkeys(ids):  # first-appearance order
            idx = np.flatnonzero(ids_arr == bid)
            frames = frame_of[idx]
            dup = np.flatnonzero(np.diff(frames) == 0)
            if dup.size:  # the same tracking id twice in one frame: keep the first
                notes.append(f"{path}, line {info_lines[idx[dup[0] + 1]] + 1}: bodyID {bid} "
                             f"listed again in frame {frames[dup[0]] + 1}; keeping the first")
                keep = np.ones(idx.size, bool)
                keep[dup + 1] = False
                idx, frames = idx[keep], frames[keep]
            v = vals[idx]
            body = {"frames": frames.astype(np.int64), "joints": v[..., 0:3].astype(np.float32),
                    "body_info": info[idx]}
            if fields == "all":
                body.update(depth_xy=v[..., 3:5].astype(np.float32),
                            color_xy=v[..., 5:7].astype(np.float32),
                            orientation=v[..., 7:11].astype(np.float32),
                            joint_tracking=v[..., 11].astype(np.int8))
            bodies[bid] = body
    return {"file": str(path), "name": path.name.split(".")[0], "num_frames": num_frames,
            "body_counts": body_counts, "bodies": bodies, "warnings": notes}


def _check_line(line: bytes, n: int, path, i: int, what: str, extra: int = 0) -> None:
    toks = line.split()
    if len(toks) != n:
        raise _fail(path, i + 1, f"{what} line must hold {n + extra} values, got "
                                 f"{len(toks) + extra} (truncated or garbled file)")
    for t in toks:
        try:
            float(t)
        except ValueError:
            raise _fail(path, i + 1, f"{what} value {t.decode(errors='replace')!r} is not a "
                                     "number") from None


# =========================================================================== denoising
def _motion(joints: np.ndarray) -> float:
    """Motion of a body as in the reference: the summed variance of x, y and z over all its
    joints and frames, ``sum(var(joints.reshape(-1, 3), axis=0))``."""
    return float(np.var(joints.reshape(-1, 3), axis=0).sum()) if joints.size else 0.0


def drop_missing(bodies: Mapping[int, Mapping]) -> tuple[dict[int, dict], list[str]]:
    """Remove body-frames whose 25 joints are all exactly zero, and bodies left empty.

    The Kinect writes all-zero joints when it lost the body; such frames are missing data,
    not a pose at the camera origin, so they must neither count as frames of the body (length
    filter), nor enter its motion (variance), nor be centred. The reference keeps them until
    the very end (where all-zero frames are cut); removing them first changes no clean sample.

    Returns:
        (bodies with only non-missing frames, notes describing what was removed).
    """
    out, notes = {}, []
    for bid, b in bodies.items():
        j = np.asarray(b["joints"])
        ok = j.reshape(len(j), -1).any(axis=1)
        if ok.all():
            out[bid] = b
        elif ok.any():
            out[bid] = {k: (np.asarray(v)[ok] if isinstance(v, np.ndarray) and len(v) == len(ok)
                            else v) for k, v in b.items()}
            notes.append(f"body {bid}: {int((~ok).sum())} all-zero frame(s) removed")
        else:
            notes.append(f"body {bid}: all {len(ok)} frame(s) all-zero, body removed")
    return out, notes


def _noisy_spread(joints: np.ndarray, spread: float) -> np.ndarray:
    """(K,) bool: frames whose x-spread is larger than ``spread`` x the y-spread."""
    x, y = joints[..., 0], joints[..., 1]
    return (x.max(1) - x.min(1)) > spread * (y.max(1) - y.min(1))


def denoise_bodies(bodies: Mapping[int, Mapping], *, min_length: int = NOISE_LENGTH,
                   spread: float = NOISE_SPREAD, spread_ratio: float = NOISE_SPREAD_RATIO,
                   motion_range: tuple[float, float] | None = None) -> tuple[list[int], list[str]]:
    """Rank the bodies of one sample, dropping noise, with the ``get_raw_denoised_data`` rules.

    The rules (Microsoft's NTU preprocessing released with SGN and reused by CTR-GCN,
    InfoGCN, PGFA, ...) only run when a file has two or more body ids; a single body is
    always kept, however short or wide.

    1. **Length**: drop every body seen in ``<= min_length`` (11) frames: short-lived
       tracking ids are mostly ghosts. (If this would drop *every* body, which crashes the
       reference, all bodies are kept and a note says so.)
    2. **Spread**: while more than one body remains, for each body in order of appearance,
       mark frames whose x-spread (max - min over the 25 joints) exceeds ``spread`` (0.8) x
       the y-spread as noisy. A body with a noisy-frame ratio ``>= spread_ratio``
       (0.69754) is dropped; otherwise, if it has noisy frames, its motion becomes
       ``min(motion, motion over its non-noisy frames)``.
    3. **Motion** (optional, off as in the reference, which comments it out): with
       ``motion_range=(lo, hi)`` every body but the most moving one is dropped when its motion
       lies outside ``[lo, hi]`` (reference values :data:`NOISE_MOTION_RANGE`).
    4. Remaining bodies are sorted by motion, largest first (ties keep appearance order).
       "Motion" is the reference's: the summed variance of x, y, z over all joints and
       frames together, so it grows with body extent as well as with movement (a still
       person scores about 0.2, a small object almost 0).

    Args:
        bodies: ``{bodyID: {"frames": (K,), "joints": (K, 25, 3)}}`` in appearance order,
            missing (all-zero) frames already removed (:func:`drop_missing`).
    Returns:
        (body ids, most moving first; human-readable notes on each body dropped).
    """
    ids = list(bodies)
    if len(ids) <= 1:
        return ids, []
    notes: list[str] = []
    joints = {b: np.asarray(bodies[b]["joints"], dtype=np.float32) for b in ids}
    motion = {b: _motion(joints[b]) for b in ids}

    keep = [b for b in ids if len(joints[b]) > min_length]
    for b in ids:
        if b not in keep:
            notes.append(f"body {b}: dropped, only {len(joints[b])} frame(s) <= {min_length} "
                         "(length)")
    if not keep:
        notes = [f"all {len(ids)} bodies have <= {min_length} frames; length filter skipped"]
        keep = ids

    for b in list(keep):
        if len(keep) == 1:
            break
        noisy = _noisy_spread(joints[b], spread)
        if not noisy.any():
            continue
        ratio = float(noisy.mean())
        if ratio >= spread_ratio:
            keep.remove(b)
            notes.append(f"body {b}: dropped, {ratio:.3f} of its frames wider than tall "
                         f"(spread ratio >= {spread_ratio})")
        else:
            motion[b] = min(motion[b], _motion(joints[b][~noisy]))

    keep.sort(key=lambda b: -motion[b])
    if motion_range is not None and len(keep) > 1:
        lo, hi = motion_range
        for b in keep[1:]:
            if not lo <= motion[b] <= hi:
                keep.remove(b)
                notes.append(f"body {b}: dropped, motion {motion[b]:.6f} outside [{lo}, {hi}]")
    return keep, notes


def select_actors(raw: Mapping, *, max_persons: int = 2, **denoise_kw) -> tuple[np.ndarray, dict]:
    """Pick up to ``max_persons`` actors of a parsed file and stack them frame by frame.

    Steps: :func:`drop_missing`; :func:`denoise_bodies` (only for two or more bodies);
    then the bodies, most moving first, fill person slots: the first body opens slot 1; each
    next body joins the first slot whose frame interval ``[first, last]`` it does not overlap
    (``min(ends) - max(starts) <= 0``, so a one-frame hand-over is allowed and the later body
    wins that frame, as in the reference), a free slot otherwise, and is discarded when every
    slot overlaps. Frames where no selected actor is present (frames with zero bodies, or
    with only discarded noise bodies) are removed, as in the reference's
    ``remove_missing_frames``.

    Differences from the reference: each body's frames sit at their true frame index (the
    reference assumes a body's frames are contiguous; only malformed files differ) and slot 2
    starts empty. The reference starts slot 2 at a virtual ``[0, 0]`` interval, so its span
    always begins at frame 0; this *does* change well-formed files with three or more kept
    bodies: a body that overlaps actor 1 and ends before slot 2's first body starts joins
    slot 2 here, while the reference discards it.

    Args:
        raw: output of :func:`read_ntu_skeleton_file`.
        denoise_kw: thresholds passed to :func:`denoise_bodies`.
    Returns:
        seq: (T, max_persons, 25, 3) float32, absent persons zero, T >= 1.
        report: ``{"num_bodies", "actors": [[bodyID, ...] per slot], "notes": [...],
        "dropped_frames": int}``.
    Raises:
        NoSkeletonError: when no body has a non-zero joint in any frame.
    """
    bodies, notes = drop_missing(raw["bodies"])
    if not bodies:
        raise NoSkeletonError(f"{raw['file']}: no skeleton in any of its {raw['num_frames']} "
                              f"frames ({len(raw['bodies'])} body id(s), all joints zero)"
                              if raw["bodies"] else
                              f"{raw['file']}: no skeleton in any of its {raw['num_frames']} "
                              "frames (zero bodies in every frame)")
    order, dn_notes = denoise_bodies(bodies, **denoise_kw)
    notes += dn_notes
    slots: list[list[int]] = []
    spans: list[list[int]] = []
    for b in order:
        fr = bodies[b]["frames"]
        s, e = int(fr[0]), int(fr[-1])
        for k, (s0, e0) in enumerate(spans):
            if min(e, e0) - max(s, s0) <= 0:
                slots[k].append(b)
                spans[k] = [min(s, s0), max(e, e0)]
                break
        else:
            if len(slots) < max_persons:
                slots.append([b])
                spans.append([s, e])
            else:
                notes.append(f"body {b}: discarded, overlaps all {max_persons} actors")
    seq = np.zeros((raw["num_frames"], max_persons, NUM_JOINTS, 3), dtype=np.float32)
    for k, members in enumerate(slots):
        for b in members:
            seq[bodies[b]["frames"], k] = bodies[b]["joints"]
    present = seq.reshape(len(seq), -1).any(axis=1)
    seq = seq[present]
    return seq, {"num_bodies": len(raw["bodies"]), "actors": slots, "notes": notes,
                 "dropped_frames": int((~present).sum())}


def center_sequence(seq: np.ndarray) -> np.ndarray:
    """Translate so that actor 1's spine-mid joint (index 1) of its first frame is the origin.

    This is the ``seq_translation`` step of the reference pipeline: one origin for the whole
    sequence and both persons (so their relative positions and the global trajectory are kept);
    absent persons/frames stay exactly zero.

    Args:
        seq: (T, M, 25, 3) with actor 1 present in at least one frame.
    Returns:
        a centred copy, same shape and dtype.
    """
    seq = np.array(seq, copy=True)
    present = seq.reshape(seq.shape[0], seq.shape[1], -1).any(axis=2)  # (T, M)
    if not present[:, 0].any():
        raise ValueError("center_sequence: actor 1 is absent in every frame")
    first = int(np.argmax(present[:, 0]))
    seq[present] -= seq[first, 0, SPINE_MID]
    return seq


def load_ntu_sample(path: str | os.PathLike, max_frames: int | None = 300,
                    max_persons: int = 2, **denoise_kw) -> tuple[np.ndarray, dict]:
    """Raw file -> centred (T, max_persons, 25, 3) float32 sequence, ``T <= max_frames``.

    A sequence longer than ``max_frames`` keeps its first ``max_frames`` frames; a warning is
    logged and ``report["truncated_from"]`` holds the original length.

    Raises:
        NoSkeletonError: the file holds no skeleton. DataError: a malformed file.
    """
    seq, report = _sample(path, max_frames, max_persons, **denoise_kw)
    for w in report["warnings"]:
        logger.warning("%s", w)
    return seq, report


def _sample(path, max_frames, max_persons=2, **denoise_kw) -> tuple[np.ndarray, dict]:
    """:func:`load_ntu_sample` without logging; ``report["warnings"]`` holds the warnings."""
    raw = _parse(path, "xyz")
    seq, report = select_actors(raw, max_persons=max_persons, **denoise_kw)
    seq = center_sequence(seq)
    report["warnings"] = list(raw["warnings"])
    if max_frames is not None and len(seq) > max_frames:
        report["warnings"].append(f"{path}: {len(seq)} frames after denoising, more than "
                                  f"max_frames={max_frames}; keeping the first {max_frames}")
        report["truncated_from"] = len(seq)
        seq = seq[:max_frames]
    return seq, report


def _load_or_none(args) -> tuple[np.ndarray | None, dict]:
    """Worker: a sample, or (None, {"skip": reason}) for a file without skeleton. Logs
    nothing: the parent process logs the report (worker loggers are not configured)."""
    path, max_frames = args
    try:
        return _sample(path, max_frames)
    except NoSkeletonError as e:
        return None, {"skip": str(e)}


# =========================================================================== datasets
def parse_ntu_name(name: str) -> tuple[int, int, int, int, int] | None:
    """``SsssCcccPpppRrrrAaaa`` -> (setup, camera, performer, replication, action), or None."""
    m = NTU_NAME.fullmatch(name)
    return tuple(int(g) for g in m.groups()) if m else None


def find_ntu_files(folder: str | os.PathLike) -> list[Path]:
    """The ``.skeleton`` files of an NTU folder, sorted by sample name.

    Looks in ``folder/nturgb+d_skeletons/``, ``folder/nturgb+d_skeletons120/`` (the NTU-120
    S018-S032 archive, when unpacked beside the first) and ``folder`` itself.
    """
    folder = Path(folder)
    dirs = [folder / d for d in SKELETON_DIRS if (folder / d).is_dir()] + [folder]
    files: dict[str, Path] = {}
    for d in dirs:
        for p in d.glob("*.skeleton"):
            stem = p.name[: -len(".skeleton")]
            if stem in files:
                raise DataError(f"sample {stem} found twice: {files[stem]} and {p}")
            files[stem] = p
    return [files[k] for k in sorted(files)]


def read_missing_lists(folder: str | os.PathLike) -> dict[str, str]:
    """Sample names listed in the official ``*samples_with_missing_skeletons*.txt`` files found
    in ``folder`` or its skeleton sub-folders -> the list file that names them.

    The files start with two lines of prose; every ``SsssCcccPpppRrrrAaaa`` token is a name.
    """
    folder = Path(folder)
    listed: dict[str, str] = {}
    for d in [folder] + [folder / s for s in SKELETON_DIRS]:
        if not d.is_dir():
            continue
        for p in sorted(d.glob(MISSING_LIST_GLOB)):
            try:
                text = p.read_text(encoding="utf-8", errors="replace")
            except OSError as e:
                raise DataError(f"{p}: cannot read missing-skeleton list ({e})") from None
            names = NTU_NAME.findall(text)
            if not names:
                raise DataError(f"{p}: no sample names (SsssCcccPpppRrrrAaaa) in this "
                                "missing-skeleton list")
            for m in NTU_NAME.finditer(text):
                listed.setdefault(m.group(0), p.name)
    return listed


def _shrink_npy(path: Path, n: int) -> None:
    """Cut a C-ordered ``.npy`` file to its first ``n`` rows in place (header rewritten)."""
    with open(path, "r+b") as f:
        fmt = np.lib.format
        version = fmt.read_magic(f)
        read, write = ((fmt.read_array_header_1_0, fmt.write_array_header_1_0) if version == (1, 0)
                       else (fmt.read_array_header_2_0, fmt.write_array_header_2_0))
        shape, fortran, dtype = read(f)
        offset = f.tell()
        new_shape = (n,) + tuple(shape[1:])
        buf = io.BytesIO()
        write(buf, {"descr": fmt.dtype_to_descr(dtype), "fortran_order": fortran,
                    "shape": new_shape})
        if buf.tell() != offset:  # numpy reserves room for the growth axis; never expected
            raise DataError(f"{path}: cannot rewrite .npy header in place")
        f.seek(0)
        f.write(buf.getvalue())
        f.truncate(offset + int(np.prod(new_shape)) * dtype.itemsize)


def _read_ntu(folder, *, name: str, class_names, keep, partitions, progress: bool,
              max_frames: int, out_dir, workers: int) -> SkeletonDataset:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{name}: folder {folder} not found")
    if max_frames < 1:
        raise DataError(f"{name}: max_frames must be >= 1, got {max_frames}")
    files, ids, ignored = [], [], 0
    for p in find_ntu_files(folder):
        stem = p.name[: -len(".skeleton")]
        parsed = parse_ntu_name(stem)
        if parsed is None:
            raise DataError(f"{p}: file name is not SsssCcccPpppRrrrAaaa.skeleton")
        if not 1 <= parsed[4] <= len(NTU120_CLASSES):
            raise DataError(f"{p}: action A{parsed[4]:03d} outside A001-A120")
        if not keep(*parsed):
            ignored += 1
            continue
        files.append(p)
        ids.append(parsed)
    if ignored:
        logger.info("%s: ignored %d .skeleton files outside %s (setups/actions of another "
                    "release)", folder, ignored, name)
    if not files:
        raise DataError(f"{name}: no SsssCcccPpppRrrrAaaa.skeleton files in {folder} or its "
                        f"{'/, '.join(SKELETON_DIRS)}/ sub-folders"
                        + (f" ({ignored} files of setups/actions outside {name})"
                           if ignored else ""))

    skipped: dict[str, str] = {}
    listed = read_missing_lists(folder)
    todo = []
    for p, i in zip(files, ids):
        stem = p.name[: -len(".skeleton")]
        if stem in listed:
            skipped[stem] = f"listed in {listed[stem]}"
        else:
            todo.append((p, i))
    if skipped:
        logger.warning("%s: skipping %d samples named in the official missing-skeleton list(s) "
                       "%s (see info['skipped'])", name, len(skipped), sorted(set(listed.values())))

    n_max = len(todo)
    shape = (n_max, 3, max_frames, NUM_JOINTS, 2)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        # a folder without dataset.json does not load: never leave a stale one behind
        (out_dir / "dataset.json").unlink(missing_ok=True)
        tmp = out_dir / "data.npy.tmp"
        data = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
    else:
        data = np.zeros(shape, dtype=np.float32)  # lazily zeroed pages: padding costs nothing

    lengths, kept, truncated, warned, multi = [], [], {}, {}, 0
    jobs = [(p, max_frames) for p, _ in todo]
    if workers > 1 and len(jobs) > 1:
        import concurrent.futures as cf
        import multiprocessing as mp
        pool = cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        chunk = max(1, min(256, len(jobs) // (8 * workers)))
        results = pool.map(_load_or_none, jobs, chunksize=chunk)
    else:
        pool = None
        results = map(_load_or_none, jobs)
    if progress:
        from ..._progress import progress as bar
        results = bar(results, desc=f"read {name}", total=len(jobs))
    try:
        for (p, i), (seq, rep) in zip(todo, results):
            stem = p.name[: -len(".skeleton")]
            if seq is None:
                logger.warning("%s: skipped, %s", name, rep["skip"])
                skipped[stem] = rep["skip"]
                continue
            for w in rep["warnings"]:
                logger.warning("%s", w)
            if rep["warnings"]:
                warned[stem] = rep["warnings"]
            n = len(kept)
            data[n, :, : len(seq)] = seq.transpose(3, 0, 2, 1)
            lengths.append(len(seq))
            kept.append((stem, i))
            if "truncated_from" in rep:
                truncated[stem] = rep["truncated_from"]
            multi += rep["num_bodies"] > 1
    except BaseException:
        if out_dir is not None:
            del data
            tmp.unlink(missing_ok=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if not kept:
        if out_dir is not None:
            del data
            tmp.unlink(missing_ok=True)
        raise DataError(f"{name}: none of the {len(files)} samples in {folder} holds a skeleton "
                        f"(see the warnings above)")

    n = len(kept)
    if out_dir is not None:
        data.flush()
        del data
        if n < n_max:
            _shrink_npy(tmp, n)
        tmp.replace(out_dir / "data.npy")
        data = np.load(out_dir / "data.npy", mmap_mode="r")
    elif n < n_max:
        data = data[:n]
    meta_ids = np.array([i for _, i in kept], dtype=np.int64)
    setup, camera, subject, replication, action = meta_ids.T
    ds = SkeletonDataset(
        name=name, layout="ntu25", class_names=list(class_names), data=data,
        lengths=np.array(lengths), labels=action - 1,
        meta={"file": np.array([s for s, _ in kept]), "setup": setup, "camera": camera,
              "subject": subject, "replication": replication},
        partitions=partitions(setup, camera, subject),
        info={"source": str(folder), "units": "metres, camera space, centred on actor 1's "
              "spine-mid joint of the first frame", "max_frames": max_frames,
              "skipped": sorted(skipped), "skipped_reasons": dict(sorted(skipped.items())),
              "truncated": truncated, "warnings": warned, "multi_body_files": int(multi),
              "ignored_other_release": ignored,
              "denoising": {"length": NOISE_LENGTH, "spread": NOISE_SPREAD,
                            "spread_ratio": NOISE_SPREAD_RATIO}},
    )
    if out_dir is not None:
        ds.save(out_dir, data_written=True)
        ds = SkeletonDataset.load(out_dir)
    return ds


def read_ntu60(folder: str | os.PathLike, progress: bool = True, *, max_frames: int = 300,
               out_dir: str | os.PathLike | None = None, workers: int = 1) -> SkeletonDataset:
    """Read NTU RGB+D 60 (setups S001-S017, actions A001-A060) from raw ``.skeleton`` files.

    Args:
        folder: ``<data_root>/ntu60``; files in ``nturgb+d_skeletons/`` or directly inside.
            Files of other setups/actions (an NTU-120 folder) are ignored (logged).
        progress: show a progress bar on a terminal.
        max_frames: T of the output; longer sequences are truncated with a warning
            (listed in ``info['truncated']``). NTU sequences have at most 300 frames.
        out_dir: when given, samples are written straight into
            ``out_dir/data.npy`` (an ``np.lib.format.open_memmap``) in the
            :meth:`SkeletonDataset.save` layout and the returned dataset is memory-mapped
            from there; otherwise one preallocated array of N x 3 x max_frames x 25 x 2
            float32 (180 kB a sample at T=300: about 10 GB for NTU-60, 21 GB for NTU-120)
            is filled in memory.
        workers: processes parsing files in parallel (1 = in this process). Workers are
            spawned, so a script using ``workers > 1`` must call this under
            ``if __name__ == "__main__":``.
    Returns:
        SkeletonDataset ``ntu60``, layout ``ntu25``, data (N, 3, max_frames, 25, 2), labels
        A-1, meta ``file`` (sample name), ``setup``, ``camera``, ``subject``,
        ``replication``; partitions ``xsub`` (performers :data:`NTU60_XSUB_TRAIN` train) and
        ``xview`` (cameras 2, 3 train). ``info['skipped']`` lists the samples without
        skeleton (``info['skipped_reasons']`` says why).
    """
    return _read_ntu(
        folder, name="ntu60", class_names=NTU60_CLASSES,
        keep=lambda s, c, p, r, a: s <= 17 and a <= 60,
        partitions=lambda s, c, p: {"xsub": np.isin(p, NTU60_XSUB_TRAIN),
                                    "xview": np.isin(c, NTU60_XVIEW_TRAIN)},
        progress=progress, max_frames=max_frames, out_dir=out_dir, workers=workers)


def read_ntu120(folder: str | os.PathLike, progress: bool = True, *, max_frames: int = 300,
                out_dir: str | os.PathLike | None = None, workers: int = 1) -> SkeletonDataset:
    """Read NTU RGB+D 120 (all setups S001-S032, actions A001-A120).

    Same arguments and output as :func:`read_ntu60`; partitions ``xsub`` (the 53 performers
    :data:`NTU120_XSUB_TRAIN` train) and ``xset`` (even setup ids train). At 114,480 samples
    the in-memory array is about 20 GB: pass ``out_dir`` to stream into a memory-mapped
    ``data.npy`` instead.
    """
    return _read_ntu(
        folder, name="ntu120", class_names=NTU120_CLASSES,
        keep=lambda s, c, p, r, a: True,
        partitions=lambda s, c, p: {"xsub": np.isin(p, NTU120_XSUB_TRAIN),
                                    "xset": s % 2 == 0},
        progress=progress, max_frames=max_frames, out_dir=out_dir, workers=workers)
