"""Run registered feature-based zero-shot methods over feature files x seeds.

Every (method, file, seed) run goes through :func:`zeroskel.eval.protocol.evaluate_method`
(held-out selection, calibrated stacking + gate) and writes one JSON file, so a sweep can
run in the background, be interrupted and resumed (existing JSONs are skipped), and be
aggregated afterwards::

    ZEROSKEL_DATA=/work/shared/data nice python benchmarks/run_feature_methods.py \\
        --methods flora --preset cpu --seeds 1 2 3 --out benchmarks/out/feature_methods
    python benchmarks/run_feature_methods.py --aggregate --out benchmarks/out/feature_methods

Methods come from ``zeroskel.methods.METHODS``. A method with a ``configs/<name>/base.yaml``
is configured from it (+ ``--preset``, + ``--set key.sub=value``); others get
``--set key=value`` as constructor keyword arguments. ``seed`` and ``device`` are passed when
the constructor takes them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np


DEFAULT_FILES = ["utd_mhad_ru5", "utd_mhad_ru9", "utd_mhad_ru13", "nw_ucla_ru2", "nw_ucla_ru5"]

#: numbers of the Flora reference code on the shared files (features/README.md): best of
#: test evaluations, iterations scaled down for CPU. ZSL, (S, U, H).
FLORA_REFERENCE = {
    "utd_mhad_ru5": (27.50, (53.43, 21.25, 30.41)),
    "utd_mhad_ru9": (13.19, (56.29, 6.94, 12.36)),
    "utd_mhad_ru13": (25.00, (56.31, 13.46, 21.73)),
    "nw_ucla_ru2": (51.55, (33.79, 50.52, 40.49)),
    "nw_ucla_ru5": (40.25, (35.09, 24.58, 28.91)),
}


def dataset_of(file: str) -> str:
    """Dataset of a feature-file stem (``utd_mhad_ru5`` -> ``utd_mhad``): picks the text bank
    and the preset's per-dataset block."""
    return file.rsplit("_ru", 1)[0].rsplit("_rs", 1)[0]


def run_one(name: str, tag: str, file: str, seed: int, args) -> Path:
    from zeroskel.data.features import load_features, load_token_bank
    from zeroskel.eval.protocol import evaluate_named

    out = Path(args.out) / tag / f"{file}_s{seed}.json"
    if out.exists() and not args.force:
        print(f"skip {out} (exists)", flush=True)
        return out
    root = Path(args.features)
    fs = load_features(root / f"{file}.npz")
    if args.low_shot is not None:  # fewer training samples per seen class; test sets unchanged
        from zeroskel.data.features import low_shot
        fs = low_shot(fs, fraction=args.low_shot, seed=seed)
    ds = dataset_of(file)
    texts = load_token_bank(root / f"{ds}_text_mpnet_L5.npy")
    t0 = time.time()
    res = evaluate_named(name, fs, texts, seed, preset=args.preset, overrides=args.set, device=args.device,
                         dataset=ds, heldout_draws=args.heldout_draws, ref_style=args.ref_style,
                         log=lambda s: print(s, flush=True))
    res.update({"file": file, "dataset": ds, "tag": tag, "preset": args.preset, "sets": args.set, "low_shot": args.low_shot,
                "text_bank": str(
        root / f"{ds}_text_mpnet_L5.npy"), "threads": args.threads})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1, default=float))
    os.replace(tmp, out)
    g = res["gzsl"]
    gate = g.get("gate", {})
    cs = g.get("stacking")
    print(f"{tag} {file} s{seed}: ZSL {res['zsl']:.2f} | "
          + (f"CS S/U/H {cs['S']:.1f}/{cs['U']:.1f}/{cs['H']:.1f}" if cs else "CS n/a (no held-out seen data)")
          + (f" | gate {gate['S']:.1f}/{gate['U']:.1f}/{gate['H']:.1f}" if gate else "")
          + f" | {time.time() - t0:.0f}s", flush=True)
    return out


# ---------------------------------------------------------------------------- aggregation
def _ms(vals) -> str:
    """mean ± population std (ddof 0) over seeds; RESULTS.md's feature tables use this."""
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    return f"{np.mean(vals):.2f} ± {np.std(vals):.2f}" if len(vals) > 1 else f"{vals[0]:.2f}"


