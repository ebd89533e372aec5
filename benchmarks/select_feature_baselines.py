"""Choose SMIE / DeViSE / CADA-VAE settings on held-out seen data only.

For every (method, variant, file, seed) the method is fitted on the pseudo-unseen problem
cut from the *seen training data* (:func:`zeroskel.data.features.holdout_seen`, the same
split the evaluation protocol uses) and scored there: held-out ZSL top-1 and the held-out
GZSL H at the calibrated-stacking gamma chosen on the same held-out scores. No test sample
is read. Caveat: the pre-extracted features were trained with cross-entropy on all seen
classes, so pseudo-unseen classes are easier than real unseen ones (held-out ZSL is high);
the selection still ranks settings, but its numbers are not estimates of test accuracy.
One JSON per run (resumable); ``--aggregate`` prints mean held-out ZSL / H per
variant, from which one variant per method is chosen (best mean held-out ZSL + H)::

    ZEROSKEL_DATA=/work/shared/data nice python benchmarks/select_feature_baselines.py \\
        --out benchmarks/out/baselines_select
    python benchmarks/select_feature_baselines.py --aggregate --out benchmarks/out/baselines_select
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

FILES = ["utd_mhad_ru5", "utd_mhad_ru9", "utd_mhad_ru13", "nw_ucla_ru2", "nw_ucla_ru5"]

#: variant name -> (registered method, constructor overrides)
VARIANTS = {
    "smie-lr3e-4": ("smie", {"lr": 3e-4}),
    "smie-lr1e-3": ("smie", {"lr": 1e-3}),
    "smie-lr3e-4-ctext": ("smie", {"lr": 3e-4, "center_text": True}),
    "smie-lr1e-3-ctext": ("smie", {"lr": 1e-3, "center_text": True}),
    "devise-softmax": ("devise", {"loss": "softmax"}),
    "devise-hinge": ("devise", {"loss": "hinge"}),
    "devise-softmax-ctext": ("devise", {"loss": "softmax", "center_text": True}),
    "devise-hinge-ctext": ("devise", {"loss": "hinge", "center_text": True}),
    "cada-clr1e-3": ("cada_vae", {"cls_lr": 1e-3}),
    "cada-clr1e-2": ("cada_vae", {"cls_lr": 1e-2}),
    "cada-clr1e-3-ctext": ("cada_vae", {"cls_lr": 1e-3, "center_text": True}),
    "cada-clr1e-2-ctext": ("cada_vae", {"cls_lr": 1e-2, "center_text": True}),
}


def run(variant: str, file: str, seed: int, root: Path, out: Path) -> None:
    from zeroskel.data.features import holdout_seen, load_features, load_token_bank
    from zeroskel.eval.gzsl import choose_threshold, zsl_accuracy
    from zeroskel.methods import build_method

    dst = out / variant / f"{file}_s{seed}.json"
    if dst.exists():
        return
    name, kw = VARIANTS[variant]
    fs = load_features(root / f"{file}.npz")
    texts = load_token_bank(root / f"{file.rsplit('_ru', 1)[0]}_text_mpnet_L5.npy")
    val = holdout_seen(fs, None, seed)
    t0 = time.perf_counter()
    m = build_method(name, seed=seed, **kw).fit(val.train_x, val.train_y, texts, val.seen_classes)
    zsl = zsl_accuracy(m.score(val.zsl_x, val.unseen_classes), val.zsl_y, val.unseen_classes)
    cal = choose_threshold(m.score(val.gzsl_x, val.all_classes), val.gzsl_y, val.all_classes,
                           val.seen_classes, val.unseen_classes)
    res = {"variant": variant, "method": name, "overrides": kw, "file": file, "seed": seed,
           "val_zsl": zsl, "val_stacking": cal, "hparams": m.hparams,
           "seconds": time.perf_counter() - t0}
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, dst)
    print(f"{variant} {file} s{seed}: val ZSL {zsl:.1f} H {cal['H']:.1f} ({res['seconds']:.0f}s)", flush=True)


def aggregate(out: Path) -> str:
    rows: dict[str, list[dict]] = {}
    for f in sorted(out.glob("*/*.json")):
        r = json.loads(f.read_text())
        rows.setdefault(r["variant"], []).append(r)
    lines = ["| variant | runs | held-out ZSL | held-out H | ZSL + H |", "|---|---|---|---|---|"]
    for v in VARIANTS:
        rs = rows.get(v, [])
        if not rs:
            continue
        z = np.mean([r["val_zsl"] for r in rs]); h = np.mean([r["val_stacking"]["H"] for r in rs])
        lines.append(f"| {v} | {len(rs)} | {z:.2f} | {h:.2f} | {z + h:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS))
    p.add_argument("--files", nargs="+", default=FILES)
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    p.add_argument("--features", default=None)
    p.add_argument("--out", default="benchmarks/out/baselines_select")
    p.add_argument("--aggregate", action="store_true")
    a = p.parse_args(argv)
    out = Path(a.out)
    if a.aggregate:
        print(aggregate(out))
        return 0
    root = Path(a.features or Path(os.environ.get("ZEROSKEL_DATA", "")) / "features")
    for v in a.variants:
        if v not in VARIANTS:
            raise SystemExit(f"--variants: unknown {v!r}; valid: {', '.join(VARIANTS)}")
    for seed in a.seeds:
        for file in a.files:
            for v in a.variants:
                run(v, file, seed, root, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
