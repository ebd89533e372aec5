"""Shift-GCN skeleton encoder (Cheng et al., CVPR 2020) in pure PyTorch, as used by PGFA
(Setting 2, spec section 3), for any joint layout.

Ten units ``relu(shift_tcn(shift_gcn(x)) + res(x))`` with widths 64 x4, 128 x3, 256 x3 and
temporal stride 2 at units 5 and 8; output the mean over (T, V) and then over persons.

Differences from the reference (``module/shift_gcn.py`` + the ``shift_cuda`` extension):

* no CUDA extension: the adaptive temporal shift is
  :func:`zeroskel.models.temporal_shift.adaptive_temporal_shift` (same interpolation, same
  ``0.01*sign`` offset-gradient rule by default, no ``xpos``);
* any T works: every strided path gives ``ceil(T / 2)`` frames (the reference crashes at
  T=50 and PGFA resamples every batch to 64 frames; do that in the data pipeline if you want
  the reference behaviour);
* the unused classifier ``fc`` (256 -> 60) is not built; the shift index tables are buffers,
  not parameters.

Layout. Internally every tensor is channels-last, (B, T, V, C) with B = N*M. Then every
pointwise linear (the 1x1 convs and the spatial linear) is one (B*T*V, C_in) x (C_in, C_out)
GEMM, every BatchNorm runs on a contiguous 2-D (rows, features) view (PyTorch's CPU
BatchNorm is ~5x faster there than on a (1, C, L) view), the non-local spatial shifts are
column permutations of a (B*T, V*C) matrix whose backward is the inverse permutation (a
gather, no scatter), the temporal shift's tap slices are contiguous runs of V*C elements,
and no permute is needed between the spatial and temporal parts. The BN over V*C_out
features keeps the reference's (v, c) feature order.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import whole
from ..data.layouts import get_layout
from ..errors import ConfigError, DataError
from .temporal_shift import AdaptiveTemporalShift, OFFSET_GRAD_MODES, shifted_length
from .common import resolve_widths

# (out_channels, temporal stride) per unit; unit 1 has no residual.
SHIFTGCN_UNITS: tuple[tuple[int, int], ...] = (
    (64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1), (256, 2), (256, 1),
    (256, 1))
SHIFTGCN_PRESETS: dict[str, tuple[tuple[int, int], ...]] = {"default": SHIFTGCN_UNITS}


class _ColumnPermute(torch.autograd.Function):
    """``x[:, perm]`` of a 2-D tensor; the backward is the inverse permutation (a gather)."""

    @staticmethod
    def forward(ctx, x: Tensor, perm: Tensor, inverse: Tensor) -> Tensor:
        ctx.save_for_backward(inverse)
        return x.index_select(1, perm)

    @staticmethod
    def backward(ctx, g: Tensor):
        (inverse,) = ctx.saved_tensors
        return g.index_select(1, inverse), None, None


def spatial_shift_index(num_joints: int, channels: int, direction: int) -> Tensor:
    """Column index of the non-local spatial shift on a (..., V*C) tensor.

    Output feature ``v*C + c`` reads input feature ``((v + direction*c) mod V)*C + c``:
    channel ``c`` of joint ``v`` comes from joint ``v + c`` (shift-in, ``direction=+1``) or
    ``v - c`` (shift-out, ``direction=-1``), as the reference.
    """
    v = torch.arange(num_joints)[:, None]
    c = torch.arange(channels)[None, :]
    return (((v + direction * c) % num_joints) * channels + c).reshape(-1)


def _pointwise(x: Tensor, lin: nn.Linear) -> Tensor:
    """Per-joint linear map (a 1x1 conv) on the last dim: (..., C_in) -> (..., C_out)."""
    return F.linear(x, lin.weight, lin.bias)


def _bn(bn: nn.BatchNorm1d, x: Tensor) -> Tensor:
    """BatchNorm over the last dim of a channels-last tensor (statistics over the rest)."""
    return bn(x.reshape(-1, x.shape[-1])).view(x.shape)


class ShiftGraphConv(nn.Module):
    """Spatial Shift-GCN: shift-in, feature mask ``tanh(m)+1``, pointwise linear, shift-out,
    BN over the V*C_out features, plus ``down(x)`` (1x1 linear + BN when widths differ), ReLU.

    Shapes: (B, T, V, C_in) -> (B, T, V, C_out).
    """

    def __init__(self, in_channels: int, out_channels: int, num_joints: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.num_joints = in_channels, out_channels, num_joints
        # Same shapes and init as the reference's Linear_weight / Linear_bias / Feature_Mask.
        self.linear_weight = nn.Parameter(torch.empty(in_channels, out_channels))
        self.linear_bias = nn.Parameter(torch.zeros(out_channels))
        self.feature_mask = nn.Parameter(torch.zeros(num_joints, in_channels))
        nn.init.normal_(self.linear_weight, 0.0, math.sqrt(1.0 / out_channels))
        self.bn = nn.BatchNorm1d(num_joints * out_channels)
        if in_channels != out_channels:
            self.down = nn.Linear(in_channels, out_channels)     # a 1x1 conv
            nn.init.kaiming_normal_(self.down.weight, mode="fan_out")
            nn.init.zeros_(self.down.bias)
            self.down_bn = nn.BatchNorm1d(out_channels)
        else:
            self.down = self.down_bn = None
        for name, ch, d in (("in", in_channels, 1), ("out", out_channels, -1)):
            idx = spatial_shift_index(num_joints, ch, d)
            self.register_buffer(f"shift_{name}", idx, persistent=False)
            self.register_buffer(f"shift_{name}_inv", torch.argsort(idx), persistent=False)

    def forward(self, x0: Tensor) -> Tensor:
        b, t, v, c = x0.shape
        o = self.out_channels
        x = _ColumnPermute.apply(x0.reshape(b * t, v * c), self.shift_in, self.shift_in_inv)
        x = x.view(b * t, v, c) * (torch.tanh(self.feature_mask) + 1)
        x = torch.addmm(self.linear_bias, x.view(-1, c), self.linear_weight)
        x = _ColumnPermute.apply(x.view(b * t, v * o), self.shift_out, self.shift_out_inv)
        x = self.bn(x).view(b, t, v, o)
        if self.down is None:
            x = x + x0
        else:
            x = x + _bn(self.down_bn, _pointwise(x0, self.down))
        return F.relu(x)


class ShiftTemporalConv(nn.Module):
    """Temporal Shift-GCN: BN, temporal shift, pointwise linear, ReLU, strided temporal shift,
    BN. Shapes: (B, T, V, C) -> (B, ceil(T / stride), V, C_out).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 offset_grad: str = "sign") -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(in_channels)
        self.shift_in = AdaptiveTemporalShift(in_channels, 1, offset_grad=offset_grad,
                                              time_dim=1, channel_dim=3)
        self.temporal_linear = nn.Linear(in_channels, out_channels)   # a 1x1 conv
        nn.init.kaiming_normal_(self.temporal_linear.weight, mode="fan_out")
        # (the reference re-initialises only the weight; the bias keeps PyTorch's default)
        self.shift_out = AdaptiveTemporalShift(out_channels, stride, offset_grad=offset_grad,
                                               time_dim=1, channel_dim=3)
        self.bn2 = nn.BatchNorm1d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.shift_in(_bn(self.bn, x))
        x = F.relu(_pointwise(x, self.temporal_linear))
        return _bn(self.bn2, self.shift_out(x))


