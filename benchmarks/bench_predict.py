"""Latency of :meth:`zeroskel.recognizer.Recognizer.predict` for one sequence.

    python benchmarks/bench_predict.py [--bundle DIR] [--threads 1] [--frames 100]
        [--labels 10] [--repeats 200] [--device cpu] [--out bench_predict.json]

Without ``--bundle`` the model is PGFA's default: ST-GCN *slim* on ``ntu25`` with M=2
persons, 384-d MiniLM text space, pgfa50 preprocessing (random weights: speed does not
depend on them). The input is one in-memory (3, T, 25, 2) sequence of ``--frames`` frames
with ``--actors`` persons present (default 1: the second slot is empty, as in most NTU classes);
``--labels`` candidate labels whose embeddings are already cached (the first call embeds
them and is not timed). Reported: median / p10 / p90 milliseconds per ``predict`` call and
the median of each stage (preprocess, encoder forward, scoring), plus CPU-seconds per call
(process time, all threads) and the load average, because on a shared machine the wall
numbers are upper bounds. Target: median < 50 ms on CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch

LABELS = ["wave", "kick", "clap", "jump", "sit down", "stand up", "drink water", "throw",
          "walk", "pick up", "punch", "bow", "salute", "point", "hug", "cheer up"]


def default_recognizer(device: str):
    from zeroskel.methods.pgfa import PGFAClassifier, build_model
    from zeroskel.recognizer import Recognizer

    cfg = {"dataset": "ntu60", "data": {"pipeline": "pgfa50"},
           "model": {"encoder": "stgcn", "preset": "slim", "args": {}, "input_frames": None,
                     "temperature": 0.07, "learn_temperature": False},
           "alignment": {"alpha": 0.9}}
    torch.manual_seed(0)
    model = build_model(cfg, "ntu25", 2, 384)
    card = {"config": cfg, "layout": "ntu25", "num_persons": 2, "frames": 50,
            "text_model": "all-MiniLM-L6-v2", "class_names": [], "seen": [], "unseen": []}
    return Recognizer.from_classifier(PGFAClassifier(model, np.zeros((1, 384), np.float32), card),
                                      device=device)


def _stats(ts) -> dict:
    ts = np.asarray(ts) * 1000
    return {"median_ms": float(np.median(ts)), "p10_ms": float(np.percentile(ts, 10)),
            "p90_ms": float(np.percentile(ts, 90)), "min_ms": float(ts.min())}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", help="a model bundle folder (default: untrained PGFA slim, ntu25)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--labels", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--actors", type=int, default=1,
                    help="persons present in the sequence (default 1, like most NTU classes; the "
                         "other person slots of the model are empty)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", help="write the results as JSON here")
    a = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(a.threads)

    from zeroskel.data.layouts import get_layout
    from zeroskel.recognizer import Recognizer

    rec = Recognizer.load(a.bundle, device=a.device) if a.bundle else default_recognizer(a.device)
    labels = (LABELS * (a.labels // len(LABELS) + 1))[:a.labels]
    labels = [l if i < len(LABELS) else f"{l} {i}" for i, l in enumerate(labels)]
    v = get_layout(rec.input_layout).num_joints
    rng = np.random.default_rng(0)
    # a smooth random motion around a plausible pose, so the rotation step has shoulders
    seq = np.cumsum(rng.normal(scale=0.01, size=(3, a.frames, v, rec.num_persons)), axis=1)
    seq += rng.normal(scale=0.3, size=(3, 1, v, rec.num_persons))
    seq[..., a.actors:] = 0
    seq = seq.astype(np.float32)

    rec.predict(seq, labels)  # embeds the labels (text model load) and warms up
    for _ in range(5):
        rec.predict(seq, labels)

    total, cpu, pre, fwd, sc = [], [], [], [], []
    load0 = os.getloadavg()
    for _ in range(a.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        rec.predict(seq, labels, top_k=5)
        total.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    for _ in range(max(20, a.repeats // 4)):  # stage breakdown (same work as predict)
        t0 = time.perf_counter()
        x, _ = rec.preprocess(seq)
        t1 = time.perf_counter()
        f = rec._encode_array(x)
        t2 = time.perf_counter()
        rec.score_features(f, labels)
        t3 = time.perf_counter()
        pre.append(t1 - t0); fwd.append(t2 - t1); sc.append(t3 - t2)
    load1 = os.getloadavg()
    res = {"model": repr(rec), "device": str(rec.device), "threads": torch.get_num_threads(),
           "frames": a.frames, "actors": min(a.actors, rec.num_persons), "labels": len(labels), "repeats": a.repeats,
           "predict": _stats(total), "cpu_ms_per_call_median": float(np.median(cpu) * 1000),
           "stages_median_ms": {"preprocess": float(np.median(pre) * 1000),
                                "encoder_forward": float(np.median(fwd) * 1000),
                                "score_labels_cached": float(np.median(sc) * 1000)},
           "target_ms": 50.0, "meets_target": bool(np.median(total) * 1000 < 50.0),
           "loadavg_before": load0, "loadavg_after": load1, "cpus": os.cpu_count(),
           "machine": platform.machine(), "python": sys.version.split()[0],
           "torch": torch.__version__}
    print(json.dumps(res, indent=1))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(res, fh, indent=1)
    return res


if __name__ == "__main__":
    main()
