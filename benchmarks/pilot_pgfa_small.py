"""Validation-only pilots for the PGFA ``small`` preset (seen-class data only).

Trains one (dataset, split, seed) with ``validation.mode=pseudo_unseen`` and no refit, and
prints / stores ONLY the pseudo-unseen validation curve (classes carved from the seen
classes of the train partition). The test metrics that the run directory also holds are
deliberately not read, so a pilot cannot leak test accuracy into a choice.

    ZEROSKEL_DATA=/work/shared/data python benchmarks/pilot_pgfa_small.py --tag mpnet \
        --dataset utd_mhad --split purls-22/5 --set text.model=all-mpnet-base-v2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tag", required=True)
    p.add_argument("--dataset", default="utd_mhad")
    p.add_argument("--split", default="purls-22/5")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--set", action="append", default=[], help="config override key=value (repeatable)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/pgfa_small_pilots"))
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ZEROSKEL_QUIET", "1")
    import torch

    from zeroskel.engine.config import build_config
    from zeroskel.engine.runs import train

    torch.set_num_threads(a.threads)
    # the whole validation curve: pilots compare epochs and plateau means
    overrides = ["validation.mode=pseudo_unseen", "validation.refit=false", "eval.gzsl=false",
                 "validation.every=1", f"train.threads={a.threads}"] + a.set
    cfg = build_config("pgfa", dataset=a.dataset, split=a.split, seed=a.seed, overrides=overrides)
    t0 = time.time()
    run_dir = train(cfg, a.out / "runs", data_root=os.environ.get("ZEROSKEL_DATA"))
    sel = json.loads((Path(run_dir) / "selection.json").read_text())
    curve = [(round(h.get("val_top1", float("nan")), 1), round(h.get("val_top1_aligned", float("nan")), 1))
             for h in sel["val_curve"]]
    rec = {"tag": a.tag, "dataset": a.dataset, "split": a.split, "seed": a.seed, "overrides": overrides,
           "val_curve": curve, "best_epoch": sel["best_epoch"], "best_val": sel["best_val"],
           "pseudo_unseen": sel.get("pseudo_unseen"), "wall_seconds": time.time() - t0}
    for k in (5, 10):  # plateau summaries: mean of the last k epochs
        tail = curve[-k:]
        rec[f"mean_last{k}"] = [round(sum(c[i] for c in tail) / len(tail), 2) for i in (0, 1)]
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{a.tag}-{a.dataset}-{a.split.replace('/', '_')}-s{a.seed}.json").write_text(json.dumps(rec, indent=1))
    print(json.dumps({k: rec[k] for k in ("tag", "dataset", "split", "best_epoch", "best_val", "mean_last5",
                                          "mean_last10", "wall_seconds")}))
    print("curve (plain/aligned):", " ".join(f"{x}/{y}" for x, y in curve))
    return 0


if __name__ == "__main__":
    sys.exit(main())
