"""PGFA on the PURLS small-dataset splits: UTD-MHAD 22/5, 18/9, 14/13 and NW-UCLA 8/2, 5/5.

Protocol (data README): cross-subject (UTD-MHAD) / cross-view (NW-UCLA) partitions; train
on the seen classes of the train partition; ZSL top-1 on the unseen classes of the test
partition. The epoch is chosen on pseudo-unseen classes carved from the seen ones
(``validation.mode: pseudo_unseen``), then the model is refitted on all seen classes; the
test set chooses nothing.

Every (split, seed) run writes ``<out>/<dataset>-<split>-seed<k>.json`` as soon as it
finishes, so the sweep survives interruptions: re-running skips finished runs. Runs can be
spread over processes with ``--shard i/n``. ``--aggregate`` only rebuilds the table.

``--realign KEY=VALUE ...`` re-scores the finished runs of ``--out`` with other test-time
alignment options (no retraining; ``zeroskel.engine.runs.evaluate_run``), writes one JSON
per run to ``<out>/realign-<--tag>/`` and prints the same table from them.

``--ensemble-members DIR --member-offsets 100 200`` scores, for every seed s, the run of
``--out`` with seed s together with the runs of sweep ``DIR`` with seeds s+100, s+200 as
one ensemble (mean of their cosines; ``zeroskel evaluate RUN RUN ...``), written to
``<out>/ensemble-<--tag>/`` (with ``--realign KEY=VALUE ...``: aligned with those options).
Train the members with the same settings and
``--out DIR --seeds 101 102 103 201 202 203``.

    nohup python benchmarks/run_pgfa_small.py --shard 0/2 > out0.log 2>&1 &
    nohup python benchmarks/run_pgfa_small.py --shard 1/2 > out1.log 2>&1 &
    python benchmarks/run_pgfa_small.py --aggregate
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import time
from pathlib import Path

import numpy as np

from zeroskel.engine.benchmark import PUBLISHED, SUITES

SPLITS = list(SUITES["purls-small"])
# PURLS supplementary Table 8 (top-1 % ZSL), as listed in the data README.
PURLS = PUBLISHED["purls-small"][1]
# PGFA's reference code on this protocol, seed 1 (data README): final epoch, final + alignment.
REFERENCE = {("utd_mhad", "purls-22/5"): (37.50, 40.00), ("utd_mhad", "purls-18/9"): (20.14, 18.75),
             ("nw_ucla", "purls-5/5"): (49.58, 61.44)}


def _file(out: Path, ds: str, split: str, seed: int) -> Path:
    return out / f"{ds}-{split.replace('/', '_')}-seed{seed}.json"


def run_one(ds, split, seed, args) -> dict:
    import torch

    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import train

    torch.set_num_threads(args.threads)
    per_ds = [o.split(":", 1)[1] for o in (args.dataset_set or []) if o.split(":", 1)[0] == ds]
    overrides = list(args.set or []) + per_ds + [f"train.threads={args.threads}"]
    cfg = build_config("pgfa", dataset=ds, split=split, seed=seed, config=args.config, overrides=overrides)
    t0 = time.time()
    run_dir = train(cfg, args.runs_dir, data_root=args.data_root)
    wall = time.time() - t0
    m = json.loads((run_dir / "metrics.json").read_text())
    return {"dataset": ds, "split": split, "seed": seed, "run_dir": str(run_dir),
            "zsl_top1": m["zsl_top1"], "zsl_top1_aligned": m.get("zsl_top1_aligned"),
            "best_epoch": m["selection"].get("best_epoch"), "best_val": m["selection"].get("best_val"),
            "gzsl_uncalibrated": m.get("gzsl_uncalibrated"), "gzsl_calibrated": m.get("gzsl_calibrated"),
            "test_samples": m["test_samples"],
            "reference_protocol_best_epoch_on_test": m.get("reference_protocol_best_epoch_on_test"),
            "wall_seconds": wall, "train_seconds": m["train_seconds"], "preset": cfg.get("preset"),
            "overrides": overrides, "config": args.config, "text": dict(cfg["text"]),
            "augment": dict(cfg["data"]["augment"]), "optimizer": cfg["train"]["optimizer"],
            "models_dir": os.environ.get("ZEROSKEL_MODELS"), "epochs": cfg["train"]["epochs"], "threads": args.threads,
            "machine": f"{platform.node() or socket.gethostname()} {platform.machine()} {os.cpu_count()} cpu",
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def aggregate(out: Path, seeds) -> str:
    rows = ["| split | PURLS | PGFA reference code (seed 1; + alignment) | PGFA (zeroskel) ZSL top-1 | "
            "+ prototype alignment | seeds | epochs | wall s/run |",
            "|---|---|---|---|---|---|---|---|"]
    for ds, split in SPLITS:
        ref = "%.2f; %.2f" % REFERENCE[(ds, split)] if (ds, split) in REFERENCE else "-"
        rs = [json.loads(_file(out, ds, split, s).read_text()) for s in seeds if _file(out, ds, split, s).is_file()]
        if not rs:
            rows.append(f"| {ds} {split} | {PURLS[(ds, split)]:.2f} | {ref} | (not run) | | 0 | | |")
            continue
        a = np.array([r["zsl_top1"] for r in rs])
        b = np.array([r["zsl_top1_aligned"] for r in rs], dtype=float)
        sd = (lambda x: x.std(ddof=1) if len(x) > 1 else 0.0)
        rows.append(f"| {ds} {split} | {PURLS[(ds, split)]:.2f} | {ref} | {a.mean():.2f} ± {sd(a):.2f} | "
                    f"{b.mean():.2f} ± {sd(b):.2f} | {len(rs)} | "
                    f"{','.join(str(r['best_epoch']) for r in rs)} | {np.mean([r['wall_seconds'] for r in rs]):.0f} |")
    extras = _best_on_test_rows(out, seeds)
    return "\n".join(rows + extras)


def _best_on_test_rows(out: Path, seeds) -> "list[str]":
    """A second table for runs made with ``eval.reference_protocol=true``: the maximum over the epochs
    of the test curve (PGFA reference code's protocol), an extra that is not a zero-shot estimate."""
    rows = []
    for ds, split in SPLITS:
        rs = [json.loads(_file(out, ds, split, s).read_text()) for s in seeds if _file(out, ds, split, s).is_file()]
        ref = [r["reference_protocol_best_epoch_on_test"] for r in rs
               if r.get("reference_protocol_best_epoch_on_test") is not None]
        if not ref:
            continue
        if len(ref) != len(rs):
            raise SystemExit(f"{ds} {split}: only {len(ref)} of {len(rs)} runs have the best-on-test field")
        a, b = np.array([r["top1"] for r in ref]), np.array([r["top1_aligned"] for r in ref], dtype=float)
        sd = (lambda x: x.std(ddof=1) if len(x) > 1 else 0.0)
        rows.append(f"| {ds} {split} | {PURLS[(ds, split)]:.2f} | {a.mean():.2f} ± {sd(a):.2f} | "
                    f"{b.mean():.2f} ± {sd(b):.2f} | {','.join(str(r['top1_epoch']) for r in ref)} | "
                    f"{','.join(str(r['top1_aligned_epoch']) for r in ref)} |")
    if not rows:
        return []
    return ["", "Best epoch on test (eval.reference_protocol; an extra, NOT a valid zero-shot estimate):", "",
            "| split | PURLS | best-on-test ZSL top-1 | + prototype alignment | epochs (plain) | epochs (aligned) |",
            "|---|---|---|---|---|---|"] + rows


def _align_overrides(a) -> dict:
    from zeroskel.engine.config import parse_override

    align: dict = {}
    for item in a.realign or []:
        align.update(parse_override(item))
    return align


def realign(a) -> int:
    import torch

    from zeroskel.engine.runs import evaluate_run

    torch.set_num_threads(a.threads)
    align = _align_overrides(a)
    dst = a.out / f"realign-{a.tag}"
    dst.mkdir(exist_ok=True)
    for ds, sp in SPLITS:
        for s in a.seeds:
            src = _file(a.out, ds, sp, s)
            if not src.is_file() or _file(dst, ds, sp, s).is_file():
                continue
            rec = json.loads(src.read_text())
            t0 = time.perf_counter()
            ev = evaluate_run(rec["run_dir"], data_root=a.data_root, device="cpu", alignment=align)
            if ev["zsl_top1"] != rec["zsl_top1"]:  # same checkpoint, same data: must agree
                raise SystemExit(f"{src}: re-evaluated plain ZSL {ev['zsl_top1']} != recorded {rec['zsl_top1']}")
            rec.update(zsl_top1_aligned=ev["zsl_top1_aligned"], alignment=ev["alignment"],
                       realign_seconds=time.perf_counter() - t0, source=str(src))
            _file(dst, ds, sp, s).write_text(json.dumps(rec, indent=1))
            print(f"{ds} {sp} seed {s}: {rec['zsl_top1']:.2f} -> aligned {rec['zsl_top1_aligned']:.2f}", flush=True)
    table = aggregate(dst, a.seeds)
    (dst / "summary.md").write_text(table + "\n")
    print(table)
    return 0


def ensemble(a) -> int:
    import torch

    from zeroskel.engine.runs import evaluate_run

    torch.set_num_threads(a.threads)
    align = _align_overrides(a) or None
    dst = a.out / f"ensemble-{a.tag}"
    dst.mkdir(exist_ok=True)
    for ds, sp in SPLITS:
        for s in a.seeds:
            srcs = [_file(a.out, ds, sp, s)] + [_file(a.ensemble_members, ds, sp, s + o) for o in a.member_offsets]
            if not all(f.is_file() for f in srcs) or _file(dst, ds, sp, s).is_file():
                continue
            recs = [json.loads(f.read_text()) for f in srcs]
            t0 = time.perf_counter()
            ev = evaluate_run([r["run_dir"] for r in recs], data_root=a.data_root, device="cpu",
                              alignment=align)
            rec = {**recs[0], "zsl_top1": ev["zsl_top1"], "zsl_top1_aligned": ev["zsl_top1_aligned"],
                   "ensemble": ev["ensemble"], "member_seeds": [r["seed"] for r in recs],
                   "gzsl_uncalibrated": ev.get("gzsl_uncalibrated"), "alignment": ev["alignment"],
                   "ensemble_eval_seconds": time.perf_counter() - t0,
                   "wall_seconds": sum(r["wall_seconds"] for r in recs)}
            _file(dst, ds, sp, s).write_text(json.dumps(rec, indent=1))
            print(f"{ds} {sp} seed {s} (+{a.member_offsets}): ensemble {rec['zsl_top1']:.2f}, "
                  f"aligned {rec['zsl_top1_aligned']:.2f}", flush=True)
    table = aggregate(dst, a.seeds)
    (dst / "summary.md").write_text(table + "\n")
    print(table)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/pgfa_small"))
    p.add_argument("--runs-dir", type=Path, default=Path("benchmarks/out/pgfa_small/runs"))
    p.add_argument("--data-root", default=os.environ.get("ZEROSKEL_DATA"))
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--only", nargs="*", help="restrict to dataset:split items, e.g. utd_mhad:purls-22/5")
    p.add_argument("--config", help="config file or preset (default: the dataset's preset, 'small')")
    p.add_argument("--set", action="append", help="config override key=value (repeatable)")
    p.add_argument("--dataset-set", action="append", metavar="DATASET:KEY=VALUE",
                   help="override for one dataset only, e.g. nw_ucla:train.epochs=8 (repeatable)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (1 is best on a busy CPU)")
    p.add_argument("--shard", default="0/1", help="i/n: run every n-th job starting at i (default all; "
                   "workers also claim jobs with lock files, so plain parallel workers never collide; "
                   "delete stale *.lock files after a crash)")
    p.add_argument("--aggregate", action="store_true", help="only print the summary table")
    p.add_argument("--realign", nargs="+", metavar="KEY=VALUE",
                   help="re-score finished runs with these alignment options (see module doc)")
    p.add_argument("--tag", default="balanced", help="--realign / --ensemble-members: name of the result folder")
    p.add_argument("--ensemble-members", type=Path, default=None, metavar="DIR",
                   help="score each seed's run with DIR's runs of seeds seed+offset as one ensemble")
    p.add_argument("--member-offsets", type=int, nargs="+", default=[100, 200])
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ZEROSKEL_QUIET", "1")
    if a.ensemble_members:  # with --realign: the ensembles are scored with those alignment options
        return ensemble(a)
    if a.realign:
        return realign(a)
    if not a.aggregate:
        i, n = (int(x) for x in a.shard.split("/"))
        # seed-major order: if the sweep is cut short every split still has its first seeds
        jobs = [(ds, sp, s) for s in a.seeds for ds, sp in SPLITS
                if not a.only or f"{ds}:{sp}" in a.only]
        for j, (ds, sp, s) in enumerate(jobs):
            if j % n != i or _file(a.out, ds, sp, s).is_file():
                continue
            # claim the job (exclusive create), so any number of workers can share the list
            lock = _file(a.out, ds, sp, s).with_suffix(".lock")
            try:
                lock.open("x").write(f"{os.getpid()}\n")
            except FileExistsError:
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {ds} {sp} seed {s}", flush=True)
            rec = run_one(ds, sp, s, a)
            tmp = _file(a.out, ds, sp, s).with_suffix(".tmp")
            tmp.write_text(json.dumps(rec, indent=1))
            tmp.replace(_file(a.out, ds, sp, s))
            lock.unlink()
            print(f"  ZSL {rec['zsl_top1']:.2f} aligned {rec['zsl_top1_aligned']:.2f} "
                  f"(epoch {rec['best_epoch']}, {rec['wall_seconds']:.0f} s)", flush=True)
    table = aggregate(a.out, a.seeds)
    (a.out / "summary.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
