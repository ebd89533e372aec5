"""Skeleton encoders: shapes and parameter counts against the PGFA spec, the temporal shift
against an explicit loop implementation, Shift-GCN against a reference-layout recomputation,
real UTD-MHAD batches, determinism, registry and cards."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zeroskel.errors import ConfigError, DataError
from zeroskel.models import (STGCN, AdaptiveTemporalShift, EncoderCard, ShiftGCN,
                             adaptive_temporal_shift, build_encoder, list_encoders, make_card)
from zeroskel.models.stgcn import GraphConv
from zeroskel.models.temporal_shift import SIGN_STEP, ZERO_STEP

from conftest import need


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on the shared 2-core machine, 2 OpenMP threads of these small
    ops were ~10x slower (wall) than one whenever the other core was busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ----------------------------------------------------------------------------- ST-GCN
def test_stgcn_slim_matches_spec():
    m = STGCN("ntu25", preset="slim")
    assert n_params(m) == 821_380            # PGFA spec section 3, verified on the reference
    assert m.feature_dim == 256 and m.output_frames(50) == 13
    m.eval()
    with torch.no_grad():
        assert m(torch.randn(2, 3, 16, 25, 2)).shape == (2, 256)


def test_stgcn_standard_and_custom_widths():
    m = STGCN("ntu25", preset="standard")
    # ST-GCN (Yan et al.) on NTU: 3,098,832 with its 256->60 classifier, which we do not build.
    assert n_params(m) == 3_098_832 - (256 * 60 + 60)
    assert m.channels == (64, 64, 64, 64, 128, 128, 128, 256, 256, 256)
    small = STGCN("kinect_v1", num_persons=1, channels=[8, 16], strides=[1, 2], dropout=0.0)
    assert small.feature_dim == 16 and small.output_frames(9) == 5
    with pytest.raises(ConfigError, match="strides"):
        STGCN("ntu25", channels=[8, 16])
    with pytest.raises(ConfigError, match="preset"):
        STGCN("ntu25", preset="huge")
    with pytest.raises(ConfigError, match="layout"):
        STGCN("ntu99")


def test_graph_conv_equals_reference_formulation():
    # Reference: 1x1 conv to K*C_out channels, then einsum over (k, v); ours aggregates first.
    torch.manual_seed(0)
    g = GraphConv(5, 7, 3).double()
    with torch.no_grad():
        g.conv.bias.normal_()
    x = torch.randn(2, 5, 6, 20, dtype=torch.float64, requires_grad=True)
    adj = torch.rand(3, 20, 20, dtype=torch.float64, requires_grad=True)
    ref = torch.einsum("nkctv,kvw->nctw", g.conv(x).view(2, 3, 7, 6, 20), adj)
    out = g(x, adj)
    torch.testing.assert_close(out, ref)
    gy = torch.randn_like(ref)
    got = torch.autograd.grad(out, (x, adj, g.conv.weight, g.conv.bias), gy)
    want = torch.autograd.grad(ref, (x, adj, g.conv.weight, g.conv.bias), gy)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


def test_stgcn_equals_reference_formulation():
    """Whole ST-GCN recomputed as the reference does it: data BN over (V*C) on an
    (N*M, V*C, T) view, conv-then-einsum graph convolution with A * edge_importance, BN-ReLU-
    conv-BN tcn, residuals, avg-pool over (T, V) then mean over persons."""
    torch.manual_seed(0)
    m = STGCN("kinect_v1", num_persons=2, channels=[4, 6, 6], strides=[1, 2, 1],
              dropout=0.0).double()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.2 * torch.randn_like(p))
    x = torch.randn(2, 3, 7, 20, 2, dtype=torch.float64)

    def bn(mod, z):
        return F.batch_norm(z, None, None, mod.weight, mod.bias, True, 0.0, mod.eps)

    n, c, t, v, mm = x.shape
    z = bn(m.data_bn, x.permute(0, 4, 3, 1, 2).reshape(n * mm, v * c, t))
    z = z.view(n, mm, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * mm, c, t, v)
    for i, blk in enumerate(m.blocks):
        adj = m.A * m.edge_importance[i]
        k = adj.shape[0]
        y = blk.gcn.conv(z)
        y = torch.einsum("nkctv,kvw->nctw", y.view(y.shape[0], k, -1, *y.shape[2:]), adj)
        bn1, conv, bn2 = blk.tcn[0], blk.tcn[2], blk.tcn[3]
        y = bn(bn2, conv(F.relu(bn(bn1, y))))
        if blk.residual is not None:
            y = y + (z if isinstance(blk.residual, torch.nn.Identity)
                     else bn(blk.residual[1], blk.residual[0](z)))
        z = F.relu(y)
    want = F.avg_pool2d(z, z.shape[2:]).view(n, mm, -1).mean(dim=1)
    got = m(x)
    torch.testing.assert_close(got, want)
    params = list(m.parameters())
    for a, b in zip(torch.autograd.grad(got.sum(), params), torch.autograd.grad(want.sum(), params)):
        torch.testing.assert_close(a, b)


def test_encoders_run_under_cpu_bf16_autocast():
    # bfloat16 autocast is ~1.7-2x faster for training on AVX512-BF16 CPUs; the custom
    # autograd ops must accept bf16 activations and return float32 parameter gradients.
    torch.manual_seed(0)
    x = torch.randn(3, 3, 9, 20, 1)
    for name in ("stgcn", "shiftgcn"):
        m = build_encoder(name, layout="kinect_v1", num_persons=1, channels=[8, 16],
                          strides=[1, 2])
        m.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = m(x)
        y.float().pow(2).mean().backward()
        assert all(p.grad is not None and p.grad.dtype == torch.float32
                   and torch.isfinite(p.grad).all() for p in m.parameters())
        m.eval()
        with torch.no_grad():
            ref = m(x)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                low = m(x).float()
        assert (low - ref).norm() / ref.norm() < 0.05


def test_stgcn_bad_input_names_shape():
    m = STGCN("kinect_v1", num_persons=1, channels=[8], strides=[1])
    with pytest.raises(DataError, match="V=20"):
        m(torch.randn(1, 3, 10, 25, 1))
    with pytest.raises(DataError, match=r"\(N, C, T, V, M\)"):
        m(torch.randn(3, 10, 20, 1))


def test_stgcn_flags_must_be_booleans():
    # model.args: {edge_importance: "false"} (a quoted YAML string) used to switch the option ON
    for key in ("edge_importance", "data_bn"):
        for bad in ("false", "no", 0, None):
            with pytest.raises(ConfigError, match=f"{key} must be true or false"):
                STGCN("kinect_v1", **{key: bad})
    from zeroskel.engine.pretrain import build_encoder as pretrain_build
    with pytest.raises(ConfigError, match="model.args .*edge_importance must be true or false, got 'false'"):
        pretrain_build("stgcn", "kinect_v1", 1, "slim", {"edge_importance": "false"})
    m = STGCN("kinect_v1", edge_importance=np.bool_(False), data_bn=False)
    assert m.edge_importance is None and m.data_bn is None
    assert m.config()["edge_importance"] is False and STGCN(**m.config()).config() == m.config()


# ------------------------------------------------------------------ temporal shift
def explicit_shift(x: torch.Tensor, pos: torch.Tensor, stride: int) -> torch.Tensor:
    """Slow, obvious 1-D linear interpolation of x (N, C, T, V) at t*stride + pos_c (+0.5
    centring for stride 2 -> (stride-1)/2), zeros outside [0, T), ceil(T/stride) frames."""
    n, c, t, v = x.shape
    t_out = math.ceil(t / stride)
    zero = x.new_zeros(())
    out = []
    for i in range(n):
        for ch in range(c):
            p = pos[ch] + (stride - 1) / 2
            for to in range(t_out):
                y = to * stride + p
                lo = math.floor(float(y.detach()))
                f = y - lo
                for j in range(v):
                    a = x[i, ch, lo, j] if 0 <= lo < t else zero
                    b = x[i, ch, lo + 1, j] if 0 <= lo + 1 < t else zero
                    out.append((1 - f) * a + f * b)
    return torch.stack(out).view(n, c, t_out, v)


@pytest.mark.parametrize("stride,frames", [(1, 7), (1, 1), (2, 8), (2, 7), (3, 10)])
@pytest.mark.parametrize("channels_major", [False, True])
def test_temporal_shift_matches_explicit_loop(stride, frames, channels_major):
    torch.manual_seed(stride * 100 + frames)
    x = torch.randn(2, 4, frames, 3, dtype=torch.float64, requires_grad=True)
    # offsets across several integer cells, one exactly integral, one beyond the sequence
    pos = torch.tensor([-1.7, 0.3, 2.0, 11.25], dtype=torch.float64, requires_grad=True)
    want = explicit_shift(x, pos, stride)
    if channels_major:      # (C, V, N, T) layout as used inside Shift-GCN
        xin = x.permute(1, 3, 0, 2)
        got = adaptive_temporal_shift(xin, pos, stride, time_dim=3, channel_dim=0,
                                      offset_grad="true").permute(2, 0, 3, 1)
    else:
        got = adaptive_temporal_shift(x, pos, stride, offset_grad="true")
    assert got.shape == (2, 4, math.ceil(frames / stride), 3)
    torch.testing.assert_close(got, want)
    g = torch.randn_like(want)
    gx, gp = torch.autograd.grad(got, (x, pos), g)
    wx, wp = torch.autograd.grad(want, (x, pos), g)
    torch.testing.assert_close(gx, wx)         # exact adjoint
    torch.testing.assert_close(gp, wp)         # true offset gradient (right derivative)


def test_temporal_shift_sign_gradient_rule():
    torch.manual_seed(1)
    x = torch.randn(3, 5, 9, 2, dtype=torch.float64)
    x[:, 4] = 0.0                                # channel 4: zero true gradient
    pos = torch.tensor([0.4, -0.6, 1.3, -1.2, 0.1], dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 5, 5, 2, dtype=torch.float64)
    out = adaptive_temporal_shift(x, pos, 2)
    (sign_grad,) = torch.autograd.grad(out, pos, g)
    (true_grad,) = torch.autograd.grad(explicit_shift(x, pos, 2), pos, g)
    assert true_grad[4] == 0 and (true_grad[:4] != 0).all()
    want = SIGN_STEP * torch.sign(true_grad)
    want[4] = ZERO_STEP
    torch.testing.assert_close(sign_grad, want, rtol=0, atol=0)
    # the module's flag selects the true gradient; output and input gradient do not change
    shift_true = AdaptiveTemporalShift(5, stride=2, offset_grad="true").double()
    shift_sign = AdaptiveTemporalShift(5, stride=2).double()
    with torch.no_grad():
        shift_true.ypos.copy_(pos)
        shift_sign.ypos.copy_(pos)
    xr = x.clone().requires_grad_()
    out_t = shift_true(xr)
    gx_t, gp_t = torch.autograd.grad(out_t, (xr, shift_true.ypos), g)
    out_s = shift_sign(xr)
    gx_s, gp_s = torch.autograd.grad(out_s, (xr, shift_sign.ypos), g)
    torch.testing.assert_close(out_t, out_s)
    torch.testing.assert_close(gx_t, gx_s)
    torch.testing.assert_close(gp_t, true_grad)
    torch.testing.assert_close(gp_s, want)


def test_temporal_shift_init_and_errors():
    torch.manual_seed(0)
    s = AdaptiveTemporalShift(1000)
    assert s.ypos.shape == (1000,) and -1 <= s.ypos.min() < -0.9 and 0.9 < s.ypos.max() <= 1
    assert not hasattr(s, "xpos")
    with pytest.raises(ConfigError, match="offset_grad"):
        AdaptiveTemporalShift(4, offset_grad="exact")
    with pytest.raises(ValueError, match="offset must have shape"):
        adaptive_temporal_shift(torch.zeros(1, 3, 5, 2), torch.zeros(4))


# -------------------------------------------------------------------------- Shift-GCN
def test_shiftgcn_parameter_count_vs_spec():
    m = ShiftGCN("ntu25")
    # The reference's 757,182 also counts: the unused fc 256->60, the constant ~0 xpos
    # offsets (one per temporal-shift channel) and the spatial shift index tables, which it
    # registers as (non-trainable) nn.Parameters. We build none of them as parameters.
    fc = 256 * 60 + 60
    xpos = sum(b.tcn.shift_in.channels + b.tcn.shift_out.channels for b in m.blocks)
    tables = sum(b.gcn.shift_in.numel() + b.gcn.shift_out.numel() for b in m.blocks)
    assert (fc, xpos, tables) == (15_420, 2_816, 64_075)
    assert n_params(m) == 674_871
    assert n_params(m) + fc + xpos + tables == 757_182
    assert m.data_bn.num_features == 150 and m.feature_dim == 256


@pytest.mark.parametrize("frames,t_out", [(50, 13), (64, 16), (37, 10)])
def test_shiftgcn_any_length(frames, t_out):
    # The reference crashes at T=50 (12 vs 13 frames at the second strided unit).
    torch.manual_seed(0)
    m = ShiftGCN("ntu25", num_persons=2)
    x = torch.randn(1, 3, frames, 25, 2)
    assert m.output_frames(frames) == t_out
    if frames != 37:
        with torch.no_grad():
            assert m.forward_map(x).shape == (2, t_out, 25, 256)
        return
    y = m(x)                                    # odd length: forward and backward
    assert y.shape == (1, 256) and torch.isfinite(y).all()
    y.pow(2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def _reference_layout_shiftgcn(m: ShiftGCN, x: torch.Tensor) -> torch.Tensor:
    """Shift-GCN recomputed in the reference's layout and formulation: (N*M, C, T, V)
    tensors, shifts as column gathers of (N*T, V*C), 1x1 convs as conv2d, BatchNorm over V*C
    in (v, c) order. Training-mode BN statistics (batch statistics)."""

    def bn(mod, z, weight=None, bias=None):
        return F.batch_norm(z, None, None, mod.weight if weight is None else weight,
                            mod.bias if bias is None else bias, True, 0.0, mod.eps)

    def conv1x1(lin, z, stride=1):
        return F.conv2d(z, lin.weight[:, :, None, None], lin.bias, stride=(stride, 1))

    def gcn(g, x0):
        n, c, t, v = x0.shape
        o = g.out_channels
        z = x0.permute(0, 2, 3, 1).reshape(n * t, v * c)
        z = z[:, [((i + j) % v) * c + j for i in range(v) for j in range(c)]].view(n * t, v, c)
        z = z * (torch.tanh(g.feature_mask) + 1)
        z = torch.einsum("nwc,cd->nwd", z, g.linear_weight) + g.linear_bias
        z = z.reshape(n * t, v * o)[:, [((i - j) % v) * o + j for i in range(v) for j in range(o)]]
        z = bn(g.bn, z).view(n, t, v, o).permute(0, 3, 1, 2)
        d = x0 if g.down is None else bn(g.down_bn, conv1x1(g.down, x0))
        return F.relu(z + d)

    def tcn(tc, z):
        z = explicit_shift(bn(tc.bn, z), tc.shift_in.ypos, 1)
        z = F.relu(conv1x1(tc.temporal_linear, z))
        return bn(tc.bn2, explicit_shift(z, tc.shift_out.ypos, tc.shift_out.stride))

    n, c, t, v, mm = x.shape
    z = bn(m.data_bn, x.permute(0, 4, 3, 1, 2).reshape(n, mm * v * c, t))
    z = z.view(n, mm, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * mm, c, t, v)
    for b in m.blocks:
        y = tcn(b.tcn, gcn(b.gcn, z))
        if b.residual_mode == "identity":
            y = y + z
        elif b.residual_mode == "conv":
            y = y + bn(b.res_bn, conv1x1(b.res, z, b.stride))
        z = F.relu(y)
    return z.view(n, mm, z.shape[1], -1).mean(3).mean(1)


def test_shiftgcn_equals_reference_layout_computation():
    torch.manual_seed(0)
    m = ShiftGCN("kinect_v1", num_persons=2, channels=[3, 3, 5], strides=[1, 1, 2]).double()
    with torch.no_grad():                      # move every parameter off its special init
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(1, 3, 5, 20, 2, dtype=torch.float64)
    want = _reference_layout_shiftgcn(m, x)
    got = m(x)
    torch.testing.assert_close(got, want)
    params = [p for name, p in m.named_parameters() if not name.endswith("ypos")]
    g1 = torch.autograd.grad(got.sum(), params)
    g2 = torch.autograd.grad(want.sum(), params)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_shiftgcn_bad_input():
    m = ShiftGCN("kinect_v1", num_persons=1, channels=[4], strides=[1])
    with pytest.raises(DataError, match="M=1"):
        m(torch.randn(1, 3, 8, 20, 2))
    with pytest.raises(ConfigError, match="offset_grad"):
        ShiftGCN("ntu25", offset_grad="exact")


# ------------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def utd_batch(data_root, tmp_path_factory):
    from zeroskel.data.readers.small import read_utd_mhad

    src = need(data_root, "utd_mhad")
    files = sorted(src.glob("a*_s*_t1_skeleton.mat"))[:4]
    if len(files) < 4:
        pytest.skip("fewer than 4 UTD-MHAD files")
    sub = tmp_path_factory.mktemp("utd")
    for f in files:                             # a few real files, by link (nothing copied)
        os.symlink(f, sub / f.name)
    ds = read_utd_mhad(sub, progress=False)
    x = torch.from_numpy(ds.data[:4, :, :24].copy())   # (4, 3, 24, 20, 1)
    assert x.shape == (4, 3, 24, 20, 1) and ds.layout == "kinect_v1"
    return x


@pytest.mark.parametrize("name,kw", [("stgcn", {"preset": "slim"}),
                                     ("shiftgcn", {"channels": [16, 16, 32], "strides": [1, 1, 2]})])
def test_encoders_on_real_utd_mhad(utd_batch, name, kw):
    torch.manual_seed(0)
    m = build_encoder(name, layout="kinect_v1", num_persons=1, **kw)
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    m.train()
    y = m(utd_batch)
    assert y.shape == (4, m.feature_dim) and torch.isfinite(y).all()
    loss = (y - y.mean(0)).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    m.eval()
    with torch.no_grad():
        a = m(utd_batch)
        b = m(utd_batch)
        single = m(utd_batch[2:3])
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=0, atol=0)          # eval is deterministic
    torch.testing.assert_close(single[0], a[2], rtol=1e-4, atol=1e-5)   # no batch coupling


def test_train_mode_is_seed_deterministic():
    x = torch.randn(3, 3, 12, 20, 1)
    for name, kw in (("stgcn", {"channels": [8, 8], "strides": [1, 2]}),
                     ("shiftgcn", {"channels": [8, 8], "strides": [1, 2]})):
        outs = []
        for _ in range(2):
            torch.manual_seed(3)
            m = build_encoder(name, layout="kinect_v1", num_persons=1, **kw).train()
            outs.append(m(x))
        torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_stgcn_dropout_active_only_in_training():
    torch.manual_seed(0)
    m = STGCN("kinect_v1", num_persons=1, channels=[8, 8, 8], strides=[1, 1, 1], dropout=0.5)
    x = torch.randn(2, 3, 6, 20, 1)
    m.train()
    a, b = m(x), m(x)                           # different dropout masks
    assert not torch.equal(a, b)
    drop = m.blocks[1].tcn[-1]
    z = torch.ones(20000)
    kept = drop(z)
    assert set(kept.unique().tolist()) <= {0.0, 2.0} and abs(float((kept > 0).float().mean()) - 0.5) < 0.02
    m.eval()
    torch.testing.assert_close(m(x), m(x), rtol=0, atol=0)


# -------------------------------------------------------------------------- registry
def test_registry_and_cards(tmp_path):
    assert list_encoders() == ["shiftgcn", "stgcn"]
    with pytest.raises(ConfigError, match="unknown encoder .*; valid: shiftgcn, stgcn"):
        build_encoder("resnet")
    with pytest.raises(ConfigError, match="'hidden'"):
        build_encoder("stgcn", hidden=3)
    with pytest.raises(ConfigError, match="Shift-GCN preset"):
        build_encoder("shiftgcn", preset="slim")
    m = build_encoder("stgcn", layout="kinect_v1", num_persons=1, preset="slim")
    card = make_card("stgcn", m, frames=50, dataset="utd_mhad", split="xsub", text_model="mini")
    assert card.num_params == n_params(m) and card.feature_dim == 256
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card.to_dict()))
    back = EncoderCard.from_dict(json.loads(path.read_text()), source=str(path))
    assert back == card
    rebuilt = back.build()
    rebuilt.load_state_dict(m.state_dict())     # same architecture, strict
    for name, kw in (("shiftgcn", {}), ("stgcn", {"preset": "standard", "dropout": 0.1})):
        enc = build_encoder(name, layout="ntu25", **kw)
        c = make_card(name, enc)
        assert type(c.build()) is type(enc) and c.build().config() == enc.config()
    with pytest.raises(ConfigError, match=r"card.json: unknown key\(s\) colour"):
        EncoderCard.from_dict({**card.to_dict(), "colour": 1}, source="card.json")
    # a card whose kwargs repeat a card field or are no mapping failed in build() with a TypeError
    with pytest.raises(ConfigError, match=r"card.json: 'kwargs' must not hold 'layout'"):
        EncoderCard.from_dict({**card.to_dict(), "kwargs": {"layout": "ntu25"}}, source="card.json")
    with pytest.raises(ConfigError, match=r"card.json: 'kwargs' must be a mapping, got list"):
        EncoderCard.from_dict({**card.to_dict(), "kwargs": ["slim"]}, source="card.json")
    with pytest.raises(ConfigError, match=r"missing key\(s\) layout"):
        EncoderCard.from_dict({k: v for k, v in card.to_dict().items() if k != "layout"})


def test_input_modalities_against_explicit_loops():
    from zeroskel.data.layouts import get_layout
    from zeroskel.models.modality import InputModality, bone_parents

    lay = get_layout("kinect_v1")
    parents = bone_parents(lay)
    root = lay.joints.index("hip_center")
    assert parents[root] == root and sorted(set(range(20)) - {root}) == sorted(c for c, _ in lay.bones)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 20, 2)
    bone = torch.zeros_like(x)
    for c, p in lay.bones:
        bone[:, :, :, c] = x[:, :, :, c] - x[:, :, :, p]
    torch.testing.assert_close(InputModality("bone", "kinect_v1")(x), bone)
    motion = torch.zeros_like(x)
    for t in range(6):
        motion[:, :, t] = x[:, :, t + 1] - x[:, :, t]
    torch.testing.assert_close(InputModality("motion")(x), motion)
    bm = torch.zeros_like(x)
    bm[:, :, :6] = bone[:, :, 1:] - bone[:, :, :-1]
    torch.testing.assert_close(InputModality("bone_motion", lay)(x), bm)
    assert InputModality("joint")(x) is x
    # joint_motion: one stream, position channels first, then velocity
    torch.testing.assert_close(InputModality("joint_motion")(x), torch.cat([x, motion], dim=1))
    # linear: commutes with a rotation about the vertical axis, so augmentation order is free
    rot = torch.tensor([[0.6, 0, 0.8], [0, 1, 0], [-0.8, 0, 0.6]])
    rx = torch.einsum("ij,njtvm->nitvm", rot, x)
    torch.testing.assert_close(InputModality("bone", lay)(rx), torch.einsum("ij,njtvm->nitvm", rot, bone))
    assert not InputModality("bone", lay).state_dict()  # nothing new in checkpoints
    with pytest.raises(ConfigError, match="model.modality .bones.; valid: bone, bone_motion, joint, joint_motion, motion"):
        InputModality("bones", lay)
    with pytest.raises(ConfigError, match="needs the joint layout"):
        InputModality("bone")


def test_forward_temporal_keeps_time_and_averages_to_forward():
    # the temporal-segment head pools the encoder's time axis in parts: the per-frame
    # features must be the same map forward() pools, averaged over joints and persons only
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 20, 2, dtype=torch.float64)
    for name in ("stgcn", "shiftgcn"):
        enc = build_encoder(name, layout="kinect_v1", num_persons=2).double().eval()
        per_frame = enc.forward_temporal(x)
        assert per_frame.shape == (2, 4, enc.feature_dim)  # both encoders stride time by 4
        torch.testing.assert_close(per_frame.mean(dim=1), enc(x))
        # time is kept: the first and the last frame differ
        assert not torch.allclose(per_frame[:, 0], per_frame[:, -1])
        # the part head pools joints of the same map: joints kept, persons averaged
        local = enc.forward_local(x)
        assert local.shape == (2, 4, 20, enc.feature_dim)
        torch.testing.assert_close(local.mean(dim=2), per_frame)
        assert not torch.allclose(local[:, :, 3], local[:, :, 15])  # head and left foot differ


def test_body_part_joints_by_name_in_every_layout():
    from zeroskel.data.layouts import BODY_PARTS, body_part_joints, get_layout

    assert BODY_PARTS == ("head", "hands", "torso", "legs")
    names = lambda lay, part: [get_layout(lay).joints[i] for i in body_part_joints(lay, part)]  # noqa: E731
    assert names("kinect_v1", "head") == ["shoulder_center", "head"]
    assert names("kinect_v1", "legs") == ["l_hip", "l_knee", "l_ankle", "l_foot", "r_hip", "r_knee", "r_ankle", "r_foot"]
    assert "r_thumb" in names("ntu25", "hands") and "l_shoulder" not in names("ntu25", "hands")
    for lay in ("kinect_v1", "ntu25"):  # every joint belongs to some part
        assert set().union(*(body_part_joints(lay, p) for p in BODY_PARTS)) == set(range(get_layout(lay).num_joints))
    with pytest.raises(ConfigError, match="unknown body part 'arms'; valid: hands, head, legs, torso"):
        body_part_joints("ntu25", "arms")


def test_forward_paths_make_no_host_tensors():
    """Device placement without a GPU: on the ``meta`` device an elementwise op between a meta
    tensor and one made on the host raises ("not on the expected device"), as it would on CUDA.
    The ST-GCN PGFA model (bone-motion input, feature BatchNorm, temporal segments) with its
    contrastive loss and backward, and Flora's batched decision and velocity model, run there.
    (Shift-GCN cannot: its temporal shift reads the offsets' tap range on the host.)"""
    from zeroskel.engine.config import build_config
    from zeroskel.methods.flora import FloraNet
    from zeroskel.methods.pgfa.losses import contrastive_loss
    from zeroskel.methods.pgfa.model import build_model

    with pytest.raises(RuntimeError, match="device"):  # the premise: mixing devices fails on meta
        torch.empty(3, device="meta") + torch.ones(3)
    cfg = build_config("pgfa", dataset="utd_mhad", split="purls-22/5",
                       overrides=["model.encoder=stgcn", "model.args=null", "model.modality=bone_motion",
                                  "model.feature_norm=batchnorm"])
    model = build_model(cfg, "kinect_v1", 1, 384).to("meta")
    feats = model(torch.empty(4, 3, 50, 20, 1, device="meta"))
    y = torch.tensor([0, 1, 0, 2], device="meta")
    loss = contrastive_loss(model, feats, torch.empty(27, feats.shape[1], device="meta")[y], y,
                            float(cfg["model"]["target_sharpness"]))
    loss.backward()
    assert feats.shape == (4, 4 * 384) and loss.device.type == "meta"

    net = FloraNet(ske_dim=32, text_dim=48, latent_dim=16, heads=2, decoder_hidden=24).to("meta")
    assert net.class_errors(torch.empty(5, 32, device="meta"), torch.empty(3, 4, 48, device="meta")).shape == (5, 3)
    net.velocity(torch.empty(6, 4, 16, device="meta"), torch.empty(6, device="meta")).sum().backward()
