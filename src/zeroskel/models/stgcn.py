"""ST-GCN skeleton encoder (Yan et al., AAAI 2018) for any joint layout.

Two presets:

* ``"slim"``: PGFA/SMIE's encoder (16/32/64 hidden channels, 256-d output; 821,380
  parameters on ``ntu25``), the Setting-1 encoder of the PGFA spec (section 3).
* ``"standard"``: the original ST-GCN widths (64/128/256).

Both have 10 blocks with temporal strides 2 at blocks 5 and 8, so T goes T -> ceil(T/2)
-> ceil(T/4) (50 -> 25 -> 13). The output is the mean over (T, V) and then over persons M.

Efficiency. The reference computes the graph convolution as a 1x1 conv to ``K * C_out``
channels followed by ``einsum('nkctv,kvw->nctw')``. Here the neighbour aggregation runs
first, on the ``C_in`` input channels (one (N*C_in*T, V) x (V, K*V) matmul), followed by
one 1x1 conv over the ``K * C_in`` stacked partitions. That is the same linear map with
the same parameters (the conv bias is pushed through the graph exactly), but the
aggregation and the layout permute touch ``C_in`` instead of ``K * C_out`` channels
(16x less data in block 1, 12x less in block 10).
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import whole
from ..data.layouts import get_layout
from ..errors import ConfigError, DataError
from .common import resolve_widths

# (out_channels, temporal stride) per block; block 1 has no residual and no dropout.
STGCN_PRESETS: dict[str, tuple[tuple[int, int], ...]] = {
    "slim": ((16, 1), (16, 1), (16, 1), (16, 1), (32, 2), (32, 1), (32, 1), (64, 2), (64, 1),
             (256, 1)),
    "standard": ((64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1), (256, 2),
                 (256, 1), (256, 1)),
}


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same state dict, same semantics) with a faster CPU mask.

    On CPU, ``bernoulli_`` costs ~3x more than drawing a uniform mask with ``rand_like``;
    dropout was ~10% of an ST-GCN training step. Other devices use the native kernel.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return super().forward(x)
        keep = (torch.rand_like(x) >= self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * keep


class GraphConv(nn.Module):
    """Spatial graph convolution over K adjacency partitions.

    ``out[n, o, t, w] = sum_k sum_v (W_k x[n, :, t, v] + b_k)[o] * A[k, v, w]``, with the
    parameters of a ``Conv2d(C_in, K * C_out, 1)`` (``conv.weight``: (K*C_out, C_in, 1, 1),
    row ``k * C_out + o``), exactly as the reference ``ConvTemporalGraphical``.

    Shapes: x (N, C_in, T, V), A (K, V, V) -> (N, C_out, T, V).
    """

    def __init__(self, in_channels: int, out_channels: int, num_partitions: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.k = in_channels, out_channels, num_partitions
        self.conv = nn.Conv2d(in_channels, out_channels * num_partitions, kernel_size=1)

    def forward(self, x: Tensor, adj: Tensor) -> Tensor:
        n, c, t, v = x.shape
        k, o = self.k, self.out_channels
        # Aggregate neighbours per partition on the narrow input: (N*C*T, V) @ (V, K*V).
        a2 = adj.permute(1, 0, 2).reshape(v, k * v)
        z = torch.matmul(x.reshape(n * c * t, v), a2).view(n, c, t, k, v)
        z = z.permute(0, 3, 1, 2, 4).reshape(n, k * c, t * v)    # channels (k, c_in)
        w = self.conv.weight.view(k, o, c).permute(1, 0, 2).reshape(1, o, k * c).expand(n, -1, -1)
        # The 1x1 conv as a batched GEMM: ~25% faster than oneDNN's 1x1 conv here.
        if self.conv.bias is None:
            out = torch.bmm(w, z)
        else:
            # bias_k is applied before aggregation, so it reaches w as sum_v A[k, v, w].
            bias = torch.einsum("ko,kw->ow", self.conv.bias.view(k, o), adj.sum(1))
            out = torch.baddbmm(bias[:, None, :].expand(o, t, v).reshape(1, o, t * v), w, z)
        return out.view(n, o, t, v)


class STGCNBlock(nn.Module):
    """relu(tcn(gcn(x, A)) + res(x)); tcn = BN-ReLU-Conv(kt x 1, stride)-BN-Dropout.

    Shapes: (N, C_in, T, V) -> (N, C_out, ceil(T / stride), V).
    """

    def __init__(self, in_channels: int, out_channels: int, num_partitions: int,
                 stride: int = 1, dropout: float = 0.0, residual: bool = True,
                 temporal_kernel: int = 9) -> None:
        super().__init__()
        if temporal_kernel % 2 != 1:
            raise ConfigError(f"temporal_kernel must be odd, got {temporal_kernel}")
        pad = (temporal_kernel - 1) // 2
        self.gcn = GraphConv(in_channels, out_channels, num_partitions)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1), (pad, 0)),
            nn.BatchNorm2d(out_channels),
            Dropout(dropout),
        )
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor, adj: Tensor) -> Tensor:
        y = self.tcn(self.gcn(x, adj))
        if self.residual is not None:
            y = y + self.residual(x)
        return F.relu(y, inplace=True)


class STGCN(nn.Module):
    """ST-GCN encoder: (N, C, T, V, M) float32 skeletons -> (N, feature_dim) features.

    Args:
        layout: joint layout name (``"ntu25"``, ``"kinect_v1"``); the graph is
            ``get_layout(layout).adjacency(strategy)``.
        in_channels: coordinates per joint ``C`` (3 for xyz).
        num_persons: persons ``M`` the encoder is meant for (recorded in the card; the data
            BN is shared across persons, so any ``M`` works at run time).
        preset: ``"slim"`` (PGFA: 16/32/64 -> 256) or ``"standard"`` (64/128/256).
        channels: optional per-block output widths overriding the preset's.
        strides: optional per-block temporal strides (default: the preset's, which needs
            ``len(channels) == 10``).
        strategy: adjacency partition strategy (``"spatial"``: K=3).
        dropout: dropout after every block's temporal conv except the first.
        edge_importance: learnable (K, V, V) multiplier of A per block, initialised to 1.
        data_bn: BatchNorm1d over the V*C coordinates of every frame, shared across persons.
        temporal_kernel: temporal conv size (9).

    Attributes:
        feature_dim: output width (last block's channels).
    """

    def __init__(self, layout: str = "ntu25", in_channels: int = 3, num_persons: int = 2, *,
                 preset: str = "slim", channels: Sequence[int] | None = None,
                 strides: Sequence[int] | None = None, strategy: str = "spatial",
                 dropout: float = 0.5, edge_importance: bool = True, data_bn: bool = True,
                 temporal_kernel: int = 9) -> None:
        super().__init__()
        widths, strides = resolve_widths("ST-GCN", "block", STGCN_PRESETS, preset, channels, strides)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be a number in [0, 1), got {dropout!r}")
        in_channels, num_persons = whole("in_channels", in_channels), whole("num_persons", num_persons)
        temporal_kernel = whole("temporal_kernel", temporal_kernel)
        for key, flag in (("edge_importance", edge_importance), ("data_bn", data_bn)):
            # a string from model.args ('false', 'no') is truthy and silently switched the option on
            if not isinstance(flag, (bool, np.bool_)):
                raise ConfigError(f"ST-GCN {key} must be true or false, got {flag!r}")
        edge_importance, data_bn = bool(edge_importance), bool(data_bn)
        joint_layout = get_layout(layout)
        self.layout, self.in_channels, self.num_persons = layout, int(in_channels), int(num_persons)
        self.preset, self.strategy = preset, strategy
        self.dropout, self.temporal_kernel = float(dropout), int(temporal_kernel)
        self.channels, self.strides = tuple(widths), tuple(strides)
        self.num_joints = joint_layout.num_joints
        self.feature_dim = widths[-1]
        adj = torch.tensor(joint_layout.adjacency(strategy), dtype=torch.float32)
        self.register_buffer("A", adj)
        k = adj.shape[0]
        self.data_bn = nn.BatchNorm1d(self.in_channels * self.num_joints) if data_bn else None
        blocks, c_in = [], self.in_channels
        for i, (c_out, s) in enumerate(zip(widths, strides)):
            blocks.append(STGCNBlock(c_in, c_out, k, stride=s, dropout=0.0 if i == 0 else dropout,
                                     residual=i > 0, temporal_kernel=temporal_kernel))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        if edge_importance:
            self.edge_importance = nn.ParameterList(
                [nn.Parameter(torch.ones_like(adj)) for _ in blocks])
        else:
            self.edge_importance = None

    def config(self) -> dict:
        """JSON-able constructor arguments: ``STGCN(**model.config())`` rebuilds the model."""
        return {"layout": self.layout, "in_channels": self.in_channels,
                "num_persons": self.num_persons, "preset": self.preset,
                "channels": list(self.channels), "strides": list(self.strides),
                "strategy": self.strategy, "dropout": self.dropout,
                "edge_importance": self.edge_importance is not None,
                "data_bn": self.data_bn is not None, "temporal_kernel": self.temporal_kernel}

    def output_frames(self, frames: int) -> int:
        """Frames left after the strided blocks (e.g. 50 -> 13)."""
        for s in self.strides:
            frames = -(-frames // s)
        return frames

    def _check(self, x: Tensor) -> None:
        if x.dim() != 5:
            raise DataError(f"STGCN expects (N, C, T, V, M) input, got shape {tuple(x.shape)}")
        _, c, _, v, _ = x.shape
        if c != self.in_channels or v != self.num_joints:
            raise DataError(f"STGCN({self.layout!r}) expects C={self.in_channels} and "
                             f"V={self.num_joints}, got input {tuple(x.shape)}")

    def forward_map(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> feature map (N*M, feature_dim, T', V), before pooling."""
        self._check(x)
        n, c, t, v, m = x.shape
        if self.data_bn is not None:
            x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
            x = self.data_bn(x)
            x = x.view(n * m, v, c, t).permute(0, 2, 3, 1).contiguous()
        else:
            x = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)
        for i, block in enumerate(self.blocks):
            adj = self.A if self.edge_importance is None else self.A * self.edge_importance[i]
            x = block(x, adj)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N, feature_dim): mean over (T, V), then over persons."""
        n, m = x.shape[0], x.shape[-1] if x.dim() == 5 else 1
        y = self.forward_map(x)
        return y.mean(dim=(2, 3)).view(n, m, -1).mean(dim=1)

    def forward_temporal(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N, T', feature_dim): mean over joints and persons, time kept."""
        n, m = x.shape[0], x.shape[-1] if x.dim() == 5 else 1
        y = self.forward_map(x).mean(dim=3)             # (N*M, C', T')
        return y.view(n, m, *y.shape[1:]).mean(dim=1).transpose(1, 2)

    def forward_local(self, x: Tensor) -> Tensor:
        """(N, C, T, V, M) -> (N, T', V, feature_dim): mean over persons, time and joints kept."""
        n, m = x.shape[0], x.shape[-1] if x.dim() == 5 else 1
        y = self.forward_map(x)                         # (N*M, C', T', V)
        return y.view(n, m, *y.shape[1:]).mean(dim=1).permute(0, 2, 3, 1)