class ShiftGCNBlock(nn.Module):
    """``relu(tcn(gcn(x)) + res(x))``; res: none, identity, or strided 1x1 linear + BN.

    Shapes: (B, T, V, C_in) -> (B, ceil(T / stride), V, C_out).
    """

    def __init__(self, in_channels: int, out_channels: int, num_joints: int, stride: int = 1,
                 residual: bool = True, offset_grad: str = "sign") -> None:
        super().__init__()
        self.stride = stride
        self.gcn = ShiftGraphConv(in_channels, out_channels, num_joints)
        self.tcn = ShiftTemporalConv(out_channels, out_channels, stride, offset_grad)
        self.residual_mode = ("none" if not residual else
                              "identity" if in_channels == out_channels and stride == 1 else "conv")
        if self.residual_mode == "conv":
            self.res = nn.Linear(in_channels, out_channels)
            nn.init.kaiming_normal_(self.res.weight, mode="fan_out")
            nn.init.zeros_(self.res.bias)
            self.res_bn = nn.BatchNorm1d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        y = self.tcn(self.gcn(x))
        if self.residual_mode == "identity":
            y = y + x
        elif self.residual_mode == "conv":
            xs = x[:, :: self.stride] if self.stride > 1 else x    # ceil(T / stride) frames
            y = y + _bn(self.res_bn, _pointwise(xs, self.res))
        return F.relu(y)


