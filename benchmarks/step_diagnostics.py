"""Can a label-free statistic tell when PGFA's test-time step will hurt? (validation only)

The preset's step (test centring + balanced prototype alignment) gains on average on held-out
problems but loses badly on some models. A safeguard would fall back to plain scoring when
a statistic computed without labels predicts a loss. This script measures, on the
held-out-subject/view pilots (``select_alignment.py --group-only`` samples: pseudo-unseen
classes of people or views stage 1 never saw; no test sample is read), how each statistic
correlates with the step's gain (step minus plain validation top-1) across models:

- ``agree``: fraction of samples whose plain and stepped predictions agree;
- ``own``: fraction of final prototypes whose nearest (uncentred) text anchor is their own class;
- ``spread``: normalised entropy of the plain predictions' class histogram (1 = uniform,
  0 = collapsed onto one class).

    ZEROSKEL_DATA=/work/shared/data python benchmarks/step_diagnostics.py \\
        benchmarks/out/pgfa_seg3_pilots/runs/* --out benchmarks/out/step_diagnostics.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from select_alignment import validation_features  # noqa: E402

PRESET = {"alpha": 0.9, "pseudo_labels": "balanced", "epsilon": 0.1, "iterations": 3, "center": True}
STATS = ("agree", "own", "spread")


def diagnose(feats: np.ndarray, labels: np.ndarray, classes: np.ndarray, anchors: np.ndarray) -> dict:
    """Plain and stepped validation top-1 (%) and the label-free statistics of one model."""
    from zeroskel.methods.alignment import prototype_alignment
    from zeroskel.methods.pgfa import cosine

    plain = cosine(feats, anchors).argmax(1)
    protos, step = prototype_alignment(feats, anchors, **PRESET)
    k = len(anchors)
    hist = np.bincount(plain, minlength=k) / len(plain)
    nz = hist[hist > 0]
    return {"plain": float(100 * np.mean(classes[plain] == labels)),
            "step": float(100 * np.mean(classes[step] == labels)),
            "agree": float(np.mean(plain == step)),
            "own": float(np.mean(cosine(protos, anchors).argmax(1) == np.arange(k))),
            "spread": float(-(nz * np.log(nz)).sum() / np.log(k))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="held-out-group pilot run directories")
    p.add_argument("--data-root", default=os.environ.get("ZEROSKEL_DATA"))
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(1)
    rows = {}
    for rd in a.runs:
        sel = rd / "selection.json"
        if not sel.is_file() or not json.loads(sel.read_text()).get("heldout_group"):
            continue
        for ck in ("stage1_last.pt", "stage1_best.pt"):
            if (rd / ck).is_file():
                v = validation_features(rd, ck, a.data_root, group_only=True)
                rows[f"{rd.name}/{ck}"] = diagnose(v["feats"], v["labels"], v["classes"], v["text"][v["classes"]])
    if len(rows) < 3:
        raise SystemExit("need at least 3 held-out-group pilot models (validation.heldout_group runs)")
    gain = np.array([r["step"] - r["plain"] for r in rows.values()])
    print(f"{len(rows)} models; step - plain: mean {gain.mean():+.2f}, {int((gain < 0).sum())} models lose")
    print("| statistic | mean | Pearson r with the gain | Spearman rho |")
    print("|---|---|---|---|")
    for s in STATS:
        x = np.array([r[s] for r in rows.values()])
        rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
        print(f"| {s} | {x.mean():.3f} | {np.corrcoef(x, gain)[0, 1]:+.3f} | {np.corrcoef(rank(x), rank(gain))[0, 1]:+.3f} |")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
