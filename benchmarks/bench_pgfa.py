"""PGFA speed on CPU: training / inference samples per second of both encoders inside the
PGFA model (projection + multi-positive KL loss, batch 128, one backward + SGD step), and
the wall time of one full PGFA run (small preset) on UTD-MHAD purls-22/5.

    python benchmarks/bench_pgfa.py --threads 2 [--full-run] [--json out.json]

Records the load average too: on a shared machine the numbers are lower bounds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch


def bench_encoder(name: str, frames: int, joints_layout: str, batch: int, iters: int) -> dict:
    from zeroskel.engine.config import build_config
    from zeroskel.methods.pgfa import anchor_bank, build_model, contrastive_loss

    # "preset": the small preset's encoder as configured (compact Shift-GCN since 2026-12-06);
    # an encoder name: that encoder at its default size (the preset's model.args cleared)
    arch = [] if name == "preset" else [f"model.encoder={name}", "model.args=null"]
    cfg = build_config("pgfa", dataset="utd_mhad", split="purls-22/5",
                       overrides=arch + ["model.input_frames=null"])
    torch.manual_seed(0)
    model = build_model(cfg, joints_layout, 1, 384)
    v = 20 if joints_layout == "kinect_v1" else 25
    x = torch.randn(batch, 3, frames, v, 1)
    y = torch.randint(0, 10, (batch,))
    # class anchors as training builds them: (10, num_blocks * 384) for a segment / part model
    text = torch.from_numpy(anchor_bank([torch.randn(10, 384).numpy() for _ in range(model.num_blocks)]))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step():
        loss = contrastive_loss(model, model(x), text[y], y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    model.train()
    train_step()  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(iters):
        train_step()
    tw, tc = time.perf_counter() - t0, time.process_time() - c0
    model.eval()
    with torch.no_grad():
        model(x)
        t1, c1 = time.perf_counter(), time.process_time()
        for _ in range(iters):
            model(x)
        iw, ic = time.perf_counter() - t1, time.process_time() - c1
    n = batch * iters
    return {"encoder": name, "frames": frames, "layout": joints_layout, "batch": batch,
            "params": sum(p.numel() for p in model.parameters()),
            "train_samples_per_s": n / tw, "train_samples_per_cpu_s": n / tc,
            "infer_samples_per_s": n / iw, "infer_samples_per_cpu_s": n / ic}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--full-run", action="store_true", help="also time one full PGFA run on UTD-MHAD 22/5")
    p.add_argument("--runs-dir", default="benchmarks/out/bench_pgfa_runs")
    p.add_argument("--json", help="write the results here (rewritten after every measurement)")
    p.add_argument("--encoders", nargs="+", default=["stgcn:50", "stgcn:32", "shiftgcn:64"],
                   help="encoder:frames items to measure; encoder 'preset' = the small preset's own "
                        "(compact Shift-GCN), a name = that encoder at its default size")
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(a.threads)
    out = {"threads": a.threads, "torch": torch.__version__, "cpu_count": os.cpu_count(),
           "loadavg_before": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "encoders": []}
    # ST-GCN at the pgfa50 length (and the small preset's 32 frames); Shift-GCN needs T % 4 == 0 (64)
    def dump():
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)

    for item in a.encoders:
        name, frames = item.split(":")[0], int(item.split(":")[1])
        r = bench_encoder(name, frames, "kinect_v1", a.batch, a.iters)
        out["encoders"].append(r)
        print(f"{name:8s} T={frames:3d}: train {r['train_samples_per_s']:7.1f} samples/s "
              f"({r['train_samples_per_cpu_s']:.1f}/CPU-s), inference {r['infer_samples_per_s']:7.1f} samples/s "
              f"({r['infer_samples_per_cpu_s']:.1f}/CPU-s), {r['params']} params", flush=True)
        dump()
    if a.full_run:
        from zeroskel.engine.config import build_config
        from zeroskel.engine.runs import train

        cfg = build_config("pgfa", dataset="utd_mhad", split="purls-22/5", seed=1,
                           overrides=[f"train.threads={a.threads}"])
        t0 = time.perf_counter()
        run = train(cfg, a.runs_dir)
        wall = time.perf_counter() - t0
        m = json.loads((run / "metrics.json").read_text())
        out["full_run"] = {"run_dir": str(run), "wall_seconds": wall, "train_seconds": m["train_seconds"],
                           "final_epochs": m["final_epochs"]}
        print(f"full PGFA run (small preset, UTD-MHAD purls-22/5, seed 1): {wall:.0f} s wall "
              f"(stage 1 {m['train_seconds']['stage1']:.0f} s, stage 2 {m['train_seconds']['stage2']:.0f} s)")
    out["loadavg_after"] = os.getloadavg()
    print(f"load average before/after: {out['loadavg_before']} / {out['loadavg_after']}")
    dump()
    return 0


if __name__ == "__main__":
    sys.exit(main())
