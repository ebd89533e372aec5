"""Encoder speed on CPU: samples per second of a training step (forward + backward + SGD
with momentum) and of inference (eval, no grad) for ST-GCN (slim) and Shift-GCN.

    python benchmarks/bench_encoders.py --out bench_encoders.json [--threads 2]
        [--batch 32] [--frames 50] [--iters 3] [--encoders stgcn shiftgcn] [--bf16]

``--bf16`` runs forward passes under ``torch.autocast("cpu", dtype=torch.bfloat16)``
(parameters and optimiser stay float32).

Cases: ``ntu25`` with M=2 persons and ``kinect_v1`` with M=1, random inputs (speed does not
depend on values). Reports wall-clock samples/s and samples per CPU-second (process time,
summed over threads) with the load average before and after: on a shared machine the wall
numbers are lower bounds, and the CPU-second numbers are the steadier ones to compare.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

CASES = (("ntu25", 2), ("kinect_v1", 1))


def _timed(fn, iters: int) -> tuple[float, float]:
    fn()                                                     # warm-up (allocator, oneDNN)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(iters):
        fn()
    return time.perf_counter() - t0, time.process_time() - c0


def bench_case(name: str, layout: str, persons: int, batch: int, frames: int, iters: int,
               bf16: bool = False, **kwargs) -> dict:
    from zeroskel.models import build_encoder

    torch.manual_seed(0)
    model = build_encoder(name, layout=layout, num_persons=persons, **kwargs)
    x = torch.randn(batch, 3, frames, model.num_joints, persons)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def train_step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(x).float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x)

    model.train()
    tw, tc = _timed(train_step, iters)
    model.eval()
    iw, ic = _timed(infer, iters)
    n = batch * iters
    return {"encoder": name, **kwargs, "bf16_autocast": bf16, "layout": layout,
            "persons": persons, "batch": batch, "frames": frames, "iters": iters,
            "params": sum(p.numel() for p in model.parameters()),
            "train_samples_per_s": n / tw, "train_samples_per_cpu_s": n / tc,
            "infer_samples_per_s": n / iw, "infer_samples_per_cpu_s": n / ic}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (2)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--iters", type=int, default=3, help="timed iterations after 1 warm-up")
    ap.add_argument("--encoders", nargs="+", default=["stgcn", "shiftgcn"],
                    choices=["stgcn", "shiftgcn"])
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPU AMP)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rows = []
    for enc in args.encoders:
        kw = {"preset": "slim"} if enc == "stgcn" else {}
        for layout, persons in CASES:
            r = bench_case(enc, layout, persons, args.batch, args.frames, args.iters,
                           bf16=args.bf16, **kw)
            rows.append(r)
            print(f"{enc:9s} {layout:10s} M={persons}  train {r['train_samples_per_s']:7.1f}/s "
                  f"({r['train_samples_per_cpu_s']:6.1f}/cpu-s)  infer "
                  f"{r['infer_samples_per_s']:7.1f}/s ({r['infer_samples_per_cpu_s']:6.1f}/cpu-s)",
                  flush=True)
    result = {"threads": args.threads, "torch": torch.__version__, "machine": platform.machine(),
              "cpu_count": os.cpu_count(), "loadavg_before": load_before,
              "loadavg_after": os.getloadavg(), "results": rows}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"load average before {load_before[0]:.1f}, after {result['loadavg_after'][0]:.1f} "
          f"on {os.cpu_count()} CPUs; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
