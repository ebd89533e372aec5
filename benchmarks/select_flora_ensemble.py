"""Does a seed ensemble of Flora-cpu beat its members on held-out seen data? (no test data)

For every file and held-out seed s, three Flora-cpu models (method seeds s, s+100, s+200)
are fitted on the protocol's pseudo-unseen problem of seed s
(:func:`zeroskel.data.features.holdout_seen`, the split :func:`zeroskel.eval.protocol.evaluate_method`
selects on). At every flow checkpoint the script records held-out ZSL top-1 of the first
member, the mean over members, and the ensemble (mean of the members' scores). The
feature files' test arrays are never read. One JSON per (file, seed); existing ones are skipped::

    ZEROSKEL_DATA=/work/shared/data python benchmarks/select_flora_ensemble.py \\
        --out benchmarks/out/flora_ensemble_select [--files utd_mhad_ru5 ...]
    python benchmarks/select_flora_ensemble.py --aggregate --out benchmarks/out/flora_ensemble_select
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from run_feature_methods import dataset_of

FILES = ["utd_mhad_ru5", "utd_mhad_ru9", "utd_mhad_ru13", "nw_ucla_ru2", "nw_ucla_ru5"]
OFFSETS = (0, 100, 200)


def run(file: str, seed: int, root: Path, out: Path) -> None:
    from zeroskel.data.features import holdout_seen, load_features, load_token_bank
    from zeroskel.eval.gzsl import zsl_accuracy
    from zeroskel.methods.factory import make_factory

    dst = out / f"{file}_s{seed}.json"
    if dst.exists():
        return
    fs = load_features(root / f"{file}.npz")
    ds = dataset_of(file)
    texts = load_token_bank(root / f"{ds}_text_mpnet_L5.npy")
    members, val = [], None
    for off in OFFSETS:
        factory, cfg = make_factory("flora", "cpu", [], seed=seed + off, device="cpu", dataset=ds)
        ev = cfg.get("eval", {})
        val = holdout_seen(fs, ev.get("val_fraction"), seed, sample_fraction=ev.get("val_sample_fraction", 0.2))
        m = factory()
        snaps: dict[int, np.ndarray] = {}
        m.callback = lambda step, m=m, snaps=snaps, val=val: snaps.__setitem__(
            step, m.score(val.zsl_x, val.unseen_classes))
        t0 = time.perf_counter()
        m.fit(val.train_x, val.train_y, texts, val.seen_classes)
        members.append(snaps)
        print(f"{file} seed {seed} member +{off}: {time.perf_counter() - t0:.0f} s", flush=True)
    steps = sorted(members[0])
    acc = lambda sc: zsl_accuracy(sc, val.zsl_y, val.unseen_classes)  # noqa: E731
    rec = {"file": file, "seed": seed, "offsets": list(OFFSETS), "steps": steps,
           "first_member": [acc(members[0][st]) for st in steps],
           "member_mean": [float(np.mean([acc(mm[st]) for mm in members])) for st in steps],
           "ensemble": [acc(np.mean([mm[st] for mm in members], axis=0)) for st in steps]}
    out.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(rec, indent=1))


def aggregate(out: Path) -> None:
    rows = [json.loads(f.read_text()) for f in sorted(out.glob("*_s*.json"))]
    if not rows:
        raise SystemExit(f"no results in {out}")
    print(f"held-out ZSL top-1 %, {len(rows)} (file, seed) problems, last flow checkpoint\n")
    print("| file | seed | first member | member mean | ensemble |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['file']} | {r['seed']} | {r['first_member'][-1]:.1f} | {r['member_mean'][-1]:.1f} | "
              f"{r['ensemble'][-1]:.1f} |")
    for name, key in (("last checkpoint", -1), ("mean over checkpoints", None)):
        pick = (lambda c: c[key]) if key is not None else (lambda c: float(np.mean(c)))  # noqa: E731
        d = np.array([pick(r["ensemble"]) - pick(r["member_mean"]) for r in rows])
        print(f"\nensemble - member mean, {name}: {d.mean():+.2f} (se {d.std(ddof=1) / np.sqrt(len(d)):.2f}; "
              f"better {(d > 0).sum()}, worse {(d < 0).sum()})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/flora_ensemble_select"))
    p.add_argument("--data-root", default=os.environ.get("ZEROSKEL_DATA"))
    p.add_argument("--files", nargs="+", default=FILES)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--aggregate", action="store_true")
    a = p.parse_args(argv)
    if not a.aggregate:
        if not a.data_root:
            raise SystemExit("set ZEROSKEL_DATA or --data-root")
        import torch

        torch.set_num_threads(1)
        for f in a.files:
            for s in a.seeds:
                run(f, s, Path(a.data_root) / "features", a.out)
    aggregate(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
