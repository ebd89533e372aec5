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
slice of the zero-padded input times a per-channel weight, so the op is a handful of
broadcast multiply-adds in any memory layout, with no index tensors and no scatter.
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


def _slice(ndim: int, dim: int, start: int, stride: int, count: int) -> tuple:
    idx = [slice(None)] * ndim
    idx[dim] = slice(start, start + stride * (count - 1) + 1, stride)
    return tuple(idx)


def _bshape(ndim: int, channel_dim: int, channels: int) -> list[int]:
    shape = [1] * ndim
    shape[channel_dim] = channels
    return shape


class _TemporalShiftFn(torch.autograd.Function):
    """Linear interpolation along ``time_dim`` at per-channel positions ``t*stride + pos``."""

    @staticmethod
    def forward(ctx, x: Tensor, pos: Tensor, stride: int, time_dim: int, channel_dim: int,
                offset_grad: str) -> Tensor:
        ndim, t_in, c = x.dim(), x.shape[time_dim], x.shape[channel_dim]
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
        # Zero-pad time so that every tap slice is in range: input index j sits at j + pad_l.
        pad_l = max(0, -k0)
        pad_r = max(0, (t_out - 1) * stride + k1 - (t_in - 1))
        if pad_l or pad_r:
            shape = list(x.shape)
            shape[time_dim] = t_in + pad_l + pad_r
            xp = x.new_zeros(shape)
            xp.narrow(time_dim, pad_l, t_in).copy_(x)
        else:
            xp = x
        bshape = _bshape(ndim, channel_dim, c)
        out = None
        for i in range(k1 - k0 + 1):
            w = weights[i].view(bshape)
            xs = xp[_slice(ndim, time_dim, k0 + i + pad_l, stride, t_out)]
            out = xs * w if out is None else out.addcmul_(xs, w)
        ctx.save_for_backward(xp, weights, hit_lo, hit_hi)
        ctx.meta = (stride, time_dim, channel_dim, offset_grad, k0, pad_l, t_in, t_out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        xp, weights, hit_lo, hit_hi = ctx.saved_tensors
        stride, time_dim, channel_dim, offset_grad, k0, pad_l, t_in, t_out = ctx.meta
        ndim, c = g.dim(), g.shape[channel_dim]
        bshape = _bshape(ndim, channel_dim, c)
        slices = [_slice(ndim, time_dim, k0 + i + pad_l, stride, t_out)
                  for i in range(weights.shape[0])]
        g = g.contiguous() if not g.is_contiguous() else g
        grad_x = grad_pos = None
        if ctx.needs_input_grad[0]:
            # Exact adjoint: scatter every tap back into the padded frame grid.
            gp = torch.zeros_like(xp)
            for i, sl in enumerate(slices):
                gp[sl].addcmul_(g, weights[i].view(bshape))
            grad_x = gp.narrow(time_dim, pad_l, t_in)
        if ctx.needs_input_grad[1]:
            # d out / d pos_c = x[t*s + floor + 1] - x[t*s + floor] (floor-based, as the kernel).
            dw = hit_hi - hit_lo
            deriv = None
            for i, sl in enumerate(slices):
                w = dw[i].view(bshape)
                deriv = xp[sl] * w if deriv is None else deriv.addcmul_(xp[sl], w)
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

