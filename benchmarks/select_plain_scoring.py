"""Score inductive variants of PGFA's plain scoring on the final models of nested replays.

``pilot_pgfa_nested.py`` replays a held-out validation problem as an ordinary run (its test set
is the pseudo-unseen classes of held-out subjects / views, never the real test set). A change
of how a finished model scores classes needs no retraining, so each replay's final model is
re-scored here. Variants (rules Q5 / Q6 of ``benchmarks/out/def51_rule.txt``):

* ``seen-span anchors``: each block of every class anchor projected onto the span of the
  training classes' anchors of that block, renormalised (seen anchors unchanged);
* ``train-mean centring``: the mean unit feature of the run's own seen training samples is
  subtracted from each unit feature before the cosine (SimpleShot's CL2N);
* ``anchor z-norm`` (rule Q9): each unseen class's cosine standardised by the mean and std of
  that anchor's cosines over the run's seen training samples.

Printed: plain top-1 of the preset and paired differences (``mean (se; better/worse)``); the
preset's step (per-subject centring, as the small preset) for the anchor variant; and with
``--gzsl`` calibrated GZSL H, each run's stacking gamma recomputed on its stage-1 model
(``stage1_last.pt``, the selected epoch under ``validation.select: last``) and its held-out
calibration samples, rebuilt from the run's config. The baseline's recomputed S / U / H must
reproduce the values the replay recorded (checked). Run from the repository root::

    ZEROSKEL_DATA=/work/shared/data python benchmarks/select_plain_scoring.py \\
        benchmarks/out/pgfa_c32f_nested benchmarks/out/pgfa_c32g_nested --gzsl --json OUT.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from select_alignment import paired_cell
from select_step_nested import rescore

VARIANTS = ("seen-span anchors", "train-mean centring", "anchor z-norm")


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def span_anchors(text: np.ndarray, seen: np.ndarray, blocks: int) -> np.ndarray:
    """(C, B*D) anchors with each block projected onto the span of the ``seen`` rows' block,
    renormalised to the block's norm 1/sqrt(B) (as the model's outputs)."""
    out = np.array(text, dtype=np.float64)
    dim = out.shape[1] // blocks
    for b in range(blocks):
        sl = slice(b * dim, (b + 1) * dim)
        q, _ = np.linalg.qr(out[seen][:, sl].T)  # orthonormal basis of the seen anchors' span
        out[:, sl] = unit(out[:, sl] @ q @ q.T) / np.sqrt(blocks)
    return out.astype(np.float32)


def score_run(run_dir: Path, gzsl: bool) -> dict:
    import torch

    from zeroskel.data.splits import get_split
    from zeroskel.engine.data import load_prepared
    from zeroskel.engine.trainer import load_checkpoint
    from zeroskel.eval.gzsl import gzsl_eval
    from zeroskel.eval.protocol import calibrate
    from zeroskel.methods.alignment import ALIGN_DEFAULTS
    from zeroskel.methods.pgfa import PGFAClassifier, build_model
    from zeroskel.methods.pgfa.scoring import embed, zsl_eval
    from zeroskel.methods.pgfa.training import training_partition, validation_partition

    cpu = torch.device("cpu")
    clf = PGFAClassifier.load(run_dir / "final.pt", device=cpu)
    cfg = clf.card["config"]
    ds, part = load_prepared(cfg, cfg.get("data_root"), progress=False)
    split = get_split(cfg["dataset"], cfg["split"])
    labels, text = ds.labels, clf.text
    seen, unseen = clf.seen_classes, clf.unseen_classes
    train_part = training_partition(cfg, ds, part)
    feats = lambda model, idx: embed(model, np.asarray(ds.data[idx], np.float32), cpu)  # noqa: E731
    model = clf.model

    test = ds.partition(part, "test")
    idx = test[np.isin(labels[test], unseen)]
    f, y = unit(feats(model, idx)), labels[idx]
    f_train = unit(feats(model, train_part[np.isin(labels[train_part], seen)]))
    m_train = f_train.mean(0)
    an = unit(text[unseen])
    out = {"plain": float((unseen[(f @ an.T).argmax(1)] == y).mean() * 100)}
    rec = json.loads((run_dir / "metrics.json").read_text())
    if abs(out["plain"] - rec["zsl_top1"]) > 1e-6:
        raise SystemExit(f"{run_dir}: plain {out['plain']:.4f} but the run recorded {rec['zsl_top1']:.4f}")
    out["train-mean centring"] = float((unseen[((f - m_train) @ an.T).argmax(1)] == y).mean() * 100)
    s_train = f_train @ an.T
    z = (f @ an.T - s_train.mean(0)) / s_train.std(0)
    out["anchor z-norm"] = float((unseen[z.argmax(1)] == y).mean() * 100)
    span = span_anchors(text, seen, model.num_blocks)
    out["seen-span anchors"] = float((unseen[(f @ unit(span[unseen]).T).argmax(1)] == y).mean() * 100)
    preset = {**ALIGN_DEFAULTS, "enabled": True, **cfg["alignment"], "center_by": "subject"}
    groups = np.asarray(ds.meta["subject"])[idx]
    out["step"] = zsl_eval(f, y, unseen, text, preset, groups=groups)["top1_aligned"]
    out["step, seen-span anchors"] = zsl_eval(f, y, unseen, span, preset, groups=groups)["top1_aligned"]
    if not gzsl:
        return out

    # calibrated GZSL: gamma from the stage-1 model on the rebuilt held-out samples, then the test
    vp = validation_partition(cfg, ds, split, train_part)
    if not len(vp["calibration"]):
        raise SystemExit(f"{run_dir}: no held-out calibration samples (validation.calibration_fraction 0)")
    stage1 = build_model(cfg, clf.card["layout"], int(clf.card["num_persons"]), model.text_dim)
    stage1.load_state_dict(load_checkpoint(run_dir / "stage1_last.pt")["model"])
    pseen, punseen = vp["pseudo_split"].seen_array, vp["val_classes"]
    cal_idx = np.concatenate([vp["calibration"], vp["val"]])
    cal_classes = np.concatenate([pseen, punseen])
    fc = unit(feats(stage1, cal_idx))
    m1 = unit(feats(stage1, vp["fit"])).mean(0)
    all_idx = test[np.isin(labels[test], np.concatenate([seen, unseen]))]
    fg = unit(feats(model, all_idx))
    classes = np.concatenate([seen, unseen])
    for name, c1, c2 in (("baseline", 0.0, 0.0), ("train-mean centring", m1, m_train)):
        gamma = calibrate((fc - c1) @ unit(text[cal_classes]).T, labels[cal_idx], cal_classes, pseen,
                          punseen)["stacking"]["gamma"]
        g = gzsl_eval((fg - c2) @ unit(text[classes]).T, labels[all_idx], classes, seen, unseen, gamma=gamma)
        out[f"H, {name}"] = g["H"]
    rec_nested = json.loads(next(run_dir.parent.parent.glob(f"*-{run_dir.name}.json")).read_text())
    if abs(out["H, baseline"] - rec_nested["gzsl_calibrated"]["H"]) > 1e-6:
        raise SystemExit(f"{run_dir}: recomputed H {out['H, baseline']:.4f}, recorded "
                         f"{rec_nested['gzsl_calibrated']['H']:.4f}: the rebuild is not the run")
    return out


def report(rows: dict[str, dict]) -> None:
    r = list(rows.values())
    col = lambda k: np.array([x[k] for x in r])  # noqa: E731
    print(f"{len(r)} models; plain {col('plain').mean():.2f}, step {col('step').mean():.2f}")
    print("| variant | score | difference (se; better/worse) |\n|---|---|---|")
    for name in (v for v in VARIANTS if v in r[0]):  # records made before a variant existed lack it
        print(f"| plain, {name} | {col(name).mean():.2f} | {paired_cell(col(name) - col('plain'))} |")
    print(f"| step, seen-span anchors | {col('step, seen-span anchors').mean():.2f} | "
          f"{paired_cell(col('step, seen-span anchors') - col('step'))} |")
    if "H, baseline" in r[0]:
        print(f"| calibrated GZSL H, train-mean centring | {col('H, train-mean centring').mean():.2f} | "
              f"{paired_cell(col('H, train-mean centring') - col('H, baseline'))} (baseline {col('H, baseline').mean():.2f}) |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folders", nargs="*", type=Path, help="pilot_pgfa_nested.py output folders (with runs/)")
    p.add_argument("--gzsl", action="store_true", help="also recompute calibrated GZSL H")
    p.add_argument("--json", type=Path, help="write every score here (never overwritten)")
    p.add_argument("--from-json", type=Path, help="report from a --json file instead of scoring")
    a = p.parse_args(argv)
    if a.from_json:
        rows = json.loads(a.from_json.read_text())
    else:
        import torch

        torch.set_num_threads(1)
        rows = rescore(a.folders, lambda r: score_run(r, a.gzsl), a.json,
                       lambda sc: ", ".join(f"{k} {v:.1f}" for k, v in sc.items()))
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
