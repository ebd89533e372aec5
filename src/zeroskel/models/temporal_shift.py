"""Adaptive temporal shift (Shift-GCN, Cheng et al., CVPR 2020) in pure PyTorch.

Each channel ``c`` has a learnable fractional offset ``y_c``; output frame ``t`` of channel
``c`` is the input of that channel linearly interpolated at time ``t * stride + y'_c``, with
zeros outside ``[0, T)``. ``y'_c = y_c + (stride - 1) / 2`` centres the sample in the stride
window (the reference CUDA kernel adds 0.5 for its only stride, 2).

Output length: ``ceil(T / stride)`` for every ``T``. The reference kernel gives
``floor(T / stride)`` while the strided 1x1 residual beside it gives ``ceil(T / stride)``, so
Shift-GCN crashed for odd lengths at a stride-2 unit (T=50 -> 25 -> 12 vs 13). With ceil both
paths agree; for even ``T`` the two definitions coincide, so nothing changes where the
reference ran.

Offset gradient: the reference kernel replaces the true gradient ``g_c`` of the loss wrt
``y_c`` by ``0.01 * sign(g_c)`` (``1e-4`` where ``g_c == 0``), i.e. every offset moves by a
fixed step per SGD update whatever the loss scale. ``offset_grad="sign"`` reproduces this,
``offset_grad="true"`` gives the exact derivative (right derivative at integer offsets, as
the kernel's floor-based interpolation). The input gradient is always the exact adjoint.

The interpolation is computed as a sum over a few integer "taps" ``k`` (from
``min floor(y')`` to ``max floor(y') + 1``, 3-4 taps in practice): every tap is one strided
slice of the input (clipped at the sequence ends, which read zeros) times a per-channel
weight, so the op is a handful of broadcast multiply-adds in any memory layout, with no
index tensors, no scatter and no padded copy of the input.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from ..errors import ConfigError

OFFSET_GRAD_MODES = ("sign", "true")
SIGN_STEP = 0.01
ZERO_STEP = 1e-4


def shifted_length(length: int, stride: int) -> int:
    """Output length of the shift along time: ``ceil(length / stride)``."""
    return -(-int(length) // int(stride))


def _taps(t_in: int, t_out: int, stride: int, k0: int, used: list[bool]) -> list[tuple]:
    """For every used tap ``k = k0 + i``: (i, first output frame, output count, first input
    frame). Output frame ``t`` reads input ``t*stride + k``; frames reading outside
    ``[0, t_in)`` are left out (they read zeros), so no padded copy of the input is needed."""
    taps = []
    for i, u in enumerate(used):
        if not u:
            continue
        k = k0 + i
        lo = max(0, -(k // stride))             # ceil(-k / stride), clipped at 0
        hi = min(t_out - 1, (t_in - 1 - k) // stride)
        if lo <= hi:
            taps.append((i, lo, hi - lo + 1, lo * stride + k))
    return taps


def _sl(ndim: int, dim: int, start: int, count: int, step: int = 1) -> tuple:
    idx = [slice(None)] * ndim
    idx[dim] = slice(start, start + step * (count - 1) + 1, step)
    return tuple(idx)


def _bshape(ndim: int, channel_dim: int, channels: int) -> list[int]:
    shape = [1] * ndim
    shape[channel_dim] = channels
    return shape


def _tap_sum(x: Tensor, weights: Tensor, taps: list[tuple], out_shape: list[int],
             time_dim: int, channel_dim: int, stride: int) -> Tensor:
    """``out[t] = sum_i weights[i] * x[t*stride + k0 + i]`` over the clipped taps."""
    ndim, t_out = x.dim(), out_shape[time_dim]
    bshape = _bshape(ndim, channel_dim, x.shape[channel_dim])
    out = None
    for i, lo, n, start in taps:
        xs = x[_sl(ndim, time_dim, start, n, stride)]
        w = weights[i].view(bshape)
        if out is None and n == t_out:
            out = xs * w
            continue
        if out is None:
            out = x.new_zeros(out_shape)
        out[_sl(ndim, time_dim, lo, n)].addcmul_(xs, w)
    return x.new_zeros(out_shape) if out is None else out


class _TemporalShiftFn(torch.autograd.Function):
    """Linear interpolation along ``time_dim`` at per-channel positions ``t*stride + pos``."""

    @staticmethod
    def forward(ctx, x: Tensor, pos: Tensor, stride: int, time_dim: int, channel_dim: int,
                offset_grad: str) -> Tensor:
        t_in = x.shape[time_dim]
        t_out = shifted_length(t_in, stride)
        pos_d = pos.detach()
        fl = torch.floor(pos_d)
        frac = (pos_d - fl).to(x.dtype)
        fl_i = fl.to(torch.long)
        # One host sync per call for the tap range; offsets stay in a small range in practice.
        k0, k1 = int(fl_i.min()), int(fl_i.max()) + 1
        taps = torch.arange(k0, k1 + 1, device=x.device)[:, None]          # (K, 1)
        hit_lo = (taps == fl_i[None]).to(x.dtype)                              # (K, C)
        hit_hi = (taps == fl_i[None] + 1).to(x.dtype)
        weights = hit_lo * (1 - frac) + hit_hi * frac                          # (K, C)
        used = ((hit_lo + hit_hi).sum(1) > 0).tolist()
        tap_list = _taps(t_in, t_out, stride, k0, used)
        out_shape = list(x.shape)
        out_shape[time_dim] = t_out
        out = _tap_sum(x, weights, tap_list, out_shape, time_dim, channel_dim, stride)
        ctx.save_for_backward(x, weights, hit_lo, hit_hi)
        ctx.meta = (stride, time_dim, channel_dim, offset_grad, tap_list, out_shape)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        x, weights, hit_lo, hit_hi = ctx.saved_tensors
        stride, time_dim, channel_dim, offset_grad, tap_list, out_shape = ctx.meta
        ndim, c = g.dim(), g.shape[channel_dim]
        bshape = _bshape(ndim, channel_dim, c)
        grad_x = grad_pos = None
        if ctx.needs_input_grad[0]:
            # Exact adjoint: every tap's output frames flow back to the input frames it read.
            grad_x = torch.zeros_like(x, memory_format=torch.contiguous_format)
            for i, lo, n, start in tap_list:
                grad_x[_sl(ndim, time_dim, start, n, stride)].addcmul_(
                    g[_sl(ndim, time_dim, lo, n)], weights[i].view(bshape))
        if ctx.needs_input_grad[1]:
            # d out / d pos_c = x[t*s + floor + 1] - x[t*s + floor] (floor-based, as the kernel).
            deriv = _tap_sum(x, hit_hi - hit_lo, tap_list, out_shape, time_dim, channel_dim, stride)
            red = [d for d in range(ndim) if d != channel_dim]
            true = (g * deriv).sum(dim=red)
            if offset_grad == "sign":
                grad_pos = torch.where(true != 0, SIGN_STEP * torch.sign(true),
                                       torch.full_like(true, ZERO_STEP))
            else:
                grad_pos = true
        return grad_x, grad_pos, None, None, None, None


def adaptive_temporal_shift(x: Tensor, offset: Tensor, stride: int = 1, *, time_dim: int = 2,
                            channel_dim: int = 1, offset_grad: str = "sign") -> Tensor:
    """Shift every channel of ``x`` along time by a learnable fractional offset.

    Args:
        x: any layout, e.g. (N, C, T, V) (the defaults) or channels-last (N, T, V, C) with
            ``time_dim=1, channel_dim=3``.
        offset: (C,) per-channel offsets ``y_c`` (the stride centring ``(stride-1)/2`` is
            added here).
        stride: temporal stride ``s >= 1``.
        offset_grad: ``"sign"`` (reference rule: ``0.01*sign(g)``, ``1e-4`` where ``g == 0``)
            or ``"true"``.

    Returns:
        ``x`` resampled to ``ceil(T / s)`` frames along ``time_dim``, same layout.
    """
    if offset_grad not in OFFSET_GRAD_MODES:
        raise ConfigError(f"offset_grad must be one of {OFFSET_GRAD_MODES}, got {offset_grad!r}")
    if int(stride) < 1:
        raise ConfigError(f"temporal shift stride must be >= 1, got {stride}")
    time_dim %= x.dim()
    channel_dim %= x.dim()
    if offset.shape != (x.shape[channel_dim],):
        raise ValueError(f"offset must have shape ({x.shape[channel_dim]},) for input "
                         f"{tuple(x.shape)} with channel_dim={channel_dim}, got {tuple(offset.shape)}")
    if x.shape[time_dim] < 1:
        raise ValueError(f"temporal shift needs at least one frame, got input {tuple(x.shape)}")
    pos = offset + (stride - 1) / 2 if stride != 1 else offset
    return _TemporalShiftFn.apply(x, pos, int(stride), time_dim, channel_dim, offset_grad)


class AdaptiveTemporalShift(nn.Module):
    """Module form of :func:`adaptive_temporal_shift` with a learnable ``ypos`` of shape (C,).

    Args:
        channels: number of channels ``C``.
        stride: temporal stride (output ``ceil(T / stride)`` frames).
        init_scale: ``ypos`` is initialised U(-init_scale, init_scale) (reference: 1).
        offset_grad: ``"sign"`` (reference kernel rule) or ``"true"`` gradient for ``ypos``.
        time_dim, channel_dim: axes of the input (defaults: (N, C, T, V)).

    The reference's second offset ``xpos`` (along joints) is omitted: it is initialised
    U(+-1e-8) and the kernel zeroes its gradient, so it is a constant ~0.
    """

    def __init__(self, channels: int, stride: int = 1, init_scale: float = 1.0,
                 offset_grad: str = "sign", time_dim: int = 2, channel_dim: int = 1) -> None:
        super().__init__()
        if offset_grad not in OFFSET_GRAD_MODES:
            raise ConfigError(f"offset_grad must be one of {OFFSET_GRAD_MODES}, got {offset_grad!r}")
        if int(stride) < 1:
            raise ConfigError(f"temporal shift stride must be >= 1, got {stride}")
        self.channels, self.stride = int(channels), int(stride)
        self.offset_grad, self.time_dim, self.channel_dim = offset_grad, time_dim, channel_dim
        self.init_scale = float(init_scale)
        self.ypos = nn.Parameter(torch.empty(self.channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.ypos.uniform_(-self.init_scale, self.init_scale)

    def output_length(self, length: int) -> int:
        return shifted_length(length, self.stride)

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_temporal_shift(x, self.ypos, self.stride, time_dim=self.time_dim,
                                       channel_dim=self.channel_dim, offset_grad=self.offset_grad)

    def extra_repr(self) -> str:
        return f"{self.channels}, stride={self.stride}, offset_grad={self.offset_grad!r}"


__all__ = ["AdaptiveTemporalShift", "adaptive_temporal_shift", "shifted_length",
           "OFFSET_GRAD_MODES"]

