"""Where a Shift-GCN training step spends its time on CPU: each unit half (spatial
``ShiftGraphConv``, temporal ``ShiftTemporalConv``) and its main parts, forward and
forward + backward, at the widths of the three stages.

    python benchmarks/profile_shiftgcn.py --threads 1 [--batch 32 --frames 32 --joints 20]

Inputs are channels-last (B, T, V, C) with B = batch (one person), T halving with the width as
in the encoder. The backward gets a dense random gradient (a ``.sum()`` would pass a stride-0
gradient, which sends BatchNorm's backward down a slow path that training never takes).
"""
from __future__ import annotations

import argparse
import time

import torch


def timed(fn, x: torch.Tensor, iters: int) -> tuple[float, float]:
    """(forward ms, forward + backward ms) of ``fn`` on ``x``, after 3 warm-up passes."""
    x = x.detach().requires_grad_()
    g = torch.randn_like(fn(x))
    for _ in range(3):
        fn(x).backward(g)
    t = time.perf_counter()
    for _ in range(iters):
        fn(x)
    fwd = (time.perf_counter() - t) / iters
    t = time.perf_counter()
    for _ in range(iters):
        fn(x).backward(g)
    return 1000 * fwd, 1000 * (time.perf_counter() - t) / iters


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=32, help="frames at the first stage (the preset's input_frames)")
    p.add_argument("--joints", type=int, default=20)
    p.add_argument("--iters", type=int, default=20)
    a = p.parse_args(argv)
    from zeroskel.models.shiftgcn import ShiftGraphConv, ShiftTemporalConv
    from zeroskel.models.temporal_shift import AdaptiveTemporalShift

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    b, v = a.batch, a.joints
    print(f"threads {a.threads}, batch {b}, joints {v}; ms per call (forward / forward + backward)")
    print("| width | T | spatial half | temporal half | linear map | temporal shift | BatchNorm (C) | BatchNorm (V*C) | column permutation |")
    print("|---|---|---|---|---|---|---|---|---|")
    for stage, c in enumerate((64, 128, 256)):
        t = max(1, a.frames >> stage)
        x = torch.randn(b, t, v, c)
        lin, bn, bn_vc = torch.nn.Linear(c, c), torch.nn.BatchNorm1d(c), torch.nn.BatchNorm1d(v * c)
        perm = torch.randperm(v * c)
        parts = [ShiftGraphConv(c, c, v), ShiftTemporalConv(c, c, 1), lin,
                 AdaptiveTemporalShift(c, 1, time_dim=1, channel_dim=3),
                 lambda z: bn(z.reshape(-1, c)), lambda z: bn_vc(z.reshape(b * t, v * c)),
                 lambda z: z.reshape(b * t, v * c).index_select(1, perm)]
        cells = [timed(f, x, a.iters) for f in parts]
        print(f"| {c} | {t} | " + " | ".join(f"{f:.1f} / {fb:.1f}" for f, fb in cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
