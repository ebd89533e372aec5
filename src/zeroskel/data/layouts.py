"""Joint layouts as data: joint names, bones, centre joint, left/right pairs and the
adjacency partitions that ST-GCN needs.

A layout never depends on a dataset reader or a model; readers emit arrays in one of these
layouts, and models build their graph from one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import unknown_name


@dataclass(frozen=True)
class JointLayout:
    """A skeleton joint layout.

    Attributes:
        name: registry name, e.g. ``"ntu25"``.
        joints: joint names, index = joint id (0-based).
        bones: undirected (child, parent) pairs, 0-based; the bone vector of a joint is
            ``x[child] - x[parent]``.
        center: graph centre joint used by the ST-GCN spatial partition.
        left_right: pairs of (left joint, right joint), for flips and sanity checks.
        shoulders: (left shoulder, right shoulder), used to align the body by rotation.
        description: where the layout comes from.
    """

    name: str
    joints: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    center: int
    left_right: tuple[tuple[int, int], ...]
    shoulders: tuple[int, int]
    description: str = ""
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({n: i for i, n in enumerate(self.joints)})

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str | int) -> int:
        """Joint id from a name (or pass an id through, range-checked)."""
        if isinstance(joint, (int, np.integer)):
            if not 0 <= int(joint) < self.num_joints:
                raise ValueError(f"joint id {joint} out of range for layout {self.name!r} "
                                 f"({self.num_joints} joints)")
            return int(joint)
        if joint not in self._index:
            raise unknown_name(f"joint of layout {self.name!r}", joint, self.joints)
        return self._index[joint]

    def edges(self, self_loops: bool = False) -> list[tuple[int, int]]:
        e = list(self.bones)
        if self_loops:
            e += [(i, i) for i in range(self.num_joints)]
        return e

    def hop_distance(self, max_hop: int = 1) -> np.ndarray:
        """(V, V) graph hop distance, ``inf`` beyond ``max_hop``."""
        v = self.num_joints
        a = np.zeros((v, v))
        for i, j in self.bones:
            a[i, j] = a[j, i] = 1
        dist = np.full((v, v), np.inf)
        powers = [np.linalg.matrix_power(a + np.eye(v), d) for d in range(max_hop + 1)]
        for d in range(max_hop, -1, -1):
            dist[powers[d] > 0] = d
        return dist

    def adjacency(self, strategy: str = "spatial", max_hop: int = 1, dilation: int = 1) -> np.ndarray:
        """Stacked adjacency partitions ``A`` of shape (K, V, V), column-normalised (A D^-1).

        strategies (Yan et al., ST-GCN, AAAI 2018):
            ``uniform``: K=1, all neighbours within ``max_hop`` in one partition.
            ``distance``: K=max_hop+1, one partition per hop distance.
            ``spatial``: K=3 for max_hop=1: root, centripetal (closer to the centre joint)
                and centrifugal neighbours. As in the reference ST-GCN, distances to the
                centre joint are also capped at ``max_hop``: joints farther than that compare
                as equal and fall in the root partition. PGFA's encoder inherits this, so it
                is kept for fidelity.
        """
        v = self.num_joints
        hop = self.hop_distance(max_hop)
        valid = range(0, max_hop + 1, dilation)
        adj = np.zeros((v, v))
        for h in valid:
            adj[hop == h] = 1
        norm = _normalize_digraph(adj)
        if strategy == "uniform":
            return norm[None].astype(np.float32)
        if strategy == "distance":
            parts = np.zeros((len(valid), v, v))
            for k, h in enumerate(valid):
                parts[k][hop == h] = norm[hop == h]
            return parts.astype(np.float32)
        if strategy == "spatial":
            parts = []
            c = self.center
            for h in valid:
                root = np.zeros((v, v)); close = np.zeros((v, v)); far = np.zeros((v, v))
                for i in range(v):
                    for j in range(v):
                        if hop[j, i] != h:
                            continue
                        if hop[j, c] == hop[i, c]:
                            root[j, i] = norm[j, i]
                        elif hop[j, c] > hop[i, c]:
                            close[j, i] = norm[j, i]
                        else:
                            far[j, i] = norm[j, i]
                if h == 0:
                    parts.append(root)
                else:
                    parts.append(root + close)
                    parts.append(far)
            return np.stack(parts).astype(np.float32)
        raise unknown_name("adjacency strategy", strategy, ["uniform", "distance", "spatial"])


def _normalize_digraph(a: np.ndarray) -> np.ndarray:
    deg = a.sum(0)
    inv = np.where(deg > 0, 1.0 / np.where(deg > 0, deg, 1), 0.0)
    return a @ np.diag(inv)


_SIDES = ("shoulder", "elbow", "wrist", "hand", "hip", "knee", "ankle", "foot")

# NTU RGB+D / Kinect v2, 25 joints (Shahroudy et al., CVPR 2016). Bones as in ST-GCN.
NTU25 = JointLayout(
    name="ntu25",
    joints=(
        "spine_base", "spine_mid", "neck", "head",
        "l_shoulder", "l_elbow", "l_wrist", "l_hand",
        "r_shoulder", "r_elbow", "r_wrist", "r_hand",
        "l_hip", "l_knee", "l_ankle", "l_foot",
        "r_hip", "r_knee", "r_ankle", "r_foot",
        "spine_shoulder", "l_hand_tip", "l_thumb", "r_hand_tip", "r_thumb",
    ),
    bones=tuple((a - 1, b - 1) for a, b in [
        (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21),
        (10, 9), (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1),
        (18, 17), (19, 18), (20, 19), (22, 23), (23, 8), (24, 25), (25, 12)]),
    center=20,
    left_right=tuple((4 + i, 8 + i) for i in range(4)) + tuple((12 + i, 16 + i) for i in range(4))
    + ((21, 23), (22, 24)),
    shoulders=(4, 8),
    description="Kinect v2 / NTU RGB+D 60/120 and PKU-MMD, 25 joints",
)

# Kinect v1, 20 joints, standard SDK order (NW-UCLA, MSR Action3D). UTD-MHAD stores another
# order; its reader re-orders to this one.
KINECT_V1 = JointLayout(
    name="kinect_v1",
    joints=(
        "hip_center", "spine", "shoulder_center", "head",
        "l_shoulder", "l_elbow", "l_wrist", "l_hand",
        "r_shoulder", "r_elbow", "r_wrist", "r_hand",
        "l_hip", "l_knee", "l_ankle", "l_foot",
        "r_hip", "r_knee", "r_ankle", "r_foot",
    ),
    bones=((1, 0), (2, 1), (3, 2), (4, 2), (5, 4), (6, 5), (7, 6), (8, 2), (9, 8), (10, 9),
           (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18)),
    center=2,
    left_right=tuple((4 + i, 8 + i) for i in range(4)) + tuple((12 + i, 16 + i) for i in range(4)),
    shoulders=(4, 8),
    description="Kinect v1 SDK order, 20 joints (NW-UCLA, MSR Action3D; UTD-MHAD re-ordered)",
)

# UTD-MHAD file order -> Kinect v1 order: kinect_v1[i] = utd[UTD_TO_KINECT_V1[i]].
UTD_TO_KINECT_V1 = (3, 2, 1, 0) + tuple(range(4, 20))


def _reordered(layout: JointLayout, order: tuple[int, ...], name: str, description: str) -> JointLayout:
    """``layout`` with its joints stored in another order: joint i of the new layout is joint
    ``order[i]`` of ``layout``; bones, centre and pairs follow their joints."""
    new_id = {old: new for new, old in enumerate(order)}
    remap = lambda pairs: tuple((new_id[a], new_id[b]) for a, b in pairs)  # noqa: E731
    return JointLayout(name=name, joints=tuple(layout.joints[i] for i in order), bones=remap(layout.bones),
                       center=new_id[layout.center], left_right=remap(layout.left_right),
                       shoulders=(new_id[layout.shoulders[0]], new_id[layout.shoulders[1]]),
                       description=description)


# The same 20 Kinect v1 joints in UTD-MHAD's file order (head, shoulder centre, spine, hip centre
# first). The dataset reader already re-orders to kinect_v1; this layout is for arrays a user
# exported from the .mat files in their own order (``--layout utd_mhad``).
UTD_MHAD = _reordered(KINECT_V1, UTD_TO_KINECT_V1, "utd_mhad",
                      "UTD-MHAD .mat file order of the Kinect v1 joints (head first); maps to kinect_v1")

LAYOUTS: dict[str, JointLayout] = {l.name: l for l in (NTU25, KINECT_V1, UTD_MHAD)}

# Kinect v1 -> NTU-25: for each NTU joint, the Kinect v1 joints whose mean stands in for it.
# Neck is between shoulder centre and head; hand tips and thumbs fall back to the hand.
KINECT_V1_TO_NTU25: tuple[tuple[int, ...], ...] = (
    (0,), (1,), (2, 3), (3,),
    (4,), (5,), (6,), (7,), (8,), (9,), (10,), (11,),
    (12,), (13,), (14,), (15,), (16,), (17,), (18,), (19,),
    (2,), (7,), (7,), (11,), (11,),
)

# NTU-25 -> Kinect v1: the 20 Kinect v1 joints are a subset of Kinect v2's (spine base, mid spine
# and spine-shoulder stand for hip centre, spine and shoulder centre); neck, hand tips and
# thumbs are dropped. Lets a model trained on UTD-MHAD / NW-UCLA score Kinect v2 recordings.
NTU25_TO_KINECT_V1: tuple[tuple[int, ...], ...] = ((0,), (1,), (20,), (3,)) + tuple((i,) for i in range(4, 20))

_MAPPINGS = {
    ("kinect_v1", "ntu25"): KINECT_V1_TO_NTU25,
    ("ntu25", "kinect_v1"): NTU25_TO_KINECT_V1,
    # UTD_TO_KINECT_V1 only swaps joints 0 <-> 3 and 1 <-> 2, so it is its own inverse
    ("utd_mhad", "kinect_v1"): tuple((i,) for i in UTD_TO_KINECT_V1),
    ("kinect_v1", "utd_mhad"): tuple((i,) for i in UTD_TO_KINECT_V1),
    ("utd_mhad", "ntu25"): tuple(tuple(UTD_TO_KINECT_V1[k] for k in src) for src in KINECT_V1_TO_NTU25),
    ("ntu25", "utd_mhad"): tuple(NTU25_TO_KINECT_V1[k] for k in UTD_TO_KINECT_V1),
}


# Body parts for part-level text alignment (PURLS' Head / Hands / Torso / Legs description
# columns), by joint name so that every layout gets them. Parts overlap where a joint belongs
# to both (a hip moves with the legs and carries the torso).
_BODY_PART_JOINTS: dict[str, tuple[str, ...]] = {
    "head": ("head", "neck", "shoulder_center", "spine_shoulder"),
    "hands": tuple(f"{s}_{j}" for s in "lr" for j in ("elbow", "wrist", "hand", "hand_tip", "thumb")),
    "torso": ("hip_center", "spine_base", "spine", "spine_mid", "shoulder_center", "spine_shoulder",
              "l_shoulder", "r_shoulder", "l_hip", "r_hip"),
    "legs": tuple(f"{s}_{j}" for s in "lr" for j in ("hip", "knee", "ankle", "foot")),
}
BODY_PARTS = tuple(_BODY_PART_JOINTS)


def body_part_joints(layout: "str | JointLayout", part: str) -> tuple[int, ...]:
    """Joint ids of body part ``part`` (one of :data:`BODY_PARTS`) in ``layout``."""
    lay = get_layout(layout) if isinstance(layout, str) else layout
    if part not in _BODY_PART_JOINTS:
        raise unknown_name("body part", part, BODY_PARTS)
    ids = tuple(i for i, n in enumerate(lay.joints) if n in _BODY_PART_JOINTS[part])
    if not ids:
        raise ValueError(f"layout {lay.name!r} has no joint of body part {part!r}")
    return ids


def get_layout(name: str) -> JointLayout:
    """The registered joint layout ``name`` (``ntu25``, ``kinect_v1``, ``utd_mhad``);
    :class:`ConfigError` listing the valid names if unknown."""
    if name not in LAYOUTS:
        raise unknown_name("joint layout", name, LAYOUTS)
    return LAYOUTS[name]


def map_layout(x: np.ndarray, source: str, target: str, joint_axis: int = -2) -> np.ndarray:
    """Map joints from layout ``source`` to ``target`` along ``joint_axis``.

    Raises ``ConfigError`` when no mapping exists (an unknown layout is not guessed).
    """
    if source == target:
        return x
    key = (source, target)
    if key not in _MAPPINGS:
        from ..errors import ConfigError
        have = ", ".join(f"{a}->{b}" for a, b in _MAPPINGS)
        raise ConfigError(f"no joint mapping from layout {source!r} to {target!r} "
                          f"(available mappings: {have})")
    x = np.moveaxis(np.asarray(x), joint_axis, 0)
    out = np.stack([x[list(src)].mean(0) for src in _MAPPINGS[key]])
    return np.moveaxis(out, 0, joint_axis)
