"""Which epoch-selection rule transfers on the small datasets? (validation curves only)

``zeroskel train`` picks the final model's epoch count on a validation problem (stage 1) and
refits on all seen classes for that many epochs. Whether a rule picks a *good number of
epochs* can be checked without the test set: pilots of the same split with other seeds drew
other validation problems (other pseudo-unseen classes, another held-out subject or view).
Leave one problem out: a rule picks the epoch on pilot i's validation curve, and that epoch
is scored on the curves of the other pilots of the split (their validation top-1 at that
epoch). Rules: ``last`` (the last epoch of the budget) and ``argmax`` of the curve with a
trailing mean over ``smooth`` epochs and ``min_epoch`` (:func:`zeroskel.methods.pgfa.select_epoch`).

    python benchmarks/select_epoch_rule.py benchmarks/out/pgfa_seg3_pilots \\
        benchmarks/out/pgfa_shiftgcn_pilots ...

Reads ``runs/*/selection.json`` (``val_curve``) of each pilot folder; prints, per folder and
curve (plain / aligned validation top-1), each rule's mean transferred score and its paired
difference to ``last`` over the pilots (se over pilots; the scores of one split share curves,
so the se is approximate).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from select_alignment import paired_cell  # noqa: E402

RULES = [("last", None, None)] + [("argmax", s, m) for s in (1, 3, 5, 10) for m in (1, 5, 10)]


def curves(folder: Path) -> "dict[str, list[dict[str, np.ndarray]]]":
    """split key -> one {metric: (E,) curve} per pilot run of ``folder``."""
    out: dict[str, list] = defaultdict(list)
    for sel in sorted(folder.glob("runs/*/selection.json")):
        s = json.loads(sel.read_text())
        if not s.get("val_curve"):
            continue
        key = sel.parent.name.rsplit("-seed", 1)[0]
        out[key].append({m: np.array([h.get(f"val_{m}", np.nan) for h in s["val_curve"]], dtype=float)
                         for m in ("top1", "top1_aligned")})
    return out


def transfer_scores(cs: "dict[str, list[dict]]", metric: str) -> "dict[str, list[float]]":
    """rule name -> one transferred score per pilot (its pick, scored on the split's others)."""
    from zeroskel.methods.pgfa import select_epoch

    res: dict[str, list[float]] = defaultdict(list)
    for runs in cs.values():
        if len(runs) < 2:
            continue
        for i, run in enumerate(runs):
            hist = [{f"val_{metric}": x} for x in run[metric]]
            others = [o[metric] for j, o in enumerate(runs) if j != i]
            for name, smooth, min_epoch in RULES:
                e = len(hist) if name == "last" else select_epoch(hist, metric, smooth, min_epoch)
                label = name if name == "last" else f"argmax smooth {smooth} min_epoch {min_epoch}"
                res[label].append(float(np.mean([o[e - 1] for o in others])))
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="+", type=Path, help="pilot folders (with runs/*/selection.json)")
    p.add_argument("--out", type=Path, default=None, help="JSON with every transferred score")
    a = p.parse_args(argv)
    dump = {}
    for folder in a.folders:
        cs = curves(folder)
        if not cs:
            raise SystemExit(f"{folder}: no runs/*/selection.json with a val_curve")
        for metric in ("top1", "top1_aligned"):
            res = transfer_scores(cs, metric)
            dump[f"{folder.name}/{metric}"] = res
            base = np.array(res["last"])
            print(f"\n{folder.name}, val_{metric} ({len(base)} pilots of {len(cs)} splits)")
            print("| rule | transferred score | vs last (se; better/worse) |\n|---|---|---|")
            for name, v in res.items():
                print(f"| {name} | {np.mean(v):.2f} | {paired_cell(np.array(v) - base)} |")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(dump, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