class ShiftGCN(nn.Module):
    """Shift-GCN encoder: (N, C, T, V, M) float32 skeletons -> (N, feature_dim) features.

    Args:
        layout: joint layout name; only ``V`` is used (the spatial shift is non-local, the
            adjacency is ignored as in the reference).
        in_channels: coordinates per joint ``C``.
        num_persons: persons ``M``; the input BN is over M*V*C features (150 on NTU), as the
            reference, so inputs must have exactly this ``M``.
        preset: ``"default"`` (or None): 64 x4, 128 x3, 256 x3 with stride 2 at units 5
            and 8 (accepted so that every registry encoder takes ``preset``).
        channels, strides: optional per-unit widths / temporal strides overriding the
            preset's.
        offset_grad: ``"sign"`` (reference kernel: temporal offsets step by 0.01*sign(grad))
            or ``"true"`` (exact gradient).

    Attributes:
        feature_dim: output width (the last unit's channels; 256 for the preset).
    """

    def __init__(self, layout: str = "ntu25", in_channels: int = 3, num_persons: int = 2, *,
                 preset: str | None = None, channels: tuple[int, ...] | list[int] | None = None,
                 strides: tuple[int, ...] | list[int] | None = None,
                 offset_grad: str = "sign") -> None:
        super().__init__()
        if offset_grad not in OFFSET_GRAD_MODES:
            raise ConfigError(f"offset_grad must be one of {OFFSET_GRAD_MODES}, got {offset_grad!r}")
        preset = "default" if preset is None else preset
        in_channels, num_persons = whole("in_channels", in_channels), whole("num_persons", num_persons)
        widths, strides = resolve_widths("Shift-GCN", "unit", SHIFTGCN_PRESETS, preset, channels, strides)
        joint_layout = get_layout(layout)
        self.layout, self.in_channels, self.num_persons = layout, int(in_channels), int(num_persons)
        self.num_joints = v = joint_layout.num_joints
        self.preset = preset
        self.channels, self.strides, self.offset_grad = tuple(widths), tuple(strides), offset_grad
        self.feature_dim = widths[-1]
        self.data_bn = nn.BatchNorm1d(self.num_persons * v * self.in_channels)
        blocks, c_in = [], self.in_channels
        for i, (c_out, s) in enumerate(zip(widths, strides)):
            blocks.append(ShiftGCNBlock(c_in, c_out, v, s, residual=i > 0, offset_grad=offset_grad))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)

    def config(self) -> dict:
        """JSON-able constructor arguments: ``ShiftGCN(**model.config())`` rebuilds the model."""
        return {"layout": self.layout, "in_channels": self.in_channels,
                "num_persons": self.num_persons, "preset": self.preset,
                "channels": list(self.channels),
                "strides": list(self.strides), "offset_grad": self.offset_grad}

    def output_frames(self, frames: int) -> int:
        """Frames left after the strided units (50 -> 25 -> 13)."""
        for s in self.strides:
            frames = shifted_length(frames, s)
        return frames

    def _check(self, x: Tensor) -> None:
        if x.dim() != 5:
            raise DataError(f"ShiftGCN expects (N, C, T, V, M) input, got shape {tuple(x.shape)}")
        _, c, _, v, m = x.shape
        if (c, v, m) != (self.in_channels, self.num_joints, self.num_persons):
            raise DataError(f"ShiftGCN({self.layout!r}) expects C={self.in_channels}, "
                             f"V={self.num_joints}, M={self.num_persons}, got input {tuple(x.shape)}")

    def forward_map(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> channels-last feature map (N*M, T', V, feature_dim), b = n*M + m."""
        self._check(x)
        n, c, t, v, m = x.shape
        x = x.permute(0, 2, 4, 3, 1).reshape(n * t, m * v * c)      # features (m, v, c)
        x = self.data_bn(x).view(n, t, m, v, c)
        x = x.transpose(1, 2).reshape(n * m, t, v, c)
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N, feature_dim): mean over (T, V), then over persons."""
        n = x.shape[0]
        y = self.forward_map(x)                         # (N*M, T', V, C')
        return y.mean(dim=(1, 2)).view(n, -1, y.shape[-1]).mean(dim=1)

    def forward_temporal(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N, T', feature_dim): mean over joints and persons, time kept."""
        n = x.shape[0]
        y = self.forward_map(x).mean(dim=2)             # (N*M, T', C')
        return y.view(n, -1, *y.shape[1:]).mean(dim=1)

    def forward_local(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N, T', V, feature_dim): mean over persons, time and joints kept."""
        y = self.forward_map(x)                         # (N*M, T', V, C')
        return y.view(x.shape[0], -1, *y.shape[1:]).mean(dim=1)
