"""Score variants of PGFA's test-time step on the final models of nested replays.

``pilot_pgfa_nested.py`` replays a held-out validation problem as an ordinary run: its test
set is the pseudo-unseen classes of the held-out subjects / views, never the real test set.
The step (prototype alignment) needs no retraining, so each run's final model embeds its
test samples once and every variant of ``alignment`` is scored on those features. The
preset's own variant must reproduce the step score the run recorded (checked, so a
variant table cannot drift from the runs it claims to rescore). Run it from the repository
root: the nested runs name their problem files relative to it.

    ZEROSKEL_DATA=/work/shared/data python benchmarks/select_step_nested.py \\
        benchmarks/out/pgfa_c32f_nested benchmarks/out/pgfa_c32g_nested --json benchmarks/out/step_grid_fg.json
    python benchmarks/select_step_nested.py --from-json benchmarks/out/step_grid_h.json \\
        --candidate "alpha 0.7, eps 0.1, 3 passes"     # paired gain of one variant over the preset

Prints each variant's mean step top-1 and its paired difference to the preset
(``mean (se; better/worse)``), best first.

``--grid groups`` scores rule Q3's variants instead (evaluation sets of several subjects):
the preset, the preset without centring, per-subject centring (each subject's features
centred on that subject's own mean, then the preset's alignment without global centring)
and no step at all (plain).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from select_alignment import paired_cell

PRESET = "preset"


def variants(preset: dict) -> dict[str, dict]:
    """The grid of rule Q2 (benchmarks/out/def51_rule.txt), as overrides of ``preset``."""
    out = {PRESET: {}}
    for alpha in (0.5, 0.7, 0.9, 1.0):
        for eps in (0.05, 0.1, 0.2):
            for passes in (1, 3, 5):
                v = {"alpha": alpha, "epsilon": eps, "iterations": passes, "pseudo_labels": "balanced",
                     "center": True}
                if any(preset.get(k) != x for k, x in v.items()):
                    out[f"alpha {alpha}, eps {eps}, {passes} pass{'es' if passes > 1 else ''}"] = v
    out["preset, beta 0.5"] = {"beta": 0.5}
    return out


def score_run(run_dir: Path, grid: str = "alignment") -> dict:
    """Step top-1 % of every variant on one nested run's final model and test samples."""
    import torch

    from zeroskel.engine.data import load_prepared
    from zeroskel.methods.alignment import ALIGN_DEFAULTS
    from zeroskel.methods.pgfa import PGFAClassifier
    from zeroskel.methods.pgfa.scoring import zsl_eval

    clf = PGFAClassifier.load(run_dir / "final.pt", device=torch.device("cpu"))
    cfg = clf.card["config"]
    ds, part = load_prepared(cfg, cfg.get("data_root"), progress=False)
    test = ds.partition(part, "test")
    idx = test[np.isin(ds.labels[test], clf.unseen_classes)]
    feats = clf.features(np.asarray(ds.data[idx], dtype=np.float32))
    labels = ds.labels[idx]
    # the grids compare variants with centring on the whole evaluated set, which is what the replays ran
    # (a replay's dataset is a custom file, so the small preset's per_dataset center_by does not apply)
    if cfg["alignment"].get("center_by"):
        raise SystemExit(f"{run_dir}: ran with alignment.center_by {cfg['alignment']['center_by']!r}; the "
                         "variants here are compared with one-mean centring")
    preset = {**ALIGN_DEFAULTS, "enabled": True, "center_by": None, **cfg["alignment"]}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    out = {}
    if grid == "groups":
        subjects = np.asarray(ds.meta["subject"])[idx]
        r = zsl_eval(feats, labels, clf.unseen_classes, clf.text, {**preset, "center": False})
        out["no centring"] = r["top1_aligned"]
        r = zsl_eval(feats, labels, clf.unseen_classes, clf.text, {**preset, "center": True}, groups=subjects)
        out["per-subject centring"] = r["top1_aligned"]
        out["subjects"] = len(np.unique(subjects))
    grid_variants = variants(preset) if grid == "alignment" else {PRESET: {}}
    for name, over in grid_variants.items():
        r = zsl_eval(feats, labels, clf.unseen_classes, clf.text, {**preset, **over})
        out[name] = r["top1_aligned"]
        if name == PRESET:
            if abs(out[name] - metrics["zsl_top1_aligned"]) > 1e-6:
                raise SystemExit(f"{run_dir}: the preset variant gives {out[name]:.4f}, the run recorded "
                                 f"{metrics['zsl_top1_aligned']:.4f}: not the same model or data")
            out["plain"] = r["top1"]
    if grid == "groups":
        out["no step"] = out["plain"]
    return out


def rescore(folders: "list[Path]", score, json_path: "Path | None", line) -> dict[str, dict]:
    """``{run dir: score(run dir)}`` for every finished nested replay (``runs/*/final.pt``) under
    ``folders``, with ``line(run dir, scores)`` printed to stderr after each; written to
    ``json_path`` if given, which must not exist yet (checked before any scoring)."""
    if json_path and json_path.exists():
        raise SystemExit(f"{json_path} exists; not overwriting another run's scores")
    runs = [r for f in folders for r in sorted((f / "runs").iterdir()) if (r / "final.pt").is_file()]
    if not runs:
        raise SystemExit("no finished runs (runs/*/final.pt) under the given folders")
    rows = {}
    for r in runs:
        rows[str(r)] = score(r)
        print(f"{r.parent.parent.name}/{r.name}: {line(rows[str(r)])}", file=sys.stderr, flush=True)
    if json_path:
        json_path.write_text(json.dumps(rows, indent=1))
    return rows


def report(rows: dict[str, dict], candidate: str | None = None) -> None:
    names = [n for n in next(iter(rows.values())) if n not in ("plain", "subjects")]
    base = np.array([r[PRESET] for r in rows.values()])
    print(f"{len(rows)} models; plain {np.mean([r['plain'] for r in rows.values()]):.2f}, "
          f"preset step {base.mean():.2f}")
    if candidate:
        if candidate not in names:
            raise SystemExit(f"unknown variant {candidate!r}; valid: {', '.join(names)}")
        names = [candidate]
    table = sorted(((np.array([r[n] for r in rows.values()]), n) for n in names), key=lambda t: -t[0].mean())
    print("| variant | step top-1 | difference to the preset |\n|---|---|---|")
    for vals, n in table:
        print(f"| {n} | {vals.mean():.2f} | {paired_cell(vals - base)} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="*", type=Path, help="pilot_pgfa_nested.py output folders (with runs/)")
    p.add_argument("--json", type=Path, help="write every score here")
    p.add_argument("--from-json", type=Path, help="report from a --json file instead of scoring")
    p.add_argument("--candidate", help="report only this variant against the preset")
    p.add_argument("--grid", choices=("alignment", "groups"), default="alignment",
                   help="alignment: rule Q2's alpha / epsilon / passes grid; groups: rule Q3's variants")
    a = p.parse_args(argv)
    if a.from_json:
        rows = json.loads(a.from_json.read_text())
    else:
        rows = rescore(a.folders, lambda r: score_run(r, a.grid), a.json, lambda sc: f"preset {sc[PRESET]:.2f}")
    report(rows, a.candidate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