def _flat_count(rs: list[dict]) -> str:
    """How many runs chose their budget from a flat held-out curve (the choice was the
    full-budget default, not a selection); computed from the stored curve, so it also
    reads results written before ``selection.curve_flat`` existed."""
    curves = [r["selection"].get("curve") or [] for r in rs]
    judged = [c for c in curves if len(c) > 1]
    if not judged:
        return "-"
    return f"{sum(len({round(x['val_zsl'], 6) for x in c}) == 1 for c in judged)} of {len(judged)}"


def aggregate(out_dir: str, tags: list[str] | None = None, reference: bool = True) -> str:
    """Markdown table (mean ± std over seeds) of every ``<out_dir>/<tag>/*.json``."""
    rows = {}
    for f in sorted(Path(out_dir).glob("*/*.json")):
        if tags and f.parent.name not in tags:
            continue
        r = json.loads(f.read_text())
        rows.setdefault((r["tag"], r["file"]), []).append(r)
    if not rows:
        return f"no results under {out_dir}"
    lines = ["| method | file | seeds | ZSL | GZSL CS S / U / H | GZSL gate S / U / H | "
             "ref-style best-of-test ZSL / H (extra) | flat held-out curves | fit+eval s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (tag, file), rs in sorted(rows.items(), key=lambda kv: (kv[0][0], DEFAULT_FILES.index(kv[0][1])
                                                                if kv[0][1] in DEFAULT_FILES else 99)):
        g = lambda rule, k: [r["gzsl"][rule][k] for r in rs if rule in r["gzsl"]]
        cs = " / ".join(_ms(g("stacking", k)) for k in "SUH") if g("stacking", "H") else "-"
        gate = " / ".join(_ms(g("gate", k)) for k in "SUH") if g("gate", "H") else "-"
        ref = [r.get("ref_style_best_of_test") for r in rs]
        refs = (f"{_ms([x['zsl'] for x in ref if x])} / {_ms([x['gzsl']['H'] for x in ref if x])}"
                if any(ref) else "-")
        t = _ms([r["timings_s"]["total"] for r in rs])
        lines.append(f"| {tag} | {file} | {len(rs)} | {_ms([r['zsl'] for r in rs])} | {cs} | {gate} | "
                     f"{refs} | {_flat_count(rs)} | {t} |")
    if not reference:
        return "\n".join(lines)
    lines += ["", "| Flora reference code (features README, best of test evaluations) | ZSL | S / U / H |",
              "|---|---|---|"]
    for f, (z, (s, u, h)) in FLORA_REFERENCE.items():
        lines.append(f"| {f} | {z:.2f} | {s:.2f} / {u:.2f} / {h:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=["flora"])
    p.add_argument("--files", nargs="+", default=DEFAULT_FILES, help="feature file stems")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--preset", default=None, help="configs/<method>/<preset>.yaml (e.g. cpu)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--tag", default=None, help="result sub-folder (default: method[-preset])")
    p.add_argument("--features", default=None, help="folder of feature files "
                   "(default: $ZEROSKEL_DATA/features)")
    p.add_argument("--out", default="benchmarks/out/feature_methods")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ref-style", action="store_true", help="also record best-of-test numbers (extra)")
    p.add_argument("--heldout-draws", type=int, default=None, metavar="K",
                   help="pseudo-unseen draws for selection/calibration (default: the config's, else 1)")
    p.add_argument("--force", action="store_true", help="re-run even if the JSON exists")
    p.add_argument("--low-shot", type=float, default=None, metavar="FRACTION",
                   help="keep max(1, int(FRACTION * n_c)) training samples per seen class (Flora's rule)")
    p.add_argument("--aggregate", action="store_true", help="only print the markdown table")
    p.add_argument("--only", nargs="+", default=None, metavar="TAG", help="aggregate only these tags")
    args = p.parse_args(argv)
    if args.aggregate:
        print(aggregate(args.out, args.only, reference=args.only is None or any("flora" in t for t in args.only)))
        return 0
    if args.features is None:
        root = os.environ.get("ZEROSKEL_DATA")
        if not root:
            raise SystemExit("set ZEROSKEL_DATA or pass --features DIR")
        args.features = str(Path(root) / "features")
    import torch

    torch.set_num_threads(args.threads)
    failed = 0
    for name in args.methods:
        tag = args.tag or (name + (f"-{args.preset}" if args.preset else "")
                           + (f"-lowshot{args.low_shot:g}" if args.low_shot is not None else ""))
        for file in args.files:
            for seed in args.seeds:
                try:
                    run_one(name, tag, file, seed, args)
                except Exception:  # keep the sweep going; the traceback says what broke
                    failed += 1
                    print(f"FAILED {name} {file} s{seed}", file=sys.stderr)
                    traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
