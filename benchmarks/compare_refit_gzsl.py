"""Calibrated GZSL of two final-model recipes on replayed validation problems, without training.

A nested run (``pilot_pgfa_nested.py``, library protocol with ``validation.refit_from=selected``)
holds the fine-tuned final model and the GZSL gamma its stage 1 chose on held-out training data.
The same problem's base pilot (``pilot_pgfa_small.py``, last epoch, no refit) holds the model a
from-scratch refit produces: same data, seed and budget (the nested replay reproduces pilots to the
digit). Stage 1 is the same in both recipes, so is the gamma. This script scores both models on
the problem's test part (held-out subject / view; seen = pseudo-seen, unseen = pseudo-unseen)
with that gamma and pairs them:

    ZEROSKEL_DATA=/work/shared/data python benchmarks/compare_refit_gzsl.py \\
        benchmarks/out/pgfa_warmf_nested --json benchmarks/out/warm_gzsl.json

Each pair is checked first: each model's plain ZSL here must equal what its own run recorded.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import yaml

from compare_pilots import grouped
from select_alignment import paired_cell

PLAIN = "none"


def score_problem(rec: dict, data_root) -> dict:
    from zeroskel.engine.data import load_prepared
    from zeroskel.methods.alignment import ALIGN_DEFAULTS
    from zeroskel.methods.pgfa import PGFAClassifier
    from zeroskel.methods.pgfa.evaluation import evaluate_classifier

    run, base = Path(rec["run_dir"]), Path(rec["base_run"])
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    calibration = json.loads((run / "selection.json").read_text())["calibration"]
    if not calibration.get("available"):
        raise SystemExit(f"{run}: no stage-1 calibration (run with validation.calibration_fraction > 0)")
    ds, part = load_prepared(cfg, data_root, progress=False)
    align = {**ALIGN_DEFAULTS, "enabled": True, **cfg["alignment"]}
    fine = PGFAClassifier.load(run / "final.pt")
    scratch = PGFAClassifier.load(base / "final.pt")
    # the pilot's model was trained on the same classes; score it on the nested split
    scratch.card["seen"], scratch.card["unseen"] = fine.card["seen"], fine.card["unseen"]
    out = {"problem": base.name, "gamma": calibration["gamma"]}
    for arm, clf, want in (("finetune", fine, rec[PLAIN]), ("scratch", scratch, None)):
        r = evaluate_classifier(clf, ds, part, align, gzsl=True, calibration=calibration)
        out[arm] = {"zsl": r["zsl_top1"], **{k: r["gzsl_calibrated"][k] for k in ("S", "U", "H")}}
        if want is not None and not math.isclose(r["zsl_top1"], want, abs_tol=1e-6):
            raise SystemExit(f"{run}: ZSL {r['zsl_top1']} here, {want} recorded: not the same evaluation")
    return out


def pilot_zsl(base: Path) -> float | None:
    """The pilot's own held-out score of its last-epoch model (plain), when recorded."""
    m = json.loads((base / "selection.json").read_text())
    for row in reversed(m.get("val_curve", [])):
        if "val_top1" in row:
            return float(row["val_top1"])
    return None


def summarise(rows: list[dict]) -> str:
    """All problems, per dataset, per split (compare_pilots.py's groups)."""
    lines = ["| problems | n | scratch S / U / H | fine-tune S / U / H | H difference (se; better/worse) |",
             "|---|---|---|---|---|"]
    for name, group in grouped([(r["problem"], r) for r in rows]).items():
        rs = [r for _, r in group]
        d = np.array([r["finetune"]["H"] - r["scratch"]["H"] for r in rs])
        mean = {arm: " / ".join(f"{np.mean([r[arm][k] for r in rs]):.2f}" for k in ("S", "U", "H"))
                for arm in ("scratch", "finetune")}
        lines.append(f"| {name} | {len(rs)} | {mean['scratch']} | {mean['finetune']} | {paired_cell(d)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("nested", type=Path, help="a pilot_pgfa_nested.py output folder (records *.json, runs/)")
    p.add_argument("--json", type=Path, required=True)
    a = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ZEROSKEL_QUIET", "1")
    data_root = os.environ.get("ZEROSKEL_DATA")
    recs = [json.loads(f.read_text()) for f in sorted(a.nested.glob("*.json"))]
    if not recs:
        raise SystemExit(f"no records in {a.nested}")
    rows = []
    for rec in recs:
        row = score_problem(rec, data_root)
        pz = pilot_zsl(Path(rec["base_run"]))
        if pz is not None and not math.isclose(row["scratch"]["zsl"], pz, abs_tol=1e-6):
            raise SystemExit(f"{rec['base_run']}: ZSL {row['scratch']['zsl']} here, {pz} in its validation curve")
        row["scratch_zsl_checked"] = pz is not None
        rows.append(row)
        print(f"{row['problem']}: gamma {row['gamma']:.3f}  H scratch {row['scratch']['H']:.2f}  "
              f"fine-tune {row['finetune']['H']:.2f}", flush=True)
    a.json.write_text(json.dumps(rows, indent=1))
    print(summarise(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
