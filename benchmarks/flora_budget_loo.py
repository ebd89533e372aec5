"""Does Flora's held-out choice of the phase-2 budget transfer? Leave-one-draw-out on stored curves.

``run_feature_methods.py`` with ``--heldout-draws K`` (the cpu preset: 5) records each pseudo-unseen
draw's held-out ZSL curve over the phase-2 checkpoints (``selection.draws[i].curve``). For every run
and draw i, the budget is chosen as the protocol does (maximum of the mean curve, ties to the larger
budget) on the other K-1 draws and scored on draw i; so are the two fixed budgets (0 and the last
checkpoint). Only held-out data is read, never a test number::

    python benchmarks/flora_budget_loo.py benchmarks/out/feature_methods_s20/flora-cpu-d5-align800 [--per-run]

Prints, per folder, the mean held-out ZSL of each rule on the left-out draws and the paired
difference (selected minus fixed; the draws of one run share its final data, so the se is optimistic).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def loo_scores(record: dict) -> dict[str, list[float]]:
    draws = record["selection"]["draws"]
    if len(draws) < 2:
        raise SystemExit(f"{record.get('file')}: one held-out draw; leave-one-out needs at least two")
    curves = np.array([[c["val_zsl"] for c in d["curve"]] for d in draws])  # (K, checkpoints)
    steps = [c["step"] for c in draws[0]["curve"]]
    out: dict[str, list[float]] = {"selected on the other draws": [], "fixed 0": [], f"fixed {steps[-1]}": []}
    for i in range(len(draws)):
        rest = np.delete(curves, i, axis=0).mean(axis=0)
        j = max(range(len(steps)), key=lambda k: (rest[k], steps[k]))
        out["selected on the other draws"].append(float(curves[i, j]))
        out["fixed 0"].append(float(curves[i, 0]))
        out[f"fixed {steps[-1]}"].append(float(curves[i, -1]))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", type=Path, help="run_feature_methods.py result folders (*.json)")
    p.add_argument("--per-run", action="store_true",
                   help="pair per run (the mean over its left-out draws) instead of per draw")
    a = p.parse_args(argv)
    for folder in a.folders:
        files = sorted(folder.glob("*.json"))
        if not files:
            raise SystemExit(f"{folder}: no result JSONs")
        rows: dict[str, list[float]] = {}
        for f in files:
            for k, v in loo_scores(json.loads(f.read_text())).items():
                # --per-run: one value per run (the mean over its left-out draws), the unit of rule Q8
                rows.setdefault(k, []).extend([float(np.mean(v))] if a.per_run else v)
        sel = np.array(rows.pop("selected on the other draws"))
        unit = "runs, per-run means" if a.per_run else "runs, left-out draws"
        print(f"{folder} ({len(files)} {unit}: {len(sel)} values): selected {sel.mean():.2f}")
        for k, v in rows.items():
            d = sel - np.array(v)
            print(f"  vs {k}: {np.mean(v):.2f}; selected minus fixed {d.mean():+.2f} "
                  f"(se {d.std(ddof=1) / np.sqrt(len(d)):.2f}; {int((d > 0).sum())}/{int((d < 0).sum())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
