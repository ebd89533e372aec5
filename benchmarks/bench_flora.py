"""Time Flora's training and evaluation on one feature split on this machine.

    ZEROSKEL_DATA=/work/shared/data python benchmarks/bench_flora.py --preset cpu --file utd_mhad_ru5
    # reference sizes: time a few steps of each phase and extrapolate the full schedule
    ZEROSKEL_DATA=/work/shared/data python benchmarks/bench_flora.py --preset reference --probe-steps 5

Prints and writes (``--json``) phase-1 / phase-2 training time, ZSL and GZSL scoring time
(all (sample, class) pairs), parameter count and the machine's load average, since the CPU
may be shared.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_feature_methods import dataset_of  # noqa: E402

from zeroskel.methods.factory import method_config  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="time Flora fit + evaluation on one split")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--file", default="utd_mhad_ru5")
    p.add_argument("--features", default=None, help="default $ZEROSKEL_DATA/features")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--probe-steps", type=int, default=0,
                   help="only run this many steps of each phase and extrapolate the full schedule")
    p.add_argument("--json", default=None, help="write the measurements here")
    args = p.parse_args(argv)
    import torch

    from zeroskel.data.features import load_features, load_token_bank
    from zeroskel.methods.flora import Flora

    torch.set_num_threads(args.threads)
    root = Path(args.features or Path(os.environ.get("ZEROSKEL_DATA", ".")) / "features")
    fs = load_features(root / f"{args.file}.npz")
    ds = dataset_of(args.file)
    texts = load_token_bank(root / f"{ds}_text_mpnet_L5.npy")
    cfg = method_config("flora", args.preset, args.set, dataset=ds)
    full = {k: cfg["train"][k] for k in ("align_iters", "flow_iters")}
    over = {"device": args.device}
    if args.probe_steps:
        over.update(align_iters=args.probe_steps, flow_iters=args.probe_steps, eval_every=args.probe_steps)
    marks: dict[int, float] = {}
    m = Flora.from_config(cfg, **over)
    m.callback = lambda step: marks.setdefault(step, time.perf_counter())
    t0 = time.perf_counter()
    m.fit(fs.train_x, fs.train_y, texts, fs.seen_classes)
    t_end = time.perf_counter()
    t_p1 = marks[0] - t0
    t_p2 = t_end - marks[0]  # the callback only takes a timestamp
    t1 = time.perf_counter(); zs = m.score(fs.zsl_x, fs.unseen_classes); t_zsl = time.perf_counter() - t1
    t1 = time.perf_counter(); m.score(fs.gzsl_x, fs.all_classes); t_gzsl = time.perf_counter() - t1
    n1, n2 = m.align_iters, m.flow_iters
    res = {
        "file": args.file, "dataset": ds, "preset": args.preset, "sets": args.set, "device": args.device,
        "threads": args.threads, "num_parameters": m.num_parameters(), "tokens": int(m.bank_.shape[1]),
        "n_train": len(fs.train_y), "phase1_s": t_p1, "phase1_iters": n1, "phase2_s": t_p2, "phase2_iters": n2,
        "phase1_step_ms": 1e3 * t_p1 / max(n1, 1), "phase2_step_ms": 1e3 * t_p2 / max(n2, 1),
        "zsl_score_s": t_zsl, "zsl_pairs": len(fs.zsl_y) * len(fs.unseen_classes),
        "gzsl_score_s": t_gzsl, "gzsl_pairs": len(fs.gzsl_y) * len(fs.all_classes),
        "train_plus_eval_s": (t_end - t0) + t_zsl + t_gzsl,
        "zsl_uncalibrated_acc": float((fs.unseen_classes[zs.argmax(1)] == fs.zsl_y).mean() * 100),
        "loadavg": os.getloadavg(), "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    if args.probe_steps:
        res["extrapolated_full_train_s"] = (res["phase1_step_ms"] * full["align_iters"]
                                            + res["phase2_step_ms"] * full["flow_iters"]) / 1e3
        res["zsl_uncalibrated_acc"] = None  # a few steps mean nothing
    print(json.dumps(res, indent=1, default=float))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
