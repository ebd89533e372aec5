"""Input modalities of a skeleton encoder: joints, bones, and their motion.

The four streams of multi-stream GCNs (2s-AGCN, MS-G3D, PySKL's ``j``/``b``/``jm``/``bm``):

- ``joint``: the coordinates as given;
- ``bone``: each joint's vector from its parent, ``x[child] - x[parent]`` with the parents
  of the layout's bone list (:attr:`zeroskel.data.layouts.JointLayout.bones`); the root
  joint's bone is zero;
- ``motion``: joint displacement to the next frame, ``x[t + 1] - x[t]``, zero at the last
  frame. It assumes every frame is valid, as after the ``resize`` step of every
  preprocessing preset; on zero-padded input the last valid frame's motion would be minus
  its position;
- ``bone_motion``: the motion of the bones;
- ``joint_motion``: the joints and their motion stacked on the channel axis (``2C``
  channels), one stream that sees both position and velocity (SGN's input), where the
  others are separate streams of an ensemble.

All are linear in the joint coordinates, so they commute with rotation and scaling
augmentation and with temporal resampling, and a model can take joint-layout input from
the same preprocessing whatever its modality. That is why the modality is part of the
model (a parameter-free first layer), not of the data pipeline: models of different
modalities share one prepared dataset and can be ensembled on it.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.layouts import JointLayout, get_layout
from ..errors import ConfigError, unknown_name

MODALITIES = ("joint", "bone", "motion", "bone_motion", "joint_motion")


def check_modality(modality: str) -> str:
    """``modality`` if it is one of :data:`MODALITIES`, else a :class:`ConfigError` naming
    ``model.modality`` (run-config checks call this before any model is built)."""
    if modality not in MODALITIES:
        raise unknown_name("model.modality", str(modality), MODALITIES)
    return modality


def channel_factor(modality: str) -> int:
    """How many channels the stream has per input coordinate: 2 for ``joint_motion``
    (position and velocity stacked), else 1. The encoder's ``in_channels`` is ``C`` times it."""
    return 2 if check_modality(modality) == "joint_motion" else 1


def bone_parents(layout: JointLayout | str) -> list[int]:
    """Parent joint of every joint of ``layout`` (the root is its own parent).

    Raises :class:`ConfigError` unless every joint but one (the root) is the child of
    exactly one bone.
    """
    lay = get_layout(layout) if isinstance(layout, str) else layout
    parents = list(range(lay.num_joints))
    children = [c for c, _ in lay.bones]
    if len(set(children)) != len(children) or len(children) != lay.num_joints - 1:
        raise ConfigError(f"layout {lay.name!r}: its bones are not a tree with one parent per "
                          "non-root joint, so bone vectors are undefined")
    for child, parent in lay.bones:
        parents[child] = parent
    return parents


class InputModality(nn.Module):
    """Turn joint coordinates into one of :data:`MODALITIES` (no parameters).

    Args:
        modality: ``joint`` (identity), ``bone``, ``motion``, ``bone_motion`` or
            ``joint_motion``.
        layout: the joint layout of the input (needed for bones).

    Shapes: (N, C, T, V, M) -> (N, C * channel_factor(modality), T, V, M).
    """

    def __init__(self, modality: str = "joint", layout: JointLayout | str | None = None) -> None:
        super().__init__()
        self.modality = check_modality(modality)
        parents = None
        if modality in ("bone", "bone_motion"):
            if layout is None:
                raise ConfigError(f"model.modality {modality!r} needs the joint layout")
            parents = torch.tensor(bone_parents(layout), dtype=torch.long)
        # not persistent: derived from the layout, so checkpoints stay the same as without it
        self.register_buffer("parents", parents, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.modality in ("bone", "bone_motion"):
            x = x - x.index_select(3, self.parents)  # the root minus itself: zero
        if self.modality in ("motion", "bone_motion", "joint_motion"):
            motion = torch.cat([x[:, :, 1:] - x[:, :, :-1], torch.zeros_like(x[:, :, :1])], dim=2)
            x = torch.cat([x, motion], dim=1) if self.modality == "joint_motion" else motion
        return x

    def extra_repr(self) -> str:
        return repr(self.modality)
